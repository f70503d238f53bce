"""Local servers are signalled only while the recorded pid is still the process that was started."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict

from pipeline import processes

from .conftest import polyglot


def _record(home, pid: int, port: int, started: float, created: float | None) -> processes.ServerRecord:
    rec = processes.ServerRecord(
        "vllm",
        pid,
        port,
        f"http://127.0.0.1:{port}",
        "m",
        "m",
        str(home / "logs" / "x.log"),
        started,
        "/v1/models",
        created,
    )
    (home / "run").mkdir(parents=True, exist_ok=True)
    (home / "run" / f"vllm-{port}.json").write_text(json.dumps(asdict(rec)))
    return rec


def test_a_stale_record_whose_pid_is_now_another_program_is_refused_not_signalled(tmp_path):
    """After a reboot or pid reuse the recorded pid can belong to an unrelated program: services down must not
    SIGTERM its process group. It says so in one line naming the record, and removes the record."""
    home = tmp_path / "home"
    other = subprocess.Popen(["sleep", "120"], start_new_session=True)  # an unrelated program in its own group
    try:
        an_hour_ago = time.time() - 3600
        rec = _record(home, other.pid, 8123, an_hour_ago, an_hour_ago)
        assert processes.stale_because(rec) and "another program" in processes.stale_because(rec)
        status = polyglot("services", "status", env={"POLYGLOT_HOME": str(home)})
        assert "stale record" in status.stdout and "another program" in status.stdout, status.stdout
        proc = polyglot("services", "down", "vllm", "--port", "8123", env={"POLYGLOT_HOME": str(home)})
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert (
            len(lines) == 1
            and "vllm-8123.json" in lines[0]
            and "not signalled" in lines[0]
            and str(other.pid) in lines[0]
        ), proc.stderr
        time.sleep(0.5)
        assert other.poll() is None, "the unrelated program was signalled"
        assert not (home / "run" / "vllm-8123.json").exists()
    finally:
        other.kill()
        other.wait()


def test_a_record_of_a_process_that_is_gone_is_removed_and_one_of_our_own_is_recognised(tmp_path):
    home = tmp_path / "home"
    gone = subprocess.Popen(["true"])
    gone.wait()
    _record(home, gone.pid, 8124, time.time(), None)
    proc = polyglot("services", "down", "vllm", "--port", "8124", env={"POLYGLOT_HOME": str(home)})
    assert (
        proc.returncode == 0 and "was not running" in proc.stdout and not (home / "run" / "vllm-8124.json").exists()
    ), proc.stdout
    mine = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        assert processes.running(_record(home, mine.pid, 8125, time.time(), processes.process_start(mine.pid)))
        # a record from before start times were kept: the time it was written, a moment after the start
        assert processes.running(_record(home, mine.pid, 8125, time.time(), None))
        proc = polyglot("services", "down", "vllm", "--port", "8125", env={"POLYGLOT_HOME": str(home)})
        assert proc.returncode == 0 and f"stopped vllm on port 8125 (pid {mine.pid})" in proc.stdout, (
            proc.stdout + proc.stderr
        )
        assert mine.wait(timeout=30) is not None
    finally:
        mine.kill()


def test_vllm_args_take_a_single_option_several_or_one_quoted_string():
    from pipeline.cli import build_parser
    from pipeline.cli.services import vllm_extra_args

    def extra(*words: str) -> list[str]:
        return vllm_extra_args(
            build_parser().parse_args(["services", "up", "vllm", "--port", "8001", *words]).vllm_args
        )

    assert extra("--vllm-args", "--enforce-eager") == [
        "--enforce-eager"
    ]  # argparse read this as an option of its own before
    assert extra("--vllm-args", "--enforce-eager", "--max-num-seqs", "8") == ["--enforce-eager", "--max-num-seqs", "8"]
    assert extra("--vllm-args", "--max-num-seqs 8") == ["--max-num-seqs", "8"]
    assert extra("--vllm-args=--max-num-seqs=8") == ["--max-num-seqs=8"]
    assert extra() == []


def test_the_process_helpers_need_nothing_but_the_standard_library_to_import():
    """scripts/setup-venv.sh sets up the vLLM environment with pipeline.processes while pip still installs the
    project's packages: importing it must not need them (-S: no site-packages at all)."""
    import sys

    from .conftest import REPO

    proc = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(REPO)!r}); from pipeline.processes import ensure_vllm_env, home",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_model_in_the_hub_cache_is_found_where_HF_HUB_CACHE_puts_it(tmp_path):
    """The cache path comes from huggingface_hub (HF_HUB_CACHE, HF_HOME), not built by hand."""
    import sys

    from .conftest import REPO

    snapshot = tmp_path / "cache" / "models--someorg--some-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "cache" / "models--someorg--some-model" / "refs").mkdir()
    (tmp_path / "cache" / "models--someorg--some-model" / "refs" / "main").write_text("abc123")
    code = (
        "from pipeline.serve.vllm import in_hub_cache\n"
        "print(in_hub_cache('someorg/some-model'), in_hub_cache('someorg/other-model'))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("HF_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"},
    )
    assert proc.stdout.split() == ["True", "False"], proc.stdout + proc.stderr[-2000:]
