"""Push the routing queue to Label Studio as tasks; pull annotations back as corrections; reviewer agreement.

One task per translated turn of a queued conversation (turns without translatable text are left out). Its
stable key ``conv_key:turn:lang:translator_version`` makes the push idempotent: keys already on the server are
never imported again. The pull asks only for tasks updated since the last pull (Label Studio bumps a task's
``updated_at`` when an annotation on it is created or edited), keeps every annotation version it has not seen
(``annotation_id`` + ``updated_at``) and moves its cursor only after the new rows are safely on disk, so a
failed pull loses nothing and the next one picks everything up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from label_studio_sdk import LabelStudio

from annotation.assets import ImageRoot, link_images, served_folder
from annotation.client import ensure_project, guarded, known_projects
from annotation.labeling import CATEGORIES_CONTROL, RATING, TRANSLATION
from annotation.tasks import build_tasks
from pipeline.assemble.humans import apply_to_table
from pipeline.review import corrections
from pipeline.review.routing import FROM_SCRATCH
from pipeline.storage import write_atomic

IMPORT_BATCH = 250
PAGE_SIZE = 200
CURSOR_SLACK = timedelta(seconds=5)  # re-ask a little before the cursor: clocks and transactions are not exact
LS_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass
class PushCounts:
    conversations: int = 0
    tasks: int = 0  # built from the queue
    scratch: int = 0  # of those, turns to translate from scratch
    already_there: int = 0
    created: int = 0
    project_id: int = 0


def _server_tasks(client: LabelStudio, project_id: int) -> dict[str, int]:
    """task_key → task id of every task in the project."""
    out = {}
    for t in client.tasks.list(project=project_id, include="id,data", page_size=1000):
        key = (t.data or {}).get("task_key")
        if key:
            out[key] = t.id
    return out


def push(
    client: LabelStudio,
    url: str,
    workspace: Path,
    langs: list[str],
    prefix: str = "llava-polyglot",
    overlap: float = 0.1,
    image_root: ImageRoot | None = None,
) -> dict[str, PushCounts]:
    """Send the routing queue of ``langs``; keys already on the server are skipped. Writes ``review/pushed.parquet``.

    Tasks show the conversation's image from ``image_root`` (a URL prefix, or a local folder Label Studio serves
    from its served folder); the pages use the fonts served there."""
    workspace = Path(workspace)
    served = served_folder()
    if served is not None and image_root is not None and image_root.folder is not None:
        link_images(served, image_root.folder)
    queue_path = corrections.review_dir(workspace) / "queue.parquet"
    if not queue_path.exists():
        raise FileNotFoundError(
            f"no review queue at {queue_path}: run 'polyglot translate' first (it routes conversations)"
        )
    queue = pl.read_parquet(queue_path)
    out: dict[str, PushCounts] = {}
    ledger = []
    for lang in langs:
        if lang == "en":
            continue
        mine = queue.filter(pl.col("lang") == lang)
        keys = mine["conv_key"].unique().to_list()
        scratch = frozenset(mine.filter(pl.col("reason") == FROM_SCRATCH)["conv_key"])
        counts = out[lang] = PushCounts(conversations=len(keys))
        tasks = build_tasks(workspace, lang, keys, image_root, served, scratch)
        counts.scratch = sum(1 for t in tasks if t["data"]["task_kind"] == corrections.SCRATCH)
        counts.tasks = len(tasks)
        with guarded(url, f"pushing {lang}"):
            images = image_root is not None and image_root.folder is not None
            project_id = counts.project_id = ensure_project(client, workspace, lang, prefix, overlap, served, images)
            on_server = _server_tasks(client, project_id)
            new = [t for t in tasks if t["data"]["task_key"] not in on_server]
            counts.already_there = len(tasks) - len(new)
            for start in range(0, len(new), IMPORT_BATCH):
                batch = new[start : start + IMPORT_BATCH]
                result = client.projects.import_tasks(id=project_id, request=batch, return_task_ids=True)
                on_server.update(zip((t["data"]["task_key"] for t in batch), result.task_ids))
                counts.created += len(batch)
        ledger += [{"task_key": k, "lang": lang, "project_id": project_id, "task_id": i} for k, i in on_server.items()]
    _write_ledger(workspace, ledger, langs)
    return out


def _write_ledger(workspace: Path, rows: list[dict], langs: list[str]) -> None:
    path = corrections.review_dir(workspace) / "pushed.parquet"
    schema = {"task_key": pl.String, "lang": pl.String, "project_id": pl.Int64, "task_id": pl.Int64}
    df = pl.DataFrame(rows, schema=schema)
    if path.exists():
        df = pl.concat([pl.read_parquet(path).filter(~pl.col("lang").is_in(langs)), df])
    write_atomic(path, df.sort("lang", "task_key").write_parquet)


# --------------------------------------------------------------------------------------------------- pull


@dataclass
class PullCounts:
    new_versions: int = 0  # annotation versions not seen before
    edits: int = 0  # of which: versions superseding an earlier one of the same annotation
    corrected: int = 0  # of which: text differs from the machine's
    skipped: int = 0
    turns_applied: int = 0  # turns of the translated shards changed by this pull


@dataclass
class PullSummary:
    languages: dict[str, PullCounts] = field(default_factory=dict)
    corrections_file: str | None = None
    agreement: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _parse_time(text: str | datetime | None) -> datetime | None:
    if text is None or isinstance(text, datetime):
        return text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _result_value(result: list[dict], name: str, kind: str):
    for item in result or []:
        if item.get("from_name") == name:
            return item.get("value", {}).get(kind)
    return None


def annotation_row(task: dict, annotation: dict, reviewers: dict[int, str], pulled_at: datetime) -> dict:
    data = task["data"]
    result = annotation.get("result") or []
    skipped = bool(annotation.get("was_cancelled"))
    texts = _result_value(result, TRANSLATION, "text")
    text = None if skipped or texts is None else "\n".join(texts)
    rating = _result_value(result, RATING, "rating")
    user = annotation.get("completed_by")
    user_id = user.get("id") if isinstance(user, dict) else user
    return {
        "lang": data["lang"],
        "conv_key": data["conv_key"],
        "turn_index": int(data["turn_index"]),
        "id": data.get("conversation_id"),
        "role": data.get("role"),
        "task_key": data["task_key"],
        "translator_version": data.get("translator_version"),
        "source": data.get("english"),
        "machine_text": data.get("machine_text"),
        "corrected_text": text,
        # a from-scratch text is the person's own, whatever the hidden draft said
        "edited": text is not None
        and (data.get("task_kind") == corrections.SCRATCH or text != data.get("machine_text")),
        "skipped": skipped,
        "categories": _result_value(result, CATEGORIES_CONTROL, "choices") or [],
        "rating": int(rating) if rating is not None else None,
        "reviewer": reviewers.get(user_id, f"user {user_id}"),
        "reviewer_id": user_id,
        "annotation_id": annotation["id"],
        "task_id": task["id"],
        "project_id": annotation.get("project"),
        "lead_time": annotation.get("lead_time"),
        "created_at": _parse_time(annotation.get("created_at")),
        "updated_at": _parse_time(annotation.get("updated_at")),
        "pulled_at": pulled_at,
        "task_kind": data.get("task_kind") or "correction",
    }


def _state_path(workspace: Path) -> Path:
    return corrections.review_dir(workspace) / "pull_state.json"


def pull(client: LabelStudio, url: str, workspace: Path, langs: list[str] | None = None) -> PullSummary:
    """Fetch annotations created or updated since the last pull into the corrections table; apply them."""
    workspace = Path(workspace)
    projects = known_projects(workspace)
    if not projects:
        raise FileNotFoundError(
            f"no review projects recorded in {corrections.review_dir(workspace)}: run 'polyglot review push' first"
        )
    langs = [lang for lang in (langs or projects) if lang in projects]
    state_path = _state_path(workspace)
    state: dict[str, str] = json.loads(state_path.read_text()) if state_path.exists() else {}
    seen = corrections.history(workspace)
    seen_versions = set(zip(seen["annotation_id"].to_list(), seen["updated_at"].to_list()))
    seen_ids = set(seen["annotation_id"].to_list())
    pulled_at = datetime.now(UTC)
    summary = PullSummary({lang: PullCounts() for lang in langs})
    rows: list[dict] = []
    new_state = dict(state)
    with guarded(url, "pulling annotations"):
        reviewers = {u.id: u.email or u.username for u in client.users.list()}
        for lang in langs:
            project_id = projects[lang]
            query = None
            if str(project_id) in state:
                since = _parse_time(state[str(project_id)]) - CURSOR_SLACK
                query = json.dumps(
                    {
                        "filters": {
                            "conjunction": "and",
                            "items": [
                                {
                                    "filter": "filter:tasks:updated_at",
                                    "operator": "greater",
                                    "type": "Datetime",
                                    "value": since.strftime(LS_TIME),
                                }
                            ],
                        }
                    }
                )
            latest = None
            for task in client.tasks.list(project=project_id, fields="all", query=query, page_size=PAGE_SIZE):
                task = task.dict() if hasattr(task, "dict") else dict(task)
                updated = _parse_time(task.get("updated_at"))
                latest = updated if latest is None or (updated and updated > latest) else latest
                for annotation in task.get("annotations") or []:
                    row = annotation_row(task, annotation, reviewers, pulled_at)
                    if (row["annotation_id"], row["updated_at"]) in seen_versions:
                        continue
                    seen_versions.add((row["annotation_id"], row["updated_at"]))
                    counts = summary.languages[lang]
                    counts.new_versions += 1
                    counts.edits += row["annotation_id"] in seen_ids
                    counts.corrected += row["edited"]
                    counts.skipped += row["skipped"]
                    seen_ids.add(row["annotation_id"])
                    rows.append(row)
            if latest is not None:
                new_state[str(project_id)] = latest.isoformat()
    path = corrections.append(workspace, rows)  # first the rows, durably …
    summary.corrections_file = str(path) if path else None
    write_atomic(state_path, json.dumps(new_state, indent=2, sort_keys=True) + "\n")  # … then the cursor
    corrections.write_reviewed(workspace)
    for lang in langs:
        if summary.languages[lang].new_versions:
            summary.languages[lang].turns_applied = apply_corrections(workspace, lang)
    summary.agreement = agreement(workspace).to_dicts()
    return summary


def apply_corrections(workspace: Path, lang: str) -> int:
    """Put the corrections in force into the language's translated shards; returns turns changed."""
    human = corrections.overrides(workspace, lang)
    changed = 0
    for path in sorted((Path(workspace) / "translations" / lang).glob("shard-*.parquet")):
        table, n = apply_to_table(pq.read_table(path), human)
        if n:
            write_atomic(path, lambda f, table=table: pq.write_table(table, f))
            changed += n
    return changed


