"""``polyglot publish``, ``polyglot release verify|diff`` and ``polyglot export-llava``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.cli.common import count, positive_int, prefect_defaults, share


def _release_path(workspace: Path | None, ref: str) -> str:
    """``vN`` inside WORKSPACE/releases, or a release directory / fsspec URL as given."""
    from pipeline.release.releases import VERSION_RE, releases_dir

    if VERSION_RE.fullmatch(ref):
        if workspace is None:
            raise ValueError(f"{ref} is a version: give --workspace (or the release's path or URL)")
        return str(releases_dir(workspace) / ref)
    return ref


def _cmd_publish(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages

    langs = parse_languages(args.langs) if args.langs else None
    prefect_defaults()
    from flows.release import publish_flow

    result = publish_flow(str(args.workspace), args.version, args.shard_rows, langs, args.note)
    print(f"{'lang':<5}{'rows':>8}{'ok':>8}{'accepted':>10}{'reviewed':>10}{'corrected':>11}")
    for lang, c in result["counts"].items():
        print(
            f"{lang:<5}{c['rows']:>8}{c['status_ok']:>8}{c['qe'].get('accepted', 0):>10}{c['reviewed']:>10}{c['human_corrected']:>11}"
        )
    print(result["notes"])
    print(f"release {result['version']} written to {result['path']} (parent {result['parent'] or 'none'}); verified")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from pipeline.release import releases as release

    if args.action == "verify":
        path = _release_path(args.workspace, args.release)
        problems = release.verify(path)
        for problem in problems:
            print(f"BAD {problem}", file=sys.stderr)
        if problems:
            print(
                f"release {path} failed verification: {len(problems)} problem(s); do not use it (republish or restore the files)",
                file=sys.stderr,
            )
            return 1
        manifest = release.read_manifest(path)
        print(
            f"release {manifest['version']} at {path}: {len(manifest['files'])} files, every sha256 matches the manifest"
        )
        return 0
    a, b = _release_path(args.workspace, args.a), _release_path(args.workspace, args.b)
    changes = release.diff(a, b, examples=args.examples)
    print(f"{'lang':<5}{'added':>8}{'removed':>9}{'changed':>9}")
    for lang, c in changes.items():
        print(f"{lang:<5}{len(c['added']):>8}{len(c['removed']):>9}{len(c['changed']):>9}")
    for lang, c in changes.items():
        for ex in c["examples"]:
            print(f"  {lang} {ex['id']} turn {ex['turn']}: {ex['before']!r} → {ex['after']!r}")
    if args.json:
        from pipeline.storage import write_atomic

        write_atomic(args.json, json.dumps(changes, indent=2, ensure_ascii=False) + "\n")
    return 0


def _cmd_export_llava(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages
    from pipeline.release.releases import export_llava

    langs = parse_languages(args.langs) if args.langs else None
    counts = export_llava(
        _release_path(args.workspace, args.release),
        args.out,
        langs,
        args.mix,
        not args.all_rows,
        args.seed,
        args.min_qe_score,
    )
    for name, n in counts.items():
        print(f"{args.out / f'llava_{name}.json'}: {n} conversations")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("publish", help="write an immutable, checksummed release vN of the translations (Prefect flow)")
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--version", default=None, help="vN (default: the next number); an existing version is refused")
    p.add_argument("--shard-rows", type=positive_int, default=10_000, help="conversations per Parquet file")
    p.add_argument("--langs", default=None, help="default: every translated language")
    p.add_argument(
        "--note", default=None, help="a note for the top of the dataset card (how the release was made, what it is for)"
    )
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("release", help="check or compare releases")
    rel = p.add_subparsers(dest="action", required=True)
    q = rel.add_parser("verify", help="check every file against the manifest's sha256")
    q.add_argument("release", help="vN (with --workspace), a release directory or an fsspec URL")
    q.add_argument("--workspace", type=Path, default=None)
    q.set_defaults(func=_cmd_release)
    q = rel.add_parser("diff", help="conversations added, removed and changed per language from A to B")
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("--workspace", type=Path, default=None)
    q.add_argument("--examples", type=count, default=3, help="changed conversations to show per language")
    q.add_argument("--json", type=Path, default=None, help="also write the whole diff here")
    q.set_defaults(func=_cmd_release)

    p = sub.add_parser("export-llava", help="LLaVA training JSON per language (and mixed) from a release")
    p.add_argument("release", help="vN (with --workspace), a release directory or an fsspec URL")
    p.add_argument("--workspace", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True, help="directory for llava_{lang}.json")
    p.add_argument("--langs", default=None, help="default: every language of the release")
    p.add_argument(
        "--mix", action="store_true", help="also llava_mix.json: every language, shuffled, ids suffixed -LANG"
    )
    p.add_argument("--all-rows", action="store_true", help="also rows with untranslated turns or QE-rejected ones")
    p.add_argument(
        "--min-qe-score",
        type=share,
        default=None,
        help="only conversations whose worst turn's quality score is at least this (e.g. 0.8)",
    )
    p.add_argument("--seed", type=int, default=0, help="shuffle seed of the mixed file")
    p.set_defaults(func=_cmd_export_llava)
