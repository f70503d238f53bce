from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from pipeline.ingest.readers import iter_records
from pipeline.ingest.shards import iter_shard_turns, shard_dirs, source_texts
from pipeline.ingest.tables import ingest
from pipeline.ingest.validate import REASONS

from .conftest import REPO


def _reassembled_source(ingest_dir: Path) -> dict[tuple[str, int], tuple[str, str]]:
    texts = source_texts(ingest_dir)
    out = {}
    for shard in shard_dirs(ingest_dir):
        for turn in iter_shard_turns(shard, lambda h, _i: (texts[h], [])):
            out[(turn.conv_key, turn.turn_index)] = (turn.source, turn.text)
    return out


def test_every_turn_of_the_shared_llava_files_round_trips(llava_files, tmp_path):
    summary = ingest(llava_files, tmp_path, shard_size=1000)
    assert summary.records_read == summary.valid + summary.quarantined
    assert summary.valid >= 4_400 and summary.quarantined == 0
    turns = _reassembled_source(tmp_path / "ingest")
    assert len(turns) == summary.turns
    mismatched = [key for key, (source, text) in turns.items() if source != text]
    assert mismatched == []
    # and the original records, read again independently, are what the tables hold
    originals = [t["value"] for path in llava_files for r in json.loads(path.read_text()) for t in r["conversations"]]
    assert sorted(originals) == sorted(source for source, _ in turns.values())
    assert summary.shards == -(-summary.valid // 1000)


def test_dedup_counts_repeated_templates(llava_files, tmp_path):
    summary = ingest(llava_files, tmp_path)
    unique = pl.read_parquet(tmp_path / "ingest" / "unique_units.parquet")
    assert unique.height == summary.unique_units
    assert unique["occurrences"].sum() == summary.units
    assert unique["unit_hash"].n_unique() == unique.height and unique["text"].n_unique() == unique.height
    # ScienceQA repeats its question stems: far fewer unique units than units
    assert summary.dedup_ratio > 1.5
    top = unique.sort("occurrences", descending=True).row(0, named=True)
    assert top["occurrences"] > 100


def test_image_position_and_roles_kept(llava_files, tmp_path):
    ingest([llava_files[1]], tmp_path)  # coco qa90: <image> before the question for even ids, after for odd
    convs = pl.read_parquet(tmp_path / "ingest" / "shards" / "*" / "conversations.parquet")
    turns = pl.read_parquet(tmp_path / "ingest" / "shards" / "*" / "turns.parquet")
    first = turns.filter(pl.col("turn_index") == 0).join(convs, on="conv_key")
    for row in first.iter_rows(named=True):
        n = int(row["id"].split("-")[1])
        assert row["image_position"] == ("before" if n % 2 == 0 else "after"), row["id"]
    assert set(turns["role"]) == {"human", "gpt"}


def test_gzip_and_jsonl_give_the_same_tables(llava_files, tmp_path):
    records = json.loads(llava_files[2].read_text())
    jsonl_gz = tmp_path / "in.jsonl.gz"
    with gzip.open(jsonl_gz, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    a = ingest([llava_files[2]], tmp_path / "a")
    b = ingest([jsonl_gz], tmp_path / "b")
    assert (a.valid, a.turns, a.units, a.unique_units) == (b.valid, b.turns, b.units, b.unique_units)
    ta = pl.read_parquet(tmp_path / "a" / "ingest" / "shards" / "*" / "units.parquet")
    tb = pl.read_parquet(tmp_path / "b" / "ingest" / "shards" / "*" / "units.parquet")
    assert ta.equals(tb)


def test_cli_prints_reconciled_counts(llava_files, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "ingest",
            str(llava_files[0]),
            str(llava_files[2]),
            "--workspace",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    assert "records read      33" in out and "valid           33" in out and "quarantined     0" in out
    assert "dedup ratio" in out and "unique units" in out
    summary = json.loads((tmp_path / "ingest" / "summary.json").read_text())
    assert summary["records_read"] == 33 and summary["units"] >= summary["unique_units"] > 0


def test_cli_rejects_bad_settings_with_a_clear_message(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "ingest", str(tmp_path / "nope.json"), "--workspace", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 2 and "nope.json does not exist" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "ingest", "x.json", "--workspace", str(tmp_path), "--shard-size", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 2 and "--shard-size" in run.stderr and "at least 1" in run.stderr


def test_reader_streams_a_large_array_in_chunks(tmp_path, monkeypatch):
    import pipeline.ingest.readers as readers

    monkeypatch.setattr(readers, "CHUNK_CHARS", 64)  # records straddle many chunk boundaries
    records = [
        {
            "id": i,
            "conversations": [
                {"from": "human", "value": "é" * (i % 50) + "<image>"},
                {"from": "gpt", "value": str(i) * 30},
            ],
        }
        for i in range(300)
    ]
    path = tmp_path / "a.json"
    data = json.dumps(records, ensure_ascii=False, indent=1).encode()
    path.write_bytes(data)
    got = list(iter_records(path))
    assert [r.obj for r in got] == records
    for rec in got:  # byte offsets point at the record's first byte
        assert data[rec.byte_offset : rec.byte_offset + 1] == b"{"
        assert json.JSONDecoder().raw_decode(data[rec.byte_offset :].decode())[0] == records[rec.index]


def test_reasons_are_documented():
    doc = (REPO / "docs" / "tables.md").read_text()
    missing = [r for r in REASONS if f"`{r}`" not in doc]
    assert missing == []
