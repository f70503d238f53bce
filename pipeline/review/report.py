"""The per-language quality report of a workspace: a summary table, the commonest QE reasons, histograms."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import polars as pl

from pipeline.storage import write_atomic

PLOTS = (
    ("turn_qe_score", "quality score (estimated probability that the turn is usable)"),
    ("turn_length_ratio", "length ratio (translation / source characters)"),
    ("turn_script_share", "share of words in the expected script"),
)


def quality_report(workspace: Path, langs: list[str]) -> tuple[pl.DataFrame, list[Path]]:
    """Per-language summary table, the commonest reasons and histogram PNGs under ``workspace/reports``. One
    language is read at a time (memory follows the largest language, not the run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turn_columns = [
        "turn_qe_status",
        "turn_qe_score",
        "turn_length_ratio",
        "turn_script_share",
        "turn_lang_prob",
        "turn_bt_chrf",
        "turn_embed_sim",
    ]
    summaries, reasons, values = [], [], {column: {} for column, _ in PLOTS}
    for lang in [lang for lang in langs if lang != "en"]:
        files = sorted((Path(workspace) / "translations" / lang).glob("shard-*.parquet"))
        if not files:
            continue
        df = pl.scan_parquet(files).select("qe_status", "qe_score", "turn_qe_reasons", *turn_columns).collect()
        turns = df.select(turn_columns).explode(turn_columns)
        summaries.append(
            pl.DataFrame({"lang": [lang]})
            .hstack(
                df.select(
                    pl.len().alias("conversations"),
                    (pl.col("qe_status") == "accepted").sum().alias("accepted"),
                    (pl.col("qe_status") == "needs_review").sum().alias("needs_review"),
                    (pl.col("qe_status") == "rejected").sum().alias("rejected"),
                    (pl.col("qe_score") >= 0.5).sum().alias("score_at_least_0_5"),
                    (pl.col("qe_score") >= 0.8).sum().alias("score_at_least_0_8"),
                )
            )
            .hstack(
                turns.select(
                    pl.len().alias("turns"),
                    (pl.col("turn_qe_status") == "accepted").mean().round(4).alias("turns_accepted_share"),
                    pl.col("turn_qe_score").mean().round(3).alias("mean_turn_qe_score"),
                    pl.col("turn_length_ratio").median().round(3).alias("median_length_ratio"),
                    pl.col("turn_script_share").mean().round(3).alias("mean_script_share"),
                    pl.col("turn_lang_prob").mean().round(3).alias("mean_lang_prob"),
                    pl.col("turn_bt_chrf").drop_nulls().len().alias("bt_turns"),
                    pl.col("turn_bt_chrf").mean().round(2).alias("mean_bt_chrf"),
                    pl.col("turn_embed_sim").drop_nulls().len().alias("embedded_turns"),
                    pl.col("turn_embed_sim").mean().round(3).alias("mean_embed_sim"),
                )
            )
        )
        reasons.append(
            df.select(pl.col("turn_qe_reasons").alias("reason"))
            .explode("reason")
            .explode("reason")
            .drop_nulls()
            .with_columns(
                pl.col("reason").str.replace(r"^unit \d+: ", "").str.replace(r"[:\d\[(].*$", "").str.strip_chars()
            )
            .group_by("reason")
            .len()
            .sort("len", "reason", descending=[True, False])
            .select(pl.lit(lang).alias("lang"), "reason", "len")
        )
        for column, _ in PLOTS:
            values[column][lang] = turns[column].drop_nulls().to_numpy()
    if not summaries:
        raise FileNotFoundError(
            f"no translated shards under {Path(workspace) / 'translations'}: run 'polyglot translate' first"
        )
    summary = pl.concat(summaries, how="vertical_relaxed")
    out = Path(workspace) / "reports"
    write_atomic(out / "qe_summary.parquet", summary.write_parquet)
    write_atomic(out / "qe_reasons.parquet", pl.concat(reasons).write_parquet)
    pngs = []
    for column, title in PLOTS:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for lang, data in values[column].items():
            if len(data):
                ax.hist(data, bins=30, histtype="step", label=lang)
        ax.set_title(title)
        ax.set_ylabel("turns")
        ax.legend(ncol=3, fontsize=8)
        path = out / f"{column.removeprefix('turn_')}.png"
        write_atomic(path, lambda f, fig=fig: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))
        plt.close(fig)
        pngs.append(path)
    return summary, pngs


def _columns(c: str) -> int:
    """Terminal columns of a character: two for wide CJK ones, none for a combining mark (a Devanagari vowel sign)."""
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def _clip(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` terminal columns (a Chinese character takes two)."""
    text = " ".join(text.split())
    if sum(map(_columns, text)) <= width:
        return text
    used = 0
    for i, c in enumerate(text):
        used += _columns(c)
        if used > width - 1:  # one column for the ellipsis
            return text[:i] + "…"
    return text


def overview(workspace: Path, width: int = 100) -> list[str]:
    """What a workspace holds, on one screen: per language the conversations accepted, to review and rejected; one
    example translation per language (its best-scored conversation's first answer, with score and status); the
    review queue, lowest scores first."""
    workspace = Path(workspace)
    langs = sorted(p.name for p in (workspace / "translations").iterdir() if p.is_dir() and p.name != "en")
    lines = [f"{'lang':<5}{'conversations':>14}{'accepted':>10}{'to review':>11}{'rejected':>10}{'mean score':>12}"]
    examples = []
    for lang in langs:
        df = pl.read_parquet(
            sorted((workspace / "translations" / lang).glob("shard-*.parquet")),
            columns=["id", "conversations", "qe_status", "qe_score", "turn_qe_status", "turn_qe_score"],
        )
        count = {s: df.filter(pl.col("qe_status") == s).height for s in ("accepted", "needs_review", "rejected")}
        mean = df["qe_score"].mean()
        lines.append(
            f"{lang:<5}{df.height:>14}{count['accepted']:>10}{count['needs_review']:>11}{count['rejected']:>10}"
            f"{'' if mean is None else f'{mean:.2f}':>12}"
        )
        if df.height:
            best = df.sort("qe_score", "id", descending=[True, False], nulls_last=True).row(0, named=True)
            turn = next((i for i, t in enumerate(best["conversations"]) if t["from"] == "gpt"), 0)
            score = best["turn_qe_score"][turn] if best["turn_qe_score"] else None
            label = f"{best['turn_qe_status'][turn]} {'' if score is None else f'{score:.2f}'}".strip()
            examples.append(f"  {lang} [{label}] {_clip(best['conversations'][turn]['value'], width - 8 - len(label))}")
    lines += ["", "one answer per language (the best-scored conversation's first answer, [status score]):", *examples]
    queue = workspace / "review" / "queue.parquet"
    if queue.exists():
        q = pl.read_parquet(queue).sort("qe_score", "lang", "conv_key", nulls_last=True)
        per_lang = ", ".join(
            f"{r['lang']} {r['len']}" for r in q.group_by("lang").len().sort("lang").iter_rows(named=True)
        )
        lines += [
            "",
            f"review queue: {q.height} conversation(s) in {queue} ({per_lang or 'none'}); lowest scores first:",
        ]
        for r in q.head(5).iter_rows(named=True):
            score = "–" if r["qe_score"] is None else f"{r['qe_score']:.2f}"
            lines.append(f"  {r['lang']}  {r['id']}  score {score}  ({r['reason']})")
    return lines
