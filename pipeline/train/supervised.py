"""The supervised set of the fine-tune loop.

Every correction in force (a reviewer's text for a turn) is cut into units the way the source turn was, and
each (masked English unit → masked human unit) pair becomes one example, in the very prompt the translator sends
(:meth:`TranslatorConfig.messages`). A unit corrected more than once keeps the latest text. Turns whose lines or
placeholders no longer match the source are left out and counted. :func:`split` divides the examples into
training and held-out sides by conversation (a seeded hash of ``conv_key``, or listed ids), so no conversation
feeds both; a held-out unit that also occurs in a training conversation is dropped from the held-out side.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ingest.units import PLACEHOLDER_RE, Unit, segment
from pipeline.review import corrections
from pipeline.translate.settings import TranslatorConfig


@dataclass(frozen=True)
class Example:
    lang: str
    conv_key: str
    turn_index: int
    unit_hash: str
    source: str  # masked English unit
    target: str  # masked human unit
    kind: str  # reviewed | corrected | written (translated from scratch)
    updated_at: float  # seconds since the epoch: the newest correction of a unit wins


@dataclass
class SupervisedSet:
    examples: list[Example] = field(default_factory=list)
    turns: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → turns left out

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def align_units(source: str, human: str) -> list[tuple[Unit, str]] | str:
    """Pair each unit of the English turn with the human text for it, placeholders numbered as in the source.

    Returns the reason as a string when the two cannot be paired (line count or protected spans differ).
    """
    src_units, human_units = segment(source).units, segment(human).units
    if len(src_units) != len(human_units):
        return "lines differ from the English turn"
    pairs = []
    for unit, theirs in zip(src_units, human_units):
        if sorted(unit.spans) != sorted(theirs.spans):
            return "protected spans (numbers, boxes, code, URLs) differ from the English turn"
        free = list(range(len(unit.spans)))
        mapping = {}
        for j, span in enumerate(theirs.spans):
            i = next(i for i in free if unit.spans[i] == span)
            free.remove(i)
            mapping[j] = i
        target = PLACEHOLDER_RE.sub(lambda m, mapping=mapping: f"⟦{mapping[int(m.group(1))]}⟧", theirs.text)
        pairs.append((unit, target))
    return pairs


def supervised_examples(workspace: Path, langs: list[str]) -> SupervisedSet:
    """(source unit → human unit) examples from the corrections in force of ``langs`` (latest text per unit)."""
    out = SupervisedSet()
    latest: dict[tuple[str, str], Example] = {}
    for lang in langs:
        if lang == "en":
            continue
        df = corrections.in_force(workspace, lang)
        for row in df.iter_rows(named=True):
            out.turns += 1
            text, source = row["corrected_text"], row["source"]
            if not text or not text.strip() or not source:
                out.skip("empty text")
                continue
            pairs = align_units(source, text)
            if isinstance(pairs, str):
                out.skip(pairs)
                continue
            when = row["updated_at"].timestamp() if row["updated_at"] else 0.0
            kind = corrections.human_kind(row["edited"], row["task_kind"])
            for unit, target in pairs:
                ex = Example(lang, row["conv_key"], row["turn_index"], unit.key, unit.text, target, kind, when)
                key = (lang, unit.key)
                if key not in latest or latest[key].updated_at <= when:
                    latest[key] = ex
    out.examples = sorted(latest.values(), key=lambda e: (e.lang, e.conv_key, e.turn_index, e.unit_hash))
    return out


def is_held_out(seed: int, conv_key: str, share: float) -> bool:
    digest = hashlib.blake2b(f"{seed}\x1fheld-out\x1f{conv_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def held_out_keys(workspace: Path, ids_file: str | Path) -> set[str]:
    """The conversation keys of the conversation ids listed in ``ids_file`` (one id a line): a fixed evaluation
    side chosen by the user (e.g. whole documents), instead of the seeded draw."""
    import pyarrow.parquet as pq

    from pipeline.ingest.shards import shard_dirs

    path = Path(ids_file)
    if not path.is_file():
        raise FileNotFoundError(f"held-out ids file {path} does not exist (one conversation id a line)")
    ids = {line.strip() for line in path.read_text().splitlines() if line.strip()}
    keys = set()
    for shard in shard_dirs(Path(workspace) / "ingest"):
        table = pq.read_table(shard / "conversations.parquet", columns=["id", "conv_key"])
        keys.update(k for i, k in zip(table.column("id").to_pylist(), table.column("conv_key").to_pylist()) if i in ids)
    if not keys:
        raise ValueError(f"none of the {len(ids)} ids in {path} is a conversation of {workspace}")
    return keys


def split(
    examples: list[Example], share: float, seed: int, held_keys: set[str] | None = None
) -> tuple[list[Example], list[Example], int]:
    """(train, held-out, held-out examples dropped because their unit is also trained on). ``held_keys``: the
    conversations to hold out (instead of a seeded ``share`` of them)."""
    out = (
        (lambda e: e.conv_key in held_keys)
        if held_keys is not None
        else (lambda e: is_held_out(seed, e.conv_key, share))
    )
    train = [e for e in examples if not out(e)]
    trained = {(e.lang, e.unit_hash) for e in train}
    held = [e for e in examples if out(e)]
    kept = [e for e in held if (e.lang, e.unit_hash) not in trained]
    return train, kept, len(held) - len(kept)


def training_records(train: list[Example], base_config: TranslatorConfig) -> list[dict]:
    """What the trainer sees: each correction's prompt as the translator renders it, and the answer."""
    return [{"messages": base_config.messages(e.lang, e.source), "answer": e.target} for e in train]


def data_hash(records: list[dict]) -> str:
    """Hash of the exact training input (order-free): a changed prompt template is new data, like a new correction."""
    blob = "\n".join(sorted(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in records))
    return hashlib.sha256(blob.encode()).hexdigest()


def train_sample(train: list[Example], per_lang: int, seed: int) -> list[Example]:
    """At most ``per_lang`` training units of each language, drawn by a seeded hash (the same units every run)."""
    rank = lambda e: hashlib.blake2b(f"{seed}:{e.lang}:{e.unit_hash}".encode(), digest_size=8).digest()  # noqa: E731
    out: list[Example] = []
    for lang in sorted({e.lang for e in train}):
        out.extend(sorted((e for e in train if e.lang == lang), key=rank)[:per_lang])
    return out


def few_shot_examples(train: list[Example], lang: str, k: int) -> tuple[tuple[str, str], ...]:
    """The ``k`` most recent training corrections of ``lang``, oldest first (as a conversation would show them)."""
    recent = sorted((e for e in train if e.lang == lang), key=lambda e: (e.updated_at, e.unit_hash))[-k:] if k else []
    return tuple((e.source, e.target) for e in recent)
