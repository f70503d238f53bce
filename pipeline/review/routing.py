"""Who sees what: the review queue.

Queue per language, ``budget`` conversations at most, none that people reviewed already: the conversations with
the lowest quality score first (``qe_score``, their worst turn: the likeliest to be wrong), leaving a share of
the budget (``spot_check``, default 10 %) to a seeded random sample of ``accepted`` conversations, stratified by
source file (the LLaVA subsets), so that the calibration of the score can be audited. ``rejected`` conversations
are not for correcting (their machine text is unusable), but while a language has some, a share of its budget
(``scratch_share``, default 20 %) goes to them as translate-from-scratch tasks (reason ``from scratch``: a person
writes the rejected turns without the machine's draft), in a seeded draw — so a language whose translator is
weak still gets human text, and the fine-tune loop data, instead of nothing. For an evaluation set (budget
``all``) every conversation not yet reviewed is queued, rejected ones too.

Same seed, same data: same queue; a conversation's place in the draw depends only on (seed, language,
conversation key), so adding data does not reshuffle what was drawn. One language is read at a time (only the
columns routing needs): memory follows the largest language, not the whole run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from pipeline.storage import write_atomic

QUEUE_COLUMNS = ["lang", "conv_key", "id", "reason", "stratum", "qe_score"]
QUEUE_SCHEMA = {**{c: pl.String for c in QUEUE_COLUMNS}, "qe_score": pl.Float32}
SPOT_CHECK = 0.1
SCRATCH_SHARE = 0.2
FROM_SCRATCH = "from scratch"  # the queue reason of a rejected conversation sent to be translated by a person


def _draw_key(seed: int, lang: str, conv_key: str) -> str:
    return hashlib.blake2b(f"{seed}\x1f{lang}\x1f{conv_key}".encode(), digest_size=8).hexdigest()


def reviewed(workspace: Path) -> pl.DataFrame:
    """(lang, conv_key) pairs people reviewed already (written by the review pull)."""
    path = workspace / "review" / "reviewed.parquet"
    if path.exists():
        return pl.read_parquet(path, columns=["lang", "conv_key"]).unique()
    return pl.DataFrame(schema={"lang": pl.String, "conv_key": pl.String})


def _candidates(workspace: Path, lang: str, seen: pl.DataFrame) -> pl.DataFrame:
    files = sorted((Path(workspace) / "translations" / lang).glob("shard-*.parquet"))
    if not files:
        return pl.DataFrame(
            schema={
                "conv_key": pl.String,
                "id": pl.String,
                "source_file": pl.String,
                "qe_status": pl.String,
                "qe_score": pl.Float32,
            }
        )
    return (
        pl.scan_parquet(files)
        .select("conv_key", "id", "source_file", "qe_status", "qe_score")
        .join(seen.lazy().filter(pl.col("lang") == lang).select("conv_key"), on="conv_key", how="anti")
        .collect()
    )


def _rows(lang: str, frame: pl.DataFrame, reason: str) -> pl.DataFrame:
    return frame.select(
        pl.lit(lang).alias("lang"),
        "conv_key",
        "id",
        pl.lit(reason).alias("reason"),
        pl.col("source_file").alias("stratum"),
        pl.col("qe_score").cast(pl.Float32),
    )


def build_queue(
    workspace: Path,
    langs: list[str],
    budget: int | None = 1000,
    seed: int = 0,
    spot_check: float = SPOT_CHECK,
    scratch_share: float = SCRATCH_SHARE,
) -> pl.DataFrame:
    """The review queue (see the module's docstring); ``budget`` None: every conversation not reviewed yet, whatever
    its QE status (an evaluation set, where every item must be checked by a person)."""
    if budget is not None and budget < 0:
        raise ValueError(f"review budget must be 0 or more, got {budget}")
    if not 0.0 <= spot_check <= 1.0:
        raise ValueError(f"the spot-check share must be between 0 and 1, got {spot_check}")
    if not 0.0 <= scratch_share <= 1.0:
        raise ValueError(f"the from-scratch share must be between 0 and 1, got {scratch_share}")
    targets = [lang for lang in langs if lang != "en"]
    if not any((Path(workspace) / "translations" / lang).is_dir() for lang in targets):
        raise FileNotFoundError(
            f"no translated shards under {Path(workspace) / 'translations'}: run 'polyglot translate' first"
        )
    seen = reviewed(workspace)
    parts = []
    for lang in targets:
        df = _candidates(workspace, lang, seen)
        if budget is None:
            parts.append(_rows(lang, df.sort("conv_key"), "every item"))
            continue
        if not budget or not df.height:
            continue
        rejected = _drawn(df.filter(pl.col("qe_status") == "rejected"), seed, lang)
        scratch = rejected.head(min(round(budget * scratch_share), rejected.height))
        if scratch.height:
            parts.append(_rows(lang, scratch, FROM_SCRATCH))
        left = budget - scratch.height
        pool = df.filter(pl.col("qe_status") != "rejected")
        spots = min(round(left * spot_check), pool.filter(pl.col("qe_status") == "accepted").height)
        lowest = pool.sort("qe_score", "conv_key", nulls_last=True).head(left - spots)
        parts.append(_rows(lang, lowest, "low score"))
        accepted = pool.filter(pl.col("qe_status") == "accepted").join(
            lowest.select("conv_key"), on="conv_key", how="anti"
        )
        if spots and accepted.height:
            accepted = _drawn(accepted, seed, lang)
            sizes = accepted.group_by("source_file").len().sort("source_file")
            for stratum, n in _allocate(
                dict(zip(sizes["source_file"], sizes["len"])), min(spots, accepted.height)
            ).items():
                picked = accepted.filter(pl.col("source_file") == stratum).sort("draw").head(n)
                parts.append(_rows(lang, picked, "spot check"))
    return pl.concat(parts) if parts else pl.DataFrame(schema=QUEUE_SCHEMA)


def _drawn(frame: pl.DataFrame, seed: int, lang: str) -> pl.DataFrame:
    """``frame`` in the seeded draw's order (column ``draw``): stable as data is added."""
    return frame.with_columns(
        pl.col("conv_key").map_elements(lambda k: _draw_key(seed, lang, k), return_dtype=pl.String).alias("draw")
    ).sort("draw")


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
