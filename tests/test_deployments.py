"""The data engineer's path through Prefect: the project's worker (``python -m flows.deployments``) serves the
deployments to the session's real Prefect server, Prefect's own command line triggers them, and what a run did is
readable from the server (task runs named by what they do, their states, the logs, the artifacts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, differing_columns, loadtest_server, polyglot

DEMO = REPO / "pipeline" / "ingest" / "demo_conversations.json"
LANGS = "es,hi"
# one request at a time and no back-translation: every answer is computed alone, so two runs give the same bytes
SETTINGS = {"langs": LANGS, "concurrency": 1, "bt_rate": 0}


def prefect_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Prefect's own command line, as a data engineer types it (the session's server from the environment)."""
    prefect = str(Path(sys.executable).parent / "prefect")
    return subprocess.run([prefect, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def worker(vllm_server, prefect_server, tmp_path_factory):
    """The project's worker, started as the docker-compose service starts it, serving every deployment."""
    from prefect.client.orchestration import get_client

    workspace = tmp_path_factory.mktemp("worker-ws")
    log = open(workspace.parent / "worker.log", "wb")
    env = {
        **os.environ,
        "POLYGLOT_WORKSPACE": str(workspace),
        "POLYGLOT_VLLM_URL": vllm_server.url,
        "POLYGLOT_REVIEW_PULL_MINUTES": "1440",  # a schedule, but no scheduled run comes due during the tests
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.deployments"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name("cycle/cycle")  # the last one the worker registers
                break
            except Exception:
                text = Path(log.name).read_text(errors="replace")[-3000:]
                assert proc.poll() is None and time.monotonic() < deadline, f"the worker did not start:\n{text}"
                time.sleep(1)
    try:
        yield workspace
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def flow_run(name: str):
    """The flow run of that name, with its task runs and its log messages."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, LogFilter, LogFilterFlowRunId, TaskRunFilter

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(name={"any_": [name]}))
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id={"any_": [run.id]}), task_run_filter=TaskRunFilter()
        )
        deadline = time.monotonic() + 30
        while True:  # logs reach the server in batches, the last ones after the run's end
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            if any("Finished in state" in log.message for log in logs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        artifacts = {a.key: a for a in client.read_artifacts() if a.flow_run_id == run.id and a.key}
    return run, {t.name: t for t in tasks}, logs, artifacts


def run_deployment(name: str, run_name: str, **params) -> subprocess.CompletedProcess:
    args = ["deployment", "run", name, "--flow-run-name", run_name, "--watch", "--watch-timeout", "900"]
    for key, value in params.items():
        args += ["--param", f"{key}={json.dumps(value)}"]
    return prefect_cli(*args)


def test_the_translate_deployment_run_by_the_worker_writes_the_shards_the_command_writes(worker, vllm_server, tmp_path):
    ws = tmp_path / "deployment"
    proc = run_deployment(
        "translate/translate", "deployed-translate", inputs=[str(DEMO)], workspace=str(ws), **SETTINGS
    )
    assert proc.returncode == 0 and "Completed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    cli = polyglot(
        "translate", str(DEMO), "--workspace", str(tmp_path / "cli"), "--server", vllm_server.url, "--langs", LANGS,
        "--concurrency", "1", "--bt-rate", "0", "--no-progress",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-3000:]
    for lang in LANGS.split(","):
        assert (ws / "translations" / lang).is_dir(), lang
        assert not (differ := differing_columns(ws, tmp_path / "cli", lang)), (lang, differ)
    run, tasks, logs, artifacts = flow_run("deployed-translate")
    assert run.state.is_completed() and run.deployment_id is not None
    # the UI's timeline names each task run by what it does (language, shard), not by a counter
    assert {"ingest", "translate-hi+es", "assemble-es-shard-00000", "assemble-hi-shard-00000", "qe-report"} <= set(
        tasks
    ), sorted(tasks)
    assert all(t.state.is_completed() for t in tasks.values())
    assert {"translate-counts", "translate-summary", "qe-summary", "qe-qe-score"} <= set(artifacts), sorted(artifacts)
    assert "output tokens" in artifacts["translate-summary"].data
    assert artifacts["qe-qe-score"].data.startswith("data:image/png;base64,")


def test_a_deployment_run_with_a_missing_input_fails_with_one_line_naming_the_file(worker, tmp_path):
    missing = tmp_path / "no-such-conversations.json"
    proc = run_deployment("translate/translate", "deployed-missing", inputs=[str(missing)], workspace=str(tmp_path))
    assert "Failed" in proc.stdout, proc.stdout[-3000:]
    run, _, logs, _ = flow_run("deployed-missing")
    assert run.state.is_failed()
    said = [log.message for log in logs if log.message.startswith("translate: stopped:")]
    assert len(said) == 1 and str(missing) in said[0] and "\n" not in said[0], [log.message for log in logs]
    assert not (tmp_path / "ingest").exists()


def test_review_pull_is_scheduled_by_its_deployment(worker):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("review-pull/review-pull")
        (schedule,) = deployment.schedules
        assert schedule.schedule.interval.total_seconds() == 1440 * 60
        deadline = time.monotonic() + 180  # the server's scheduler service makes the runs on its own loop
        while not (
            scheduled := [
                r
                for r in client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment.id]}))
                if r.state.is_scheduled()
            ]
        ):
            assert time.monotonic() < deadline, "no scheduled review-pull run"
            time.sleep(2)
    starts = sorted(r.expected_start_time for r in scheduled)
    assert all((b - a).total_seconds() == 1440 * 60 for a, b in zip(starts, starts[1:])), starts


def test_a_language_that_fails_to_assemble_is_a_failed_task_run_and_the_others_are_written(tmp_path):
    """One language's shard cannot be written (its folder is taken by a file): its task run ends Failed with the
    reason, the other language's shards and the run's report are written, and the run and the command fail."""
    ws = tmp_path / "ws"
    (ws / "translations").mkdir(parents=True)
    (ws / "translations" / "hi").write_text("not a folder")
    with loadtest_server() as (url, _):
        proc = polyglot(
            "translate", str(DEMO), "--workspace", str(ws), "--server", url, "--langs", LANGS, "--bt-rate", "0",
            "--no-progress",
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "polyglot translate: failed: hi/00000: FileExistsError" in proc.stderr, proc.stderr[-3000:]
    assert "every language but hi: 6 conversations translated" in proc.stdout, proc.stdout
    assert list((ws / "translations" / "es").glob("shard-*.parquet"))
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["translate"])), sort=FlowRunSort.START_TIME_DESC, limit=1
        )
    run, tasks, _, artifacts = flow_run(run.name)
    assert run.state.is_failed() and "hi/00000" in run.state.message
    assert tasks["assemble-hi-shard-00000"].state.is_failed()
    assert "File exists" in tasks["assemble-hi-shard-00000"].state.message
    assert tasks["assemble-es-shard-00000"].state.is_completed()
    assert "**failed** hi/00000" in artifacts["translate-summary"].data
