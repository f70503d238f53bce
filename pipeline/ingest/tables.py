"""Ingest: LLaVA files → validated conversations → turns cut into units → sharded Parquet tables.

Every record read ends in exactly one place: a conversation row of a shard, or a quarantine row with a
machine-readable reason. Memory stays flat: records stream in, shards are flushed every ``shard_size``
conversations, and only the unique-unit table (proportional to distinct text) is held.

Layout written under ``WORKSPACE/ingest/`` (columns documented in docs/tables.md):
``shards/NNNNN/{conversations,turns,units}.parquet``, ``unique_units.parquet``, ``quarantine.parquet``,
``summary.json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.readers import FileFormatError, RawRecord, iter_records
from pipeline.ingest.units import image_position, segment
from pipeline.ingest.validate import DEFAULT_MAX_TURN_CHARS, Conversation, InvalidRecord, validate_record
from pipeline.storage import rename_durably, sha256_file, write_atomic

CONVERSATIONS_SCHEMA = pa.schema(
    [
        ("conv_key", pa.string()),
        ("id", pa.string()),
        ("image", pa.string()),
        ("n_turns", pa.int32()),
        ("source_file", pa.string()),
        ("record_index", pa.int64()),
        ("extra", pa.string()),
    ]
)
TURNS_SCHEMA = pa.schema(
    [
        ("conv_key", pa.string()),
        ("turn_index", pa.int32()),
        ("role", pa.string()),
        ("value", pa.string()),
        ("image_position", pa.string()),
        ("skeleton", pa.list_(pa.string())),
        ("n_units", pa.int32()),
    ]
)
UNITS_SCHEMA = pa.schema(
    [
        ("conv_key", pa.string()),
        ("turn_index", pa.int32()),
        ("unit_index", pa.int32()),
        ("unit_hash", pa.string()),
        ("spans", pa.list_(pa.string())),
    ]
)
UNIQUE_UNITS_SCHEMA = pa.schema(
    [
        ("unit_hash", pa.string()),
        ("text", pa.string()),
        ("n_placeholders", pa.int32()),
        ("occurrences", pa.int64()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("record_index", pa.int64()),
        ("byte_offset", pa.int64()),
        ("record_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.binary()),
    ]
)


@dataclass
class IngestSummary:
    files: int = 0
    records_read: int = 0
    valid: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    files_stopped: list[str] = field(default_factory=list)
    turns: int = 0
    units: int = 0
    unique_units: int = 0
    shards: int = 0
    seconds: float = 0.0

    @property
    def dedup_ratio(self) -> float:
        return self.units / self.unique_units if self.unique_units else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"dedup_ratio": round(self.dedup_ratio, 4)}

    def render(self) -> str:
        lines = [
            f"records read      {self.records_read}",
            f"  valid           {self.valid}",
            f"  quarantined     {self.quarantined}",
        ]
        width = max([22, *(len(reason) + 2 for reason in self.quarantined_by_reason)])
        lines += [f"    {reason:<{width}}{n:>6}" for reason, n in sorted(self.quarantined_by_reason.items())]
        lines += [
            f"turns             {self.turns}",
            f"units             {self.units}",
            f"unique units      {self.unique_units}",
            f"dedup ratio       {self.dedup_ratio:.2f} units per unique unit",
            f"shards            {self.shards}",
        ]
        lines += [f"file stopped early: {path}" for path in self.files_stopped]
        return "\n".join(lines)


def conversation_key(conv: Conversation) -> str:
    """Stable key of a conversation's content (id, image and every turn): survives renames and reordering."""
    parts = [conv.id, conv.image or ""]
    for t in conv.turns:
        parts += (t.role, t.value)
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=12).hexdigest()


