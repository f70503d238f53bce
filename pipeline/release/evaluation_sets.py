"""Evaluation sets in the LLaVA-Bench layout (PALO's multilingual benchmark): every item translated, every item
reviewed, released in the layout evaluators read.

LLaVA-Bench (In-the-Wild) is three JSON-lines files: ``questions.jsonl`` (``question_id``, ``image``, ``text``,
``category``), ``answers_gpt4.jsonl`` (``question_id``, ``text``, and e.g. ``answer_id``, ``model_id``,
``metadata``) and ``context.jsonl`` (``id``, ``image``, ``caption``). :func:`read_set` checks them line by line
(a bad line is named with its file and line number); :func:`conversations` turns each question with its
reference answer into one LLaVA conversation (human: question, assistant: answer) and each caption into a
one-turn conversation, so the whole translate path — units, memory, answer checks, language rules, QE — and
the review path apply unchanged. :func:`publish` writes a release with, per language, the same three files (the
English ones as given), every line carrying ``review_status`` (``reviewed``, ``corrected``, ``written`` or ``unreviewed``;
``source`` for English), plus a manifest with the sha256 of every file and a card counting the items a person
reviewed in each language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.languages import LANGUAGES
from pipeline.release.card import card_text
from pipeline.release.releases import write_release
from pipeline.storage import write_atomic

QUESTION_PREFIX, CONTEXT_PREFIX = "question-", "context-"
FILES = ("questions.jsonl", "answers_gpt4.jsonl", "context.jsonl")


class BenchmarkError(ValueError):
    """An evaluation-set file cannot be used as given (the message names the file, line and field)."""


@dataclass
class EvaluationSet:
    questions: list[dict]
    answers: dict[str, dict] = field(default_factory=dict)  # question_id (as text) → the answer line
    context: list[dict] = field(default_factory=list)


def _lines(path: Path, required: dict[str, tuple[type, ...]]) -> list[dict]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist")
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise BenchmarkError(f"{path}:{n}: not a JSON object ({exc}); each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise BenchmarkError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
        for key, types in required.items():
            if key not in obj:
                raise BenchmarkError(f"{path}:{n}: field {key!r} is missing (needed: {', '.join(required)})")
            if not isinstance(obj[key], types) or isinstance(obj[key], bool):
                raise BenchmarkError(
                    f"{path}:{n}: field {key!r} must be {' or '.join(t.__name__ for t in types)}, got {type(obj[key]).__name__}"
                )
            if isinstance(obj[key], str) and not obj[key].strip() and key in ("text", "caption"):
                raise BenchmarkError(f"{path}:{n}: field {key!r} is empty")
        out.append(obj)
    return out


def read_set(questions: Path, answers: Path | None = None, context: Path | None = None) -> EvaluationSet:
    """Read and check an evaluation set in the LLaVA-Bench layout."""
    qs = _lines(questions, {"question_id": (int, str), "image": (str,), "text": (str,), "category": (str,)})
    seen: set[str] = set()
    for q in qs:
        if str(q["question_id"]) in seen:
            raise BenchmarkError(f"{questions}: question_id {q['question_id']} appears twice; ids must be unique")
        seen.add(str(q["question_id"]))
    out = EvaluationSet(qs)
    if answers:
        for a in _lines(answers, {"question_id": (int, str), "text": (str,)}):
            if str(a["question_id"]) not in seen:
                raise BenchmarkError(
                    f"{answers}: answer for question_id {a['question_id']}, which {questions} does not have"
                )
            out.answers[str(a["question_id"])] = a
    if context:
        out.context = _lines(context, {"id": (int, str), "image": (str,), "caption": (str,)})
    return out


def conversations(data: EvaluationSet) -> list[dict]:
    """LLaVA conversations: a question with its reference answer; a caption alone."""
    out = []
    for q in data.questions:
        turns = [{"from": "human", "value": q["text"]}]
        answer = data.answers.get(str(q["question_id"]))
        if answer is not None:
            turns.append({"from": "gpt", "value": answer["text"]})
        out.append({"id": f"{QUESTION_PREFIX}{q['question_id']}", "image": q["image"], "conversations": turns})
    for c in data.context:
        out.append(
            {
                "id": f"{CONTEXT_PREFIX}{c['id']}",
                "image": c["image"],
                "conversations": [{"from": "human", "value": c["caption"]}],
            }
        )
    return out


def save(workspace: Path, data: EvaluationSet) -> Path:
    """The set as given (``benchmark/source.json``, for publishing) and as conversations (the translate input)."""
    folder = Path(workspace) / "benchmark"
    write_atomic(
        folder / "source.json",
        json.dumps(
            {"questions": data.questions, "answers": data.answers, "context": data.context},
            ensure_ascii=False,
            indent=1,
        )
        + "\n",
    )
    return write_atomic(
        folder / "conversations.jsonl", "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in conversations(data))
    )


def load(workspace: Path) -> EvaluationSet:
    path = Path(workspace) / "benchmark" / "source.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run 'polyglot benchmark translate' into this workspace first")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return EvaluationSet(raw["questions"], raw["answers"], raw["context"])


def _translated(workspace: Path, lang: str) -> dict[str, list[tuple[str, str]]]:
    """conversation id → per turn (text, review status) in ``lang``: a person's text and status where one
    decided the turn (``reviewed``, ``corrected`` or ``written`` from scratch), else the machine's and ``unreviewed``."""
    files = sorted((Path(workspace) / "translations" / lang).glob("shard-*.parquet"))
    if not files:
        return {}
    df = pl.read_parquet(files, columns=["id", "conversations", "turn_human"])
    return {
        row["id"]: [
            (t["value"], human if human in ("reviewed", "corrected", "written") else "unreviewed")
            for t, human in zip(row["conversations"], row["turn_human"] or [None] * len(row["conversations"]))
        ]
        for row in df.iter_rows(named=True)
    }


