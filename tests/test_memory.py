"""The translation memory on real Parquet files: keys only, a subset of units, ok over flagged, older files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.translate.memory import TM_SCHEMA, Entry, TranslationMemory


def entry(h: str, status: str = "ok", text: str | None = None) -> Entry:
    return Entry(
        h, "hi", "tv-1", status, text if status == "ok" else None, text or "raw", [] if status == "ok" else ["copy"]
    )


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
    pq.write_table(
        pa.Table.from_pylist([dict(zip(old_schema.names, row))], schema=old_schema), d / "part-old-000001.parquet"
    )
    loaded = memory.load("hi", "tv-1", {"u1"})["u1"]
    assert loaded.text == "पुराना" and loaded.prompt_tokens is None
    assert memory.load("hi", "tv-1")["u1"].text == "पुराना"


def test_compaction_merges_parts_into_sorted_segments_and_readers_see_each_entry_once(tmp_path, monkeypatch):
    import pipeline.translate.memory as memory_module

    monkeypatch.setattr(memory_module, "SEGMENT_ROW_GROUP", 8)  # several row groups in a small segment
    a, b = TranslationMemory(tmp_path, "worker-a"), TranslationMemory(tmp_path, "worker-b")
    for start in range(0, 60, 6):
        a.commit([entry(f"u{i:03d}", text=f"t{i}") for i in range(start, start + 6)])
    b.commit([entry("u003", "flagged"), entry("u900", "flagged")])
    before = a.load("hi", "tv-1")
    assert len(a.files("hi", "tv-1")) == 11
    report = a.compact("hi", "tv-1")
    assert report == {"files_before": 11, "files_after": 1, "entries": 61}
    files = a.files("hi", "tv-1")
    assert [p.name.split("-")[0] for p in files] == ["segment"] and not a.parts("hi", "tv-1")
    keys = pq.read_table(files[0], columns=["unit_hash"]).column("unit_hash").to_pylist()
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == 61
    assert pq.ParquetFile(files[0]).metadata.num_row_groups == 8
    assert a.load("hi", "tv-1") == before and before["u003"].status == "ok"
    assert a.load("hi", "tv-1", ["u007", "u900", "nope"]) == {k: before[k] for k in ("u007", "u900")}
    assert a.unit_hashes("hi", "tv-1") == set(before)
    # a writer that commits after the compaction: its part is read beside the segment, and merged next time
    b.commit([entry("u950", text="new")])
    assert set(a.load("hi", "tv-1")) == set(before) | {"u950"}
    # a compaction that crashed after writing its segment but before switching the layout: the old set stays in
    # force (nothing counted twice), and the next compaction removes the stray file
    d = tmp_path / "lang=hi" / "version=tv-1"
    stray = d / "segment-000009-0000-deadbeef.parquet"
    stray.write_bytes(files[0].read_bytes())
    assert len(a.load("hi", "tv-1")) == 62 and stray not in a.files("hi", "tv-1")
    again = a.compact("hi", "tv-1", min_files=1)  # the new part becomes a second segment; the first is kept
    assert again == {"files_before": 2, "files_after": 2, "entries": 1} and not stray.exists()
    assert not list(d.glob("part-*")) and len(a.load("hi", "tv-1")) == 62
    assert a.compact("hi", "tv-1")["entries"] is None  # no part file: nothing to merge
    b.commit([entry("u951", text="newer")])
    full = a.compact("hi", "tv-1", min_files=1, max_segments=2)  # a third segment would be too many: one full merge
    assert full == {"files_before": 3, "files_after": 1, "entries": 63} and len(a.load("hi", "tv-1")) == 63


def test_kept_answers_asks_only_for_what_is_missing_and_keeps_what_came_before_a_crash(tmp_path):
    """The judges' memory (back-translations, cosines): a second call asks nothing; answers that arrived before a
    failure are committed (commit_age 0: each at once) and not asked again."""
    memory = TranslationMemory(tmp_path / "tm")
    asked: list[list[tuple]] = []

    def failing(missing, on_answer):
        asked.append(list(missing))
        on_answer(0, "first")
        raise ConnectionError("server gone")

    items = [("k2", "b"), ("k1", "a"), ("k3", "c")]
    with pytest.raises(ConnectionError):
        memory.kept_answers("bt-es", "v1", items, failing, commit_age=0.0)
    assert asked == [[("k1", "a"), ("k2", "b"), ("k3", "c")]]  # sorted: the same order on every run

    def answering(missing, on_answer):
        asked.append(list(missing))
        for i, (_, text) in enumerate(missing):
            on_answer(i, text.upper())

    done = memory.kept_answers("bt-es", "v1", items, answering)
    assert asked[-1] == [("k2", "b"), ("k3", "c")] and {k: e.text for k, e in done.items()} == {
        "k1": "first",
        "k2": "B",
        "k3": "C",
    }
    assert memory.kept_answers("bt-es", "v1", items, answering) == done and len(asked) == 2  # nothing asked
