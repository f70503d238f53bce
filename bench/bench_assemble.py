"""Memory and time of assembling one shard as the translation memory of its language grows, in one run.

The ScienceQA file (../shared/data/llava) is replicated to --small and --large records with a different
copy number added to every line of each copy, so the unique units (and the memory) grow with the corpus. The
memory of one language is filled with an entry for every unique unit, committed in batches of 64 as the
translate flow does. Then, each in a fresh subprocess so that peak RSS is its own, the flow's per-shard
assembly of the *first* shard (--shard-size conversations, the same in both runs) is timed. Prints
  peak RSS of assembling one shard, large corpus ÷ small corpus     goal ≤ 1.2× (memory follows the shard)
  seconds, large ÷ small                                           (for information)

    .venv/bin/python bench/bench_assemble.py [--small 10000] [--large 100000] [--shard-size 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.references import shared_data

SOURCE = shared_data() / "llava" / "scienceqa_llava_test_CQM-A.json"
LANG = "es"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from pipeline.translate.memory import TranslationMemory
from pipeline.ingest.shards import shard_dirs
from pipeline.translate.requests import LanguageCounts
from pipeline.assemble.translations import assemble_language
from pipeline.translate.settings import TranslatorConfig
ws, lang = Path(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
counts = LanguageCounts()
paths = assemble_language(ws, lang, TranslationMemory(ws / "tm"), TranslatorConfig(model="bench"), counts,
                          shards=shard_dirs(ws / "ingest")[:1])
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": counts.conversations}))
"""


def replicate(n: int, out: Path) -> None:
    records = json.loads(SOURCE.read_text())
    with open(out, "w") as f:
        f.write("[\n")
        for i in range(n):
            rec = json.loads(json.dumps(records[i % len(records)]))
            copy = i // len(records)
            rec["id"] = f"{rec['id']}-{copy}"
            for turn in rec["conversations"]:  # every line of prose changes, so every unit is new in each copy
                turn["value"] = "\n".join(
                    f"{line} (copy {copy})" if line.strip() else line for line in turn["value"].split("\n")
                )
            f.write(("" if i == 0 else ",\n") + json.dumps(rec))
        f.write("\n]\n")


def build(records: int, shard_size: int, root: Path) -> tuple[Path, int, int]:
    """A workspace of ``records`` replicated records whose ``LANG`` memory holds every unique unit."""
    import pyarrow.parquet as pq

    from pipeline.ingest.tables import ingest
    from pipeline.translate.memory import Entry, TranslationMemory
    from pipeline.translate.settings import TranslatorConfig

    ws = root / f"ws-{records}"
    data = root / f"in-{records}.json"
    replicate(records, data)
    ingest([data], ws, shard_size=shard_size)
    version = TranslatorConfig(model="bench").version(LANG)
    memory = TranslationMemory(ws / "tm")
    table = pq.read_table(ws / "ingest" / "unique_units.parquet", columns=["unit_hash", "text"])
    batch = []
    for unit_hash, text in zip(table.column("unit_hash").to_pylist(), table.column("text").to_pylist()):
        batch.append(Entry(unit_hash, LANG, version, "ok", text.upper(), text.upper(), [], "stop", 1, 20, 20))
        if len(batch) == 64:
            memory.commit(batch)
            batch = []
    memory.commit(batch)
    return ws, table.num_rows, len(memory.parts(LANG, version))


def measure(ws: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ws), LANG],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--shard-size", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for records in (args.small, args.large):
            ws, units, parts = build(records, args.shard_size, Path(tmp))
            runs[records] = measure(ws) | {"units": units, "parts": parts}
    for records, r in runs.items():
        print(
            f"{records:>7} records: {r['units']} unique units in {r['parts']} memory files; assembling one shard "
            f"({r['rows']} conversations): {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    small, large = runs[args.small], runs[args.large]
    print(f"peak RSS large / small: {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}  (goal <= 1.2)")
    print(f"seconds  large / small: {large['seconds'] / small['seconds']:.2f}")


if __name__ == "__main__":
    main()
