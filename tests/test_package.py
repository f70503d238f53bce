"""What ships: the built wheel carries the prompts, the rules' data, the length bands and the tiny test models,
and the shipped tiny models were built from the current recipe."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from pipeline.serve import tiny_models as tiny_model

from .conftest import REPO


def test_shipped_tiny_models_were_built_from_the_current_recipe():
    """Change a prompt template or the corpus and the shipped models no longer match: rebuild them with
    ``python -m pipeline.serve.tiny_models --ship`` (otherwise every fresh machine trains them for minutes)."""
    for name, steps in tiny_model.SHIPPED_MODELS.items():
        folder = tiny_model.SHIPPED / name
        assert tiny_model.built_recipe(folder) == tiny_model.recipe_hash(steps), (
            f"{folder} is stale: python -m pipeline.serve.tiny_models --ship"
        )
        assert (folder / "model.safetensors").stat().st_size > 1_000_000 and (folder / "tokenizer.json").is_file()


def test_the_wheel_ships_prompts_bands_and_tiny_models(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("llava_polyglot-*.whl"))).namelist())
    for lang in ("zh", "hi", "es", "fr", "ar", "bn", "ru", "ur", "ja"):
        assert f"pipeline/translate/prompts/{lang}.txt" in names
    assert "pipeline/quality/length_bands.json" in names and "pipeline/ingest/demo_conversations.json" in names
    for name in tiny_model.SHIPPED_MODELS:
        for file in (
            "model.safetensors",
            "tokenizer.json",
            "config.json",
            "POLYGLOT_TINY_MODEL",
            "chat_template.jinja",
        ):
            assert f"pipeline/serve/data/tiny_models/{name}/{file}" in names, (name, file)


def test_the_test_command_says_in_one_line_when_the_shared_data_is_missing(tmp_path):
    """A clone without ../shared beside it: one line naming the folder it needs, where it looked and how to point at
    another one, and a non-zero exit before anything is installed or collected."""
    missing = tmp_path / "no-shared-data"
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "test.sh")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POLYGLOT_SHARED_DATA": str(missing)},
    )
    assert proc.returncode != 0 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert (
        len(lines) == 1 and str(missing) in lines[0] and "POLYGLOT_SHARED_DATA" in lines[0] and "llava" in lines[0]
    ), proc.stderr
    # pytest run directly says the same in one line, instead of errors while collecting
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(REPO / "tests" / "test_units.py")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "POLYGLOT_SHARED_DATA": str(missing)},
    )
    assert proc.returncode == 4 and str(missing) in proc.stdout + proc.stderr and "error" not in proc.stdout.lower(), (
        proc.stdout[-1500:]
    )
