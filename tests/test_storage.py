"""State files are written one way (pipeline.storage.write_atomic): a writer that fails or is killed mid-write leaves
the old file or the new one, never a torn one — for each kind of state file the pipeline keeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from pipeline import storage

from .conftest import REPO


def test_a_writer_that_fails_midway_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = storage.write_atomic(tmp_path / "state.json", '{"version": 1}\n')

    def half_then_crash(f):
        f.write(b'{"version": 2, "rows": [')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        storage.write_atomic(path, half_then_crash)
    assert path.read_text() == '{"version": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    storage.write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o644
    assert storage.write_atomic(tmp_path / "secret", "k", mode=0o600).stat().st_mode & 0o777 == 0o600


def test_kill_9_in_the_middle_of_a_write_leaves_the_old_file(tmp_path):
    """A real writer process killed while it writes 40 MB slowly: the file holds the old bytes, whole."""
    target = tmp_path / "table.parquet"
    target.write_bytes(b"old" * 1000)
    script = (
        "import sys, time\n"
        "from pipeline.storage import write_atomic\n"
        "def slow(f):\n"
        "    for _ in range(400):\n"
        "        f.write(b'x' * 100_000); f.flush(); time.sleep(0.01)\n"
        f"write_atomic({str(target)!r}, slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.monotonic() + 30
    while not any(p.name.endswith(".tmp") and p.stat().st_size > 1_000_000 for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the writer did not start writing"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"old" * 1000
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert leftovers and all(name.startswith(".table.parquet.") and name.endswith(".tmp") for name in leftovers)


def _tiny_workspace(tmp_path: Path) -> Path:
    from pipeline.ingest.tables import ingest

    source = tmp_path / "in.json"
    source.write_text(
        json.dumps(
            [
                {
                    "id": f"c{i}",
                    "conversations": [
                        {"from": "human", "value": f"What is on table {i}?"},
                        {"from": "gpt", "value": f"A cup, number {i}."},
                    ],
                }
                for i in range(3)
            ]
        )
    )
    ws = tmp_path / "ws"
    ingest([source], ws)
    return ws


def _registry(ws: Path, n: int) -> Path:
    from pipeline.translate import registry

    registry.record(
        ws, "es", {"decision": "activated", "n": n}, {"adapter": f"a{n}", "adapter_path": "/x", "few_shot": []}
    )
    return ws / "translator" / "active.json"


def _corrections(ws: Path, n: int) -> Path:
    from pipeline.review import corrections

    corrections.append(
        ws,
        [
            {
                "lang": "es",
                "conv_key": "k",
                "turn_index": 0,
                "skipped": False,
                "edited": True,
                "corrected_text": f"t{n}",
                "annotation_id": n,
            }
        ],
    )
    return corrections.corrections_dir(ws)


def _reviewed(ws: Path, n: int) -> Path:
    from pipeline.review import corrections

    _corrections(ws, n)
    return corrections.write_reviewed(ws)


def _memory_part(ws: Path, n: int) -> Path:
    from pipeline.translate.memory import Entry, TranslationMemory

    TranslationMemory(ws / "tm").commit([Entry(f"u{n}", "es", "tv-1", "ok", f"hola {n}", f"hola {n}")])
    return ws / "tm" / "lang=es" / "version=tv-1"


def _memory_layout(ws: Path, n: int) -> Path:
    from pipeline.translate.memory import TranslationMemory

    memory = TranslationMemory(ws / "tm")
    _memory_part(ws, n)
    _memory_part(ws, n + 100)
    memory.compact("es", "tv-1", min_files=1)
    return ws / "tm" / "lang=es" / "version=tv-1" / "_layout.json"


def _cycle_state(ws: Path, n: int) -> Path:
    from flows.cycle import _save, state_path

    _save(ws, {"round": n, "done": {}, "last_finetune_at": None})
    return state_path(ws)


def _projects(ws: Path, n: int) -> Path:
    from annotation.client import record_project

    record_project(ws, "ur", n)
    return ws / "review" / "projects.json"


def _pushed(ws: Path, n: int) -> Path:
    from annotation.review import _write_ledger

    _write_ledger(ws, [{"task_key": f"k{n}", "lang": "ur", "project_id": 1, "task_id": n}], ["ur"])
    return ws / "review" / "pushed.parquet"


def _queue(ws: Path, n: int) -> Path:
    from pipeline.review.routing import QUEUE_COLUMNS, write_queue

    return write_queue(ws, pl.DataFrame([{c: f"{c}{n}" for c in QUEUE_COLUMNS}]))


def _shard(ws: Path, n: int) -> Path:
    from pipeline.assemble.translations import assemble_language
    from pipeline.translate.memory import TranslationMemory
    from pipeline.translate.requests import LanguageCounts
    from pipeline.translate.settings import TranslatorConfig

    (paths,) = [
        assemble_language(ws, "es", TranslationMemory(ws / "tm"), TranslatorConfig(model=f"m{n}"), LanguageCounts())
    ]
    return paths[0]


def _adapter_metadata(ws: Path, n: int) -> Path:
    from pipeline.train.finetune import update_metadata

    folder = ws / "adapters" / "a0001"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "polyglot.json").exists():
        (folder / "polyglot.json").write_text("{}")
    update_metadata({"path": str(folder)}, evaluation={"n": n})
    return folder / "polyglot.json"


def _ingest_summary(ws: Path, n: int) -> Path:
    from pipeline.ingest.tables import ingest

    source = ws.parent / f"in-{n}.json"
    source.write_text(
        json.dumps([{"id": f"x{i}", "conversations": [{"from": "human", "value": f"Question {i}?"}]} for i in range(n)])
    )
    ingest([source], ws)
    return ws / "ingest"


WRITERS = [
    _registry,
    _corrections,
    _reviewed,
    _memory_part,
    _memory_layout,
    _cycle_state,
    _projects,
    _pushed,
    _queue,
    _shard,
    _adapter_metadata,
    _ingest_summary,
]


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {
            str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.endswith(".tmp")
        }
    return {path.name: path.read_bytes()} if path.exists() else {}


@pytest.mark.parametrize("write", WRITERS, ids=[w.__name__.strip("_") for w in WRITERS])
def test_a_crash_at_the_commit_point_leaves_every_kind_of_state_file_as_it_was(tmp_path, monkeypatch, write):
    """Each state file written once, then written again by a writer that dies just before its rename: what a
    reader finds afterwards is exactly the first version (a writer in place would have left the second, or half)."""
    ws = _tiny_workspace(tmp_path)
    path = write(ws, 1)
    before = _snapshot(path)
    assert before, f"{write.__name__} wrote nothing at {path}"

    def crash(*_args, **_kwargs):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="killed before the rename"):
        write(ws, 2)
    monkeypatch.undo()
    assert _snapshot(path) == before


def test_an_ingest_interrupted_between_its_two_renames_is_settled_to_the_new_tables(tmp_path):
    from pipeline.ingest.tables import settle

    ws = _tiny_workspace(tmp_path)
    new = (ws / "ingest" / "summary.json").read_text()
    (ws / "ingest").rename(ws / "ingest.tmp")  # the new tables, complete, not yet in place …
    (ws / "ingest.old").mkdir()  # … and the old ones moved aside
    (ws / "ingest.old" / "inputs.json").write_text("[]")
    settle(ws)
    assert (ws / "ingest" / "summary.json").read_text() == new and not (ws / "ingest.old").exists()
    assert pa.parquet.read_table(ws / "ingest" / "unique_units.parquet").num_rows > 0
