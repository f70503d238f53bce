"""Model files: import a GGUF file once into a Hugging Face folder that vLLM serves, make an int8 copy of a
folder for serving on a CPU, and say which weights a served model was made from.

``polyglot models import PATH.gguf [--out DIR]`` and ``polyglot services up vllm --model PATH.gguf`` both go
through :func:`import_gguf`. Imports are cached by the file's sha256 under ``POLYGLOT_HOME/models/`` (a second
import of the same file returns the folder at once). The folder is written under a temporary name and renamed
when complete, with ``polyglot_import.json`` (source, sha256, size, architecture, dtype) beside the weights.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline import processes
from pipeline.storage import rename_durably, sha256_file
from pipeline.translate.served import IMPORT_MANIFEST, imported

GGUF_MAGIC = b"GGUF"
# Bytes the imported folder takes per byte of a Q4_K_M file (1.12 GB → 3.55 GB in bf16), with room to spare.
_GROWTH = {"bfloat16": 3.6, "float16": 3.6, "float32": 7.2}


@dataclass(frozen=True)
class GgufHeader:
    version: int
    tensors: int
    architecture: str | None
    name: str | None


def read_gguf_header(path: Path) -> GgufHeader:
    """The GGUF header and the model's architecture and name, read from the first metadata keys (no torch)."""
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != GGUF_MAGIC:
            raise ValueError(
                f"{path} is not a GGUF file (it starts with {magic!r}, a GGUF file with b'GGUF'); give a .gguf model "
                f"file, or a Hugging Face model folder or name to 'services up vllm --model'"
            )
        try:
            version, tensors, n_kv = struct.unpack("<IQQ", f.read(20))
            found: dict[str, str] = {}
            for _ in range(min(n_kv, 64)):
                key = _gguf_string(f)
                (kind,) = struct.unpack("<I", f.read(4))
                if kind != 8:  # only strings are read; stop at the first other value (the keys we need come first)
                    break
                found[key] = _gguf_string(f)
                if "general.architecture" in found and "general.name" in found:
                    break
        except (struct.error, UnicodeDecodeError, MemoryError) as exc:
            raise ValueError(f"{path}: the GGUF header is damaged ({exc}); download the file again") from None
    return GgufHeader(version, tensors, found.get("general.architecture"), found.get("general.name"))


def _gguf_string(f) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    if n > 1 << 20:
        raise ValueError(f"string of {n} bytes")
    return f.read(n).decode("utf-8")


