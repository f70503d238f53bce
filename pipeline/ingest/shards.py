"""Put turns back together from a shard's tables: the skeleton, and for each unit its (translated) text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.ingest.units import unmask


@dataclass(slots=True)
class AssembledTurn:
    conv_key: str
    turn_index: int
    role: str
    source: str
    text: str
    flags: list[str]


# unit_text(unit_hash, unit_index) → (masked text to put in, flags about it); None: the source text, unchanged.
UnitText = Callable[[str, int], tuple[str, list[str]]]


def iter_shard_turns(shard_dir: Path, unit_text: UnitText | None) -> Iterator[AssembledTurn]:
    """Yield every turn of a shard in order, each unit replaced by what ``unit_text`` gives (masked text,
    its placeholders then restored from this occurrence's spans). ``None`` yields the source turns as stored.
    """
    turns = pq.read_table(
        shard_dir / "turns.parquet", columns=["conv_key", "turn_index", "role", "value", "skeleton", "n_units"]
    )
    units = pq.read_table(shard_dir / "units.parquet", columns=["unit_hash", "spans"])
    unit_hashes = units.column("unit_hash").to_pylist()
    unit_spans = units.column("spans").to_pylist()
    u = 0
    for conv_key, turn_index, role, value, skeleton, n_units in zip(*(c.to_pylist() for c in turns.columns)):
        flags: list[str] = []
        if unit_text is None:
            text = value
        else:
            parts = [skeleton[0]]
            for i in range(n_units):
                masked, unit_flags = unit_text(unit_hashes[u + i], i)
                flags.extend(unit_flags)
                parts.append(unmask(masked, unit_spans[u + i]))
                parts.append(skeleton[i + 1])
            text = "".join(parts)
        u += n_units
        yield AssembledTurn(conv_key, turn_index, role, value, text, flags)
    if u != len(unit_hashes):  # pragma: no cover - a bug, never data
        raise AssertionError(f"{shard_dir}: turns name {u} units, the units table has {len(unit_hashes)}")


def source_texts(ingest_dir: Path) -> dict[str, str]:
    """unit_hash → masked source text, from the unique-unit table."""
    table = pq.read_table(ingest_dir / "unique_units.parquet", columns=["unit_hash", "text"])
    return dict(zip(table.column("unit_hash").to_pylist(), table.column("text").to_pylist()))


def shard_dirs(ingest_dir: Path) -> list[Path]:
    return (
        sorted(p for p in (ingest_dir / "shards").iterdir() if p.is_dir()) if (ingest_dir / "shards").exists() else []
    )
