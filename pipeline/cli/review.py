"""``polyglot review push|pull|invite``: native-speaker review in Label Studio."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.cli.common import prefect_defaults, share


def _cmd_review(args: argparse.Namespace) -> int:
    from annotation.client import ReviewServerUnavailable, connect, invite_url

    if args.action == "invite":
        print(invite_url(*connect()))
        return 0
    from pipeline.languages import parse_languages

    if args.langs:
        parse_languages(args.langs)
    prefect_defaults()
    try:
        connect()  # a clear message, before any flow starts, when the server is down or refuses the key
        if args.action == "push":
            from flows.review import review_push_flow

            result = review_push_flow(
                str(args.workspace), args.langs, args.project_prefix, args.overlap, args.image_root
            )
            print(f"{'lang':<5}{'convs':>7}{'tasks':>7}{'new':>7}{'already':>9}{'scratch':>9}  project")
            for lang, c in result.items():
                print(
                    f"{lang:<5}{c['conversations']:>7}{c['tasks']:>7}{c['created']:>7}{c['already_there']:>9}"
                    f"{c['scratch']:>9}  {c['project_id']}"
                )
        else:
            from flows.review import review_pull_flow

            result = review_pull_flow(str(args.workspace), args.langs)
            print(f"{'lang':<5}{'new':>6}{'edits':>7}{'corrected':>11}{'skipped':>9}{'applied':>9}")
            for lang, c in result["languages"].items():
                print(
                    f"{lang:<5}{c['new_versions']:>6}{c['edits']:>7}{c['corrected']:>11}{c['skipped']:>9}{c['turns_applied']:>9}"
                )
            print(f"corrections: {result['corrections_file'] or 'nothing new'}")
            for row in result["agreement"]:
                print(
                    f"agreement {row['lang']}: {row['tasks_with_overlap']} tasks with two reviewers, chrF {row['mean_chrf']}, "
                    f"same categories {row['category_exact_share']:.0%}, rating gap {row['mean_rating_gap']}"
                )
    except ReviewServerUnavailable as exc:
        print(f"polyglot review {args.action}: stopped: {exc}", file=sys.stderr)
        return 3
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="native-speaker review in Label Studio: push the queue, pull corrections")
    review = p.add_subparsers(dest="action", required=True)
    q = review.add_parser("push", help="send the routing queue as tasks (idempotent)")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--langs", default="all", help="'all' or a comma list")
    q.add_argument("--overlap", type=share, default=0.1, help="share of tasks that get a second reviewer (0 to 1)")
    q.add_argument("--project-prefix", default="llava-polyglot", help="project titles: PREFIX · Language (code)")
    q.add_argument(
        "--image-root",
        default=os.environ.get("POLYGLOT_IMAGE_ROOT"),
        help="the conversations' images: a URL prefix (https://…/train2017/) or a local folder Label Studio serves",
    )
    q.set_defaults(func=_cmd_review)
    q = review.add_parser("pull", help="fetch new and edited annotations into the corrections table")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--langs", default=None, help="default: every language pushed from this workspace")
    q.set_defaults(func=_cmd_review)
    q = review.add_parser("invite", help="print the sign-up link for new reviewers")
    q.set_defaults(func=_cmd_review)
