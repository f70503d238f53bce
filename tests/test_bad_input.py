"""A corpus of broken records and files, written here: each lands in quarantine with the right reason, or
stops its file with a message naming file, record and byte offset; nothing else is lost."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from pipeline.ingest.tables import ingest

from .conftest import polyglot


def good(i: int, **extra) -> dict:
    return {
        "id": f"good-{i}",
        "image": f"{i}.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is shown in the picture?"},
            {"from": "gpt", "value": f"A red bus number {i} on a wet street."},
        ],
        **extra,
    }


def conv(*turns, **fields) -> dict:
    return {"id": fields.pop("id", "x"), "conversations": [{"from": r, "value": v} for r, v in turns], **fields}


BAD_RECORDS = [
    ("not_an_object", ["just a string"]),
    ("missing_id", {"conversations": good(0)["conversations"]}),
    ("bad_id_type", {"id": [1], "conversations": good(0)["conversations"]}),
    ("bad_id_type", {"id": 1.5, "conversations": good(0)["conversations"]}),
    ("bad_image_type", {"id": "i", "image": 7, "conversations": good(0)["conversations"]}),
    ("missing_conversations", {"id": "m"}),
    ("conversations_not_list", {"id": "c", "conversations": "hello"}),
    ("empty_conversations", {"id": "e", "conversations": []}),
    ("turn_not_object", {"id": "t", "conversations": ["hi", "there"]}),
    ("turn_missing_field", {"id": "f", "conversations": [{"from": "human"}]}),
    ("turn_missing_field", {"id": "f2", "conversations": [{"value": "Hello there"}]}),
    ("bad_role", conv(("human", "Hello there"), ("assistant", "Hi, how can I help?"))),
    ("bad_role_order", conv(("gpt", "I start"), ("human", "Then me"))),
    ("bad_role_order", conv(("human", "One question"), ("human", "Another question"))),
    (
        "value_not_string",
        {"id": "v", "conversations": [{"from": "human", "value": 42}, {"from": "gpt", "value": "Yes"}]},
    ),
    ("empty_value", conv(("human", "What is this?"), ("gpt", "   "))),
    ("multiple_image_tokens", conv(("human", "<image>\nWhat?"), ("gpt", "See <image> here."))),
    (
        "source_not_english",
        conv(("human", "这张图片里有什么东西？请详细描述。"), ("gpt", "图片里有一辆红色的公共汽车停在路边。")),
    ),
    (
        "source_not_english",
        conv(("human", "Что изображено на этой картинке?"), ("gpt", "На картинке красный автобус.")),
    ),
    ("turn_too_long", conv(("human", "Describe it."), ("gpt", "word " * 400_000))),  # a 2 MB turn
]


def test_each_bad_record_gets_its_reason_and_good_ones_survive(tmp_path):
    records = []
    for i, (_, rec) in enumerate(BAD_RECORDS):
        records.append(good(i))
        records.append(rec)
    records.append(good(0))  # an exact duplicate of the first record
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(records, ensure_ascii=False))
    summary = ingest([path], tmp_path / "ws")

    q = pl.read_parquet(tmp_path / "ws" / "ingest" / "quarantine.parquet").sort("record_index")
    expected = [reason for reason, _ in BAD_RECORDS] + ["duplicate_record"]
    assert q["reason"].to_list() == expected
    assert q["record_index"].to_list() == [2 * i + 1 for i in range(len(BAD_RECORDS))] + [len(records) - 1]
    assert summary.valid == len(BAD_RECORDS)
    assert summary.records_read == len(records) == summary.valid + summary.quarantined
    # every quarantined record keeps its raw bytes and a detail that names the field
    for row in q.iter_rows(named=True):
        assert row["raw"] and row["detail"]
    assert "conversations[1]" in q.filter(pl.col("reason") == "empty_value")["detail"][0]
    assert "record 0 of" in q.filter(pl.col("reason") == "duplicate_record")["detail"][0]
    data = path.read_bytes()
    for row in q.iter_rows(named=True):  # byte offsets point at the record
        assert json.loads(data[row["byte_offset"] :].decode()[: len(row["raw"].decode())]) is not None


def test_truncated_array_keeps_records_before_the_break(tmp_path):
    text = json.dumps([good(i) for i in range(5)])
    third = text.index('{"id": "good-3"')
    cut = third + 30
    path = tmp_path / "truncated.json"
    path.write_text(text[:cut])
    summary = ingest([path, _write_jsonl(tmp_path, [good(10), good(11)])], tmp_path / "ws")
    assert summary.valid == 3 + 2  # the next file is read too
    assert len(summary.files_stopped) == 1
    message = summary.files_stopped[0]
    assert "truncated.json" in message and "record 3" in message
    assert f"byte offset {third}" in message
    q = pl.read_parquet(tmp_path / "ws" / "ingest" / "quarantine.parquet")
    assert q["reason"].to_list() == ["invalid_json"] and q["record_index"].to_list() == [3]
    assert summary.records_read == summary.valid + summary.quarantined


def test_garbage_between_array_records_stops_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[" + json.dumps(good(1)) + ", oops " + json.dumps(good(2)) + "]")
    summary = ingest([path], tmp_path / "ws")
    assert summary.valid == 1 and summary.quarantined == 1
    assert "record 1 (byte offset" in summary.files_stopped[0]


def _write_jsonl(tmp_path, records, name="ok.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_jsonl_bad_lines_are_quarantined_and_reading_goes_on(tmp_path):
    path = tmp_path / "lines.jsonl"
    lines = [
        json.dumps(good(1)).encode(),
        b'{"id": "broken", "conversations": [',  # malformed JSON
        json.dumps(good(2)).encode(),
        b'{"id": "latin1", "conversations": [{"from": "human", "value": "caf\xe9 photo?"}, {"from": "gpt", "value": "ok"}]}',
        b"",
        json.dumps(good(3)).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = ingest([path], tmp_path / "ws")
    q = pl.read_parquet(tmp_path / "ws" / "ingest" / "quarantine.parquet").sort("record_index")
    assert q["reason"].to_list() == ["invalid_json", "invalid_utf8"]
    assert q["record_index"].to_list() == [1, 3]
    assert q["byte_offset"].to_list() == [len(lines[0]) + 1, sum(len(x) + 1 for x in lines[:3])]
    assert summary.valid == 3 and summary.records_read == 5


def test_invalid_utf8_inside_an_array_quarantines_only_that_record(tmp_path):
    path = tmp_path / "latin1.json.gz"
    body = (
        b"["
        + json.dumps(good(1)).encode()
        + b',{"id": "x", "conversations": [{"from": "human", "value": "caf\xe9?"}, {"from": "gpt", "value": "Yes"}]},'
        + json.dumps(good(2)).encode()
        + b"]"
    )
    path.write_bytes(gzip.compress(body))
    summary = ingest([path], tmp_path / "ws")
    q = pl.read_parquet(tmp_path / "ws" / "ingest" / "quarantine.parquet")
    assert q["reason"].to_list() == ["invalid_utf8"] and q["record_id"].to_list() == ["x"]
    assert summary.valid == 2


def test_empty_and_non_json_files(tmp_path):
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "empty_array.json").write_text("[ ]\n")
    (tmp_path / "text.txt").write_text("this is not json\n")
    summary = ingest([tmp_path / n for n in ("empty.json", "empty_array.json", "text.txt")], tmp_path / "ws")
    assert summary.valid == 0 and summary.records_read == 1 and summary.quarantined_by_reason == {"invalid_json": 1}


def test_bad_settings_are_refused(tmp_path):
    path = _write_jsonl(tmp_path, [good(1)])
    with pytest.raises(ValueError, match="shard_size"):
        ingest([path], tmp_path / "ws", shard_size=0)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        ingest([tmp_path / "missing.json"], tmp_path / "ws")


SERVER = ("--server", "http://127.0.0.1:9")  # nothing listens there: the value must be refused before any request


@pytest.mark.parametrize(
    "args, option, why",
    [
        (("translate", "--bt-rate", "2", *SERVER), "--bt-rate", "between 0.0 and 1.0"),
        (("translate", "--review-budget", "-1", *SERVER), "--review-budget", "at least 0"),
        (("translate", "--retry-seconds", "nan", *SERVER), "--retry-seconds", "at least 0.0"),
        (("translate", "--concurrency", "0", *SERVER), "--concurrency", "at least 1"),
        (("cycle", "--overlap", "3", *SERVER), "--overlap", "between 0.0 and 1.0"),
        (("review", "push", "--overlap", "-0.1"), "--overlap", "between 0.0 and 1.0"),
    ],
)
def test_bad_option_values_are_refused_before_anything_starts(tmp_path, args, option, why):
    proc = polyglot(*args, "--workspace", str(tmp_path / "ws"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert option in proc.stderr and why in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "ws").exists()


def test_a_flow_command_in_a_fresh_home_starts_prefect_and_names_what_is_missing(tmp_path):
    home = tmp_path / "new" / "home"  # neither exists yet: Prefect's ephemeral server needs its home's parents
    # no Prefect server configured: the command starts its own temporary one
    proc = polyglot(
        "publish",
        "--workspace",
        str(tmp_path / "ws"),
        env={"POLYGLOT_HOME": str(home), "PREFECT_API_URL": None, "PREFECT_HOME": None},
        timeout=110,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "no translations" in proc.stderr and "run 'polyglot translate' first" in proc.stderr
    assert "Traceback" not in proc.stderr and (home / "prefect").is_dir()
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # said once, by the command (not by Prefect too)


def test_a_server_that_is_down_is_said_in_one_line(tmp_path):
    source = tmp_path / "in.json"
    source.write_text('[{"id": "a", "conversations": [{"from": "human", "value": "What is on the table?"}]}]')
    proc = polyglot(
        "translate",
        str(source),
        "--workspace",
        str(tmp_path / "ws"),
        "--langs",
        "es",
        "--server",
        "http://127.0.0.1:9",
        "--retry-seconds",
        "0",
        "--no-progress",
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "polyglot services status" in proc.stderr, (
        proc.stderr
    )


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_a_cut_gzip_file_keeps_the_records_before_the_cut_and_names_the_offset(tmp_path, layout):
    records = [good(i, note="filler " * (40 + i)) for i in range(400)]
    text = "".join(json.dumps(r) + "\n" for r in records) if layout == "jsonl" else json.dumps(records)
    packed = gzip.compress(text.encode())
    path = tmp_path / f"cut.{layout}.gz"
    path.write_bytes(packed[: len(packed) // 2])
    proc = polyglot("ingest", str(path), "--workspace", str(tmp_path / "ws"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "EOFError" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cut.{layout}.gz" in errors[0] and "gzip file ends before" in errors[0], proc.stderr
    summary = json.loads((tmp_path / "ws" / "ingest" / "summary.json").read_text())
    kept = summary["valid"]
    assert 100 < kept < 400 and summary["records_read"] == kept + summary["quarantined"] == kept + 1
    # the offset named is where the first record not kept starts in the decompressed text
    offset = int(errors[0].split("byte offset ")[1].split(" ")[0])
    assert text.encode()[offset:].lstrip(b", \n").startswith(json.dumps(records[kept])[:40].encode())
    convs = pl.read_parquet(tmp_path / "ws" / "ingest" / "shards" / "*" / "conversations.parquet")
    assert sorted(convs["id"].to_list(), key=lambda x: int(x.split("-")[1])) == [f"good-{i}" for i in range(kept)]


def test_a_whole_multi_member_gzip_file_reads_to_its_end(tmp_path):
    lines = [json.dumps(good(i)) + "\n" for i in range(30)]
    path = tmp_path / "joined.jsonl.gz"
    path.write_bytes(gzip.compress("".join(lines[:10]).encode()) + gzip.compress("".join(lines[10:]).encode()))
    summary = ingest([path], tmp_path / "ws")
    assert summary.valid == 30 and not summary.files_stopped


def test_ingest_summary_keeps_long_reason_names_apart_from_their_counts(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"id": "a", "conversations": "not a list"}) + "\n" + json.dumps(good(1)) + "\n")
    proc = polyglot("ingest", str(path), "--workspace", str(tmp_path / "ws"))
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "conversations_not_list" in line)
    assert line.split() == ["conversations_not_list", "1"], line
