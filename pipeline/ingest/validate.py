"""Check one LLaVA record against the conversation contract; say exactly what is wrong when it is not met.

The reason codes are the project's own (documented in docs/tables.md): they are the quarantine's stable,
machine-readable column, which a schema library's messages would not keep stable across its versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.units import IMAGE_TOKEN

ROLES = ("human", "gpt")
DEFAULT_MAX_TURN_CHARS = 32_000

# Every reason a record can be quarantined for. Stable strings: downstream code filters on them.
REASONS = (
    "invalid_json",  # the bytes of the record are not JSON (JSONL line, or the rest of a broken array file)
    "invalid_utf8",  # the record holds bytes that are not UTF-8 (or lone surrogates)
    "not_an_object",
    "missing_id",
    "bad_id_type",
    "bad_image_type",
    "missing_conversations",
    "conversations_not_list",
    "empty_conversations",
    "turn_not_object",
    "turn_missing_field",
    "bad_role",
    "bad_role_order",
    "value_not_string",
    "empty_value",
    "turn_too_long",
    "multiple_image_tokens",
    "source_not_english",
    "duplicate_record",
)

# Letters of scripts other than Latin: a source turn made mostly of them is not English.
_LETTER = re.compile(r"[^\W\d_]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]")


@dataclass(slots=True)
class Turn:
    role: str
    value: str


@dataclass(slots=True)
class Conversation:
    id: str
    image: str | None
    turns: list[Turn]
    extra: dict[str, Any] = field(default_factory=dict)


class InvalidRecord(Exception):
    def __init__(self, reason: str, detail: str):
        assert reason in REASONS, reason
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _looks_non_english(text: str) -> bool:
    """Most letters outside the Latin script (a cheap check: ASCII text passes at C speed)."""
    if text.isascii():
        return False
    letters = len(_LETTER.findall(text))
    return letters >= 8 and len(_LATIN_LETTER.findall(text)) < 0.5 * letters


def validate_record(obj: Any, max_turn_chars: int = DEFAULT_MAX_TURN_CHARS, english: bool = True) -> Conversation:
    """Return the record as a :class:`Conversation` or raise :class:`InvalidRecord` naming the problem."""
    if not isinstance(obj, dict):
        raise InvalidRecord("not_an_object", f"a record must be a JSON object, got {type(obj).__name__}")
    if "id" not in obj or obj["id"] in ("", None):
        raise InvalidRecord("missing_id", "the record has no 'id'")
    raw_id = obj["id"]
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise InvalidRecord("bad_id_type", f"'id' must be a string or an integer, got {type(raw_id).__name__}")
    record_id = str(raw_id)
    image = obj.get("image")
    if image is not None and not isinstance(image, str):
        raise InvalidRecord("bad_image_type", f"'image' must be a string (a path), got {type(image).__name__}")
    if "conversations" not in obj:
        raise InvalidRecord("missing_conversations", "the record has no 'conversations'")
    convs = obj["conversations"]
    if not isinstance(convs, list):
        raise InvalidRecord("conversations_not_list", f"'conversations' must be a list, got {type(convs).__name__}")
    if not convs:
        raise InvalidRecord("empty_conversations", "'conversations' is empty")
    turns: list[Turn] = []
    images = 0
    for i, turn in enumerate(convs):
        where = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise InvalidRecord("turn_not_object", f"{where} must be an object with 'from' and 'value'")
        for key in ("from", "value"):
            if key not in turn:
                raise InvalidRecord("turn_missing_field", f"{where} has no '{key}'")
        role, value = turn["from"], turn["value"]
        if role == "system" and i == 0:
            pass
        elif role not in ROLES:
            raise InvalidRecord(
                "bad_role", f"{where}.from is {role!r}; expected 'human' or 'gpt' ('system' only first)"
            )
        if not isinstance(value, str):
            raise InvalidRecord("value_not_string", f"{where}.value must be a string, got {type(value).__name__}")
        if not value.strip():
            raise InvalidRecord("empty_value", f"{where}.value is empty")
        if len(value) > max_turn_chars:
            raise InvalidRecord(
                "turn_too_long",
                f"{where}.value has {len(value)} characters; the limit is {max_turn_chars} (max_turn_chars)",
            )
        if _has_lone_surrogate(value):
            raise InvalidRecord("invalid_utf8", f"{where}.value holds bytes that are not valid UTF-8")
        images += value.count(IMAGE_TOKEN)
        turns.append(Turn(role, value))
    roles = [t.role for t in turns if t.role != "system"]
    for i, role in enumerate(roles):
        if role != ROLES[i % 2]:
            offset = len(turns) - len(roles)
            raise InvalidRecord(
                "bad_role_order",
                f"conversations[{i + offset}] is from {role!r}; turns must alternate human, gpt, … starting with human",
            )
    if not roles:
        raise InvalidRecord("empty_conversations", "'conversations' has a system turn only")
    if images > 1:
        raise InvalidRecord(
            "multiple_image_tokens", f"the conversation has {images} '<image>' tokens; at most one is allowed"
        )
    for i, turn in enumerate(turns if english else ()):
        if _looks_non_english(turn.value):
            raise InvalidRecord("source_not_english", f"conversations[{i}].value is mostly in a non-Latin script")
    for key in ("id", "image"):
        if isinstance(obj.get(key), str) and _has_lone_surrogate(obj[key]):
            raise InvalidRecord("invalid_utf8", f"'{key}' holds bytes that are not valid UTF-8")
    extra = {k: v for k, v in obj.items() if k not in ("id", "image", "conversations")}
    return Conversation(record_id, image, turns, extra)
