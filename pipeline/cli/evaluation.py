"""``polyglot benchmark``: evaluation sets in the LLaVA-Bench layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.translate import run_translate, translate_options


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from pipeline.release import evaluation_sets as benchmark

    if args.action == "translate":
        from pipeline.languages import parse_languages

        parse_languages(args.langs)
        data = benchmark.read_set(args.questions, args.answers, args.context)
        args.inputs = [benchmark.save(args.workspace, data)]
        print(
            f"evaluation set: {len(data.questions)} questions, {len(data.answers)} reference answers, {len(data.context)} captions"
        )
        return run_translate(args)
    from pipeline.languages import parse_languages

    result = benchmark.publish(args.workspace, args.version, parse_languages(args.langs) if args.langs else None)
    print(f"{'lang':<5}{'questions':>10}{'answers':>9}{'captions':>9}{'reviewed':>10}{'untranslated':>14}")
    for lang, c in result.counts.items():
        reviewed = "source" if c["reviewed_items"] is None else f"{c['reviewed_items']}/{c['items']}"
        print(
            f"{lang:<5}{c['questions']:>10}{c['answers']:>9}{c['context']:>9}{reviewed:>10}{c.get('untranslated_items') or 0:>14}"
        )
    print(
        f"evaluation set {result.version} written to {result.path} (LLaVA-Bench layout per language; verify with: "
        f"polyglot release verify {result.version} --workspace {args.workspace})"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark", help="evaluation sets (LLaVA-Bench layout): translate every item, review every item, release"
    )
    bench = p.add_subparsers(dest="action", required=True)
    q = bench.add_parser(
        "translate", help="translate an evaluation set; every translated item goes to the review queue"
    )
    q.add_argument("questions", type=Path, help="questions.jsonl (question_id, image, text, category)")
    q.add_argument(
        "--answers", type=Path, default=None, help="answers_gpt4.jsonl (question_id, text): the reference answers"
    )
    q.add_argument("--context", type=Path, default=None, help="context.jsonl (id, image, caption)")
    translate_options(q, review_budget=None)
    q.set_defaults(func=_cmd_benchmark)
    q = bench.add_parser(
        "publish", help="release the set per language in the LLaVA-Bench layout, with checksums and a card"
    )
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--version", default=None, help="vN (default: the next number); an existing version is refused")
    q.add_argument("--langs", default=None, help="default: every translated language")
    q.set_defaults(func=_cmd_benchmark)
