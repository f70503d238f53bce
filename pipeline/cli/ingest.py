"""``polyglot ingest``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli.common import positive_int
from pipeline.ingest.validate import DEFAULT_MAX_TURN_CHARS


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest.tables import ingest

    summary = ingest(
        args.inputs,
        args.workspace,
        shard_size=args.shard_size,
        max_turn_chars=args.max_turn_chars,
        english=not args.any_language,
    )
    print(summary.render())
    print(f"tables written to {Path(args.workspace) / 'ingest'}")
    for line in summary.files_stopped:
        print(f"error: {line}", file=sys.stderr)
    return 1 if summary.files_stopped else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="read LLaVA files, cut turns into units, write Parquet tables",
        description="Exit status: 0 every file read to its end; 1 a file stopped early (cut or broken: "
        "the records before the break were kept, the message names the file and byte offset); 2 bad arguments.",
    )
    p.add_argument("inputs", nargs="+", type=Path, help="LLaVA JSON/JSONL files, gzip or not")
    p.add_argument("--workspace", required=True, type=Path, help="directory for the tables")
    p.add_argument("--shard-size", type=positive_int, default=10_000, help="conversations per shard")
    p.add_argument(
        "--max-turn-chars",
        type=positive_int,
        default=DEFAULT_MAX_TURN_CHARS,
        help="longer turns are quarantined as turn_too_long",
    )
    p.add_argument(
        "--any-language",
        action="store_true",
        help="do not require English turns (check a translated file, e.g. a release's LLaVA export)",
    )
    p.set_defaults(func=_cmd_ingest)
