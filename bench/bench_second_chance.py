"""The machine's second chance on a real model: does quality-aware reranking of sampled candidates make the rejected
turns better, measured against professional references?

Each ntrex-dev line of ``--lines`` (default 300-323: used by no calibration, choice or challenge measurement here)
becomes one LLaVA conversation whose answer is the English line. ``polyglot translate`` runs on them against
``--server`` (first answers, the quality score with back-translation), then again with ``--second-chance rejected
--candidates N``. Per language it prints the rejected turns, how many the second chance rescued (no longer rejected),
chrF against the reference of the rejected turns' first answers and of what they hold afterwards, chrF of every
line before and after, and the candidates' output tokens. The workspace is kept: a rerun reuses every answer (the
translation memory), so an interrupted run resumes where it stopped.

    .venv/bin/python bench/bench_second_chance.py --server http://127.0.0.1:8000 --langs hi,bn,ur,ar
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.references import corpus_scores, load_pairs, shared_data


def corpus(path: Path, english: list[str], lines: list[int]) -> None:
    records = [
        {
            "id": f"ntrex-{n}",
            "image": f"ntrex-{n}.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat does the text in this picture say?"},
                {"from": "gpt", "value": english[n]},
            ],
        }
        for n in lines
    ]
    path.write_text(json.dumps(records, ensure_ascii=False))


def answers(ws: Path, lang: str) -> dict[str, tuple[str, str]]:
    import polars as pl

    df = pl.read_parquet(ws / "translations" / lang / "*.parquet")
    return {i: (conv[1]["value"], st[1]) for i, conv, st in zip(df["id"], df["conversations"], df["turn_qe_status"])}


def translate(inputs: Path, ws: Path, args, *extra: str) -> str:
    cmd = [sys.executable, "-m", "pipeline.cli", "translate", str(inputs), "--workspace", str(ws), "--server"]
    cmd += [args.server, "--langs", args.langs, "--no-progress", "--concurrency", str(args.concurrency), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"translate failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", required=True)
    p.add_argument("--langs", default="hi,bn,ur,ar")
    p.add_argument("--refs", type=Path, default=shared_data() / "ntrex-dev")
    p.add_argument("--lines", default="300-323", help="first-last line numbers of the references (0-based)")
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workspace", type=Path, default=ROOT / "bench" / "out" / "second-chance")
    args = p.parse_args()
    first, last = (int(x) for x in args.lines.split("-"))
    lines = list(range(first, last + 1))
    langs = args.langs.split(",")
    pairs = {lang: load_pairs(args.refs, lang) for lang in langs}
    english = [src for src, _ in next(iter(pairs.values()))]
    ws = args.workspace
    ws.mkdir(parents=True, exist_ok=True)
    inputs = ws / "corpus.json"
    corpus(inputs, english, lines)
    # the first pass's turns, kept beside the workspace: on a rerun the shards already hold the kept candidates
    saved = ws / "first-pass.json"
    before = json.loads(saved.read_text()) if saved.exists() else {}
    if missing := [lang for lang in langs if lang not in before]:
        translate(inputs, ws, args)
        before.update({lang: answers(ws, lang) for lang in missing})
        saved.write_text(json.dumps(before, ensure_ascii=False))
    out = translate(inputs, ws, args, "--second-chance", "rejected", "--candidates", str(args.candidates))
    after = {lang: answers(ws, lang) for lang in langs}
    said = {line.split()[2].rstrip(":"): line for line in out.splitlines() if line.startswith("second chance ")}
    print(f"{len(lines)} lines ({args.lines}) of {args.refs}, {args.candidates} candidates at temperature 0.7")
    print(f"{'lang':<5}{'rejected':>9}{'rescued':>9}{'chrF rej. first':>17}{'after':>8}{'chrF all':>10}{'after':>8}")
    rows = []
    for lang in langs:
        ref = {f"ntrex-{n}": pairs[lang][n][1] for n in lines}
        ids = sorted(ref)
        rejected = [i for i in ids if before[lang][i][1] == "rejected"]
        rescued = [i for i in rejected if after[lang][i][1] != "rejected"]

        def score(which: dict, chosen: list[str], ref=ref, lang=lang) -> float | None:
            return corpus_scores(lang, [which[i][0] for i in chosen], [ref[i] for i in chosen])[0] if chosen else None

        row = {
            "lang": lang,
            "rejected": len(rejected),
            "rescued": len(rescued),
            "chrf_rejected_first": score(before[lang], rejected),
            "chrf_rejected_after": score(after[lang], rejected),
            "chrf_all_first": score(before[lang], ids),
            "chrf_all_after": score(after[lang], ids),
            "second_chance": said.get(lang, ""),
        }
        rows.append(row)
        print(
            f"{lang:<5}{row['rejected']:>9}{row['rescued']:>9}{row['chrf_rejected_first']!s:>17}"
            f"{row['chrf_rejected_after']!s:>8}{row['chrf_all_first']!s:>10}{row['chrf_all_after']!s:>8}"
        )
        print(f"     {row['second_chance']}")
    print(json.dumps(rows, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
