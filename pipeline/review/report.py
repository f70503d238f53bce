"""The per-language quality report of a workspace: a summary table, the commonest QE reasons, histograms."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.assemble.translations import translations
from pipeline.storage import write_atomic


def quality_report(workspace: Path, langs: list[str]) -> tuple[pl.DataFrame, list[Path]]:
    """Per-language summary table and histogram PNGs under ``workspace/reports``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["lang", "qe_status", "turn_qe_status", "turn_qe_reasons", "turn_length_ratio", "turn_script_share", "turn_lang_prob", "turn_bt_chrf"]
    df = translations(workspace, [lang for lang in langs if lang != "en"], columns)
    turns = df.explode(["turn_qe_status", "turn_length_ratio", "turn_script_share", "turn_lang_prob", "turn_bt_chrf"])
    summary = (
        df.group_by("lang", maintain_order=True)
        .agg(
            pl.len().alias("conversations"),
            (pl.col("qe_status") == "accepted").sum().alias("accepted"),
            (pl.col("qe_status") == "needs_review").sum().alias("needs_review"),
            (pl.col("qe_status") == "rejected").sum().alias("rejected"),
        )
        .join(
            turns.group_by("lang").agg(
                pl.len().alias("turns"),
                (pl.col("turn_qe_status") == "accepted").mean().round(4).alias("turns_accepted_share"),
                pl.col("turn_length_ratio").median().round(3).alias("median_length_ratio"),
                pl.col("turn_script_share").mean().round(3).alias("mean_script_share"),
                pl.col("turn_lang_prob").mean().round(3).alias("mean_lang_prob"),
                pl.col("turn_bt_chrf").drop_nulls().len().alias("bt_sampled_turns"),
                pl.col("turn_bt_chrf").mean().round(2).alias("mean_bt_chrf"),
            ),
            on="lang",
        )
    )
    reasons = (
        df.select("lang", pl.col("turn_qe_reasons").alias("reason"))
        .explode("reason")
        .explode("reason")
        .drop_nulls()
        .with_columns(pl.col("reason").str.replace(r"^unit \d+: ", "").str.replace(r"[:\d\[(].*$", "").str.strip_chars())
        .group_by("lang", "reason")
        .len()
        .sort("lang", "len", descending=[False, True])
    )
    out = workspace / "reports"
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "qe_summary.parquet", summary.write_parquet)
    write_atomic(out / "qe_reasons.parquet", reasons.write_parquet)
    pngs = []
    for column, title in (("turn_length_ratio", "length ratio (translation / source characters)"), ("turn_script_share", "share of words in the expected script")):
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for (lang,), group in turns.group_by("lang", maintain_order=True):
            values = group[column].drop_nulls().to_list()
            if values:
                ax.hist(values, bins=30, histtype="step", label=lang)
        ax.set_title(title)
        ax.set_ylabel("turns")
        ax.legend(ncol=3, fontsize=8)
        path = out / f"{column.removeprefix('turn_')}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        pngs.append(path)
    return summary, pngs
