"""Native-speaker review against a real Label Studio server (and the real vLLM server for the translations).

The tests of this module run in order on one workspace: push → reviewers annotate through the API with their
own accounts and tokens → pull → re-push/re-pull → edit → server stopped → agreement → a later machine run →
the Urdu page in a headless browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import requests
from label_studio_sdk import LabelStudio
from sacrebleu.metrics import CHRF

from pipeline.review import corrections

from .conftest import LENIENT_QE, LLAVA, admin_page, polyglot

QA90 = LLAVA / "coco_val_qa90_gpt4.json"
# What a reviewer might type: Urdu with a no-break space, a double space, a trailing space, a line break,
# a right-to-left mark and Arabic-Indic digits — it must come back byte for byte.
URDU_FIX = "یہ تصویر میں  ایک\u00a0میز ہے۔\nاس پر ۳ پلیٹیں ہیں\u200f، اور گلاس۔ "
BROWSER_FIX = "میز پر تین پلیٹیں ہیں۔\nاور گلاس بھی۔"
HINDI_FIX = "मेज़ पर तीन प्लेटें हैं।\n\nऔर  गिलास भी।"


@pytest.fixture(scope="module")
def ws(vllm_server, labelstudio_server, tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("review-ws")
    qe_config = workspace.parent / "lenient-qe.json"
    qe_config.write_text(json.dumps(LENIENT_QE))
    proc = polyglot(
        "translate",
        str(QA90),
        "--workspace",
        str(workspace),
        "--langs",
        "ur,hi",
        "--server",
        vllm_server.url,
        "--limit",
        "20",
        "--no-progress",
        "--qe-config",
        str(qe_config),
        "--scratch-share",
        "0",  # corrections only here: the from-scratch tasks of rejected turns are tests/test_scratch.py's
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    queue = pl.read_parquet(workspace / "review" / "queue.parquet")
    assert set(queue["lang"]) == {"ur", "hi"}, queue
    return workspace


@pytest.fixture(scope="module")
def admin(labelstudio_server) -> LabelStudio:
    return LabelStudio(base_url=labelstudio_server.url, api_key=os.environ["LABEL_STUDIO_API_KEY"])


def sign_up(url: str, email: str, password: str) -> str:
    """A reviewer signs up through the invite link (as in a browser) and reads their own API token."""
    invite = polyglot("review", "invite")
    assert invite.returncode == 0, invite.stderr
    link = invite.stdout.strip()
    assert link.startswith(url + "/user/signup/?token=")
    session = requests.Session()
    session.get(link, timeout=60)
    r = session.post(
        link,
        data={"email": email, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": link},
        timeout=60,
    )
    assert r.status_code == 200
    token = session.get(f"{url}/api/current-user/token", timeout=60)
    assert token.status_code == 200, token.text
    return token.json()["token"]


def result(text: str, categories: list[str], rating: int) -> list[dict]:
    return [
        {"from_name": "translation", "to_name": "english", "type": "textarea", "value": {"text": [text]}},
        {"from_name": "categories", "to_name": "english", "type": "choices", "value": {"choices": categories}},
        {"from_name": "rating", "to_name": "english", "type": "rating", "value": {"rating": rating}},
    ]


def project_tasks(client: LabelStudio, project_id: int) -> list:
    return sorted(client.tasks.list(project=project_id, fields="all", page_size=1000), key=lambda t: t.data["task_key"])


def history(ws: Path) -> pl.DataFrame:
    return corrections.history(ws)


def shard_turn(ws: Path, lang: str, conv_key: str, turn: int) -> dict:
    df = pl.read_parquet(ws / "translations" / lang / "*.parquet").filter(pl.col("conv_key") == conv_key)
    row = df.row(0, named=True)
    return {
        "value": row["conversations"][turn]["value"],
        "human": row["turn_human"][turn],
        "qe": row["turn_qe_status"][turn],
        "review_status": row["review_status"],
        "human_corrected": row["human_corrected"],
    }


STATE: dict = {}


def test_push_creates_one_task_per_turn_and_is_idempotent(ws, admin):
    proc = polyglot("review", "push", "--workspace", str(ws), "--langs", "ur,hi", "--overlap", "0.5")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    projects = json.loads((ws / "review" / "projects.json").read_text())
    assert set(projects) == {"ur", "hi"}
    queue = pl.read_parquet(ws / "review" / "queue.parquet")
    for lang, project_id in projects.items():
        tasks = project_tasks(admin, project_id)
        keys = [t.data["task_key"] for t in tasks]
        assert len(keys) == len(set(keys)) > 0
        assert {t.data["conv_key"] for t in tasks} == set(queue.filter(pl.col("lang") == lang)["conv_key"])
        for t in tasks:  # the prediction carries the translator version and the machine text
            assert t.data["task_key"].endswith(f":{lang}:{t.data['translator_version']}")
            prediction = t.predictions[0].dict()
            assert prediction["model_version"] == t.data["translator_version"]
            assert prediction["result"][0]["value"]["text"] == [t.data["machine_text"]]
        project = admin.projects.get(id=project_id)
        assert project.maximum_annotations == 2 and project.overlap_cohort_percentage == 50
        assert 0 < sum(t.overlap == 2 for t in tasks) < len(tasks) + 1
        STATE[lang] = {"project": project_id, "tasks": tasks}
    ur_config = admin.projects.get(id=projects["ur"]).label_config
    assert "direction: rtl" in ur_config and "Nastaliq" in ur_config
    assert "direction: ltr" in admin.projects.get(id=projects["hi"]).label_config
    counts_before = {lang: len(s["tasks"]) for lang, s in STATE.items()}
    again = polyglot("review", "push", "--workspace", str(ws), "--langs", "ur,hi", "--overlap", "0.5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {lang: len(project_tasks(admin, s["project"])) for lang, s in STATE.items()} == counts_before
    lines = {line.split()[0]: line.split() for line in again.stdout.splitlines() if line[:2] in ("ur", "hi")}
    assert lines["ur"][3] == "0" and lines["hi"][3] == "0", again.stdout  # nothing new
    pushed = pl.read_parquet(ws / "review" / "pushed.parquet")
    assert pushed.height == sum(counts_before.values()) and pushed["task_key"].n_unique() == pushed.height


def test_projects_belong_to_the_workspace_that_created_them(ws, admin, tmp_path):
    """A second workspace on the same server is refused the titles this one owns (its tasks would mix into our
    projects); this workspace, having lost projects.json, finds its own projects again by title."""

    def counts() -> dict[int, int]:
        return {pid: len(project_tasks(admin, pid)) for pid in (STATE["ur"]["project"], STATE["hi"]["project"])}

    before, n_projects = counts(), len(list(admin.projects.list()))
    owner = (ws / "review" / "workspace.id").read_text().strip()
    assert all(owner in admin.projects.get(id=pid).description for pid in before)
    other = tmp_path / "other-ws"
    shutil.copytree(ws, other, ignore=shutil.ignore_patterns("projects.json", "workspace.id", "pushed.parquet"))
    refused = polyglot("review", "push", "--workspace", str(other), "--langs", "ur,hi", "--overlap", "0.5")
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-3000:]
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr  # one clear line, no Prefect record above it
    last = refused.stderr.strip().splitlines()[-1]
    assert re.search(
        r"already has a project titled 'llava-polyglot · (Urdu \(ur\)|Hindi \(hi\))' \(id \d+\) that "
        r"belongs to workspace [0-9a-f]{8}",
        last,
    ), last
    assert "--project-prefix" in last
    assert counts() == before and len(list(admin.projects.list())) == n_projects
    own = polyglot(
        "review",
        "push",
        "--workspace",
        str(other),
        "--langs",
        "ur,hi",
        "--overlap",
        "0.5",
        "--project-prefix",
        "second",
    )
    assert own.returncode == 0, own.stderr[-3000:]
    second = json.loads((other / "review" / "projects.json").read_text())
    assert set(second.values()).isdisjoint(before) and counts() == before
    for pid in second.values():
        admin.projects.delete(id=pid)

    recorded = ws / "review" / "projects.json"
    saved = recorded.read_text()
    recorded.unlink()
    again = polyglot("review", "push", "--workspace", str(ws), "--langs", "ur,hi", "--overlap", "0.5")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(recorded.read_text()) == json.loads(saved) and counts() == before


def test_two_reviewers_annotate_and_pull_brings_corrections_back_exactly(ws, admin, labelstudio_server):
    url = labelstudio_server.url
    STATE["amina"] = LabelStudio(
        base_url=url, api_key=sign_up(url, "amina@reviewers.invalid", "correct-horse-7-battery")
    )
    STATE["ravi"] = LabelStudio(base_url=url, api_key=sign_up(url, "ravi@reviewers.invalid", "staple-9-tulip-lantern"))
    ur, hi = STATE["ur"]["tasks"], STATE["hi"]["tasks"]
    # Amina edits an Urdu turn; Ravi accepts another as it is and also reviews Amina's turn (overlap).
    edited = STATE["amina"].annotations.create(
        id=ur[0].id, result=result(URDU_FIX, ["grammar", "terminology"], 2), lead_time=41.5
    )
    STATE["ur_edited"] = (ur[0], edited.id)
    STATE["ravi"].annotations.create(id=ur[1].id, result=result(ur[1].data["machine_text"], ["ok"], 5), lead_time=7.25)
    STATE["ravi"].annotations.create(
        id=ur[0].id, result=result(URDU_FIX.replace("  ", " "), ["grammar"], 3), lead_time=12.0
    )
    # Ravi edits a Hindi turn; Amina skips another.
    STATE["ravi"].annotations.create(id=hi[0].id, result=result(HINDI_FIX, ["mistranslation"], 1), lead_time=30.0)
    STATE["amina"].annotations.create(id=hi[1].id, result=[], was_cancelled=True, lead_time=3.0)

    proc = polyglot("review", "pull", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    h = history(ws)
    assert h.height == 5 and h["annotation_id"].n_unique() == 5
    amina = h.filter(pl.col("annotation_id") == edited.id).row(0, named=True)
    assert amina["corrected_text"] == URDU_FIX  # exact: spaces, no-break space, newline, RTL mark, trailing space
    assert amina["reviewer"] == "amina@reviewers.invalid" and amina["edited"] and not amina["skipped"]
    assert amina["categories"] == ["grammar", "terminology"] and amina["rating"] == 2 and amina["lead_time"] == 41.5
    assert amina["machine_text"] == ur[0].data["machine_text"] and amina["source"] == ur[0].data["english"]
    accepted = h.filter(pl.col("task_id") == ur[1].id).row(0, named=True)
    assert (
        accepted["corrected_text"] == ur[1].data["machine_text"]
        and not accepted["edited"]
        and accepted["reviewer"] == "ravi@reviewers.invalid"
    )
    skipped = h.filter(pl.col("task_id") == hi[1].id).row(0, named=True)
    assert skipped["skipped"] and skipped["corrected_text"] is None
    assert h.filter(pl.col("task_id") == hi[0].id)["corrected_text"].to_list() == [HINDI_FIX]

    # Humans win in the translated data. Two reviewers on ur[0]: the later word (Ravi's) is in force.
    t0 = shard_turn(ws, "ur", ur[0].data["conv_key"], ur[0].data["turn_index"])
    assert t0["value"] == URDU_FIX.replace("  ", " ") and t0["human"] == "corrected" and t0["qe"] == "accepted"
    assert t0["human_corrected"] and t0["review_status"] == "corrected"
    t1 = shard_turn(ws, "ur", ur[1].data["conv_key"], ur[1].data["turn_index"])
    assert t1["value"] == ur[1].data["machine_text"] and t1["human"] == "reviewed"
    assert shard_turn(ws, "hi", hi[0].data["conv_key"], hi[0].data["turn_index"])["value"] == HINDI_FIX
    assert (
        shard_turn(ws, "hi", hi[1].data["conv_key"], hi[1].data["turn_index"])["human"] is None
    )  # skipped: machine text stays
    reviewed = pl.read_parquet(ws / "review" / "reviewed.parquet")
    assert {(r["lang"], r["conv_key"]) for r in reviewed.iter_rows(named=True)} >= {
        ("ur", ur[0].data["conv_key"]),
        ("hi", hi[1].data["conv_key"]),
    }

    # Pull again, push again: nothing added anywhere.
    again = polyglot("review", "pull", "--workspace", str(ws))
    assert again.returncode == 0 and "corrections: nothing new" in again.stdout, again.stdout + again.stderr
    assert history(ws).height == 5
    push = polyglot("review", "push", "--workspace", str(ws), "--langs", "ur,hi", "--overlap", "0.5")
    assert push.returncode == 0, push.stderr[-3000:]
    for lang in ("ur", "hi"):
        assert len(project_tasks(admin, STATE[lang]["project"])) == len(STATE[lang]["tasks"])


def test_an_edited_annotation_supersedes_the_earlier_one(ws, labelstudio_server):
    task, annotation_id = STATE["ur_edited"]
    newer = URDU_FIX + "\nتصحیح شدہ"
    STATE["amina"].annotations.update(id=annotation_id, result=result(newer, ["grammar"], 3), lead_time=50.0)
    proc = polyglot("review", "pull", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr[-3000:]
    h = history(ws)
    versions = h.filter(pl.col("annotation_id") == annotation_id).sort("updated_at")
    assert versions["corrected_text"].to_list() == [URDU_FIX, newer]  # history keeps both
    assert h.height == 6
    force = corrections.in_force(ws, "ur").filter(pl.col("task_id") == task.id)
    assert force["corrected_text"].to_list() == [newer]  # Amina's edit is now the latest word on that turn
    assert shard_turn(ws, "ur", task.data["conv_key"], task.data["turn_index"])["value"] == newer


def test_pull_with_the_server_stopped_loses_nothing(ws, labelstudio_server):
    hi = STATE["hi"]["tasks"]
    late = STATE["amina"].annotations.create(id=hi[2].id, result=result("देर से आया सुधार", ["grammar"], 4), lead_time=9.0)
    before = history(ws).height
    state_before = (ws / "review" / "pull_state.json").read_text()
    down = polyglot("services", "down", "labelstudio", "--port", str(labelstudio_server.port))
    assert down.returncode == 0, down.stderr
    proc = polyglot("review", "pull", "--workspace", str(ws))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert labelstudio_server.url in proc.stderr and "polyglot services up labelstudio" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert history(ws).height == before and (ws / "review" / "pull_state.json").read_text() == state_before
    data_ws = Path(labelstudio_server.model).parent
    up = polyglot("services", "up", "labelstudio", "--port", str(labelstudio_server.port), "--workspace", str(data_ws))
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-3000:]
    proc = polyglot("review", "pull", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr[-3000:]
    h = history(ws)
    assert h.height == before + 1 and h.filter(pl.col("annotation_id") == late.id)["corrected_text"].to_list() == [
        "देर से आया सुधार"
    ]


def test_agreement_between_reviewers_is_reported(ws):
    agreement = pl.read_parquet(ws / "reports" / "review_agreement.parquet")
    ur = agreement.filter(pl.col("lang") == "ur").row(0, named=True)
    assert ur["tasks_with_overlap"] == 1 and ur["pairs"] == 1
    a, b = URDU_FIX + "\nتصحیح شدہ", URDU_FIX.replace("  ", " ")
    chrf = CHRF()
    expected = (chrf.sentence_score(a, [b]).score + chrf.sentence_score(b, [a]).score) / 2
    assert ur["mean_chrf"] == pytest.approx(expected, abs=0.01) and 0 < ur["mean_chrf"] < 100
    assert ur["category_exact_share"] == 1.0  # both ticked exactly "grammar" after Amina's edit
    assert ur["mean_rating_gap"] == 0.0
    assert agreement.filter(pl.col("lang") == "hi").height == 0  # no Hindi task has two reviewers


def test_a_later_machine_run_keeps_human_text(ws, vllm_server):
    task, _ = STATE["ur_edited"]
    human = shard_turn(ws, "ur", task.data["conv_key"], task.data["turn_index"])["value"]
    proc = polyglot(
        "translate",
        "--workspace",
        str(ws),
        "--langs",
        "ur,hi",
        "--server",
        vllm_server.url,
        "--no-progress",
        "--qe-config",
        str(ws.parent / "lenient-qe.json"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = shard_turn(ws, "ur", task.data["conv_key"], task.data["turn_index"])
    assert after["value"] == human and after["human"] == "corrected"
    queue = pl.read_parquet(ws / "review" / "queue.parquet")
    reviewed = pl.read_parquet(ws / "review" / "reviewed.parquet")
    assert queue.join(reviewed, on=["lang", "conv_key"]).height == 0  # people are not asked twice


def test_urdu_page_is_right_to_left_with_the_translation_prefilled(ws, labelstudio_server, admin, tmp_path):
    # a task nobody annotated yet, asked of the server now (the earlier tests annotated some)
    task = next(t for t in reversed(project_tasks(admin, STATE["ur"]["project"])) if not t.annotations)
    machine = task.data["machine_text"]
    url = labelstudio_server.url
    with admin_page(url, height=1000) as page:
        page.goto(f"{url}/projects/{STATE['ur']['project']}/data?task={task.id}")
        target = page.locator(".pg-target").first
        target.wait_for(timeout=60_000)
        page.wait_for_function(
            "text => document.querySelector('.pg-target').innerText.replace(/\\s+/g, ' ').includes(text)",
            arg=" ".join(machine.split())[:40],
            timeout=60_000,
        )
        shot = tmp_path / "urdu-task.png"
        page.screenshot(path=str(shot), full_page=True)
        holder = target.get_by_text(" ".join(machine.split())[:20], exact=False).first
        assert holder.evaluate("e => getComputedStyle(e).direction") == "rtl"
        assert target.evaluate("e => getComputedStyle(e).direction") == "rtl"
        assert "Nastaliq" in holder.evaluate("e => getComputedStyle(e).fontFamily")
        english = page.get_by_text(" ".join(task.data["english"].split())[:30], exact=False).first
        assert english.evaluate("e => getComputedStyle(e).direction") == "ltr"
        # Correct it the way a reviewer does: the pencil, type, tick a category, Submit.
        target.locator(".lsf-textarea__actions button").first.click()
        target.locator("textarea").first.fill(BROWSER_FIX)
        page.get_by_text("Error categories").click()
        page.locator("label:has-text('omission')").first.click()
        page.screenshot(path=str(tmp_path / "urdu-task-edited.png"), full_page=True)
        page.get_by_role("button", name="Submit").click()
        page.wait_for_function("() => !document.querySelector('.pg-target textarea')", timeout=30_000)
    assert shot.stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")
    proc = polyglot("review", "pull", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = corrections.history(ws).filter(pl.col("task_id") == task.id).row(0, named=True)
    assert row["corrected_text"] == BROWSER_FIX and row["edited"] and row["categories"] == ["omission"]
    assert row["reviewer"] == os.environ["LABEL_STUDIO_USERNAME"]


def test_notes_list_each_fix_once_with_a_count():
    from annotation.tasks import _notes

    fixes = [
        {"rule": "ur.letters", "before": "ي", "after": "ی"},
        {"rule": "ur.letters", "before": "ك", "after": "ک"},
        {"rule": "ur.letters", "before": "ي", "after": "ی"},
        {"rule": "ur.letters", "before": "ي", "after": "ی"},
    ]
    lines = _notes(["length ratio 3.1 above 2.5"], json.dumps(fixes), ["truncated"]).splitlines()
    assert lines == [
        "quality check: length ratio 3.1 above 2.5",
        "machine flag: truncated",
        "fixed automatically (ur.letters): \u2068ي\u2069 became \u2068ی\u2069 (3 times)",
        "fixed automatically (ur.letters): \u2068ك\u2069 became \u2068ک\u2069",
    ]
    assert _notes([], "[]", []) == "nothing noticed, nothing changed"
