"""The dataset card of a release (``README.md``): YAML front matter the hub and ``datasets`` read, statistics, the
quality score and how to filter on it, the translators, release notes and lineage."""

from __future__ import annotations

from pathlib import Path

LICENSE = "cc-by-nc-4.0"  # LLaVA-Instruct-150K's licence; the translations inherit it


def dataset_card(manifest: dict, files: dict, notes: str) -> str:
    langs = manifest["config"]["languages"]
    metadata = dict(
        license=LICENSE,
        language=langs,
        task_categories=["visual-question-answering", "image-text-to-text"],
        pretty_name=f"LLaVA-Instruct multilingual ({manifest['version']})",
        configs=[
            {"config_name": lang, "data_files": [{"split": "train", "path": f"data/{lang}/train-*.parquet"}]}
            for lang in langs
        ],
    )
    rows = [
        "| lang | rows | turns | translated OK | QE accepted | needs review | rejected | qe_score ≥ 0.5 | qe_score ≥ 0.8 "
        "| reviewed | human-corrected |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lang in langs:
        c = manifest["counts"][lang]
        qe, passing = c["qe"], c.get("qe_score_at_least") or {}
        rows.append(
            f"| {lang} | {c['rows']} | {c['turns']} | {c['status_ok']} | {qe.get('accepted', 0)} | "
            f"{qe.get('needs_review', 0)} | {qe.get('rejected', 0)} | {passing.get('0.5', '–')} | {passing.get('0.8', '–')} | "
            f"{c['reviewed']} | {c['human_corrected']} |"
        )
    plots = [f"![{Path(rel).stem}]({rel})" for rel in files if rel.startswith("plots/")]
    cfg = manifest["config"]
    lineage = [
        f"- parent release: {manifest['parent'] or 'none (first release)'}",
        f"- language-rules version: `{cfg['rules_version']}`",
    ]
    for lang, tvs in cfg["translator_versions"].items():
        active = cfg["active_translators"].get(lang, {})
        adapter = f", adapter {active['adapter_version']} (`{active['adapter']}`)" if active.get("adapter") else ""
        lineage.append(f"- {lang}: translator version(s) {', '.join(f'`{v}`' for v in tvs)}{adapter}")
    translator_rows = [
        "| lang | translator model | adapter | weights | qualification chrF (probe) | conversations human-reviewed |",
        "| --- | --- | --- | --- | ---: | ---: |",
    ]
    for lang in langs:
        c = manifest["counts"][lang]
        reviewed = f"{c['reviewed'] / c['rows']:.1%}" if c["rows"] else "–"
        for t in cfg.get("translators", {}).get(lang) or [{}]:
            if not t:
                continue
            chrf = f"{t['qualification_chrf']:.1f}" if t.get("qualification_chrf") is not None else "not qualified"
            weights = f"`{t['weights']}`" if t.get("weights") else "–"
            adapter = f"`{t['adapter']}`" if t.get("adapter") else "–"
            translator_rows.append(f"| {lang} | `{t['model']}` | {adapter} | {weights} | {chrf} | {reviewed} |")
    lineage += [f"- input `{i['path']}` sha256 `{i['sha256']}`" for i in manifest["inputs"]]
    body = f"""
# LLaVA-Instruct conversations in {len(langs)} languages — release {manifest["version"]}

Machine-translated with an LLM served by vLLM, repaired by per-language rules, scored by quality estimation,
and partly reviewed by native speakers (their text replaces the machine's wherever they decided a turn).
Produced by llava-polyglot; published {manifest["created_at"]}.
{f"{chr(10)}> **Note.** {manifest['note']}{chr(10)}" if manifest.get("note") else ""}
## Load it

```python
from datasets import load_dataset
hi = load_dataset("path/to/{manifest["version"]}", "hi", split="train")

import polars as pl
frame = pl.scan_parquet("path/to/{manifest["version"]}/data/hi/*.parquet")

from pipeline.release import load      # llava-polyglot installed: checks every sha256 first
frame = load("path/to/{manifest["version"]}", "hi")   # polars LazyFrame
```

Each row is one conversation in the LLaVA schema (`id`, `image`, `conversations` = list of `from`/`value`)
plus `lang`, `source_id` (the English record's id), `conv_key` (hash of the English conversation),
`translator_version`, `rules_version`, QE columns (`qe_status`, per-turn `turn_qe_status`, reasons, language ID,
script share, length ratio, back-translation chrF and text), `review_status`, `human_corrected` and per-turn
`turn_human`. Rows are all there, whatever their quality: filter on `status == "ok"` (every unit translated)
and the quality score for training.

**Quality score.** `turn_qe_score` is, per turn, the estimated probability that the turn is a usable translation
(language ID, script, length, repetition and the translation's round trip back to English, combined by a model
calibrated on professional reference translations); `qe_score` is the conversation's worst turn, and a person's
text scores 1. Keep what passes a bar:

```python
hi = load_dataset("path/to/{manifest["version"]}", "hi", split="train").filter(lambda row: row["qe_score"] >= 0.8)
frame = pl.scan_parquet("path/to/{manifest["version"]}/data/hi/*.parquet").filter(pl.col("qe_score") >= 0.8)
```

`polyglot export-llava {manifest["version"]} --min-qe-score 0.8` writes the LLaVA training JSON of what passes.

## Statistics

{chr(10).join(rows)}

{chr(10).join(plots)}

## Translators

{chr(10).join(translator_rows)}

The qualification chrF is the translator's score on professional reference lines (`polyglot qualify`), measured
before the run; "not qualified" means it was never measured.

## Changes

{notes}

## Lineage

{chr(10).join(lineage)}

`manifest.json` holds the sha256 of every file; `polyglot release verify` checks them.
"""
    return card_text(metadata, body)


def card_text(metadata: dict, body: str) -> str:
    """A dataset card: ``metadata`` as the YAML front matter the Hugging Face hub and ``datasets`` read (written by
    huggingface_hub, so keys and quoting are checked), then the markdown ``body``."""
    from huggingface_hub import DatasetCard, DatasetCardData

    return str(DatasetCard(f"---\n{DatasetCardData(**metadata).to_yaml()}\n---\n{body.lstrip()}"))


def release_notes(manifest: dict, changes: dict | None) -> str:
    lines = [f"Release {manifest['version']} ({manifest['created_at']}), parent {manifest['parent'] or 'none'}."]
    if changes is None:
        lines.append("First release: every conversation is new.")
        return "\n".join(lines)
    lines += ["", "| lang | added | removed | changed |", "| --- | ---: | ---: | ---: |"]
    for lang, c in changes.items():
        lines.append(f"| {lang} | {len(c['added'])} | {len(c['removed'])} | {len(c['changed'])} |")
    return "\n".join(lines)
