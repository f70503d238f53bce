"""What quality estimation catches: a challenge set of injected meaning errors (pipeline/quality/challenge.py) built
from ntrex-dev's references, run through QE as the flow runs it, per language and kind: the share caught (rejected
or sent to review) beside the untouched references' shares (as a translate run outputs them: the language rules'
human pass).

Without a judge every turn is scored as a turn that is not back-translated (form checks, the number check, the
form-only score): all nine languages in seconds, no model. ``--server URL`` adds the judge: it back-translates
every turn that passes the form checks and the score reads the back-translation. ``--embed-server URL`` adds the
embedding judge: every such turn's cosine with its source and its last clause's, read by the defaults' embedding
models. One table is printed for each way of scoring the judges given allow (the form path always; the
back-translation alone, the cosine alone, both), all with the shipped defaults. The translation memory under
``--workspace`` keeps every answer, keyed as bench/bench_embedding.py keys them: pointed at its workspace a run
reuses what it has back-translated and embedded, and a rerun sends nothing.

    .venv/bin/python bench/bench_challenge.py --langs all --lines 100 --first 160
    .venv/bin/python bench/bench_challenge.py --langs es,zh,hi --lines 40 --first 160 --workspace bench/out/embedding \
        --server http://127.0.0.1:8302 --embed-server http://127.0.0.1:8301
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

import language_rules
from pipeline.languages import parse_languages
from pipeline.quality.backtranslation import bt_chrf, bt_key
from pipeline.quality.calibrate import FORM_ACCEPT_NOTE
from pipeline.quality.challenge import HEADER, challenge_set, report, totals
from pipeline.quality.embedding import last_clause_cosines
from pipeline.quality.score import Calibration, defaults
from pipeline.quality.shipped import references_form_accept
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
    parser.add_argument("--embed-server", default=None, help="an embedding judge's server: every turn's cosine")
    parser.add_argument("--embed-model", default=None)
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
    memory = judge_line = None
    backtranslators, embedders = {}, {}
    if args.server or args.embed_server:
        from pipeline.translate.memory import TranslationMemory
        from pipeline.translate.served import served_base

        memory = TranslationMemory(args.workspace / "tm")
    if args.server:
        from pipeline.quality.backtranslation import Judge, make_backtranslator

        judge = Judge(args.server, args.judge_model or served_base(args.server, wait=60)[0])
        backtranslators = {lang: make_backtranslator(judge, memory, lang) for lang in langs}
        judge_line = f"{judge.model} at {args.server} back-translates"
    if args.embed_server:
        from pipeline.quality.embedding import EmbedJudge, make_embedder

        embed_judge = EmbedJudge(args.embed_server, args.embed_model or served_base(args.embed_server, wait=60)[0])
        embedders = {lang: make_embedder(embed_judge, memory, lang) for lang in langs}
        judge_line = ", ".join(filter(None, [judge_line, f"{embed_judge.model} at {args.embed_server} embeds"]))
    ways = ["form"]
    ways += ["back-translation"] if args.server else []
    ways += ["cosine"] if args.embed_server else []
    ways += ["back-translation + cosine"] if args.server and args.embed_server else []
    print(
        f"lines {lines[0]}-{lines[-1]} of {args.data}, seed {args.seed}; the shipped defaults; judges: "
        f"{judge_line or 'none'}"
    )
    started = time.perf_counter()
    counted = {way: defaultdict(lambda: defaultdict(Counter)) for way in ways}  # way → lang → kind → statuses
    for lang in langs:
        turns = challenge_turns(args.data, lang, lines, args.seed)
        checked = [
            assess(source, target, lang, th=config.for_lang(lang), bands=config.bands) for *_, source, target in turns
        ]
        todo = [i for i, q in enumerate(checked) if q.status != "rejected" and turns[i][4].strip()]
        backs, bts, sims, tails = {}, {}, {}, {}
        if lang in backtranslators:
            english = backtranslators[lang](
                [(bt_key(turns[i][1], turns[i][2], turns[i][4]), turns[i][4]) for i in todo]
            )
            backs = dict(zip(todo, english))
            bts = {i: bt_chrf(backs[i], turns[i][3]) for i in todo}
        if lang in embedders:
            embed = embedders[lang]
            sims = dict(zip(todo, embed([(bt_key(t[1], t[2], t[4]), t[3], t[4]) for t in (turns[i] for i in todo)])))
            tails = dict(zip(todo, last_clause_cosines(embed, [turns[i][1:] for i in todo])))
        calibration, band = defaults(lang), config.bands.get(lang)
        without = calibration.for_embedder(None)
        for i, (kind, *_) in enumerate(turns):
            remarked = backs.get(i) is not None and bts.get(i) is None
            verdicts = {
                "form": without.verdict(checked[i], None, band),
                "back-translation": without.verdict(checked[i], bts.get(i), band, None, None, remarked),
                "cosine": calibration.verdict(checked[i], None, band, sims.get(i), tails.get(i)),
                "back-translation + cosine": calibration.verdict(
                    checked[i], bts.get(i), band, sims.get(i), tails.get(i), remarked
                ),
            }
            for way in ways:
                counted[way][lang][kind][verdicts[way][1]] += 1
        print(
            f"{lang}: {len(turns)} turns, {len(todo)} past the form checks, {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    for way in ways:
        print(f"\n{way}:")
        print(HEADER)
        totals_by_kind: dict[str, Counter] = defaultdict(Counter)
        for lang, by_kind in counted[way].items():
            print("\n".join(report(lang, by_kind)[0]))
            for kind, c in by_kind.items():
                totals_by_kind[kind].update(c)
        print("all languages:")
        print("\n".join(totals(totals_by_kind)))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


def challenge_turns(data: Path, lang: str, lines: list[int], seed: int) -> list[tuple[str, str, int, str, str]]:
    """(kind, memory tag, index, English source, text) of the references on ``lines`` (kind "reference", as a translate
    run outputs them: the language rules' human pass; indexed by line) and of their challenge set (indexed by its
    place in the set): bench/bench_embedding.py's keys."""
    pairs = load_pairs(data, lang)
    kept = [n for n in lines if not degenerate_reference(*pairs[n], lang)]
    turns = [
        ("reference", "reference", n, pairs[n][0], language_rules.apply(pairs[n][1], lang, "human").text) for n in kept
    ]
    return turns + [
        (c.kind, f"challenge:{seed}", i, c.source, c.target)
        for i, c in enumerate(challenge_set(data, lang, kept, seed=seed))
    ]


if __name__ == "__main__":
    sys.exit(main())