def served_name(gguf: Path, sha256: str) -> str:
    """The name a GGUF import is served under: the file's stem and the first 12 hex digits of its sha256, so
    that the translator version (which hashes the model name) changes when the weights do."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", gguf.name.removesuffix(".gguf")).strip("-").lower() or "model"
    return f"{stem}-{sha256[:12]}"


def import_gguf(gguf: str | Path, out: str | Path | None = None, dtype: str = "bfloat16", log=print) -> Path:
    """Import ``gguf`` into ``out`` (default ``POLYGLOT_HOME/models/gguf-SHA16``) once; returns the folder."""
    gguf = Path(gguf).expanduser().resolve()
    if not gguf.is_file():
        raise FileNotFoundError(f"{gguf} does not exist (a GGUF model file was expected)")
    if dtype not in _GROWTH:
        raise ValueError(f"dtype must be one of {', '.join(_GROWTH)}, got {dtype!r}")
    header = read_gguf_header(gguf)
    log(
        f"hashing {gguf.name} ({gguf.stat().st_size / 1e9:.2f} GB, GGUF v{header.version}, {header.architecture or 'unknown architecture'})"
    )
    digest = sha256_file(gguf)
    target = Path(out).expanduser().resolve() if out else processes.home() / "models" / f"gguf-{digest[:16]}"
    done = imported(target)
    if done and done.get("gguf_sha256") == digest and done.get("dtype") == dtype:
        log(f"already imported: {target}")
        return target
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} exists and is not an import of this file; choose another --out or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    need = gguf.stat().st_size * _GROWTH[dtype]
    free = shutil.disk_usage(target.parent).free
    if free < need:
        raise RuntimeError(
            f"not enough disk space to import {gguf.name}: about {need / 1e9:.1f} GB needed in {target.parent}, "
            f"{free / 1e9:.1f} GB free; free some space or choose another --out"
        )
    log(f"importing into {target} ({dtype}; several minutes for a 1.5B model on 2 cores)")
    started = time.monotonic()

    def manifest(info: dict) -> dict:
        return {
            "source": str(gguf),
            "gguf_sha256": digest,
            "gguf_bytes": gguf.stat().st_size,
            "gguf_version": header.version,
            "general_name": header.name,
            "served_name": served_name(gguf, digest),
            **info,
            "import_seconds": round(time.monotonic() - started, 1),
        }

    _convert_into(
        target,
        processes.ensure_converter_env(),
        ["pipeline.serve.gguf_import", str(gguf), "--dtype", dtype],
        f"import {gguf.name}",
        manifest,
    )
    log(f"imported {gguf.name} → {target} in {time.monotonic() - started:.0f} s")
    return target


def make_int8(folder: str | Path, out: str | Path | None = None, log=print) -> Path:
    """An int8 (W8A8) copy of the model folder ``folder`` in ``out`` (default: beside it, ``NAME-int8``), made once;
    returns the folder. Served under the source's name plus ``-int8``, so that its translator version differs from
    the dense model's (see :mod:`pipeline.serve.int8`)."""
    source = Path(folder).expanduser().resolve()
    if not (source / "config.json").is_file():
        raise FileNotFoundError(
            f"{source} is not a model folder (no config.json); give the folder 'models import' printed"
        )
    target = Path(out).expanduser().resolve() if out else source.with_name(f"{source.name}-int8")
    done = imported(target)
    if done and done.get("int8_of") == str(source):
        log(f"already made: {target}")
        return target
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} exists and is not an int8 copy of {source}; choose another --out or remove it")
    log(f"writing an int8 copy of {source.name} into {target}")
    started = time.monotonic()
    base = imported(source) or {"served_name": source.name}

    def manifest(info: dict) -> dict:
        return {
            **base,
            "served_name": f"{base['served_name']}-int8",
            "quantization": "int8-w8a8",
            "int8_of": str(source),
            **{f"int8_{k}": v for k, v in info.items()},
            "int8_seconds": round(time.monotonic() - started, 1),
        }

    info = _convert_into(
        target,
        processes.ensure_vllm_env(),
        ["pipeline.serve.int8", str(source)],
        f"make an int8 copy of {source.name}",
        manifest,
    )
    log(
        f"int8 copy: {info['layers']} layers, {info['bytes_before'] / 1e6:,.1f} → {info['bytes_after'] / 1e6:,.1f} MB, "
        f"relative weight error {info['weight_error']:.4f}, {time.monotonic() - started:.0f} s"
    )
    return target


def _convert_into(target: Path, python: Path, module_args: list[str], what: str, manifest) -> dict:
    """Run ``python -m MODULE INPUT TMP [options]`` (the tmp folder goes after the module's first argument) into a
    temporary folder beside ``target``, write ``manifest(info)`` there (info: the converter's last stdout line, a
    JSON object) and rename it to ``target``; a failure removes the temporary folder and raises with the
    converter's last line. Returns info."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    module, first, *options = module_args
    try:
        proc = processes.run_logged(
            [str(python), "-m", module, first, str(tmp), *options], what, processes.env_with_project(), check=False
        )
        if proc.returncode != 0:
            last = next((line for line in reversed(proc.output.splitlines()) if line.strip()), "no output")
            raise RuntimeError(f"cannot {what}: {re.sub(r'^[a-z0-9]+ failed: ', '', last)}")
        info = json.loads(proc.output.strip().splitlines()[-1])
        (tmp / IMPORT_MANIFEST).write_text(json.dumps(manifest(info), indent=2) + "\n")
        if target.exists():
            target.rmdir()  # empty (the callers checked)
        rename_durably(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def is_gguf(path: str | Path) -> bool:
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        return f.read(4) == GGUF_MAGIC
