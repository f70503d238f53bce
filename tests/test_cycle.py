"""The whole loop as one resumable Prefect flow, against the real vLLM server and the real Label Studio:
translate → push → (reviewers work) → pull → fine-tune → re-translate, stopping and going on at each step.
"""

from __future__ import annotations

import json
import os

import pytest
from label_studio_sdk import LabelStudio

from annotation.labeling import TRANSLATION
from flows.cycle import load_state
from pipeline.review import corrections

from .conftest import LENIENT_QE, LLAVA, polyglot


@pytest.fixture(scope="module")
def setup(vllm_server, labelstudio_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("cycle")
    source = root / "six.json"
    source.write_text(json.dumps(json.loads((LLAVA / "coco_val_qa90_gpt4.json").read_text())[:8]))
    qe = root / "lenient-qe.json"
    qe.write_text(json.dumps(LENIENT_QE))
    return root / "ws", source, qe, vllm_server.url


def cycle(setup, *extra: str):
    ws, source, qe, url = setup
    return polyglot(
        "cycle",
        str(source),
        "--workspace",
        str(ws),
        "--server",
        url,
        "--langs",
        "hi,ur",
        "--project-prefix",
        "cycle-test",
        "--qe-config",
        str(qe),
        "--bt-rate",
        "0",
        "--max-steps",
        "30",
        "--held-out",
        "0.34",
        *extra,
    )


def test_cycle_stops_for_reviews_fails_in_training_and_goes_on_where_it_stopped(setup):
    ws = setup[0]
    first = cycle(setup)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "waiting:" in first.stdout and "round 1 not complete" in first.stdout
    assert set(load_state(ws)["done"]) == {"translate", "push"}

    # a reviewer corrects every pushed turn in Label Studio (each prose line rewritten, structure kept)
    client = LabelStudio(base_url=os.environ["LABEL_STUDIO_URL"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
    projects = json.loads((ws / "review" / "projects.json").read_text()).values()
    tasks = [t for project in projects for t in client.tasks.list(project=project, fields="all", page_size=1000)]
    assert tasks
    for n, task in enumerate(tasks):
        lines = task.data["english"].split("\n")
        text = "\n".join(
            line if not line.strip() or line.strip() == "<image>" else f"सुधारी गई पंक्ति {n}।" for line in lines
        )
        client.annotations.create(
            id=task.id,
            result=[
                {"from_name": TRANSLATION, "to_name": "english", "type": "textarea", "value": {"text": [text]}},
            ],
        )

    failed = cycle(setup, "--base-model", str(ws / "missing-model"))
    assert failed.returncode == 2 and "training the adapter failed" in failed.stderr, failed.stderr[-2000:]
    state = load_state(ws)
    assert set(state["done"]) == {"translate", "push", "pull"}
    assert state["done"]["pull"]["summary"]["new_corrections"] == len(tasks)
    assert not (ws / "translator" / "active.json").exists()

    pulled = len(corrections.history(ws))
    third = cycle(setup)
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-3000:]
    assert "round 1 translate   done before" in third.stdout and "round 1 pull        done before" in third.stdout
    assert "round 1 finetune    ran" in third.stdout and "round 1 retranslate ran" in third.stdout
    assert "round 1 complete" in third.stdout
    assert len(corrections.history(ws)) == pulled  # the pull was not repeated
    assert (ws / "adapters" / "a0001" / "polyglot.json").exists()

    fourth = cycle(setup)  # a new round: nothing new from people yet
    assert fourth.returncode == 0, fourth.stdout[-2000:] + fourth.stderr[-3000:]
    assert "round 2 translate   ran" in fourth.stdout and "waiting: 0 correction(s)" in fourth.stdout
    assert load_state(ws)["round"] == 2
