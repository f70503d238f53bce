"""Releases end to end: translations from the real vLLM server → v1 → corrections → v2; diff, verify, load with
``datasets`` and polars, LLaVA export back through the project's own ingest. Tests run in order."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from annotation.labeling import TRANSLATION
from annotation.review import annotation_row, apply_corrections
from annotation.tasks import build_tasks
from pipeline import release
from pipeline.review import corrections

from .conftest import LENIENT_QE, LLAVA, polyglot

LANGS = ["hi", "ur"]


@pytest.fixture(scope="module")
def ws(vllm_server, tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("release-ws")
    qe = workspace.parent / "lenient-qe.json"
    qe.write_text(json.dumps(LENIENT_QE))
    proc = polyglot(
        "translate",
        str(LLAVA / "coco_val_qa90_gpt4.json"),
        "--workspace",
        str(workspace),
        "--langs",
        ",".join(LANGS),
        "--server",
        vllm_server.url,
        "--limit",
        "12",
        "--no-progress",
        "--bt-rate",
        "0",
        "--qe-config",
        str(qe),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return workspace


def test_publish_writes_the_hub_layout_manifest_and_card(ws):
    note = "Made by a small demo model: its quality figures are not a production translator's."
    proc = polyglot("publish", "--workspace", str(ws), "--shard-rows", "5", "--note", note)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    v1 = ws / "releases" / "v1"
    assert "release v1 written" in proc.stdout
    for lang in LANGS:
        assert sorted(p.name for p in (v1 / "data" / lang).iterdir()) == [
            f"train-0000{i}-of-00003.parquet" for i in range(3)
        ]
    manifest = json.loads((v1 / "manifest.json").read_text())
    assert manifest["version"] == "v1" and manifest["parent"] is None and manifest["counts"]["hi"]["rows"] == 12
    assert (
        manifest["inputs"][0]["path"].endswith("coco_val_qa90_gpt4.json") and len(manifest["inputs"][0]["sha256"]) == 64
    )
    assert all(len(info["sha256"]) == 64 for info in manifest["files"].values())
    assert {"data/hi/train-00000-of-00003.parquet", "README.md"} <= set(manifest["files"])
    card = (v1 / "README.md").read_text()
    assert card.startswith("---\n") and "- config_name: ur" in card and "path: data/ur/train-*.parquet" in card
    assert f"> **Note.** {note}" in card and manifest["note"] == note  # the note opens the card, above the statistics
    assert card.index(note) < card.index("## Statistics")
    assert not list((ws / "releases").glob(".*"))  # no temporary directory left behind
    df = pl.read_parquet(v1 / "data" / "hi" / "*.parquet")
    assert {
        "id",
        "image",
        "conversations",
        "lang",
        "source_id",
        "translator_version",
        "rules_version",
        "qe_status",
        "review_status",
        "human_corrected",
    } <= set(df.columns)


def test_the_cards_yaml_round_trips_and_datasets_reads_its_configs(ws):
    """The front matter is real YAML the hub's own card class reads back (keys and quoting checked), and datasets
    finds one config per language in it."""
    from datasets import get_dataset_config_names
    from huggingface_hub import DatasetCard

    v1 = ws / "releases" / "v1"
    data = DatasetCard.load(v1 / "README.md").data.to_dict()
    assert (
        data["license"] == "cc-by-nc-4.0"
        and data["language"] == LANGS
        and data["pretty_name"] == "LLaVA-Instruct multilingual (v1)"
    )
    assert data["configs"] == [
        {"config_name": lang, "data_files": [{"split": "train", "path": f"data/{lang}/train-*.parquet"}]}
        for lang in LANGS
    ]
    assert get_dataset_config_names(str(v1)) == LANGS


def test_datasets_loads_every_language_config(ws, tmp_path):
    from datasets import load_dataset

    for lang in LANGS:
        ds = load_dataset(str(ws / "releases" / "v1"), lang, split="train", cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == 12 and set(ds["lang"]) == {lang}
        assert ds[0]["conversations"][0]["from"] == "human"
    lazy = release.load(ws / "releases" / "v1", "ur")
    assert lazy.select(pl.len()).collect().item() == 12


def test_the_cards_load_it_snippet_runs_as_written(ws, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    card = (ws / "releases" / "v1" / "README.md").read_text()
    snippet = card.split("## Load it", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "path/to/v1" in snippet
    namespace: dict = {}
    exec(snippet.replace("path/to/v1", str(ws / "releases" / "v1")), namespace)  # our own card, not model output
    assert namespace["hi"].num_rows == 12 and set(namespace["hi"]["lang"]) == {"hi"}
    assert namespace["frame"].select(pl.len()).collect().item() == 12


def test_second_release_after_corrections_diffs_exactly_the_corrected_rows(ws):
    shards = pl.read_parquet(ws / "translations" / "hi" / "*.parquet").sort("id")
    keys = shards["conv_key"].to_list()[:2]
    tasks = [t for t in build_tasks(ws, "hi", keys) if t["data"]["turn_index"] == 1]
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = [
        annotation_row(
            {"id": 10 + n, **t},
            {
                "id": 90 + n,
                "project": 1,
                "completed_by": 2,
                "was_cancelled": False,
                "created_at": stamp,
                "updated_at": stamp,
                "result": [
                    {
                        "from_name": TRANSLATION,
                        "to_name": "english",
                        "type": "textarea",
                        "value": {"text": [f"सुधारा गया उत्तर {n}।"]},
                    }
                ],
            },
            {2: "reviewer@example.org"},
            now,
        )
        for n, t in enumerate(tasks)
    ]
    corrections.append(ws, rows)
    assert apply_corrections(ws, "hi") == 2  # what the review pull does after fetching
    proc = polyglot("publish", "--workspace", str(ws), "--shard-rows", "5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((ws / "releases" / "v2" / "manifest.json").read_text())["parent"] == "v1"
    out = ws.parent / "diff.json"
    proc = polyglot("release", "diff", "v1", "v2", "--workspace", str(ws), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    changes = json.loads(out.read_text())
    corrected_ids = sorted(shards.filter(pl.col("conv_key").is_in(keys))["id"].to_list())
    assert changes["hi"]["changed"] == corrected_ids
    assert changes["hi"]["added"] == changes["hi"]["removed"] == []
    assert changes["ur"] == {"added": [], "removed": [], "changed": [], "examples": []}
    assert {ex["after"] for ex in changes["hi"]["examples"]} == {"सुधारा गया उत्तर 0।", "सुधारा गया उत्तर 1।"}
    assert "| hi | 0 | 0 | 2 |" in (ws / "releases" / "v2" / "README.md").read_text()


def test_republishing_a_version_is_refused(ws):
    before = json.loads((ws / "releases" / "v2" / "manifest.json").read_text())
    proc = polyglot("publish", "--workspace", str(ws), "--version", "v2")
    assert proc.returncode == 2 and "release v2 already exists" in proc.stderr and "never overwritten" in proc.stderr
    assert json.loads((ws / "releases" / "v2" / "manifest.json").read_text()) == before


def test_llava_export_passes_the_projects_own_ingest(ws, tmp_path):
    proc = polyglot(
        "export-llava", "v2", "--workspace", str(ws), "--out", str(tmp_path / "llava"), "--mix", "--all-rows"
    )
    assert proc.returncode == 0, proc.stderr
    files = [tmp_path / "llava" / f"llava_{lang}.json" for lang in [*LANGS, "mix"]]
    mixed = json.loads(files[-1].read_text())
    assert len(mixed) == 24 and len({r["id"] for r in mixed}) == 24
    proc = polyglot("ingest", *map(str, files), "--workspace", str(tmp_path / "reingest"), "--any-language")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "reingest" / "ingest" / "summary.json").read_text())
    assert summary["records_read"] == 48 and summary["quarantined"] == 0


def test_a_tampered_shard_fails_verification_naming_the_file(ws, tmp_path):
    copy = tmp_path / "v2"
    shutil.copytree(ws / "releases" / "v2", copy)
    assert polyglot("release", "verify", str(copy)).returncode == 0
    shard = copy / "data" / "ur" / "train-00001-of-00003.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    proc = polyglot("release", "verify", str(copy))
    assert proc.returncode == 1 and "data/ur/train-00001-of-00003.parquet: sha256" in proc.stderr
    with pytest.raises(release.ReleaseError, match="train-00001-of-00003"):
        release.load(copy, "ur")
