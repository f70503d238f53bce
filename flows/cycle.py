"""Prefect flow ``cycle``: translate → QE and routing → push → pull → fine-tune → re-translate, resumable.

Each finished step is written to ``WORKSPACE/cycle/state.json`` (temporary file + rename) before the next one
starts, so a rerun after a crash, a failed step or a stop carries on at the first unfinished step. The pull
step waits for people: while fewer than ``min_corrections`` corrections arrived since the last fine-tune, the
cycle stops there (nothing lost) and the next run pulls again. When the last step is done the round is
complete and the next run starts round N+1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow

from flows.finetune import finetune_flow
from flows.review import review_pull_flow, review_push_flow
from flows.translate import translate_flow
from pipeline.languages import parse_languages
from pipeline.review import corrections
from pipeline.storage import write_atomic

STEPS = ("translate", "push", "pull", "finetune", "retranslate")


def state_path(workspace: Path) -> Path:
    return Path(workspace) / "cycle" / "state.json"


def load_state(workspace: Path) -> dict:
    path = state_path(workspace)
    if not path.exists():
        return {"round": 1, "done": {}, "last_finetune_at": None}
    return json.loads(path.read_text())


def _save(workspace: Path, state: dict) -> None:
    write_atomic(state_path(workspace), json.dumps(state, indent=2, ensure_ascii=False) + "\n")


def new_corrections(workspace: Path, langs: list[str], since: str | None) -> int:
    """Corrections in force for ``langs`` updated after ``since`` (ISO time; None: all)."""
    df = corrections.in_force(workspace)
    df = df.filter(df["lang"].is_in(langs))
    if since:
        cutoff = datetime.fromisoformat(since)
        df = df.filter(df["updated_at"] > cutoff)
    return df.height


@flow(name="cycle", log_prints=False)
def cycle_flow(
    inputs: list[str],
    workspace: str,
    server: str,
    langs: str = "all",
    min_corrections: int = 1,
    project_prefix: str = "llava-polyglot",
    overlap: float = 0.1,
    translate: dict | None = None,
    finetune: dict | None = None,
) -> dict:
    """One round of the loop; returns {round, ran, skipped, waiting, complete, results}."""
    if min_corrections < 1:
        raise ValueError(f"min_corrections must be at least 1, got {min_corrections}")
    ws = Path(workspace)
    languages = [lang for lang in parse_languages(langs) if lang != "en"]
    state = load_state(ws)
    if all(step in state["done"] for step in STEPS):
        state = {"round": state["round"] + 1, "done": {}, "last_finetune_at": state.get("last_finetune_at")}
        _save(ws, state)
    translate = translate or {}
    out = {"round": state["round"], "ran": [], "skipped": [], "waiting": None, "complete": False, "results": {}}

    def run(step: str, fn) -> bool:
        if step in state["done"]:
            out["skipped"].append(step)
            return True
        result = fn()
        if result is None:
            return False
        state["done"][step] = {"at": datetime.now(UTC).isoformat(), "summary": _brief(result)}
        _save(ws, state)
        out["ran"].append(step)
        out["results"][step] = result
        return True

    def pull():
        result = review_pull_flow(workspace, ",".join(languages))
        arrived = new_corrections(ws, languages, state.get("last_finetune_at"))
        if arrived < min_corrections:
            out["waiting"] = (
                f"{arrived} correction(s) since the last fine-tune, {min_corrections} needed: reviewers are at work in "
                f"Label Studio; run the cycle again to pull and go on"
            )
            return None
        return {**result, "new_corrections": arrived}

    def tune():
        started = datetime.now(UTC).isoformat()
        result = finetune_flow(workspace, server, ",".join(languages), **(finetune or {}))
        state["last_finetune_at"] = started
        return result

    steps = [
        ("translate", lambda: translate_flow(inputs, workspace, ",".join(["en", *languages]), server, **translate)),
        ("push", lambda: review_push_flow(workspace, ",".join(languages), project_prefix, overlap)),
        ("pull", pull),
        ("finetune", tune),
        ("retranslate", lambda: translate_flow([], workspace, ",".join(["en", *languages]), server, **translate)),
    ]
    for step, fn in steps:
        if not run(step, fn):
            return out
    out["complete"] = True
    return out


def _brief(result: dict) -> dict:
    """What the state file keeps of a step's result: small scalars only."""
    keep = {}
    for key in ("requests_sent", "unique_pairs_requested", "new_corrections", "corrections_file", "report"):
        if key in result:
            keep[key] = result[key]
    if "adapter" in result:
        keep["adapter"] = result["adapter"]["version"]
        keep["activated"] = [d["lang"] for d in result["decisions"] if d["activated"]]
    return keep
