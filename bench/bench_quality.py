"""Translation quality of the served model on professional references, and how well the quality score sees it.

The first ``--calibrate-lines`` ntrex-dev lines of each language calibrate the quality score (what ``polyglot qe
calibrate`` does, kept in the workspace); the next ``--lines`` lines are translated through the same real path
(answer checks, language rules, QE, back-translation of every turn) and measured — never on a line the score
was calibrated on. Per language it prints:

- chrF and BLEU of the held-out turns; the shares accepted / needs review / rejected;
- Kendall τ between ``turn_qe_score`` and sentence chrF against the reference (and, for comparison, of the raw
  back-translation chrF and of the language-ID probability alone);
- the share of the worst quartile (by sentence chrF) that QE accepted, the mean sentence chrF of accepted and of
  rejected turns;
- the references themselves run through QE as translations: shares rejected and sent to review;
- requests, output tokens, the tokens spent on answers that ended flagged, and output tokens/s of the translate
  step.

The workspace (``--workspace``, default ``bench/out/quality``) keeps the translation memory: a rerun sends only what
is missing, so a long run on a slow CPU server can be stopped and resumed. ``--calibrate-lines 0`` measures with the
workspace's calibration as it is (or the shipped defaults). The last line is one JSON object with every figure.

    .venv/bin/python bench/bench_quality.py --server http://127.0.0.1:8000 --langs es,zh,hi --calibrate-lines 60 --lines 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.languages import TARGET_LANGUAGES, parse_languages
from pipeline.probe.lines import run_probe, scored
from pipeline.quality.backtranslation import Judge
from pipeline.quality.calibrate import (
    FLOORS,
    FORM_ACCEPT_NOTE,
    calibrate,
    kendall_tau,
    pooled,
)
from pipeline.quality.score import Calibration, calibration_path
from pipeline.quality.score import load as load_calibration
from pipeline.quality.shipped import capped_by_language, references_form_accept
from pipeline.quality.signals import QEConfig
from pipeline.references import NTREX_FILES, corpus_scores, shared_data
from pipeline.storage import write_atomic
from pipeline.translate.memory import TranslationMemory
from pipeline.translate.served import served_base
from pipeline.translate.settings import TranslatorConfig


def measure(probe, calibration, qe_config: QEConfig) -> dict:
    rows = scored(probe, calibration, qe_config)
    turns = [(t, s, st) for t, s, st in rows if not t.reference_record]
    refs = [(t, s, st) for t, s, st in rows if t.reference_record]
    hyps, gold = [t.text for t, _, _ in turns], [t.reference for t, _, _ in turns]
    chrfs = [t.chrf for t, _, _ in turns]
    chrf, bleu = corpus_scores(probe.lang, hyps, gold)
    out = {"turns": len(turns), "chrf": chrf, "bleu": bleu}
    for status in ("accepted", "needs_review", "rejected"):
        picked = [t.chrf for t, _, st in turns if st == status]
        out[f"share_{status}"] = round(len(picked) / len(turns), 3)
        out[f"mean_chrf_{status}"] = round(statistics.fmean(picked), 1) if picked else None
    out["kendall_tau"] = kendall_tau([s for _, s, _ in turns], chrfs)
    out["kendall_tau_bt_chrf"] = kendall_tau([t.bt_chrf or 0.0 for t, _, _ in turns], chrfs)
    out["kendall_tau_lang_prob"] = kendall_tau([t.qe.lang_prob or 0.0 for t, _, _ in turns], chrfs)
    quartile = sorted(chrfs)[max(0, len(chrfs) // 4 - 1)]
    worst = [st for t, _, st in turns if t.chrf <= quartile]
    out["worst_quartile_accepted"] = round(sum(st == "accepted" for st in worst) / len(worst), 3) if worst else None
    out["references_rejected"] = round(sum(st == "rejected" for *_, st in refs) / len(refs), 3) if refs else None
    out["references_to_review"] = round(sum(st == "needs_review" for *_, st in refs) / len(refs), 3) if refs else None
    return out


def recording(probe, split: str) -> list[dict]:
    """The probe's turns as the recording keeps them: line numbers and model output, never the reference text."""
    return [
        {"line": t.line, "split": split, "kind": "reference", "back_translation": t.back_translation}
        if t.reference_record
        else {
            "line": t.line,
            "split": split,
            "kind": "translation",
            "text": t.text,
            "flags": t.flags,
            "back_translation": t.back_translation,
        }
        for t in probe.turns
    ]