class _ShardWriter:
    """Writes the three tables of each shard, a row group every ``ROW_GROUP`` conversations (flat memory)."""

    ROW_GROUP = 2_000
    TABLES = (("conversations", CONVERSATIONS_SCHEMA), ("turns", TURNS_SCHEMA), ("units", UNITS_SCHEMA))

    def __init__(self, root: Path, shard_size: int):
        self.root, self.shard_size = root, shard_size
        self.count = 0  # shards finished
        self.rows = 0  # conversations in the open shard
        self.writers: list[pq.ParquetWriter] = []
        self._reset()

    def _reset(self) -> None:
        # rows as tuples in schema order (one append per row is cheaper than one per column)
        self.convs: list[tuple] = []
        self.turns: list[tuple] = []
        self.units: list[tuple] = []
        self.buffered = 0

    def added(self) -> None:
        """Count one conversation just appended to the buffers; write and roll over as needed."""
        self.rows += 1
        self.buffered += 1
        if self.buffered >= self.ROW_GROUP or self.rows >= self.shard_size:
            self._write_row_group()
        if self.rows >= self.shard_size:
            self.close()

    def _write_row_group(self) -> None:
        if not self.buffered:
            return
        if not self.writers:
            shard = self.root / "shards" / f"{self.count:05d}"
            shard.mkdir(parents=True)
            self.writers = [pq.ParquetWriter(shard / f"{name}.parquet", schema) for name, schema in self.TABLES]
        for writer, rows, (_, schema) in zip(self.writers, (self.convs, self.turns, self.units), self.TABLES):
            columns = list(zip(*rows)) if rows else [[] for _ in schema.names]
            writer.write_table(
                pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema)
            )
        self._reset()

    def close(self) -> None:
        """Finish the open shard, if any."""
        self._write_row_group()
        if self.writers:
            for writer in self.writers:
                writer.close()
            self.writers = []
            self.count += 1
        self.rows = 0


class Ingestor:
    """Streams records into the workspace tables; one instance per ingest run."""

    def __init__(
        self,
        out_dir: Path,
        shard_size: int = 10_000,
        max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
        limit: int | None = None,
        english: bool = True,
    ):
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        if shard_size < 1:
            raise ValueError(f"shard_size must be at least 1, got {shard_size}")
        if max_turn_chars < 1:
            raise ValueError(f"max_turn_chars must be at least 1, got {max_turn_chars}")
        self.out_dir = out_dir
        self.max_turn_chars = max_turn_chars
        self.english = english  # False: any language (checking a release's LLaVA export, say)
        self.summary = IngestSummary()
        self.reasons: Counter[str] = Counter()
        self.unique: dict[str, list] = {}  # masked text -> [unit_hash, n_placeholders, occurrences]
        # 64 bits of each conversation key seen so far -> (file number << 40 | record index) of its first copy
        self.seen: dict[int, int] = {}
        self.files: list[str] = []
        self.quarantine: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA.names}
        self.shards = _ShardWriter(out_dir, shard_size)

    def _quarantine(self, source: str, rec: RawRecord, reason: str, detail: str, record_id: str | None = None) -> None:
        self.reasons[reason] += 1
        raw = rec.raw
        if raw is None:
            raw = json.dumps(rec.obj, ensure_ascii=False).encode("utf-8", "surrogateescape")
        q = self.quarantine
        q["source_file"].append(source)
        q["record_index"].append(rec.index)
        q["byte_offset"].append(rec.byte_offset)
        q["record_id"].append(record_id)
        q["reason"].append(reason)
        q["detail"].append(detail)
        q["raw"].append(raw)

    def add_file(self, path: Path) -> None:
        source = str(path)
        self.files.append(source)
        self.summary.files += 1
        records = iter_records(path)
        while self.limit is None or self.summary.records_read < self.limit:
            try:
                rec = next(records)
            except StopIteration:
                break
            except FileFormatError as exc:
                # The rest of the file cannot be read as records: it is quarantined as one entry.
                self.summary.records_read += 1
                self.summary.files_stopped.append(str(exc))
                self._quarantine(source, RawRecord(exc.index, exc.byte_offset, raw=exc.raw), "invalid_json", str(exc))
                break
            except OSError as exc:  # gzip damage, unreadable file
                self.summary.records_read += 1
                self.summary.files_stopped.append(f"{source}: {exc}")
                self._quarantine(source, RawRecord(-1, -1, raw=b""), "invalid_json", f"{source}: cannot read: {exc}")
                break
            self.summary.records_read += 1
            self._add_record(source, rec)

    def _add_record(self, source: str, rec: RawRecord) -> None:
        if rec.error:
            self._quarantine(source, rec, rec.error, rec.detail)
            return
        try:
            conv = validate_record(rec.obj, self.max_turn_chars, self.english)
        except InvalidRecord as exc:
            rid = rec.obj.get("id") if isinstance(rec.obj, dict) else None
            self._quarantine(source, rec, exc.reason, exc.detail, None if rid is None else str(rid))
            return
        key = conversation_key(conv)
        short = int(key[:16], 16)
        first = self.seen.get(short)
        if first is not None:
            where = f"record {first & (1 << 40) - 1} of {self.files[first >> 40]}"
            self._quarantine(source, rec, "duplicate_record", f"same content as {where}", conv.id)
            return
        self.seen[short] = (len(self.files) - 1) << 40 | rec.index
        self.summary.valid += 1
        w = self.shards
        w.convs.append(
            (
                key,
                conv.id,
                conv.image,
                len(conv.turns),
                source,
                rec.index,
                json.dumps(conv.extra, ensure_ascii=False) if conv.extra else None,
            )
        )
        turns, units, unique = w.turns.append, w.units.append, self.unique
        for ti, turn in enumerate(conv.turns):
            seg = segment(turn.value)
            turns((key, ti, turn.role, turn.value, image_position(turn.value), seg.skeleton, len(seg.units)))
            for ui, unit in enumerate(seg.units):
                entry = unique.get(unit.text)
                if entry is None:
                    entry = unique[unit.text] = [unit.key, len(unit.spans), 0]
                entry[2] += 1
                units((key, ti, ui, entry[0], unit.spans))
            self.summary.units += len(seg.units)
        self.summary.turns += len(conv.turns)
        w.added()

    def finish(self) -> IngestSummary:
        self.shards.close()
        s = self.summary
        s.shards = self.shards.count
        s.quarantined = sum(self.reasons.values())
        s.quarantined_by_reason = dict(self.reasons)
        s.unique_units = len(self.unique)
        if s.records_read != s.valid + s.quarantined:  # pragma: no cover - a bug, never data
            raise AssertionError(f"counts do not reconcile: {s.records_read} read != {s.valid} + {s.quarantined}")
        values = list(self.unique.values())
        unique = pa.table(
            {
                "unit_hash": [v[0] for v in values],
                "text": list(self.unique),
                "n_placeholders": [v[1] for v in values],
                "occurrences": [v[2] for v in values],
            },
            schema=UNIQUE_UNITS_SCHEMA,
        )
        write_atomic(self.out_dir / "unique_units.parquet", lambda f: pq.write_table(unique, f))
        quarantine = pa.table(self.quarantine, schema=QUARANTINE_SCHEMA)
        write_atomic(self.out_dir / "quarantine.parquet", lambda f: pq.write_table(quarantine, f))
        write_atomic(self.out_dir / "summary.json", json.dumps(s.to_dict(), indent=2) + "\n")
        return s


