"""What a translate run shows as it goes and when it ends: progress lines, the names of its task runs in Prefect's
UI, and its artifacts (counts, the summary with the output-tokens line, the quality histograms)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact
from prefect.runtime import task_run

from flows.messages import tell
from pipeline.translate.requests import LanguageCounts, TranslateSummary


class Progress:
    """Units done: a line every ``every`` seconds into the run's log (and on stderr), or a tqdm bar on a terminal;
    a log never goes silent."""

    def __init__(self, total: int, label: str, terminal: bool, every: float = 15.0):
        self.total, self.label, self.terminal, self.every, self.done = total, label, terminal, every, 0
        self.started = self.last = time.monotonic()
        self.bar = None
        if terminal and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="unit", file=sys.stderr, dynamic_ncols=True, mininterval=1.0)

    def update(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update()
        if (now := time.monotonic()) - self.last >= self.every:
            self.last = now
            tell(
                f"  … {self.label}: {self.done}/{self.total} units, {now - self.started:.0f} s",
                terminal=self.terminal and self.bar is None,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def translate_run_name() -> str:
    """Prefect's name for a translate-units task run: its languages and partition (``translate-hi+zh-part-2-of-4``)."""
    p = task_run.parameters
    part = f"-part-{p.get('index', 0) + 1}-of-{p.get('count', 1)}" if p.get("count", 1) > 1 else ""
    return f"translate-{'+'.join(p['langs']) or 'none'}{part}"


def assemble_run_name() -> str:
    """Prefect's name for an assemble task run: its language and shard (``assemble-hi-shard-00003``)."""
    p = task_run.parameters
    return f"assemble-{p['lang']}-shard-{Path(p['shard']).name}"


def summary_artifacts(result: dict, ingest_summary: dict, failures: dict[str, str]) -> None:
    """What the terminal shows, in the run's artifacts: the counts table, the summary with its output-tokens line, and
    the quality histograms (PNGs inlined, so the UI shows them without access to the workspace)."""
    import base64

    totals = {lang: LanguageCounts(**c) for lang, c in result["languages"].items()}
    create_table_artifact(
        key="translate-counts",
        table=[{"lang": lang, "quarantined": ingest_summary["quarantined"], **asdict(c)} for lang, c in totals.items()],
        description=(
            f"Per-language counts: {ingest_summary['records_read']} records read, {ingest_summary['valid']} valid, "
            f"{ingest_summary['quarantined']} quarantined; {result['requests_sent']} requests sent."
        ),
    )
    summary = TranslateSummary(totals, result["requests_sent"], result["unique_pairs_requested"], result["seconds"])
    table = summary.render(
        ingest_summary["valid"], ingest_summary["quarantined"], frozenset(w.split("/")[0] for w in failures)
    )
    failed = "".join(f"\n- **failed** {where}: {why}" for where, why in failures.items())
    create_markdown_artifact(
        key="translate-summary",
        markdown=f"```\n{table}\n```{failed}",
        description="The run's summary as the terminal shows it: counts per language, requests, output tokens",
    )
    for plot in result.get("qe", {}).get("plots", []):
        data = base64.b64encode(Path(plot).read_bytes()).decode()
        create_image_artifact(
            image_url=f"data:image/png;base64,{data}",
            key=f"qe-{Path(plot).stem.replace('_', '-').lower()}",
            description=f"Histogram per language: {Path(plot).name}",
        )


def second_chance_line(lang: str, sc: dict) -> str:
    """One line on a language's second chance (pipeline.assemble.second_chance)."""
    return (
        f"second chance {lang}: {sc['turns']} turn(s) eligible, {sc['units']} unit(s) asked again "
        f"({sc['candidates']} candidates, {sc['usable']} usable, {sc['tokens']:,} output tokens), {sc['kept']} kept, "
        f"{sc.get('rescued', 0)} turn(s) no longer rejected"
    )
