"""The ``polyglot`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.validate import DEFAULT_MAX_TURN_CHARS


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest import ingest

    summary = ingest(args.inputs, args.workspace, shard_size=args.shard_size, max_turn_chars=args.max_turn_chars)
    print(summary.render())
    print(f"tables written to {Path(args.workspace) / 'ingest'}")
    for line in summary.files_stopped:
        print(f"error: {line}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polyglot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="read LLaVA files, cut turns into units, write Parquet tables")
    p.add_argument("inputs", nargs="+", type=Path, help="LLaVA JSON/JSONL files, gzip or not")
    p.add_argument("--workspace", required=True, type=Path, help="directory for the tables")
    p.add_argument("--shard-size", type=_positive_int, default=10_000, help="conversations per shard")
    p.add_argument("--max-turn-chars", type=_positive_int, default=DEFAULT_MAX_TURN_CHARS,
                   help="longer turns are quarantined as turn_too_long")
    p.set_defaults(func=_cmd_ingest)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"polyglot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
