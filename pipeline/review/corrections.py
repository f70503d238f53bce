"""Human corrections: the table the review pull appends to, the correction in force for each turn, and how it
wins over machine text.

Layout under ``WORKSPACE/review/``:

- ``corrections/part-*.parquet`` — append-only history, one file per pull (written, fsynced, renamed). One row
  per annotation *version*: an annotation edited in Label Studio comes back as a new row with the same
  ``annotation_id`` and a later ``updated_at``; a skipped task is a row with ``skipped`` true.
- ``reviewed.parquet`` — the (lang, conv_key) pairs people have seen (routing leaves them out of new queues).

The correction in force for a turn: for every annotation its latest version; of those, the ones not skipped;
of those, the most recently updated (with two reviewers on a task, the later word wins; their agreement is
reported separately). Its text replaces the machine text of that turn in every assembled shard, whatever the
translator version, because ``conv_key`` is a hash of the conversation's content: the same key means the same
English turn.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.assemble.humans import HUMAN_CORRECTED, HUMAN_REVIEWED, HUMAN_WRITTEN, Override
from pipeline.storage import write_atomic

CORRECTIONS_SCHEMA = pa.schema(
    [
        ("lang", pa.string()),
        ("conv_key", pa.string()),
        ("turn_index", pa.int32()),
        ("id", pa.string()),  # the conversation's LLaVA id
        ("role", pa.string()),
        ("task_key", pa.string()),  # conv_key:turn:lang:translator_version — the stable key of the pushed task
        ("translator_version", pa.string()),  # of the machine text the reviewer saw
        ("source", pa.string()),  # English turn
        ("machine_text", pa.string()),  # what was pre-filled
        ("corrected_text", pa.string()),  # what the reviewer submitted (null when skipped)
        ("edited", pa.bool_()),  # corrected_text differs from machine_text
        ("skipped", pa.bool_()),
        ("categories", pa.list_(pa.string())),
        ("rating", pa.int32()),
        ("reviewer", pa.string()),  # e-mail of the Label Studio user
        ("reviewer_id", pa.int64()),
        ("annotation_id", pa.int64()),
        ("task_id", pa.int64()),
        ("project_id", pa.int64()),
        ("lead_time", pa.float64()),  # seconds the reviewer spent, as Label Studio measured it
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("pulled_at", pa.timestamp("us", tz="UTC")),
        # "correction" (the machine text pre-filled) or "scratch" (translated from scratch: the machine text was
        # rejected and not shown); null in files pulled before there were scratch tasks: corrections
        ("task_kind", pa.string()),
    ]
)
SCRATCH = "scratch"


def review_dir(workspace: Path) -> Path:
    return Path(workspace) / "review"


def corrections_dir(workspace: Path) -> Path:
    return review_dir(workspace) / "corrections"


def history(workspace: Path) -> pl.DataFrame:
    """Every annotation version ever pulled (empty frame with the schema when none)."""
    files = sorted(corrections_dir(workspace).glob("part-*.parquet"))
    if not files:
        return pl.from_arrow(CORRECTIONS_SCHEMA.empty_table())
    return pl.from_arrow(pa.concat_tables(pq.read_table(f, schema=CORRECTIONS_SCHEMA) for f in files))


def append(workspace: Path, rows: list[dict]) -> Path | None:
    """Write ``rows`` as one new part file (atomically); None when there is nothing to write."""
    if not rows:
        return None
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    table = pa.Table.from_pylist(rows, schema=CORRECTIONS_SCHEMA)
    return write_atomic(corrections_dir(workspace) / name, lambda f: pq.write_table(table, f))


def latest_versions(df: pl.DataFrame) -> pl.DataFrame:
    """The latest version of every annotation (an edit supersedes what it replaced)."""
    return df.sort("updated_at", "pulled_at").unique("annotation_id", keep="last", maintain_order=True)


def in_force(workspace: Path, lang: str | None = None) -> pl.DataFrame:
    """The correction in force per (lang, conv_key, turn_index): latest version, not skipped, latest update."""
    df = latest_versions(history(workspace)).filter(~pl.col("skipped"))
    if lang is not None:
        df = df.filter(pl.col("lang") == lang)
    return df.sort("updated_at", "annotation_id").unique(
        ["lang", "conv_key", "turn_index"], keep="last", maintain_order=True
    )


def write_reviewed(workspace: Path) -> Path:
    """(lang, conv_key) pairs with any annotation, skipped ones included: people saw them."""
    reviewed = history(workspace).select("lang", "conv_key").unique().sort("lang", "conv_key")
    return write_atomic(review_dir(workspace) / "reviewed.parquet", reviewed.write_parquet)


def human_kind(edited: bool, task_kind: str | None) -> str:
    """How a person decided a turn: wrote it from scratch, corrected the machine text, or kept it."""
    if task_kind == SCRATCH:
        return HUMAN_WRITTEN
    return HUMAN_CORRECTED if edited else HUMAN_REVIEWED


def overrides(workspace: Path, lang: str) -> dict[tuple[str, int], Override]:
    """(conv_key, turn_index) → (human text, kind) for ``lang``."""
    df = in_force(workspace, lang)
    return {
        (k, t): (text, human_kind(edited, task_kind))
        for k, t, text, edited, task_kind in zip(
            df["conv_key"], df["turn_index"], df["corrected_text"], df["edited"], df["task_kind"]
        )
    }
