"""``polyglot qe score`` (line-aligned files) and ``polyglot qe calibrate`` (the quality score, on references)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from pipeline.cli.common import VLLM_URL, count, embed_options, positive_int, share


def _embed_judge(args: argparse.Namespace):
    """The embedding judge the command line names, or None."""
    if not args.embed_server:
        return None
    from pipeline.quality.embedding import EmbedJudge
    from pipeline.translate.served import served_base

    return EmbedJudge(args.embed_server, args.embed_model or served_base(args.embed_server)[0], args.embed_prefix)


def _cmd_score(args: argparse.Namespace) -> int:
    from pipeline.quality.embedding import cosines, last_clause_cosines
    from pipeline.quality.score import Calibration, defaults
    from pipeline.quality.signals import QEConfig, assess

    config = QEConfig.load(args.qe_config)
    calibration = (
        Calibration.from_dict(json.loads(args.calibration.read_text())) if args.calibration else defaults(args.lang)
    )
    sources = args.source.read_text(encoding="utf-8").splitlines()
    targets = args.target.read_text(encoding="utf-8").splitlines()
    if len(sources) != len(targets):
        raise ValueError(
            f"{args.source} has {len(sources)} lines but {args.target} has {len(targets)}: the files must be line-aligned"
        )
    counts: Counter[str] = Counter()
    band = config.bands.get(args.lang)
    judge = _embed_judge(args)
    calibration = calibration.for_embedder(judge.model if judge else None)
    checked = [
        assess(src, tgt, args.lang, th=config.for_lang(args.lang), bands=config.bands)
        for src, tgt in zip(sources, targets)
    ]
    sims: list[float | None] = [None] * len(checked)
    tails: list[float | None] = [None] * len(checked)
    if judge:  # every pair the form checks did not reject, in one pass (and its last clause, where it is read)
        todo = [i for i, q in enumerate(checked) if q.status != "rejected" and targets[i].strip()]
        for i, sim in zip(todo, cosines(judge, [(sources[i], targets[i]) for i in todo])):
            sims[i] = round(sim, 4)
        if args.lang in calibration.tail_accept_by_lang:
            asked = last_clause_cosines(
                lambda triples: cosines(judge, [(source, clause) for _, source, clause in triples]),
                [("score", i, sources[i], targets[i]) for i in todo],
            )
            for i, sim in zip(todo, asked):
                tails[i] = None if sim is None else round(sim, 4)
    for n, (q, sim, tail) in enumerate(zip(checked, sims, tails), 1):
        # no back-translation here: the cosine's model where the calibration has one, else the form-only model
        embedded = sim is not None and calibration.embedding_only is not None
        score, status, reason = calibration.verdict(q, None, band, sim if embedded else None, tail)
        counts[status] += 1
        print(
            json.dumps(
                {
                    "line": n,
                    **q.to_dict(),
                    **({"embed_sim": sim} if judge else {}),
                    "status": status,
                    "reasons": q.reasons + ([reason] if reason else []),
                    "score": score,
                },
                ensure_ascii=False,
            )
        )
    total = len(sources) or 1
    how = "without back-translation"
    if judge:
        how += (
            f", with the cosines of {judge.model}"
            if calibration.embedding_only
            else f"; the cosines of {judge.model} are printed, not scored: the calibration was not fitted with that model"
        )
    print(
        " ".join(f"{k} {counts[k]} ({counts[k] / total:.1%})" for k in ("accepted", "needs_review", "rejected"))
        + f"; scored by the {calibration.source} calibration {how}",
        file=sys.stderr,
    )
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages
    from pipeline.probe.lines import capping_references, run_probe
    from pipeline.quality.backtranslation import Judge
    from pipeline.quality.calibrate import FLOORS, calibrate
    from pipeline.quality.score import calibration_path, defaults
    from pipeline.quality.shipped import defaults_cosine_floor
    from pipeline.quality.signals import QEConfig
    from pipeline.storage import write_atomic
    from pipeline.translate import registry
    from pipeline.translate.served import served_base
    from pipeline.translate.settings import TranslatorConfig

    langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
    config = QEConfig.load(args.qe_config)
    lines = list(range(args.first, args.first + args.lines))
    model, weights = served_base(args.server, args.model, wait=60)
    judge = Judge(
        args.judge_server or args.server,
        args.judge_model or (served_base(args.judge_server)[0] if args.judge_server else model),
    )
    embed_judge = _embed_judge(args)
    translators = registry.translators(args.workspace, TranslatorConfig(model=model, weights=weights), langs)
    print(
        f"{'lang':<5}{'lines':>6}{'usable':>8}{'floor':>7}{'tau':>7}{'reject <':>10}{'accept ≥':>10}{'refs rej':>9}{'refs rev':>9}"
        f"{'known good':>11}"
    )
    for lang in langs:
        print(
            f"  … {lang}: {len(lines)} lines of {args.refs} through {translators[lang].served_model}, back-translated by "
            f"{judge.model}" + (f", embedded by {embed_judge.model}" if embed_judge else ""),
            file=sys.stderr,
            flush=True,
        )
        probe = run_probe(
            args.workspace,
            args.refs,
            lang,
            lines,
            args.server,
            translators[lang],
            judge,
            args.concurrency,
            config,
            embed_judge=embed_judge,
        )
        floor = config.for_lang(lang).usable_chrf or FLOORS.get(lang, 40.0)
        band = config.bands.get(lang)
        # the capping references follow the translated lines: back-translated (the first --bt-cap-refs) and embedded
        # (--cap-refs, with the judge); the last clause's floor reads the translated lines' references too
        after = lines[-1] + 1
        bt_lines = range(after, after + args.bt_cap_refs)
        capping, tails = [], []
        if args.bt_cap_refs:
            print(
                f"  … {lang}: {args.bt_cap_refs} more reference lines back-translated to cap the thresholds",
                file=sys.stderr,
                flush=True,
            )
            found = capping_references(args.workspace, args.refs, lang, list(bt_lines), embed_judge, judge, config)
            capping = [record for _, record, _ in found]
        if embed_judge:
            more = range(after, after + args.cap_refs)
            embedded = capping_references(
                args.workspace, args.refs, lang, lines + list(more), embed_judge, None, config
            )
            capping += [record for n, record, _ in embedded if n in more and n not in bt_lines]
            tails = [tail for *_, tail in embedded]
        fitted = calibrate(
            lang,
            probe.translator_version,
            [t.record(band) for t in probe.turns],
            floor,
            args.precision,
            embed_model=embed_judge.model if embed_judge else None,
            cap_references=capping,
            reference_tails=tails,
            cosine_floor=defaults_cosine_floor(defaults(lang), embed_judge.model if embed_judge else None, lang),
        )
        fitted.figures.update(
            refs=str(args.refs), lines=[lines[0], lines[-1]], judge=judge.model, requests=probe.requests
        )
        path = write_atomic(calibration_path(args.workspace, lang, probe.translator_version), fitted.to_json())
        f = fitted.figures
        print(
            f"{lang:<5}{f['translations']:>6}{f['usable_share']:>8.0%}{floor:>7.0f}{str(f['kendall_tau_score_chrf']):>7}"
            f"{fitted.reject_below:>10.2f}{fitted.accept_from:>10.2f}{f['references_rejected']:>9.0%}{f['references_to_review']:>9.0%}"
            f"{'yes' if fitted.known_good else 'no':>11}"
        )
        print(f"  {lang}: {path}", file=sys.stderr)
        if "embedding" in fitted.figures:
            print(f"  {lang}: embedding judge {fitted.figures['embedding']}", file=sys.stderr)
        if "last_clause" in fitted.figures:
            print(f"  {lang}: last clause {fitted.figures['last_clause']}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qe", help="quality estimation: score line-aligned files, calibrate the quality score on references"
    )
    qe = p.add_subparsers(dest="action", required=True)
    q = qe.add_parser(
        "score", help="QE of line-aligned source/target files: a JSON line per pair (form checks and score)"
    )
    q.add_argument("--lang", required=True)
    q.add_argument("--source", required=True, type=Path)
    q.add_argument("--target", required=True, type=Path)
    q.add_argument("--qe-config", type=Path, default=None, help="JSON file of QE thresholds")
    q.add_argument("--calibration", type=Path, default=None, help="a calibration file (default: the shipped defaults)")
    embed_options(q)
    q.set_defaults(func=_cmd_score)
    q = qe.add_parser(
        "calibrate",
        help="fit each language's quality score on reference translations (NTREX layout)",
        description="Translates --lines reference lines per language through the real path with the active "
        "translator, back-translates every one, scores them against the references and fits the score and its "
        "thresholds; the references are run through QE as translations too (they must stay accepted).",
    )
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument(
        "--refs",
        required=True,
        type=Path,
        help="folder of line-aligned references (newstest2019-src.eng.txt, …-ref.LANG.txt)",
    )
    q.add_argument("--langs", default="all")
    q.add_argument("--server", default=VLLM_URL)
    q.add_argument(
        "--model", default=os.environ.get("POLYGLOT_MODEL"), help="served base model (default: the server's)"
    )
    q.add_argument(
        "--judge-server", default=os.environ.get("POLYGLOT_JUDGE_URL"), help="back-translates (default: --server)"
    )
    q.add_argument("--judge-model", default=None)
    embed_options(q)
    q.add_argument("--lines", type=positive_int, default=100, help="reference lines per language")
    q.add_argument("--first", type=int, default=0, help="first line (0-based)")
    q.add_argument(
        "--cap-refs",
        type=count,
        default=300,
        help="with --embed-server: this many more reference lines after the translated ones, embedded (not "
        "translated), cap the cosine's thresholds so that references stay accepted and, with the translated ones, set "
        "the floor of the last clause's cosine (0: none)",
    )
    q.add_argument(
        "--bt-cap-refs",
        type=count,
        default=200,
        help="this many more reference lines after the translated ones are back-translated by the judge (one "
        "request each, kept in the memory) and cap the back-translation's thresholds, so that references stay "
        "accepted (0: none; sixty references alone let a fresh calibration reject 2 %% of Hindi's)",
    )
    q.add_argument("--precision", type=share, default=0.9, help="precision the thresholds are chosen for")
    q.add_argument("--concurrency", type=positive_int, default=16)
    q.add_argument(
        "--qe-config", type=Path, default=None, help="JSON file of QE settings (usable_chrf floors per language)"
    )
    q.set_defaults(func=_cmd_calibrate)