# --------------------------------------------------------------------------------------------------- agreement


def _chrf(a: str, b: str) -> float:
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return (metric.sentence_score(a, [b]).score + metric.sentence_score(b, [a]).score) / 2


def agreement(workspace: Path) -> pl.DataFrame:
    """Per language, over tasks that two or more reviewers submitted: chrF between their texts (both ways,
    averaged), share of pairs with the same error categories, mean Jaccard of the categories, mean rating gap."""
    df = corrections.latest_versions(corrections.history(workspace)).filter(
        ~pl.col("skipped") & pl.col("corrected_text").is_not_null()
    )
    rows = []
    for (lang,), group in df.group_by("lang", maintain_order=True):
        chrfs, same, jaccard, gaps, tasks = [], [], [], [], 0
        for (_key,), task in group.group_by("task_key"):
            task = task.sort("updated_at").unique("reviewer_id", keep="last", maintain_order=True)
            if task.height < 2:
                continue
            tasks += 1
            for a, b in combinations(task.iter_rows(named=True), 2):
                chrfs.append(_chrf(a["corrected_text"], b["corrected_text"]))
                ca, cb = set(a["categories"]), set(b["categories"])
                same.append(ca == cb)
                jaccard.append(len(ca & cb) / len(ca | cb) if ca | cb else 1.0)
                if a["rating"] is not None and b["rating"] is not None:
                    gaps.append(abs(a["rating"] - b["rating"]))
        if tasks:
            rows.append(
                {
                    "lang": lang,
                    "tasks_with_overlap": tasks,
                    "pairs": len(chrfs),
                    "mean_chrf": round(sum(chrfs) / len(chrfs), 2),
                    "category_exact_share": round(sum(same) / len(same), 3),
                    "category_jaccard": round(sum(jaccard) / len(jaccard), 3),
                    "mean_rating_gap": round(sum(gaps) / len(gaps), 3) if gaps else None,
                }
            )
    schema = {
        "lang": pl.String,
        "tasks_with_overlap": pl.Int64,
        "pairs": pl.Int64,
        "mean_chrf": pl.Float64,
        "category_exact_share": pl.Float64,
        "category_jaccard": pl.Float64,
        "mean_rating_gap": pl.Float64,
    }
    out = pl.DataFrame(rows, schema=schema)
    write_atomic(Path(workspace) / "reports" / "review_agreement.parquet", out.write_parquet)
    return out
