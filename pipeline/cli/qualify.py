"""``polyglot qualify``: measure the translators of a translators file on reference lines, and choose per language."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli.common import positive_int


def _cmd_qualify(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages
    from pipeline.probe.qualify import choose, qualify
    from pipeline.quality.signals import QEConfig
    from pipeline.translate import registry
    from pipeline.translate.translators import load, write_choice

    file = load(args.translators)
    langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
    candidates = (
        [c.strip() for c in args.candidates.split(",") if c.strip()] if args.candidates else list(file.translators)
    )
    unknown = [c for c in candidates if c not in file.translators]
    if unknown or not candidates:
        raise ValueError(
            f"{file.path}: no translator named {', '.join(unknown) or '(none)'} (named: {', '.join(file.translators)})"
        )
    lines = list(range(args.first, args.first + args.lines))
    rows = qualify(
        args.workspace,
        file,
        candidates,
        args.refs,
        langs,
        lines,
        args.concurrency,
        QEConfig.load(args.qe_config),
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    by = {(r["translator"], r["lang"]): r for r in rows}
    width = max(12, *(len(c) + 2 for c in candidates))
    print(f"chrF on {len(lines)} lines of {args.refs} (answers passing the checks; output tokens/s)")
    print(f"{'lang':<6}" + "".join(f"{c:>{width}}" for c in candidates) + f"{'floor':>8}  best")
    best = choose(rows)
    for lang in langs:
        cells = []
        for c in candidates:
            r = by[(c, lang)]
            cells.append(f"{r['chrf']:.1f} ({r['answers_passing']:.0%})".rjust(width))
        winner = best[lang]
        verdict = (
            winner["translator"]
            if winner["chrf"] >= file.floor_for(lang)
            else f"{winner['translator']} (below the floor)"
        )
        print(f"{lang:<6}" + "".join(cells) + f"{file.floor_for(lang):>8g}  {verdict}")
    speeds = {
        c: [by[(c, lang)]["output_tokens_per_s"] for lang in langs if by[(c, lang)]["output_tokens_per_s"]]
        for c in candidates
    }
    print("output tokens/s: " + ", ".join(f"{c} {sum(v) / len(v):.1f}" if v else f"{c} -" for c, v in speeds.items()))
    print(f"recorded in {args.workspace / 'translator' / 'qualification.jsonl'}")
    if args.choose:
        choice = {lang: row["translator"] for lang, row in best.items()}
        backup = write_choice(file, choice)
        for lang, row in best.items():
            registry.record(
                args.workspace,
                lang,
                {
                    "decision": "translator chosen",
                    "translator": row["translator"],
                    "translator_version": row["translator_version"],
                    "figures": {
                        r["translator"]: {k: r[k] for k in ("chrf", "bleu", "answers_passing")}
                        for r in rows
                        if r["lang"] == lang
                    },
                },
                None,
            )
        print(
            f"{file.path}: [languages] now {', '.join(f'{k} = {v}' for k, v in choice.items())} (the old file is {backup})"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qualify",
        help="measure translators on reference lines (chrF, answers passing…) and choose one per language",
        description="Every translator of the file (or --candidates) translates the probe lines of each language "
        "through the real path; the figures go to WORKSPACE/translator/qualification.jsonl and a table. --choose "
        "writes the best per language into the file's [languages] table (a copy of the old file is kept).",
    )
    p.add_argument("--translators", required=True, type=Path, help="the translators file (TOML)")
    p.add_argument("--refs", required=True, type=Path, help="folder of line-aligned references (NTREX layout)")
    p.add_argument("--langs", default="all")
    p.add_argument(
        "--workspace", required=True, type=Path, help="keeps the probes, their translations and the qualifications"
    )
    p.add_argument("--lines", type=positive_int, default=50, help="reference lines per language")
    p.add_argument("--first", type=int, default=0, help="first line (0-based)")
    p.add_argument(
        "--candidates", default=None, help="comma list of translators to measure (default: every one in the file)"
    )
    p.add_argument("--choose", action="store_true", help="write the best translator per language into the file")
    p.add_argument("--concurrency", type=positive_int, default=16)
    p.add_argument("--qe-config", type=Path, default=None)
    p.set_defaults(func=_cmd_qualify)
