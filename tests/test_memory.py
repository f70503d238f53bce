"""The translation memory on real Parquet files: keys only, a subset of units, ok over flagged, older files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.memory import TM_SCHEMA, Entry, TranslationMemory


def entry(h: str, status: str = "ok", text: str | None = None) -> Entry:
    return Entry(h, "hi", "tv-1", status, text if status == "ok" else None, text or "raw", [] if status == "ok" else ["copy"])


def test_subset_load_reads_only_the_wanted_units_and_ok_wins(tmp_path):
    a, b = TranslationMemory(tmp_path, "worker-a"), TranslationMemory(tmp_path, "worker-b")
    a.commit([entry(f"u{i}", text=f"t{i}") for i in range(0, 6)])
    a.commit([entry(f"u{i}", text=f"t{i}") for i in range(6, 10)])
    b.commit([entry("u3", "flagged"), entry("u12", "flagged")])  # another worker finished u3 badly
    assert len(a.parts("hi", "tv-1")) == 3
    assert a.unit_hashes("hi", "tv-1") == {f"u{i}" for i in range(10)} | {"u12"}
    subset = a.load("hi", "tv-1", ["u3", "u7", "u12", "not-there"])
    assert set(subset) == {"u3", "u7", "u12"}
    assert subset["u3"].status == "ok" and subset["u3"].text == "t3"  # ok wins over the flagged answer
    assert subset["u12"].status == "flagged" and subset["u12"].flags == ["copy"]
    assert a.load("hi", "tv-1", []) == {}
    assert set(a.load("hi", "tv-1")) == a.unit_hashes("hi", "tv-1")
    assert a.load("hi", "tv-2") == {} and a.unit_hashes("ur", "tv-1") == set()


def test_a_file_from_before_the_token_columns_still_loads(tmp_path):
    memory = TranslationMemory(tmp_path, "w")
    old_schema = pa.schema([f for f in TM_SCHEMA if f.name not in ("prompt_tokens", "completion_tokens")])
    row = entry("u1", text="पुराना").as_row()[:9]
    d = tmp_path / "lang=hi" / "version=tv-1"
    d.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([dict(zip(old_schema.names, row))], schema=old_schema), d / "part-old-000001.parquet")
    loaded = memory.load("hi", "tv-1", {"u1"})["u1"]
    assert loaded.text == "पुराना" and loaded.prompt_tokens is None
    assert memory.load("hi", "tv-1")["u1"].text == "पुराना"
