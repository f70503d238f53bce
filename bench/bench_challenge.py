"""What quality estimation catches: a challenge set of injected meaning errors (pipeline/quality/challenge.py) built
from ntrex-dev's references, run through QE as the flow runs it, per language and kind: the share caught (rejected
or sent to review) beside the untouched references' shares.

Without ``--server`` every turn is scored as a turn that is not back-translated (form checks, the number check, the
form-only score): all nine languages in seconds, no model. With ``--server URL`` the judge back-translates every
turn (the translation memory under ``--workspace`` keeps its answers: a rerun sends nothing) and the score reads the
meaning signal, with the workspace's calibration when it has one for ``--translator-version``, else the shipped
defaults.

    .venv/bin/python bench/bench_challenge.py --langs all --lines 100 --first 160
    .venv/bin/python bench/bench_challenge.py --langs es,zh,hi --server http://127.0.0.1:8000 --lines 60 --first 160
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.languages import parse_languages
from pipeline.quality.calibrate import FORM_ACCEPT_NOTE, references_form_accept
from pipeline.quality.challenge import HEADER, challenge_set, report, totals
from pipeline.quality.score import Calibration, defaults
from pipeline.quality.signals import QEConfig, assess, degenerate_reference
from pipeline.references import load_pairs, shared_data
from pipeline.storage import write_atomic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--langs", default="all")
    parser.add_argument("--data", type=Path, default=shared_data() / "ntrex-dev")
    parser.add_argument("--first", type=int, default=160, help="first line (0-based); calibration used 0-59")
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server", default=None, help="a judge's vLLM server: back-translate every turn")
    parser.add_argument("--judge-model", default=None)
    parser.add_argument("--workspace", type=Path, default=Path("bench/out/challenge"))
    parser.add_argument(
        "--write-defaults",
        type=Path,
        default=None,
        help="set the defaults file's per-language form-only thresholds from the references of every line but the "
        "measured ones (pipeline/quality/default_calibration.json), then measure with them",
    )
    args = parser.parse_args()
    langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
    lines = list(range(args.first, args.first + args.lines))
    if args.write_defaults:
        shipped = Calibration.from_dict(json.loads(args.write_defaults.read_text(encoding="utf-8")))
        by_lang = references_form_accept(shipped, args.data, langs, skip=range(lines[0], lines[-1] + 1))
        shipped = replace(
            shipped,
            form_accept_from=min(by_lang.values()),
            form_accept_by_lang=by_lang,
            figures={
                **shipped.figures,
                "form_accept_from": FORM_ACCEPT_NOTE.format(data=args.data.name, first=lines[0], last=lines[-1]),
            },
        )
        write_atomic(args.write_defaults, shipped.to_json())
        print(f"form-only thresholds written to {args.write_defaults}: {json.dumps(by_lang)}")
    config = QEConfig()
    judge_line = "none: form checks, number check and the form-only score"
    backtranslators = {}
    if args.server:
        from pipeline.quality.backtranslation import Judge, make_backtranslator
        from pipeline.translate.memory import TranslationMemory
        from pipeline.translate.served import served_base

        judge = Judge(args.server, args.judge_model or served_base(args.server, wait=60)[0])
        memory = TranslationMemory(args.workspace / "tm")
        backtranslators = {lang: make_backtranslator(judge, memory, lang) for lang in langs}
        judge_line = f"{judge.model} at {args.server}, every turn back-translated"
    print(f"lines {lines[0]}-{lines[-1]} of {args.data}, seed {args.seed}; judge: {judge_line}")
    print(HEADER)
    started = time.perf_counter()
    totals_by_kind: dict[str, Counter] = defaultdict(Counter)
    for lang in langs:
        calibration = defaults(lang)
        band = config.bands.get(lang)
        pairs = load_pairs(args.data, lang)
        kept = [n for n in lines if not degenerate_reference(*pairs[n], lang)]
        items = [("reference", pairs[n][0], pairs[n][1]) for n in kept]
        items += [(c.kind, c.source, c.target) for c in challenge_set(args.data, lang, kept, seed=args.seed)]
        bt, remarked = [None] * len(items), [False] * len(items)
        if lang in backtranslators:
            from pipeline.quality.backtranslation import bt_chrf, bt_key

            english = backtranslators[lang]([(bt_key("challenge", i, t), t) for i, (_, _, t) in enumerate(items)])
            bt = [bt_chrf(back, s) for back, (_, s, _) in zip(english, items)]
            remarked = [bt_chrf_ is None for bt_chrf_ in bt]
        by_kind: dict[str, Counter] = defaultdict(Counter)
        for (kind, source, target), turn_bt, remark in zip(items, bt, remarked):
            q = assess(source, target, lang, th=config.for_lang(lang), bands=config.bands)
            status = calibration.verdict(q, turn_bt, band, None, None, remark)[1]
            by_kind[kind][status] += 1
        lines_out, _ = report(lang, by_kind)
        print("\n".join(lines_out), flush=True)
        for kind, c in by_kind.items():
            totals_by_kind[kind].update(c)
    print("all languages:")
    print("\n".join(totals(totals_by_kind)))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
