"""The human second chance: a rejected conversation routed to be translated from scratch, pushed to a real Label
Studio as tasks with an empty box, annotated, pulled back into the shards as a person's text (``written``) and into
the fine-tune loop's supervised set — idempotently."""

from __future__ import annotations

import os

import polars as pl
import pytest
from label_studio_sdk import LabelStudio

from pipeline.review import corrections
from pipeline.train.supervised import supervised_examples

from .conftest import LLAVA, polyglot

QA90 = LLAVA / "coco_val_qa90_gpt4.json"
PREFIX = "scratch-test"
WRITTEN = "रसोई में एक मेज़ है।"


@pytest.fixture(scope="module")
def ws(vllm_server, labelstudio_server, tmp_path_factory):
    """Hindi by the tiny model with the default quality checks: most of it is rejected."""
    workspace = tmp_path_factory.mktemp("scratch-ws")
    proc = polyglot(
        "translate", str(QA90), "--workspace", str(workspace), "--langs", "hi", "--server", vllm_server.url,
        "--limit", "12", "--no-progress", "--review-budget", "5", "--scratch-share", "0.4", "--bt-rate", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return workspace


def test_rejected_conversations_are_queued_from_scratch_within_the_budget(ws):
    queue = pl.read_parquet(ws / "review" / "queue.parquet")
    shards = pl.read_parquet(ws / "translations" / "hi" / "*.parquet")
    rejected = set(shards.filter(pl.col("qe_status") == "rejected")["conv_key"])
    assert len(rejected) >= 2, "the tiny model's Hindi was expected to be rejected"
    scratch = queue.filter(pl.col("reason") == "from scratch")
    assert scratch.height == 2 and set(scratch["conv_key"]) <= rejected  # 40 % of a budget of 5
    assert queue.height <= 5
    assert not set(queue.filter(pl.col("reason") != "from scratch")["conv_key"]) & rejected


def test_push_pull_of_a_from_scratch_task_round_trips_into_the_shards_and_the_finetune_data(ws, labelstudio_server):
    admin = LabelStudio(base_url=labelstudio_server.url, api_key=os.environ["LABEL_STUDIO_API_KEY"])
    push = ["review", "push", "--workspace", str(ws), "--langs", "hi", "--project-prefix", PREFIX, "--overlap", "0"]
    proc = polyglot(*push)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (line,) = [row.split() for row in proc.stdout.splitlines() if row.startswith("hi ")]
    scratch_count = int(line[5])
    project = int(line[6])
    tasks = list(admin.tasks.list(project=project, fields="all", page_size=1000))
    scratch = [t for t in tasks if t.data["task_kind"] == "scratch"]
    assert scratch and len(scratch) == scratch_count
    queue = pl.read_parquet(ws / "review" / "queue.parquet")
    assert {t.data["conv_key"] for t in scratch} <= set(queue.filter(pl.col("reason") == "from scratch")["conv_key"])
    for t in scratch:  # an empty box: no prediction; the rejected draft is kept in the data but not shown
        assert not t.predictions and t.data["task_key"].endswith(":scratch")
        assert t.data["notes"].startswith("translate from scratch") and "back into English" not in t.data["quality"]
    corrections_ = [t for t in tasks if t.data["task_kind"] == "correction"]
    assert all(t.predictions for t in corrections_)
    task = scratch[0]
    admin.annotations.create(
        id=task.id,
        result=[{"from_name": "translation", "to_name": "english", "type": "textarea", "value": {"text": [WRITTEN]}}],
        lead_time=30.0,
    )
    proc = polyglot("review", "pull", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr[-3000:]
    force = corrections.in_force(ws, "hi")
    (row,) = force.filter(pl.col("task_id") == task.id).iter_rows(named=True)
    assert row["task_kind"] == "scratch" and row["edited"] and row["corrected_text"] == WRITTEN
    shard = pl.read_parquet(ws / "translations" / "hi" / "*.parquet").filter(
        pl.col("conv_key") == task.data["conv_key"]
    )
    turn = task.data["turn_index"]
    assert shard["conversations"][0][turn]["value"] == WRITTEN
    assert shard["turn_human"][0][turn] == "written" and shard["turn_qe_score"][0][turn] == 1.0
    assert shard["review_status"][0] == "written" and shard["human_corrected"][0]
    examples = [e for e in supervised_examples(ws, ["hi"]).examples if e.conv_key == task.data["conv_key"]]
    assert examples and all(e.kind == "written" for e in examples) and WRITTEN in {e.target for e in examples}
    # again: nothing new on either side
    again = polyglot(*push)
    assert again.returncode == 0 and len(list(admin.tasks.list(project=project, page_size=1000))) == len(tasks)
    history = corrections.history(ws).height
    assert polyglot("review", "pull", "--workspace", str(ws)).returncode == 0
    assert corrections.history(ws).height == history