def tokens(workspace: Path, lang: str, version: str, lines: set[str] | None = None) -> dict:
    """Output tokens of the memory's answers for ``lang``: all, and spent on answers that ended flagged."""
    entries = TranslationMemory(workspace / "tm").load(lang, version)
    flagged = [e for e in entries.values() if e.status != "ok"]
    return {
        "answers": len(entries),
        "completion_tokens": sum(e.completion_tokens for e in entries.values()),
        "flagged": len(flagged),
        "flagged_tokens": sum(e.completion_tokens for e in flagged),
        "stopped_loops": sum(e.finish_reason == "stopped" for e in entries.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="OpenAI-compatible server (vLLM, llama.cpp…)")
    parser.add_argument("--langs", default=",".join(TARGET_LANGUAGES))
    parser.add_argument("--lines", type=int, default=100, help="held-out lines per language, measured")
    parser.add_argument(
        "--calibrate-lines", type=int, default=60, help="lines before them the score is calibrated on (0: none)"
    )
    parser.add_argument("--data", type=Path, default=shared_data() / "ntrex-dev")
    parser.add_argument("--workspace", type=Path, default=ROOT / "bench" / "out" / "quality")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", default=None, help="served model name (default: the server's first)")
    parser.add_argument("--judge-server", default=None, help="back-translates (default: --server)")
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument(
        "--write-defaults",
        type=Path,
        default=None,
        help="fit one calibration on the calibration lines of every language pooled and write it here "
        "(how pipeline/quality/default_calibration.json was made)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        help="write every probe turn's answer and back-translation (line numbers, no reference text) "
        "to this JSON file: the recording tests/data/qe_recorded.json is made this way",
    )
    args = parser.parse_args()
    langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
    model, weights = served_base(args.server, args.model, wait=60)
    judge = Judge(args.judge_server or args.server, served_base(args.judge_server)[0] if args.judge_server else model)
    config, qe_config = TranslatorConfig(model=model, weights=weights), QEConfig()
    calibration_lines = list(range(args.calibrate_lines))
    held_out = list(range(args.calibrate_lines, args.calibrate_lines + args.lines))
    results, recorded, calibration_records = {}, {}, {}
    print(
        f"model {model}, judge {judge.model}; calibrated on lines 0-{args.calibrate_lines - 1}, measured on "
        f"{held_out[0]}-{held_out[-1]} of {args.data}",
        flush=True,
    )
    for lang in langs:
        started = time.perf_counter()
        if calibration_lines:
            print(f"  … {lang}: calibrating on {len(calibration_lines)} lines", file=sys.stderr, flush=True)
            probe = run_probe(
                args.workspace,
                args.data,
                lang,
                calibration_lines,
                args.server,
                config,
                judge,
                args.concurrency,
                qe_config,
            )
            calibration_records[lang] = [t.record(qe_config.bands.get(lang)) for t in probe.turns]
            fitted = calibrate(
                lang, probe.translator_version, calibration_records[lang], FLOORS.get(lang, 40.0), args.precision
            )
            write_atomic(calibration_path(args.workspace, lang, probe.translator_version), fitted.to_json())
            recorded[lang] = recording(probe, "calibrate")
        print(f"  … {lang}: measuring on {len(held_out)} lines", file=sys.stderr, flush=True)
        probe = run_probe(
            args.workspace, args.data, lang, held_out, args.server, config, judge, args.concurrency, qe_config
        )
        calibration = load_calibration(args.workspace, lang, probe.translator_version)
        recorded[lang] = recorded.get(lang, []) + recording(probe, "measure")
        r = measure(probe, calibration, qe_config)
        r.update(
            calibration=calibration.source,
            floor=calibration.floor,
            reject_below=calibration.reject_below,
            accept_from=calibration.accept_from,
            calibration_figures=calibration.figures,
            wall_seconds=round(time.perf_counter() - started, 1),
            **tokens(args.workspace, lang, probe.translator_version),
        )
        results[lang] = r
        print(json.dumps({lang: r}), file=sys.stderr, flush=True)

    def f(x, width, digits=2):
        return f"{'-':>{width}}" if x is None else f"{x:>{width}.{digits}f}"

    print(
        f"{'lang':<5}{'turns':>6}{'chrF':>7}{'BLEU':>7}{'acc':>6}{'rev':>6}{'rej':>6}{'tau':>7}{'tau bt':>7}{'tau lid':>8}"
        f"{'worstQ acc':>11}{'chrF|acc':>9}{'chrF|rej':>9}{'ref rej':>8}{'ref rev':>8}{'tokens':>8}{'flagged tok':>12}"
    )
    for lang, r in results.items():
        print(
            f"{lang:<5}{r['turns']:>6}{f(r['chrf'], 7, 1)}{f(r['bleu'], 7, 1)}{f(r['share_accepted'], 6)}{f(r['share_needs_review'], 6)}"
            f"{f(r['share_rejected'], 6)}{f(r['kendall_tau'], 7)}{f(r['kendall_tau_bt_chrf'], 7)}{f(r['kendall_tau_lang_prob'], 8)}"
            f"{f(r['worst_quartile_accepted'], 11)}{f(r['mean_chrf_accepted'], 9, 1)}{f(r['mean_chrf_rejected'], 9, 1)}"
            f"{f(r['references_rejected'], 8)}{f(r['references_to_review'], 8)}{r['completion_tokens']:>8}{r['flagged_tokens']:>12}"
        )
    if args.write_defaults and calibration_records:
        fitted = capped_by_language(
            calibrate("any", None, pooled(calibration_records, FLOORS), 0.0, args.precision, with_references=True),
            calibration_records,
        )
        fitted.figures.update(
            fitted_on=f"{args.data.name} lines 0-{args.calibrate_lines - 1}, {'/'.join(calibration_records)} pooled, "
            f"each usable from its language's floor",
            model=model,
            judge=judge.model,
        )
        fitted.figures.pop("kendall_tau_score_chrf")  # chrF of different languages do not rank against each other
        # the defaults score every language: each language's form-only threshold keeps its references accepted
        every = [lang for lang in NTREX_FILES if lang != "en"]
        by_lang = references_form_accept(fitted, args.data, every, skip=range(160, 260))  # bench_challenge's lines
        fitted.figures["form_accept_from"] = FORM_ACCEPT_NOTE.format(data=args.data.name, first=160, last=259)
        shipped = replace(
            fitted,
            known_good=False,
            source="defaults",
            form_accept_from=min([fitted.form_accept, *by_lang.values()]),
            form_accept_by_lang=by_lang,
        )
        if args.write_defaults.exists():  # bench_embedding.py's models are its own work: kept, not dropped
            old = Calibration.from_dict(json.loads(args.write_defaults.read_text(encoding="utf-8")))
            if old.embed_model:
                shipped = replace(
                    shipped,
                    embed_model=old.embed_model,
                    with_embedding=old.with_embedding,
                    embedding_only=old.embedding_only,
                    embedding_accept_by_lang=old.embedding_accept_by_lang,
                    tail_accept_by_lang=old.tail_accept_by_lang,
                    figures={**shipped.figures, "embedding": old.figures.get("embedding", "")},
                )
                print(
                    f"kept the embedding models ({old.embed_model}) of {args.write_defaults}: bench/bench_embedding.py "
                    f"--write-defaults fits them again (after a new recording)"
                )
        write_atomic(args.write_defaults, shipped.to_json())
    if args.record:
        head = {
            "model": model,
            "judge": judge.model,
            "data": args.data.name,
            "note": "answers of the served model to ntrex-dev lines (line = 0-based line of newstest2019-src.eng.txt and of "
            "the language's reference, read in place); a reference record holds only the back-translation of that "
            "reference after the language rules' human pass",
        }
        body = ",\n".join(
            f'  "{lang}": [\n' + ",\n".join("    " + json.dumps(r, ensure_ascii=False) for r in rows) + "\n  ]"
            for lang, rows in recorded.items()
        )
        write_atomic(args.record, json.dumps(head, ensure_ascii=False)[:-1] + ', "languages": {\n' + body + "\n}}\n")
    print(
        json.dumps(
            {
                "model": model,
                "judge": judge.model,
                "calibrate_lines": args.calibrate_lines,
                "lines": args.lines,
                "languages": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
