"""The ``polyglot`` command line. Each command group lives in its own module, with its options beside its code;
this module only assembles the parser and dispatches."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import evaluation, ingest, qualify, quality, release, review, services, tools, train, translate

GROUPS = (ingest, translate, qualify, evaluation, train, release, quality, tools, services, review)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polyglot", description=__doc__.split(".")[0] + ".")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `polyglot qe … | head` ends quietly
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"polyglot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
