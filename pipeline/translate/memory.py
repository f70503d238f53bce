"""Translation memory: every finished (unit, language, translator version), committed batch by batch.

Layout: ``ROOT/lang=LL/version=TV/``

- ``part-WORKER-SEQ.parquet``: one per commit. Each is written to a temporary name and renamed, so a crash
  loses at most the batch in flight and a reader never sees half a file. Every worker writes its own files
  (the worker id is in the name), so several workers never fight over one file; readers take the union.
- ``segment-GEN-N-ID.parquet``: what :meth:`TranslationMemory.compact` made of many part files: the entries
  sorted by unit hash in large files with small row groups, so a reader opens a handful of files (not one per
  batch) and reads only the row groups that hold the keys it wants.
- ``_layout.json``: the segments in force and the part files they replaced. It is replaced atomically, so a
  reader sees the old set of files or the new one, never an entry twice; files a compaction was writing when it
  crashed are in neither set, and the next compaction removes them.

An ``ok`` entry is a usable translation; a ``flagged`` entry records the model's unusable answer and why (a
permanent outcome for that version: rerunning would give the same answer). Transient failures (server down)
are never committed, so a rerun asks for them again.

The layout is hand-written on purpose (not a table format such as Delta or Iceberg): append-only part files that
several workers write without a lock, and a compaction that switches one small JSON file, are what a crash-safe,
lock-free memory on a shared filesystem needs, and nothing more.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage import write_atomic

TM_SCHEMA = pa.schema(
    [
        ("unit_hash", pa.string()),
        ("lang", pa.string()),
        ("translator_version", pa.string()),
        ("status", pa.string()),  # ok | flagged
        ("text", pa.string()),  # the masked translation (null when flagged)
        ("raw", pa.string()),  # the model's last answer, as given
        ("flags", pa.list_(pa.string())),
        ("finish_reason", pa.string()),
        ("attempts", pa.int32()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("repairs", pa.list_(pa.string())),  # what was removed around the translation (preamble, quotes, note…)
    ]
)


@dataclass(slots=True)
class Entry:
    unit_hash: str
    lang: str
    translator_version: str
    status: str
    text: str | None
    raw: str
    flags: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    repairs: list[str] = field(default_factory=list)

    def as_row(self) -> tuple:
        return (
            self.unit_hash,
            self.lang,
            self.translator_version,
            self.status,
            self.text,
            self.raw,
            self.flags,
            self.finish_reason,
            self.attempts,
            self.prompt_tokens,
            self.completion_tokens,
            self.repairs,
        )


SEGMENT_ROWS = 1_000_000  # entries per compacted file
SEGMENT_ROW_GROUP = 4_096  # entries per row group of a compacted file (the unit a reader reads)
LAYOUT = "_layout.json"


def _read(part: Path, columns: list[str] | None = None) -> pa.Table:
    """One memory file (a plain file read: many times faster than the dataset reader on small files)."""
    with pq.ParquetFile(part) as f:
        if columns is None and f.schema_arrow != TM_SCHEMA:  # an older file: missing columns become nulls
            return pq.read_table(part, schema=TM_SCHEMA)
        return f.read(columns=columns, use_threads=False)


def _read_keys(path: Path, wanted: set[str]) -> pa.Table | None:
    """The rows of ``path`` whose unit hash is wanted (None: none). A segment is sorted by unit hash: only the
    row groups whose key range holds a wanted key are read."""
    with pq.ParquetFile(path) as f:
        if not path.name.startswith("segment-"):
            keys = f.read(columns=["unit_hash"], use_threads=False).column("unit_hash").to_pylist()
            rows = [i for i, key in enumerate(keys) if key in wanted]
            return _read(path).take(rows) if rows else None
        meta, index = f.metadata, f.schema_arrow.get_field_index("unit_hash")
        ranges = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(index).statistics
            ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max else (None, None))
        targets = sorted(wanted)
        groups = [
            g
            for g, (low, high) in enumerate(ranges)
            if low is None or (i := bisect.bisect_left(targets, low)) < len(targets) and targets[i] <= high
        ]
        if not groups:
            return None
        table = f.read_row_groups(groups, use_threads=False)
        if table.schema != TM_SCHEMA:
            table = table.select([n for n in TM_SCHEMA.names if n in table.schema.names])
        keys = table.column("unit_hash").to_pylist()
        rows = [i for i, key in enumerate(keys) if key in wanted]
        return table.take(rows) if rows else None


def _ok_first(table: pa.Table) -> pa.Table:
    """One entry per unit hash, sorted by it; where several exist, an ``ok`` entry wins, else the first."""
    import polars as pl

    frame = pl.from_arrow(table).with_row_index("_order").with_columns((pl.col("status") != "ok").alias("_not_ok"))
    frame = frame.sort(["unit_hash", "_not_ok", "_order"]).unique(subset="unit_hash", keep="first", maintain_order=True)
    return frame.drop("_order", "_not_ok").to_arrow().cast(TM_SCHEMA)


def _write_durably(table: pa.Table, final: Path, **options) -> None:
    write_atomic(final, lambda f: pq.write_table(table, f, **options))


class TranslationMemory:
    def __init__(self, root: str | Path, worker_id: str | None = None):
        self.root = Path(root)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._seq = 0

    def _dir(self, lang: str, version: str) -> Path:
        return self.root / f"lang={lang}" / f"version={version}"

    def keys(self) -> list[tuple[str, str]]:
        """Every (language, version) the memory holds."""
        return sorted(
            (d.parent.name.removeprefix("lang="), d.name.removeprefix("version="))
            for d in self.root.glob("lang=*/version=*")
            if d.is_dir()
        )

    def _layout(self, d: Path) -> dict:
        try:
            return json.loads((d / LAYOUT).read_text())
        except FileNotFoundError:
            return {"generation": 0, "segments": [], "replaced": []}

    def files(self, lang: str, version: str) -> list[Path]:
        """The files in force: the current segments, then every part file no segment replaced."""
        d = self._dir(lang, version)
        if not d.exists():
            return []
        layout = self._layout(d)
        replaced = set(layout["replaced"])
        parts = sorted(p for p in d.glob("part-*.parquet") if p.name not in replaced)
        return [d / name for name in layout["segments"]] + parts

    def parts(self, lang: str, version: str) -> list[Path]:
        """The part files in force (commits not yet compacted)."""
        return [p for p in self.files(lang, version) if p.name.startswith("part-")]

    def _each_file(self, lang: str, version: str) -> Iterator[Path]:
        """The files in force, read again from the layout if a compaction removed one while it was being read."""
        for attempt in range(3):
            files = self.files(lang, version)
            if all(p.exists() for p in files) or attempt == 2:
                yield from files
                return
            time.sleep(0.05)

    def unit_hashes(self, lang: str, version: str) -> set[str]:
        """The units that have an entry (``ok`` or ``flagged``), reading nothing but their keys."""
        done: set[str] = set()
        for part in self._each_file(lang, version):
            done.update(_read(part, ["unit_hash"]).column("unit_hash").to_pylist())
        return done

    def load(self, lang: str, version: str, units: Collection[str] | None = None) -> dict[str, Entry]:
        """unit_hash → entry, for every unit or only ``units`` (memory then follows what is asked, not the size
        of the memory); where two workers both finished a unit, an ``ok`` entry wins."""
        wanted = None if units is None else set(units)
        entries: dict[str, Entry] = {}
        if wanted is not None and not wanted:
            return entries
        for part in self._each_file(lang, version):
            table = _read(part) if wanted is None else _read_keys(part, wanted)
            if table is None:
                continue
            for row in zip(*(table.column(n).to_pylist() for n in TM_SCHEMA.names)):
                entry = Entry(*row)
                old = entries.get(entry.unit_hash)
                if old is None or (old.status != "ok" and entry.status == "ok"):
                    entries[entry.unit_hash] = entry
        return entries

    def kept_answers(
        self,
        lang: str,
        version: str,
        items: list[tuple],
        ask: Callable[[list[tuple], Callable[[int, str], None]], None],
        commit_age: float = 30.0,
        batch: int = 64,
    ) -> dict[str, Entry]:
        """key → entry for ``items`` (tuples whose first element is the key): those the memory lacks go to ``ask``
        (the missing items, on_answer(index, text)) and each answer is committed as an ``ok`` entry in batches as it
        arrives, never older than ``commit_age`` seconds (a crash loses at most that). What the judges use."""
        done = self.load(lang, version, {item[0] for item in items})
        missing = sorted({item for item in items if item[0] not in done})
        buffer: list[Entry] = []
        oldest = 0.0

        def on_answer(index: int, text: str) -> None:
            nonlocal oldest
            if not buffer:
                oldest = time.monotonic()
            entry = Entry(missing[index][0], lang, version, "ok", text, text)
            buffer.append(entry)
            done[entry.unit_hash] = entry
            if len(buffer) >= batch or time.monotonic() - oldest >= commit_age:
                self.commit(buffer)
                buffer.clear()

        try:
            if missing:
                ask(missing, on_answer)
        finally:
            if buffer:
                self.commit(buffer)
        return done

    def commit(self, entries: list[Entry]) -> list[Path]:
        """Write ``entries`` durably (one file per language and version); returns the files written."""
        groups: dict[tuple[str, str], list[Entry]] = {}
        for e in entries:
            groups.setdefault((e.lang, e.translator_version), []).append(e)
        written = []
        for (lang, version), group in groups.items():
            d = self._dir(lang, version)
            d.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            final = d / f"part-{self.worker_id}-{self._seq:06d}.parquet"
            columns = list(zip(*(e.as_row() for e in group)))
            table = pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(columns, TM_SCHEMA)], schema=TM_SCHEMA
            )
            _write_durably(table, final)
            written.append(final)
        return written

    @contextmanager
    def _compaction_lock(self, d: Path):
        with open(d / "_compaction.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def compact(self, lang: str, version: str, min_files: int = 2, max_segments: int = 8) -> dict:
        """Merge the part files of (``lang``, ``version``) into a sorted segment, one entry per unit (``ok`` wins),
        when there are at least ``min_files`` of them; when that would make more than ``max_segments`` segments,
        merge everything into new ones. Then switch the layout and remove what was merged.

        Safe beside writers (their new part files are not in the replaced list) and readers (they see the old
        set or the new one); a crash before the switch leaves the old set in force, after it only garbage that
        the next compaction removes. Returns {files_before, files_after, entries (None: nothing merged)}."""
        d = self._dir(lang, version)
        if not d.exists():
            return {"files_before": 0, "files_after": 0, "entries": None}
        with self._compaction_lock(d):
            layout = self._layout(d)
            files = self.files(lang, version)
            parts = [p for p in files if p.name.startswith("part-")]
            kept = [p.name for p in files if not p.name.startswith("part-")]
            if len(parts) < max(min_files, 1):
                return {"files_before": len(files), "files_after": len(files), "entries": None}
            merged = parts
            if len(kept) + 1 > max_segments:  # too many segments: one full merge
                merged, kept = files, []
            table = _ok_first(pa.concat_tables([_read(p) for p in merged]))
            generation = layout["generation"] + 1
            tag = uuid.uuid4().hex[:8]
            segments = list(kept)
            for n, start in enumerate(range(0, max(table.num_rows, 1), SEGMENT_ROWS)):
                name = f"segment-{generation:06d}-{n:04d}-{tag}.parquet"
                _write_durably(
                    table.slice(start, SEGMENT_ROWS),
                    d / name,
                    row_group_size=SEGMENT_ROW_GROUP,
                    write_statistics=["unit_hash"],
                )
                segments.append(name)
            replaced = sorted(set(layout["replaced"]) | {p.name for p in merged if p.name.startswith("part-")})
            self._write_layout(d, {"generation": generation, "segments": segments, "replaced": replaced})
            for path in merged:  # no longer in force: removed (a reader that listed them before the switch retries)
                path.unlink(missing_ok=True)
            for stray in d.glob("segment-*.parquet"):  # from a compaction that crashed before its switch
                if stray.name not in segments:
                    stray.unlink(missing_ok=True)
            for tmp in d.glob(".*.tmp"):
                if time.time() - tmp.stat().st_mtime > 3600:  # a commit or compaction that died long ago
                    tmp.unlink(missing_ok=True)
            present = {p.name for p in d.glob("part-*.parquet")}
            self._write_layout(
                d, {"generation": generation, "segments": segments, "replaced": [n for n in replaced if n in present]}
            )
            return {
                "files_before": len(files),
                "files_after": len(self.files(lang, version)),
                "entries": table.num_rows,
            }

    def compact_all(self, min_files: int = 16) -> dict[tuple[str, str], dict]:
        """:meth:`compact` every (language, version) with at least ``min_files`` part files; what was done."""
        return {
            key: report
            for key in self.keys()
            if (report := self.compact(*key, min_files=min_files))["entries"] is not None
        }

    def _write_layout(self, d: Path, layout: dict) -> None:
        write_atomic(d / LAYOUT, json.dumps(layout))
