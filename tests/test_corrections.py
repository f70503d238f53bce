"""Unit tests of single functions: the correction in force, humans-win on a shard table, labeling configs,
where the Label Studio key comes from. (The review loop itself is tested against a real server in
test_review.py.)"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from annotation import server as labelstudio_server
from annotation.labeling import CATEGORIES, label_config
from pipeline.assemble.humans import apply_to_table
from pipeline.assemble.translations import TRANSLATION_SCHEMA
from pipeline.languages import LANGUAGES
from pipeline.review import corrections

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def row(
    annotation_id: int,
    minutes: int,
    text: str | None,
    machine: str = "machine",
    skipped: bool = False,
    turn: int = 0,
    reviewer: int = 1,
) -> dict:
    return {
        "lang": "ur",
        "conv_key": "c1",
        "turn_index": turn,
        "id": "x",
        "role": "gpt",
        "task_key": f"c1:{turn}:ur:tv",
        "translator_version": "tv",
        "source": "src",
        "machine_text": machine,
        "corrected_text": text,
        "edited": text is not None and text != machine,
        "skipped": skipped,
        "categories": [],
        "rating": None,
        "reviewer": f"r{reviewer}",
        "reviewer_id": reviewer,
        "annotation_id": annotation_id,
        "task_id": 1,
        "project_id": 1,
        "lead_time": 1.0,
        "created_at": T0,
        "updated_at": T0 + timedelta(minutes=minutes),
        "pulled_at": T0 + timedelta(minutes=minutes),
    }


def test_latest_version_wins_and_skips_do_not_count(tmp_path):
    corrections.append(tmp_path, [row(1, 0, "first"), row(2, 1, "other reviewer", reviewer=2)])
    corrections.append(tmp_path, [row(1, 5, "edited later")])
    corrections.append(tmp_path, [row(3, 9, None, skipped=True, reviewer=3)])
    force = corrections.in_force(tmp_path, "ur")
    assert force["corrected_text"].to_list() == ["edited later"]
    assert corrections.history(tmp_path).height == 4
    assert corrections.overrides(tmp_path, "ur") == {("c1", 0): ("edited later", corrections.HUMAN_CORRECTED)}
    assert corrections.append(tmp_path, []) is None


def test_an_accepted_turn_is_reviewed_not_corrected(tmp_path):
    corrections.append(tmp_path, [row(1, 0, "machine")])
    assert corrections.overrides(tmp_path, "ur") == {("c1", 0): ("machine", corrections.HUMAN_REVIEWED)}


def shard(values: list[str], qe: list[str]) -> pa.Table:
    n = len(values)
    data = {name: None for name in TRANSLATION_SCHEMA.names}
    data.update(
        id="x",
        conv_key="c1",
        lang="ur",
        conversations=[{"from": "gpt", "value": v} for v in values],
        status="flagged",
        turn_status=["flagged"] + ["ok"] * (n - 1),
        turn_flags=[["unit 0: truncated"]] + [[]] * (n - 1),
        turn_qe_status=qe,
        turn_qe_reasons=[["truncated"]] + [[]] * (n - 1),
        qe_status="rejected",
        turn_human=[None] * n,
        review_status="unreviewed",
        human_corrected=False,
    )
    return pa.Table.from_pylist([data], schema=TRANSLATION_SCHEMA)


def test_human_text_replaces_machine_text_and_reapplying_changes_nothing():
    table = shard(["bad machine", "fine"], ["rejected", "accepted"])
    human = {("c1", 0): ("درست\n متن ", corrections.HUMAN_CORRECTED)}
    out, changed = apply_to_table(table, human)
    r = out.to_pylist()[0]
    assert changed == 1
    assert r["conversations"][0]["value"] == "درست\n متن " and r["conversations"][1]["value"] == "fine"
    assert r["turn_human"] == ["corrected", None] and r["human_corrected"] and r["review_status"] == "corrected"
    assert r["qe_status"] == "accepted" and r["status"] == "ok" and r["turn_flags"][0] == []
    again, changed_again = apply_to_table(out, human)
    assert changed_again == 0 and again.equals(out)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_labeling_config_is_well_formed_for_every_language(lang):
    root = ET.fromstring(label_config(lang))
    names = {e.get("name") for e in root.iter() if e.get("name")}
    assert {"translation", "categories", "rating", "english", "context", "notes"} <= names
    assert [c.get("value") for c in root.iter("Choice")] == list(CATEGORIES)
    textarea = next(root.iter("TextArea"))
    assert textarea.get("editable") == "true"
    style = next(root.iter("Style")).text
    assert ("direction: rtl" in style) == LANGUAGES[lang].rtl
    assert ("Nastaliq" in style) == (lang == "ur")


def test_api_key_from_a_file_and_a_clear_error_without_one(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYGLOT_HOME", str(tmp_path / "home"))
    for name in ("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_URL"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "key"
    key_file.write_text("k" * 40 + "\n")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY_FILE", str(key_file))
    login = labelstudio_server.labelstudio_login()
    assert login.api_key == "k" * 40 and login.url == "http://127.0.0.1:8080" and "k" * 40 not in repr(login)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY_FILE")
    with pytest.raises(RuntimeError, match="LABEL_STUDIO_API_KEY"):
        labelstudio_server.labelstudio_login()
    created = labelstudio_server.labelstudio_login(create=True)
    path = labelstudio_server.secrets_file()
    assert path.stat().st_mode & 0o777 == 0o600 and created.api_key in path.read_text()
    assert labelstudio_server.labelstudio_login().api_key == created.api_key  # the same key next time
