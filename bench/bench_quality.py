"""Translation quality of the served model on professional references, through the project's real path.

ntrex-dev lines (``../shared/data/ntrex-dev`` by default; ``--data`` takes any folder with the same file names:
``newstest2019-src.eng.txt`` and ``newstest2019-ref.{code}.txt``) become LLaVA conversations (two lines a
conversation: a human turn and an assistant turn), go through ``polyglot translate`` (translate flow → answer
checks → language rules → QE) against ``--server``, and every translated turn is scored against its
reference with sacrebleu. Per language it prints:

- chrF and BLEU of all turns and of the turns QE accepted;
- the share accepted / needs_review / rejected, and the mean sentence chrF of accepted vs rejected turns
  (QE must separate them: accepted clearly higher);
- answer-check outcomes from the translation memory: answers repaired (preamble, wrapping quotes, fences,
  notes removed), flagged (with the commonest reasons), retried;
- output tokens per second of the server over the run (completion tokens ÷ wall time of the translate step).

The workspace (``--workspace``, default ``bench/out/quality``) keeps the translation memory: a rerun with the
same settings sends only what is missing, so a long run on a slow CPU server can be stopped and resumed.
The last line is one JSON object with every figure (for scripts comparing runs).

    .venv/bin/python bench/bench_quality.py --server http://127.0.0.1:8000 --langs es,zh,hi --lines 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
from sacrebleu.metrics import BLEU, CHRF

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.languages import TARGET_LANGUAGES, parse_languages  # noqa: E402
from pipeline.references import (
    NTREX_FILES,  # noqa: E402
    shared_data,  # noqa: E402
)
from pipeline.translate.served import model_cards  # noqa: E402

DEFAULT_DATA = shared_data() / "ntrex-dev"


def conversations(source: list[str], lines: int) -> list[dict]:
    """Two consecutive lines make one conversation (human, then assistant), ``lines`` lines in all."""
    out = []
    for k in range(0, lines - 1, 2):
        out.append({"id": f"ntrex-{k:05d}", "conversations": [
            {"from": "human", "value": source[k]}, {"from": "gpt", "value": source[k + 1]}]})
    return out


def memory_stats(ws: Path, lang: str, version: str) -> dict:
    parts = sorted((ws / "tm" / f"lang={lang}" / f"version={version}").glob("*.parquet"))
    if not parts:
        return {"answers": 0, "repaired": 0, "flagged": 0, "retried": 0, "completion_tokens": 0, "repairs": {}, "flags": {}}
    tm = pl.concat([pl.read_parquet(p) for p in parts], how="diagonal_relaxed")
    repairs: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    if "repairs" in tm.columns:
        for row in tm["repairs"].to_list():
            repairs.update(r.split(":")[0] for r in row or [])
    for row in tm.filter(pl.col("status") != "ok")["flags"].to_list():
        flags.update(f.split(":")[0] for f in row or [])
    return {
        "answers": tm.height,
        "repaired": int(tm["repairs"].list.len().gt(0).sum()) if "repairs" in tm.columns else 0,
        "flagged": int((tm["status"] != "ok").sum()),
        "retried": int((tm["attempts"] > 1).sum()),
        "completion_tokens": int(tm["completion_tokens"].fill_null(0).sum()),
        "repairs": dict(repairs.most_common()),
        "flags": dict(flags.most_common(4)),
    }


def score(rows: pl.DataFrame, refs: list[str], lang: str) -> dict:
    """chrF/BLEU of all and of accepted turns, status shares, and mean sentence chrF per status."""
    hyps, gold, statuses = [], [], []
    for row in rows.iter_rows(named=True):
        k = int(row["id"].split("-")[1])
        for t, (turn, status) in enumerate(zip(row["conversations"], row["turn_qe_status"])):
            hyps.append(turn["value"])
            gold.append(refs[k + t])
            statuses.append(status)
    chrf = CHRF()
    # BLEU needs words: Chinese gets sacrebleu's zh tokenizer, Japanese characters (no MeCab here)
    sentence = [chrf.sentence_score(h, [g]).score for h, g in zip(hyps, gold)]
    out = {"turns": len(hyps)}
    out["chrf"] = round(chrf.corpus_score(hyps, [gold]).score, 2) if hyps else None
    bleu = BLEU(tokenize={"zh": "zh", "ja": "char"}.get(lang, "13a"))
    out["bleu"] = round(bleu.corpus_score(hyps, [gold]).score, 2) if hyps else None
    accepted = [i for i, s in enumerate(statuses) if s == "accepted"]
    out["chrf_accepted"] = round(chrf.corpus_score([hyps[i] for i in accepted], [[gold[i] for i in accepted]]).score, 2) if accepted else None
    out["bleu_accepted"] = round(bleu.corpus_score([hyps[i] for i in accepted], [[gold[i] for i in accepted]]).score, 2) if accepted else None
    for status in ("accepted", "needs_review", "rejected"):
        picked = [sentence[i] for i, s in enumerate(statuses) if s == status]
        out[f"share_{status}"] = round(len(picked) / len(statuses), 3) if statuses else None
        out[f"mean_chrf_{status}"] = round(statistics.fmean(picked), 1) if picked else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="OpenAI-compatible server (vLLM, llama.cpp…)")
    parser.add_argument("--langs", default=",".join(TARGET_LANGUAGES))
    parser.add_argument("--lines", type=int, default=30, help="ntrex lines per language (from the first)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workspace", type=Path, default=ROOT / "bench" / "out" / "quality")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model", default=None, help="served model name (default: the server's first)")
    args = parser.parse_args()
    langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
    source = (args.data / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    lines = min(args.lines + args.lines % 2, len(source))
    args.workspace.mkdir(parents=True, exist_ok=True)
    inputs = args.workspace / f"ntrex-{lines}.jsonl"
    inputs.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations(source, lines)))
    model = args.model or model_cards(args.server)[0]["id"]
    cmd = [sys.executable, "-m", "pipeline.cli", "translate", str(inputs), "--workspace", str(args.workspace),
           "--langs", ",".join(langs), "--server", args.server, "--model", model, "--concurrency", str(args.concurrency),
           "--bt-rate", "0", "--review-budget", "0", "--no-progress", "--retry-seconds", "600", "--request-timeout", "7200"]
    print(f"translating {lines} lines × {len(langs)} languages with {model} at {args.server} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:] + proc.stderr[-3000:], file=sys.stderr)
        return proc.returncode
    new_requests = int(next(line for line in proc.stdout.splitlines() if line.startswith("requests sent")).split()[2])
    results = {}
    header = (f"{'lang':<5}{'turns':>6}{'chrF':>7}{'BLEU':>7}{'chrF acc':>9}{'BLEU acc':>9}{'acc':>6}{'rev':>6}{'rej':>6}"
              f"{'chrF|acc':>9}{'chrF|rej':>9}{'repaired':>9}{'flagged':>8}{'retried':>8}")
    print(f"model {model}; {lines} lines per language; {args.data}")
    print(header)
    total_tokens = 0
    for lang in langs:
        rows = pl.read_parquet(args.workspace / "translations" / lang / "*.parquet")
        refs = (args.data / f"newstest2019-ref.{NTREX_FILES[lang]}.txt").read_text(encoding="utf-8").splitlines()
        r = score(rows, refs, lang)
        r.update(memory_stats(args.workspace, lang, rows["translator_version"][0]))
        total_tokens += r["completion_tokens"]
        results[lang] = r

        def f(x, width, digits=1):
            return f"{'-':>{width}}" if x is None else f"{x:>{width}.{digits}f}"

        print(f"{lang:<5}{r['turns']:>6}{f(r['chrf'], 7)}{f(r['bleu'], 7)}{f(r['chrf_accepted'], 9)}{f(r['bleu_accepted'], 9)}"
              f"{f(r['share_accepted'], 6, 2)}{f(r['share_needs_review'], 6, 2)}{f(r['share_rejected'], 6, 2)}"
              f"{f(r['mean_chrf_accepted'], 9)}{f(r['mean_chrf_rejected'], 9)}{r['repaired']:>9}{r['flagged']:>8}{r['retried']:>8}")
    for lang, r in results.items():
        if r["repairs"] or r["flags"]:
            print(f"  {lang}: repairs {r['repairs'] or '-'}; flags {r['flags'] or '-'}")
    rate = total_tokens / wall if new_requests else None
    print(f"translate step: {wall:.0f} s, {new_requests} requests sent this run; "
          + (f"{rate:.2f} output tokens/s" if rate else "nothing new was sent (everything came from the memory)"))
    print(json.dumps({"model": model, "lines": lines, "server": args.server, "wall_seconds": round(wall, 1),
                      "requests": new_requests, "output_tokens_per_s": round(rate, 3) if rate else None, "languages": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