def publish(workspace: Path, version: str | None = None, langs: list[str] | None = None):
    """Release the evaluation set in every translated language (LLaVA-Bench layout per language)."""
    workspace = Path(workspace)
    data = load(workspace)
    available = (
        sorted(p.name for p in (workspace / "translations").iterdir() if p.is_dir())
        if (workspace / "translations").exists()
        else []
    )
    langs = [lang for lang in (langs or available) if lang in available and lang != "en"]
    if not langs:
        raise BenchmarkError(
            f"no translations in {workspace / 'translations'}: run 'polyglot benchmark translate' first"
        )
    counts: dict[str, dict] = {}

    def build(tmp: Path, _parent: str | None) -> dict:
        _write_language(tmp / "en", data, None)
        counts["en"] = {
            "questions": len(data.questions),
            "answers": len(data.answers),
            "context": len(data.context),
            "reviewed_items": None,
        }
        for lang in sorted(langs, key=list(LANGUAGES).index):
            counts[lang] = _write_language(tmp / lang, data, _translated(workspace, lang))
        return {"kind": "llava-bench", "languages": ["en", *langs], "counts": counts}

    return write_release(workspace, version, build, benchmark_card)


def _write_language(folder: Path, data: EvaluationSet, translated: dict | None) -> dict:
    """The three files for one language; counts of items, of reviewed items, and of items missing a translation."""
    folder.mkdir(parents=True)
    reviewed = missing = items = 0

    def text_of(conv_id: str, turn: int, english: str) -> tuple[str, str]:
        nonlocal reviewed, missing, items
        items += 1
        if translated is None:
            return english, "source"
        found = translated.get(conv_id)
        if found is None or turn >= len(found):
            missing += 1
            return english, "untranslated"
        text, status = found[turn]
        reviewed += status != "unreviewed"
        return text, status

    with (
        open(folder / "questions.jsonl", "w", encoding="utf-8") as qf,
        open(folder / "answers_gpt4.jsonl", "w", encoding="utf-8") as af,
    ):
        for q in data.questions:
            qid = str(q["question_id"])
            text, status = text_of(f"{QUESTION_PREFIX}{qid}", 0, q["text"])
            qf.write(json.dumps({**q, "text": text, "review_status": status}, ensure_ascii=False) + "\n")
            if qid in data.answers:
                answer = data.answers[qid]
                text, status = text_of(f"{QUESTION_PREFIX}{qid}", 1, answer["text"])
                af.write(json.dumps({**answer, "text": text, "review_status": status}, ensure_ascii=False) + "\n")
    with open(folder / "context.jsonl", "w", encoding="utf-8") as cf:
        for c in data.context:
            text, status = text_of(f"{CONTEXT_PREFIX}{c['id']}", 0, c["caption"])
            cf.write(json.dumps({**c, "caption": text, "review_status": status}, ensure_ascii=False) + "\n")
    return {
        "questions": len(data.questions),
        "answers": len(data.answers),
        "context": len(data.context),
        "items": items,
        "reviewed_items": reviewed if translated is not None else None,
        "untranslated_items": missing,
    }


def benchmark_card(manifest: dict) -> str:
    rows = []
    for lang in manifest["languages"]:
        c = manifest["counts"][lang]
        if c.get("reviewed_items") is None:
            rows.append(
                f"| {lang} | {LANGUAGES[lang].name} | {c['questions']} | {c['answers']} | {c['context']} | source | – |"
            )
        else:
            rows.append(
                f"| {lang} | {LANGUAGES[lang].name} | {c['questions']} | {c['answers']} | {c['context']} | "
                f"{c['reviewed_items']} of {c['items']} | {c['untranslated_items']} |"
            )
    return card_text(
        {"pretty_name": "LLaVA-Bench (multilingual, llava-polyglot)", "language": manifest["languages"]},
        "\n".join(
            [
                f"# Multilingual evaluation set {manifest['version']}",
                "",
                "The evaluation set in the LLaVA-Bench layout, one folder per language: `questions.jsonl`, "
                "`answers_gpt4.jsonl`, `context.jsonl`, read by LLaVA-Bench evaluators as they are. Every line keeps its "
                "original fields; `text` (or `caption`) is in the folder's language, and `review_status` says whether a "
                "native speaker checked it: `reviewed` (accepted as translated), `corrected` (their text), `unreviewed` "
                "(machine translation no person has checked yet: do not report scores on it as reviewed), "
                "`untranslated` (the English text, no translation yet), `source` (English).",
                "",
                "| lang | language | questions | answers | captions | items a person reviewed | untranslated |",
                "| --- | --- | --- | --- | --- | --- | --- |",
                *rows,
                "",
                "`manifest.json` holds the sha256 of every file; `polyglot release verify` checks them.",
                "",
            ]
        ),
    )
