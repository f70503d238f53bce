"""Who sees what: the review queue.

Queue per language = every ``needs_review`` conversation + a seeded random sample of the ``accepted`` ones,
stratified by source file (the LLaVA subsets), ``budget`` conversations at most — minus what humans
reviewed already. For an evaluation set (budget ``all``) every conversation not yet reviewed is queued, rejected ones
too. Otherwise ``rejected`` conversations are not sent to people: their machine text is unusable and they go
back to translation. Same seed, same data: same queue; a conversation's place in the draw depends
only on (seed, language, conversation key), so adding data does not reshuffle what was drawn.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from pipeline.assemble.translations import translations
from pipeline.storage import write_atomic

QUEUE_COLUMNS = ["lang", "conv_key", "id", "reason", "stratum"]


def _draw_key(seed: int, lang: str, conv_key: str) -> str:
    return hashlib.blake2b(f"{seed}\x1f{lang}\x1f{conv_key}".encode(), digest_size=8).hexdigest()


def reviewed(workspace: Path) -> pl.DataFrame:
    """(lang, conv_key) pairs people reviewed already (written by the review pull)."""
    path = workspace / "review" / "reviewed.parquet"
    if path.exists():
        return pl.read_parquet(path, columns=["lang", "conv_key"]).unique()
    return pl.DataFrame(schema={"lang": pl.String, "conv_key": pl.String})


def build_queue(workspace: Path, langs: list[str], budget: int | None = 1000, seed: int = 0) -> pl.DataFrame:
    """The review queue; ``budget`` None: every conversation not reviewed yet, whatever its QE status (an
    evaluation set, where every item must be checked by a person)."""
    if budget is not None and budget < 0:
        raise ValueError(f"review budget must be 0 or more, got {budget}")
    columns = ["lang", "conv_key", "id", "source_file", "qe_status"]
    df = translations(workspace, [lang for lang in langs if lang != "en"], columns)
    df = df.join(reviewed(workspace), on=["lang", "conv_key"], how="anti")
    rows: list[dict] = []
    if budget is None:
        for r in df.sort("lang", "conv_key").iter_rows(named=True):
            rows.append({"lang": r["lang"], "conv_key": r["conv_key"], "id": r["id"], "reason": "every item", "stratum": r["source_file"]})
        return pl.DataFrame(rows, schema={c: pl.String for c in QUEUE_COLUMNS})
    for (lang,), group in df.group_by("lang", maintain_order=True):
        for r in group.filter(pl.col("qe_status") == "needs_review").sort("conv_key").iter_rows(named=True):
            rows.append({"lang": lang, "conv_key": r["conv_key"], "id": r["id"], "reason": "needs_review", "stratum": r["source_file"]})
        pool = group.filter(pl.col("qe_status") == "accepted")
        if not budget or not pool.height:
            continue
        pool = pool.with_columns(pl.col("conv_key").map_elements(lambda k, lang=lang: _draw_key(seed, lang, k), return_dtype=pl.String).alias("draw"))
        sizes = pool.group_by("source_file").len().sort("source_file")
        take = _allocate(dict(zip(sizes["source_file"], sizes["len"])), min(budget, pool.height))
        for stratum, n in take.items():
            picked = pool.filter(pl.col("source_file") == stratum).sort("draw").head(n)
            for r in picked.iter_rows(named=True):
                rows.append({"lang": lang, "conv_key": r["conv_key"], "id": r["id"], "reason": "sample", "stratum": stratum})
    return pl.DataFrame(rows, schema={c: pl.String for c in QUEUE_COLUMNS})


def _allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` over strata in proportion to their sizes (largest remainder; never above a size)."""
    whole = sum(sizes.values())
    exact = {k: total * v / whole for k, v in sizes.items()}
    out = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[: total - sum(out.values())]:
        out[k] += 1
    return {k: min(v, sizes[k]) for k, v in out.items()}


def write_queue(workspace: Path, queue: pl.DataFrame) -> Path:
    return write_atomic(workspace / "review" / "queue.parquet", queue.write_parquet)
