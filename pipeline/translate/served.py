"""What a server serves: its models (base first, then adapters), which weights the base model was made from,
and hot-loading LoRA adapters into every replica.

The weights of a model imported from GGUF (:mod:`pipeline.serve.models`) are named by the file's sha256 in the
import manifest beside them; the translator version records it, so new weights mean new translations.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from pipeline.translate.backends import BackendUnavailable, RequestRejected, endpoints

IMPORT_MANIFEST = "polyglot_import.json"


def model_cards(server: str, timeout: float = 10.0, wait: float = 0.0) -> list[dict]:
    """What ``GET /v1/models`` lists (of the first endpoint that answers): ``id`` (the name to request), ``root``
    (for the base model: the path or hub name it was loaded from; for an adapter: its path) and ``parent``
    (None for the base model). Base model first. ``wait``: seconds to keep asking (a server still starting)."""
    deadline, said = time.monotonic() + wait, False
    while True:
        errors = []
        for base in endpoints(server):
            url = base + "/v1/models"
            try:
                response = httpx.get(url, timeout=timeout)
                response.raise_for_status()
                return sorted((dict(m) for m in response.json()["data"]), key=lambda m: m.get("parent") is not None)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                errors.append(f"{url}: {type(exc).__name__}: {exc}")
        if time.monotonic() + 2 > deadline:
            break
        if not said:
            print(f"waiting up to {wait:.0f} s for the server at {server} ({errors[-1]})", file=sys.stderr, flush=True)
            said = True
        time.sleep(2)
    raise BackendUnavailable(
        f"cannot list the models of the server ({'; '.join(errors)}"
        + (f", asked for {wait:.0f} s" if wait >= 2 else "")
        + "); check it with 'polyglot services status', start one with 'polyglot services up vllm' or pass --server, then rerun"
    )


def served_models(server: str, timeout: float = 10.0) -> list[str]:
    """The model names an OpenAI-compatible server serves (``GET /v1/models``), base model first."""
    return [m["id"] for m in model_cards(server, timeout)]


def load_adapter(server: str, name: str, path: str, timeout: float = 300.0) -> bool:
    """Hot-load a LoRA adapter under ``name`` into every endpoint of ``server`` that lacks it
    (``POST /v1/load_lora_adapter``); True when any endpoint loaded it now.

    The server needs ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (``polyglot services up
    vllm`` sets both), and ``path`` must be readable by the server process.
    """
    loaded = False
    for base in endpoints(server):
        if name in served_models(base):
            continue
        url = base + "/v1/load_lora_adapter"
        try:
            response = httpx.post(url, json={"lora_name": name, "lora_path": str(path)}, timeout=timeout)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach {url} to load adapter {name!r} ({type(exc).__name__}: {exc}); check that the server runs"
            ) from None
        if response.is_success:
            loaded = True
            continue
        body = response.text[:500]
        if "already" in body and name in served_models(base):
            continue
        raise RequestRejected(
            f"the server at {url} would not load adapter {name!r} from {path} (HTTP {response.status_code}: {body}). It needs "
            f"--enable-lora, a --max-lora-rank at least the adapter's rank, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
            f"and read access to the adapter directory."
        )
    return loaded


def imported(folder: Path) -> dict | None:
    """The import manifest of a folder made by :func:`import_gguf` (None for any other folder)."""
    path = Path(folder) / IMPORT_MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def trainable_weights(model_root: str | None) -> str | None:
    """The weights an adapter for the served ``model_root`` is trained on: the model's own folder, or, for an int8
    copy (``polyglot models int8``), the dense folder it was made from — training cannot run on int8 weights, and an
    adapter trained on the dense weights is served beside the int8 ones (``pipeline.serve.vllm_launcher``)."""
    manifest = imported(Path(model_root)) if model_root else None
    if manifest and manifest.get("int8_of") and Path(manifest["int8_of"]).is_dir():
        return str(manifest["int8_of"])
    return model_root


def weights_id(model_root: str | None) -> str | None:
    """``gguf-sha256:…`` for a served model imported from a GGUF file (read from its folder when this machine
    can see it; ``+int8-w8a8`` after it for an int8 copy), else None."""
    manifest = imported(Path(model_root)) if model_root else None
    if not manifest or not manifest.get("gguf_sha256"):
        return None
    quantized = f"+{manifest['quantization']}" if manifest.get("quantization") else ""
    return f"gguf-sha256:{manifest['gguf_sha256']}{quantized}"


def served_base(server: str, model: str | None = None, wait: float = 0.0) -> tuple[str, str | None]:
    """(name of the served base model — ``model`` or the server's first —, its weights id when known); ``wait``
    seconds for a server that is still starting."""
    cards = model_cards(server, wait=wait)
    card = next((c for c in cards if c["id"] == model), None) if model else cards[0]
    return (model or cards[0]["id"]), weights_id(card.get("root") if card else None)
