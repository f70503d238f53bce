"""Does choosing the translator per language pay? Qualify every translator of a translators file on reference lines
A, choose per language, then measure every translator on lines B (never used for the choice) and compare the choice
with each single translator there.

Per language it prints chrF on lines A and on lines B of each translator, the choice made on A, and on B the corpus
chrF of the choice against the better single translator (the one with the higher mean chrF over the languages on
A, i.e. what a team would have picked without a choice per language). Everything goes through ``pipeline.probe``
(the real path: answer checks, language rules, QE) and is recorded in the workspace's
``translator/qualification.jsonl``; the translation memory makes a rerun send only what is missing. The
translators file is copied into the workspace before ``--choose`` rewrites it.

    bash bench/real_model.sh 1.5b && bash bench/real_model.sh 0.5b
    .venv/bin/polyglot services up vllm --translators docs/translators.example.toml
    .venv/bin/python bench/bench_choice.py --translators docs/translators.example.toml --langs es,zh,hi,ar --lines 30
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.languages import parse_languages
from pipeline.probe.qualify import choose, qualify
from pipeline.quality.signals import QEConfig
from pipeline.references import shared_data
from pipeline.translate.translators import load, write_choice


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--translators", required=True, type=Path)
    parser.add_argument("--langs", default="es,zh,hi,ar")
    parser.add_argument(
        "--lines", type=int, default=30, help="lines A (choice) and as many lines B after them (measure)"
    )
    parser.add_argument(
        "--first",
        type=int,
        default=60,
        help="first line of A (default 60: bench_quality's held-out lines, so a workspace shared with it "
        "(--workspace bench/out/quality) reuses the translations it made)",
    )
    parser.add_argument("--data", type=Path, default=shared_data() / "ntrex-dev")
    parser.add_argument("--workspace", type=Path, default=ROOT / "bench" / "out" / "choice")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
    args.workspace.mkdir(parents=True, exist_ok=True)
    copy = args.workspace / "translators.toml"
    shutil.copyfile(args.translators, copy)
    file = load(copy)
    names = list(file.translators)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    lines_a = list(range(args.first, args.first + args.lines))
    lines_b = list(range(args.first + args.lines, args.first + 2 * args.lines))
    qe = QEConfig()
    on_a = qualify(args.workspace, file, names, args.data, langs, lines_a, args.concurrency, qe, say=say)
    choice = {lang: row["translator"] for lang, row in choose(on_a).items()}
    write_choice(file, choice)
    on_b = qualify(args.workspace, file, names, args.data, langs, lines_b, args.concurrency, qe, say=say)
    a = {(r["translator"], r["lang"]): r for r in on_a}
    b = {(r["translator"], r["lang"]): r for r in on_b}
    single = max(names, key=lambda n: statistics.fmean(a[(n, lang)]["chrf"] for lang in langs))
    print(
        f"chrF on ntrex-dev lines A {lines_a[0]}-{lines_a[-1]} (choice) and B {lines_b[0]}-{lines_b[-1]} (measure); "
        f"better single translator on A: {single}"
    )
    print(
        f"{'lang':<6}"
        + "".join(f"{n + ' A':>14}{n + ' B':>14}" for n in names)
        + f"{'chosen':>14}{'chosen B':>10}{'single B':>10}"
    )
    for lang in langs:
        cells = "".join(f"{a[(n, lang)]['chrf']:>14.1f}{b[(n, lang)]['chrf']:>14.1f}" for n in names)
        print(
            f"{lang:<6}{cells}{choice[lang]:>14}{b[(choice[lang], lang)]['chrf']:>10.1f}{b[(single, lang)]['chrf']:>10.1f}"
        )
    chosen_b = statistics.fmean(b[(choice[lang], lang)]["chrf"] for lang in langs)
    single_b = statistics.fmean(b[(single, lang)]["chrf"] for lang in langs)
    oracle_b = statistics.fmean(max(b[(n, lang)]["chrf"] for n in names) for lang in langs)
    print(
        f"mean chrF on B: choice per language {chosen_b:.2f}, {single} alone {single_b:.2f}, best per language on B "
        f"(hindsight) {oracle_b:.2f}; the choice matched B's best in "
        f"{sum(b[(choice[lang], lang)]['chrf'] >= max(b[(n, lang)]['chrf'] for n in names) for lang in langs)} of {len(langs)} languages"
    )
    print(
        json.dumps(
            {
                "lines_a": [lines_a[0], lines_a[-1]],
                "lines_b": [lines_b[0], lines_b[-1]],
                "choice": choice,
                "single": single,
                "mean_chrf_b": {
                    "choice": round(chosen_b, 2),
                    "single": round(single_b, 2),
                    "hindsight": round(oracle_b, 2),
                },
                "a": on_a,
                "b": on_b,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