def ingest(
    inputs: Iterable[str | Path],
    workspace: str | Path,
    shard_size: int = 10_000,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
    limit: int | None = None,
    english: bool = True,
) -> IngestSummary:
    """Ingest ``inputs`` into ``workspace/ingest`` (replaced as a whole, so a crash never leaves half a table).

    ``limit`` stops after that many records read (across all inputs).
    """
    inputs = [Path(p) for p in inputs]
    for p in inputs:
        if not p.is_file():
            raise FileNotFoundError(f"input {p} does not exist or is not a file")
    workspace = Path(workspace)
    settle(workspace)
    final = workspace / "ingest"
    tmp = workspace / "ingest.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    ingestor = Ingestor(tmp, shard_size=shard_size, max_turn_chars=max_turn_chars, limit=limit, english=english)
    for path in inputs:
        if limit is not None and ingestor.summary.records_read >= limit:
            break
        ingestor.add_file(path)
    ingestor.summary.seconds = round(time.perf_counter() - started, 3)
    summary = ingestor.finish()
    inputs_record = [{"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in inputs]
    write_atomic(tmp / INPUTS, json.dumps(inputs_record, indent=2) + "\n")  # written last: the new tables are complete
    if final.exists():
        old = workspace / "ingest.old"
        if old.exists():
            shutil.rmtree(old)
        rename_durably(final, old)
    rename_durably(tmp, final)
    settle(workspace)
    return summary


INPUTS = "inputs.json"


def settle(workspace: str | Path) -> None:
    """Finish a replacement of ``WORKSPACE/ingest`` that a crash interrupted: a folder cannot be replaced by one
    rename, so the old tables move aside first; a crash between the two renames leaves the complete new tables in
    ``ingest.tmp`` (they carry ``inputs.json``, written last), which this moves into place. Readers then find the
    old tables or the new ones, never a mix."""
    workspace = Path(workspace)
    final, tmp, old = workspace / "ingest", workspace / "ingest.tmp", workspace / "ingest.old"
    if not final.exists() and (tmp / INPUTS).exists():
        rename_durably(tmp, final)
    if not final.exists() and (old / INPUTS).exists():
        rename_durably(old, final)
    if final.exists() and old.exists():
        shutil.rmtree(old)


def existing_summary(workspace: str | Path) -> IngestSummary:
    """The summary of what the workspace ingested before (a run with no input files works on it)."""
    settle(workspace)
    path = Path(workspace) / "ingest" / "summary.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: give input files, or run 'polyglot ingest' into this workspace first"
        )
    data = json.loads(path.read_text())
    data.pop("dedup_ratio", None)
    return IngestSummary(**data)
