"""Ingest speed and memory against a bare json.load + json.dump of the same file, in one run.

ScienceQA (../shared/data/llava) is replicated to N records (ids made unique) in a temp dir. Prints:
  ingest seconds ÷ (json.load + json.dump seconds)        goal ≤ 5×
  peak RSS of ingesting 100,000 records ÷ of 10,000        goal ≤ 1.2× (memory stays flat)
Each measurement runs in a fresh subprocess so peak RSS belongs to that run alone; times are the best of
--repeat runs, since this kind of machine is noisy.

    .venv/bin/python bench/bench_ingest.py [--records 100000] [--small 10000]
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

CHILD = r"""
import json, resource, sys, time
mode, path, ws = sys.argv[1:4]
t = time.perf_counter()
if mode == "json":
    data = json.load(open(path))
    with open(ws + "/dump.json", "w") as f:
        json.dump(data, f)
else:
    from pipeline.ingest.tables import ingest
    s = ingest([path], ws)
    assert s.records_read == s.valid + s.quarantined
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def replicate(n: int, out: Path) -> None:
    records = json.loads(SOURCE.read_text())
    with open(out, "w") as f:
        f.write("[\n")
        for i in range(n):
            rec = dict(records[i % len(records)])
            rec["id"] = f"{rec['id']}-{i // len(records)}"
            f.write(("" if i == 0 else ",\n") + json.dumps(rec))
        f.write("\n]\n")


def run(mode: str, path: Path, workdir: Path, repeat: int) -> dict:
    best: dict = {}
    for _ in range(repeat):
        ws = Path(tempfile.mkdtemp(dir=workdir))
        out = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(path), str(ws)], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if not best or result["seconds"] < best["seconds"]:
            best = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        big, small = tmpdir / "big.json", tmpdir / "small.json"
        replicate(args.records, big)
        replicate(args.small, small)
        size_mb = big.stat().st_size / 1e6
        baseline = run("json", big, tmpdir, args.repeat)
        ingest_big = run("ingest", big, tmpdir, args.repeat)
        ingest_small = run("ingest", small, tmpdir, 1)
    ratio = ingest_big["seconds"] / baseline["seconds"]
    rss = ingest_big["peak_rss_mb"] / ingest_small["peak_rss_mb"]
    print(f"input: {args.records} records, {size_mb:.1f} MB")
    print(f"json.load + json.dump: {baseline['seconds']:.2f} s (peak RSS {baseline['peak_rss_mb']:.0f} MB)")
    print(f"ingest:                {ingest_big['seconds']:.2f} s (peak RSS {ingest_big['peak_rss_mb']:.0f} MB)")
    print(f"ingest {args.small}:         peak RSS {ingest_small['peak_rss_mb']:.0f} MB")
    print(f"time ratio ingest / (json.load + json.dump): {ratio:.2f}x  (goal <= 5x)")
    print(f"peak RSS ratio {args.records} / {args.small} records: {rss:.2f}x  (goal <= 1.2x)")


if __name__ == "__main__":
    main()
