"""``polyglot finetune`` and ``polyglot cycle``: the correction loop."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.cli.common import VLLM_URL, bt_rate, count, positive_int, prefect_defaults, share


def _cmd_finetune(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages

    parse_languages(args.langs)
    settings = _finetune_settings(args)
    prefect_defaults()
    from flows.finetune import finetune_flow
    from pipeline.translate.backends import BackendUnavailable

    try:
        result = finetune_flow(str(args.workspace), args.server, args.langs, args.model, args.base_model, **settings)
    except BackendUnavailable as exc:
        print(f"polyglot finetune: stopped: {exc}", file=sys.stderr)
        return 3
    ex, meta = result["examples"], result["adapter"]
    skipped = ", ".join(f"{n} {reason}" for reason, n in ex["skipped"].items()) or "none"
    print(
        f"supervised set: {ex['turns']} corrected turns → {ex['train']} training units, {ex['held_out']} held-out units "
        f"({ex['held_out_dropped']} held-out units also in training left out); turns left out: {skipped}"
    )
    t = meta["training"]
    print(
        f"adapter {meta['version']} ({meta['served_name']}): {t['steps']} steps, loss {t['initial_loss']} → {t['final_loss']}, "
        f"greedy-exact on training units {t['greedy_exact']:.0%}, {t['train_seconds']} s on {t['device']}; hot-loaded"
    )
    print(
        f"{'split':<9}{'lang':<5}{'n':>4}  {'chrF current → few-shot → adapter':<40}{'BLEU current → adapter':<26}{'exact':>7}"
        f"  answers passing the checks"
    )
    share = lambda sc: f"{sc['delivered']:.0%}" if sc.get("delivered") is not None else "-"  # noqa: E731
    for split_name in ("held_out", "train"):
        for lang, by in result["scores"].get(split_name, {}).items():
            cur, few, ada = by.get("current", {}), by.get("few-shot", {}), by.get("adapter", {})
            chrf = f"{cur.get('chrf')} → {few.get('chrf', '-')} → {ada.get('chrf')}"
            bleu = f"{cur.get('bleu')} → {ada.get('bleu')}"
            print(
                f"{split_name:<9}{lang:<5}{ada.get('n', 0):>4}  {chrf:<40}{bleu:<26}{ada.get('exact') or 0:>7.0%}"
                f"  {share(cur)} → {share(few)} → {share(ada)}"
            )
    _print_decisions(result["decisions"])
    print(f"report: {result['report']}")
    return 0


def _print_decisions(decisions: list[dict]) -> None:
    for d in decisions:
        kept = (
            "NEEDS A BETTER TRANSLATOR, kept the current one"
            if d.get("needs_translator")
            else "kept the current translator"
        )
        print(f"{d['lang']}: {'ACTIVE ' + d['activated'] if d['activated'] else kept} — {d['reason']}")


def _finetune_settings(args: argparse.Namespace) -> dict:
    from pipeline.train.finetune import FinetuneSettings

    settings = dict(
        rank=args.rank,
        alpha=args.alpha,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        seed=args.seed,
        held_out=args.held_out,
        few_shot=args.few_shot,
        activate=args.activate,
        min_gain=args.min_gain,
        candidates=tuple(c.strip() for c in args.candidates.split(",") if c.strip()),
        min_pass_share=args.min_pass_share,
        batch_size=args.batch_size,
        modules=args.modules,
        layers=args.layers,
        train_eval=args.train_eval,
        held_out_ids=str(args.held_out_ids.resolve()) if args.held_out_ids else None,
    )
    FinetuneSettings(**settings)  # every bad value named before anything starts
    return settings


def _cmd_cycle(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages
    from pipeline.quality.signals import QEConfig

    parse_languages(args.langs)
    QEConfig.load(args.qe_config)
    settings = _finetune_settings(args)
    prefect_defaults()
    from annotation.client import ReviewServerUnavailable
    from flows.cycle import STEPS, cycle_flow
    from pipeline.translate.backends import BackendUnavailable
    from pipeline.translate.translators import Unqualified

    translate = dict(
        progress=False,
        bt_rate=args.bt_rate,
        review_budget=args.review_budget,
        scratch_share=args.scratch_share,
        seed=args.seed,
        qe_config=str(args.qe_config) if args.qe_config else None,
        translators=str(args.translators) if args.translators else None,
        allow_unqualified=args.allow_unqualified,
    )
    try:
        out = cycle_flow(
            [str(p) for p in args.inputs],
            str(args.workspace),
            args.server,
            args.langs,
            args.min_corrections,
            args.project_prefix,
            args.overlap,
            translate,
            {**settings, "base_model": args.base_model},
        )
    except (BackendUnavailable, ReviewServerUnavailable) as exc:
        print(f"polyglot cycle: stopped: {exc}; rerun to go on from the step that stopped", file=sys.stderr)
        return 3
    except Unqualified as exc:
        for line in exc.lines:
            print(f"polyglot cycle: refused: {line}", file=sys.stderr)
        return 2
    for step in STEPS:
        mark = (
            "ran"
            if step in out["ran"]
            else "done before"
            if step in out["skipped"]
            else "waiting"
            if out["waiting"] and step == "pull"
            else "-"
        )
        print(f"round {out['round']} {step:<12}{mark}")
    if out["waiting"]:
        print(f"waiting: {out['waiting']}")
    if "finetune" in out["results"]:
        _print_decisions(out["results"]["finetune"]["decisions"])
    print(
        f"round {out['round']} complete"
        if out["complete"]
        else f"round {out['round']} not complete: run the same command again to go on"
    )
    return 0


def finetune_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base-model", default=None, help="weights to train on (default: what the server loaded)")
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=5e-3)
    p.add_argument(
        "--max-steps", type=int, default=600, help="at most this many steps (stops once corrections are reproduced)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split, training and samples")
    p.add_argument("--held-out", type=float, default=0.2, help="share of corrected conversations kept for evaluation")
    p.add_argument(
        "--held-out-ids",
        type=Path,
        default=None,
        help="a file of conversation ids (one a line) to keep for evaluation instead of a seeded share",
    )
    p.add_argument(
        "--few-shot", type=int, default=4, help="corrections in the prompt of the few-shot candidate (0: skip it)"
    )
    p.add_argument(
        "--candidates", default="adapter,few-shot", help="which may become active: adapter, few-shot or both"
    )
    p.add_argument(
        "--min-pass-share",
        type=share,
        default=0.8,
        help="no candidate whose held-out answers pass the answer checks less often than this becomes active",
    )
    p.add_argument(
        "--activate",
        default="better",
        choices=["better", "always", "never"],
        help="better: only if held-out chrF improves",
    )
    p.add_argument("--min-gain", type=float, default=0.0, help="chrF points a candidate must add to become active")
    p.add_argument("--batch-size", type=int, default=8, help="training examples per step")
    p.add_argument(
        "--modules", default="all", choices=["all", "attention"], help="LoRA on every projection, or attention only"
    )
    p.add_argument("--layers", type=int, default=0, help="LoRA on the top N layers only (0: all); cheaper on a CPU")
    p.add_argument(
        "--train-eval",
        type=int,
        default=64,
        help="training units per language translated again for the training figures (seeded sample; 0: none)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="train a LoRA adapter on reviewers' corrections, evaluate it, activate it if better"
    )
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--langs", default="all", help="'all' or a comma list")
    p.add_argument("--server", default=VLLM_URL, help="vLLM server URL (--enable-lora)")
    p.add_argument(
        "--model", default=os.environ.get("POLYGLOT_MODEL"), help="served base model name (default: the server's)"
    )
    finetune_options(p)
    p.set_defaults(func=_cmd_finetune)

    p = sub.add_parser(
        "cycle", help="translate → push → pull → finetune → re-translate; a rerun goes on where it stopped"
    )
    p.add_argument("inputs", nargs="*", type=Path, help="LLaVA files; none: what the workspace ingested before")
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--langs", default="all", help="'all' or a comma list")
    p.add_argument("--server", default=VLLM_URL, help="vLLM server URL (--enable-lora)")
    p.add_argument(
        "--min-corrections", type=positive_int, default=1, help="corrections since the last fine-tune needed to go on"
    )
    p.add_argument(
        "--project-prefix", default="llava-polyglot", help="Label Studio project titles: PREFIX · Language (code)"
    )
    p.add_argument("--overlap", type=share, default=0.1, help="share of tasks that get a second reviewer")
    p.add_argument("--review-budget", type=count, default=1000, help="sampled conversations per language for review")
    p.add_argument(
        "--scratch-share",
        type=share,
        default=0.2,
        help="share of the review budget for rejected conversations, translated from scratch by people (0: none)",
    )
    p.add_argument(
        "--bt-rate",
        type=bt_rate,
        default=None,
        metavar="auto|SHARE",
        help="turns sent back to English for the quality score (auto: every turn unless the translator is known good)",
    )
    p.add_argument("--qe-config", type=Path, default=None, help="JSON file of QE thresholds")
    p.add_argument(
        "--translators",
        type=Path,
        default=os.environ.get("POLYGLOT_TRANSLATORS"),
        help="a translators file: the translator of each language (see polyglot translate)",
    )
    p.add_argument(
        "--allow-unqualified", action="store_true", help="translate with an unqualified translator all the same"
    )
    finetune_options(p)
    p.set_defaults(func=_cmd_cycle)
