"""Line tools: ``polyglot fix`` (language rules), ``langid``; and ``polyglot tm compact``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli.common import positive_int


def _cmd_fix(args: argparse.Namespace) -> int:
    import json

    import language_rules

    language_rules.apply("", args.lang)  # an unknown language fails here, before reading
    for n, line in enumerate(sys.stdin, 1):
        body = line[:-1] if line.endswith("\n") else line
        result = language_rules.apply(body, args.lang, args.role)
        sys.stdout.write(result.text + ("\n" if line.endswith("\n") else ""))
        if args.explain:
            for change in result.changes:
                print(json.dumps({"line": n, **change.to_dict()}, ensure_ascii=False), file=sys.stderr)
            for flag in result.flags:
                print(json.dumps({"line": n, "flag": flag}, ensure_ascii=False), file=sys.stderr)
    sys.stdout.flush()
    return 0


def _cmd_langid(args: argparse.Namespace) -> int:
    from pipeline.quality.signals import identify

    for line in sys.stdin:
        text = line.rstrip("\n")
        print(identify(text)[0] if text.strip() else "")
    return 0


def _cmd_tm(args: argparse.Namespace) -> int:
    from pipeline.translate.memory import TranslationMemory

    root = Path(args.workspace) / "tm"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: no translation memory in this workspace")
    memory = TranslationMemory(root)
    done = 0
    for lang, version in memory.keys():
        before = len(memory.files(lang, version))
        report = memory.compact(lang, version, min_files=args.min_files)
        if report["entries"] is not None:
            done += 1
            print(
                f"{lang:<7}{version:<22}{before:>7} files → {report['files_after']:>3}   {report['entries']} entries merged"
            )
    print(f"compacted {done} of {len(memory.keys())} (language, version) sets in {root}")
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from pipeline.review.report import overview

    ws = Path(args.workspace)
    if not (ws / "translations").is_dir():
        raise FileNotFoundError(f"{ws} holds no translations: run 'polyglot translate … --workspace {ws}' first")
    lines = overview(ws)
    releases = sorted((ws / "releases").glob("v[0-9]*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1)
    if releases:
        latest = releases[-1].resolve()
        lines += [
            "",
            f"release: {latest} (checksums: polyglot release verify {latest.name} --workspace {ws})",
            f'  load it: datasets.load_dataset("{latest}", "es", split="train")  or  '
            f'pipeline.release.load("{latest}", "es")  (polars)',
        ]
    server = args.server or "http://127.0.0.1:8000"
    lines += [
        "",
        "next:",
        f"  review the queue in Label Studio:  bash scripts/demo.sh --review   (or polyglot services up labelstudio; "
        f"polyglot review push --workspace {ws})",
        f"  calibrate the score on references: polyglot qe calibrate --workspace {ws} --refs ../shared/data/ntrex-dev "
        f"--langs es,zh,hi --server {server}",
        f"  translate your own file:           polyglot translate FILE.json --workspace WS --langs all --server {server}",
    ]
    print("\n".join(lines))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary", help="what a workspace holds on one screen: decisions per language, examples, the review queue"
    )
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--server", default=None, help="the server to name in the next commands")
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("tm", help="the translation memory: compact its part files")
    tm_sub = p.add_subparsers(dest="action", required=True)
    q = tm_sub.add_parser("compact", help="merge the part files of every (language, version) into sorted segments")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--min-files", type=positive_int, default=1, help="leave sets with fewer part files as they are")
    q.set_defaults(func=_cmd_tm)

    p = sub.add_parser("fix", help="apply a language's rules to lines on stdin, fixed lines on stdout")
    p.add_argument("--lang", required=True, help="language code, e.g. hi")
    p.add_argument("--role", default="gpt", choices=["gpt", "human"], help="speaker: persona rules apply to gpt")
    p.add_argument("--explain", action="store_true", help="write each change and flag as a JSON line on stderr")
    p.set_defaults(func=_cmd_fix)

    p = sub.add_parser("langid", help="language of each line on stdin (fastText lid.176)")
    p.set_defaults(func=_cmd_langid)
