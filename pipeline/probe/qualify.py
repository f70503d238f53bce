"""Qualify translators on reference lines: every translator of a translators file (or the candidates named)
translates the probe lines of each language through the real path (answer checks, language rules, QE), and the
figures per (translator version, language) are recorded in ``WORKSPACE/translator/qualification.jsonl``:
chrF, BLEU, the share of answers passing the answer checks, the QE shares, requests and output tokens/s.

:func:`choose` picks the best translator per language by chrF on the probe; the translate flow refuses a
language whose chosen translator version has no qualification or scored below its floor
(:func:`pipeline.translate.translators.refusals`).
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.probe.lines import run_probe, scored
from pipeline.quality.score import load as load_calibration
from pipeline.quality.signals import QEConfig
from pipeline.references import corpus_scores
from pipeline.translate.served import served_base
from pipeline.translate.translators import TranslatorsFile, record_qualification


def qualify(
    workspace: Path,
    file: TranslatorsFile,
    candidates: list[str],
    refs: Path,
    langs: list[str],
    lines: list[int],
    concurrency: int = 16,
    qe_config: QEConfig | None = None,
    say=print,
) -> list[dict]:
    """Measure each candidate translator on ``lines`` of ``refs`` in each of ``langs``; returns the rows recorded.

    No back-translation here (a qualification costs one request per line and language): QE shares come from the
    form checks and the form-only quality score of the language's calibration."""
    qe_config = qe_config or QEConfig()
    rows = []
    for name in candidates:
        translator = file.translators[name]
        model, weights = served_base(translator.servers, translator.model, wait=60)
        config = translator.config(model, weights)
        for lang in langs:
            say(f"  … {name} → {lang}: {len(lines)} lines of {refs}")
            probe = run_probe(
                workspace, refs, lang, lines, translator.servers, config, None, concurrency, qe_config, references=False
            )
            turns = probe.translations
            hyps, gold = [t.text for t in turns], [t.reference for t in turns]
            calibration = load_calibration(workspace, lang, probe.translator_version, say=lambda _line: None)
            statuses = [status for _, _, status in scored(probe, calibration, qe_config)]
            row = {
                "translator": name,
                "translator_version": probe.translator_version,
                "lang": lang,
                "model": model,
                "weights": weights,
                "adapter": translator.adapter,
                "servers": translator.servers,
                "refs": str(refs),
                "lines": [lines[0], lines[-1]],
                **dict(zip(("chrf", "bleu"), corpus_scores(lang, hyps, gold))),
                "answers_passing": probe.answers_passing,
                **{
                    f"qe_{s}": round(statuses.count(s) / len(statuses), 3)
                    for s in ("accepted", "needs_review", "rejected")
                },
                "qe_calibration": calibration.source,
                "requests": probe.requests,
                "output_tokens_per_s": round(probe.completion_tokens / probe.seconds, 2)
                if probe.requests and probe.seconds
                else None,
                # what a plan (polyglot translate --plan) counts this translator's answers in
                "output_tokens_per_char": round(probe.completion_tokens / sum(len(t.source) for t in turns), 3)
                if probe.requests and turns
                else None,
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            record_qualification(workspace, row)
            rows.append(row)
    return rows


def choose(rows: list[dict]) -> dict[str, dict]:
    """lang → the row of the best translator there: highest chrF, then the larger share of answers passing."""
    best: dict[str, dict] = {}
    for row in rows:
        key = (row["chrf"], row["answers_passing"])
        if row["lang"] not in best or key > (best[row["lang"]]["chrf"], best[row["lang"]]["answers_passing"]):
            best[row["lang"]] = row
    return best
