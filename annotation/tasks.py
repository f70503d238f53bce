"""The Label Studio tasks of a review queue: one per translated turn a person has not decided yet, with the
conversation's image, its earlier turns, the English turn, the machine text pre-filled (or, for a rejected turn
routed to be translated from scratch, an empty box), the quality score with the back-translation, and what the
checks noticed and the fixers changed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl

from annotation.assets import ImageRoot, Served, no_image_root
from annotation.labeling import TRANSLATION
from pipeline.assemble.translations import translations
from pipeline.ingest.shards import shard_dirs
from pipeline.languages import LANGUAGES
from pipeline.review import corrections

ROLE_NAMES = {"human": "user", "gpt": "assistant", "system": "system"}


def task_key(conv_key: str, turn_index: int, lang: str, translator_version: str, scratch: bool = False) -> str:
    return f"{conv_key}:{turn_index}:{lang}:{translator_version}" + (":scratch" if scratch else "")


WRITE = (
    "translate from scratch: the machine's {language} translation of this turn was rejected by the quality checks "
    "and is not shown; write yours in the empty box"
)


def _notes(reasons: list[str], fixes_json: str, flags: list[str]) -> str:
    lines = [f"quality check: {r}" for r in reasons or []]
    lines += [f"machine flag: {f}" for f in flags or [] if f not in (reasons or [])]
    # the same fix made several times in one turn is one line with a count
    fixes = Counter((c["rule"], c["before"], c["after"]) for c in json.loads(fixes_json or "[]"))
    for (rule, before, after), times in fixes.items():
        # isolates (U+2068 … U+2069) keep right-to-left snippets from reordering the English line around them
        count = f" ({times} times)" if times > 1 else ""
        lines.append(f"fixed automatically ({rule}): \u2068{before}\u2069 became \u2068{after}\u2069{count}")
    return "\n".join(lines) or "nothing noticed, nothing changed"


def _quality(score: float | None, back_translation: str | None) -> str:
    """The score and the back-translation as a reviewer reads them."""
    lines = [
        f"quality score {score:.2f} (the estimated chance that the translation is usable)"
        if score is not None
        else "quality score: none"
    ]
    lines.append(
        f"back into English: {back_translation}" if back_translation else "back into English: not asked for this turn"
    )
    return "\n".join(lines)


def build_tasks(
    workspace: Path,
    lang: str,
    conv_keys: list[str],
    image_root: ImageRoot | None = None,
    served: Served | None = None,
    scratch: frozenset[str] = frozenset(),
) -> list[dict]:
    """Label Studio tasks (data + prediction) for every translated turn of ``conv_keys`` in ``lang`` that no
    person decided yet, each with the conversation's image (or a note saying why there is none).

    In the conversations of ``scratch`` (routed to be translated from scratch), a turn the quality checks rejected
    becomes a from-scratch task: no prediction (an empty box) and no back-translation — the rejected draft is not
    shown, because it was judged unusable (wrong language or script, a loop, another sentence's meaning) and a
    draft anchors whoever edits it; the person's text is an independent translation. The draft stays in the task's
    data (``machine_text``) for the record. Their other turns are corrections as usual."""
    if not conv_keys:
        return []
    wanted = list(conv_keys)
    columns = [
        "conv_key",
        "id",
        "image",
        "conversations",
        "translator_version",
        "turn_qe_reasons",
        "turn_flags",
        "fixes",
        "turn_human",
        "turn_qe_score",
        "turn_back_translation",
        "turn_qe_status",
    ]
    mt = translations(workspace, [lang], columns).filter(pl.col("conv_key").is_in(wanted))
    turn_files = [d / "turns.parquet" for d in shard_dirs(workspace / "ingest")]
    source = (
        pl.read_parquet(turn_files, columns=["conv_key", "turn_index", "role", "value", "n_units"])
        .filter(pl.col("conv_key").is_in(wanted))
        .sort("conv_key", "turn_index")
    )
    english: dict[str, list[tuple[str, str, int]]] = {}
    for k, role, value, n_units in zip(source["conv_key"], source["role"], source["value"], source["n_units"]):
        english.setdefault(k, []).append((role, value, n_units))
    tasks = []
    for row in mt.sort("conv_key").iter_rows(named=True):
        turns = english[row["conv_key"]]
        picture = image_root.task_fields(row["image"], served) if image_root else no_image_root(row["image"])
        for i, ((role, value, n_units), turn) in enumerate(zip(turns, row["conversations"])):
            if n_units == 0 or (row["turn_human"] and row["turn_human"][i]):
                continue
            context = "\n\n".join(f"{ROLE_NAMES.get(r, r)}: {v}" for r, v, _ in turns[:i]) or "(this is the first turn)"
            from_scratch = row["conv_key"] in scratch and row["turn_qe_status"][i] == "rejected"
            key = task_key(row["conv_key"], i, lang, row["translator_version"], from_scratch)
            data = {
                "task_key": key,
                "task_kind": corrections.SCRATCH if from_scratch else "correction",
                "lang": lang,
                "conv_key": row["conv_key"],
                "conversation_id": row["id"],
                "turn_index": i,
                "role": ROLE_NAMES.get(role, role),
                "english": value,
                "context": context,
                "notes": WRITE.format(language=LANGUAGES[lang].name)
                if from_scratch
                else _notes(row["turn_qe_reasons"][i], row["fixes"][i], row["turn_flags"][i]),
                "quality": "the machine's translation was rejected: no score or back-translation to show"
                if from_scratch
                else _quality(row["turn_qe_score"][i], row["turn_back_translation"][i]),
                "machine_text": turn["value"],
                "translator_version": row["translator_version"],
                **picture,
            }
            prediction = {
                "model_version": row["translator_version"],
                "result": [
                    {
                        "from_name": TRANSLATION,
                        "to_name": "english",
                        "type": "textarea",
                        "value": {"text": [turn["value"]]},
                    }
                ],
            }
            tasks.append({"data": data, "predictions": [] if from_scratch else [prediction]})
    return tasks
