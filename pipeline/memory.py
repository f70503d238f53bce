"""Translation memory: every finished (unit, language, translator version), committed batch by batch.

Layout: ``ROOT/lang=LL/version=TV/part-WORKER-SEQ.parquet``. Each commit is one new file, written to a
temporary name and renamed, so a crash loses at most the batch in flight and a reader never sees half a file.
Every worker writes its own files (the worker id is in the name), so several workers never fight over one
file; readers take the union. An ``ok`` entry is a usable translation; a ``flagged`` entry records the
model's unusable answer and why (a permanent outcome for that version: rerunning would give the same answer).
Transient failures (server down) are never committed, so a rerun asks for them again.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
        )


def _read(part: Path, columns: list[str] | None = None) -> pa.Table:
    """One memory file (a plain file read: many times faster than the dataset reader on small files)."""
    with pq.ParquetFile(part) as f:
        if columns is None and f.schema_arrow != TM_SCHEMA:  # an older file: missing columns become nulls
            return pq.read_table(part, schema=TM_SCHEMA)
        return f.read(columns=columns, use_threads=False)


class TranslationMemory:
    def __init__(self, root: str | Path, worker_id: str | None = None):
        self.root = Path(root)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._seq = 0

    def _dir(self, lang: str, version: str) -> Path:
        return self.root / f"lang={lang}" / f"version={version}"

    def parts(self, lang: str, version: str) -> list[Path]:
        d = self._dir(lang, version)
        return sorted(d.glob("part-*.parquet")) if d.exists() else []

    def unit_hashes(self, lang: str, version: str) -> set[str]:
        """The units that have an entry (``ok`` or ``flagged``), reading nothing but their keys."""
        done: set[str] = set()
        for part in self.parts(lang, version):
            done.update(_read(part, ["unit_hash"]).column("unit_hash").to_pylist())
        return done

    def load(self, lang: str, version: str, units: Collection[str] | None = None) -> dict[str, Entry]:
        """unit_hash → entry, for every unit or only ``units`` (memory then follows what is asked, not the size
        of the memory); where two workers both finished a unit, an ``ok`` entry wins."""
        wanted = None if units is None else set(units)
        entries: dict[str, Entry] = {}
        for part in self.parts(lang, version):
            if wanted is None:
                table = _read(part)
            else:  # the keys first; the rest of a file only when it holds a wanted unit
                keys = _read(part, ["unit_hash"]).column("unit_hash").to_pylist()
                rows = [i for i, key in enumerate(keys) if key in wanted]
                if not rows:
                    continue
                table = _read(part).take(rows)
            for row in zip(*(c.to_pylist() for c in table.columns)):
                entry = Entry(*row)
                old = entries.get(entry.unit_hash)
                if old is None or (old.status != "ok" and entry.status == "ok"):
                    entries[entry.unit_hash] = entry
        return entries

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
            tmp = d / f".{final.name}.tmp"
            columns = list(zip(*(e.as_row() for e in group)))
            table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, TM_SCHEMA)], schema=TM_SCHEMA)
            with open(tmp, "wb") as f:
                pq.write_table(table, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            written.append(final)
        return written
