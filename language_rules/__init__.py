"""Per-language fixers: data tables plus small pure functions that report every change.

``apply(text, lang, role)`` returns the fixed text, the list of changes (rule id, span, before, after) and
flags for what only a person can decide (``CHECKS`` of a module for every turn, ``FLAGS`` — persona and
register — for assistant turns). Rules never touch protected spans (``<image>``, code, URLs, box and
number lists, placeholders); applying twice gives what applying once gave. Assistant-persona gender rules
and register flags apply to assistant (``gpt``) turns only. The conventions of each language are in the
docstring of its module.
"""

from __future__ import annotations

import hashlib
import importlib
from functools import cache
from pathlib import Path

from language_rules.base import Change, FixResult, Rule, persona_left_alone

LANGUAGE_CODES = ("en", "zh", "hi", "es", "fr", "ar", "bn", "ru", "ur", "ja")
MAX_PASSES = 4


@cache
def _module(lang: str):
    if lang not in LANGUAGE_CODES:
        raise ValueError(f"no language rules for {lang!r}: choose one of {', '.join(LANGUAGE_CODES)}")
    return importlib.import_module(f"language_rules.{lang}")


def _run(steps, text: str, changes: list[Change]) -> str:
    for step in steps:
        text = step.apply(text, changes) if isinstance(step, Rule) else step(text, changes)
    return text


def apply(text: str, lang: str, role: str = "gpt") -> FixResult:
    """Fix ``text`` written in ``lang``; ``role`` is the turn's speaker (persona rules apply to ``gpt``)."""
    module = _module(lang)
    steps = list(module.RULES) + (list(module.GENDER) if role == "gpt" else [])
    changes: list[Change] = []
    for _ in range(MAX_PASSES):  # until nothing changes: one rule's fix can enable another's
        before = len(changes)
        text = _run(steps, text, changes)
        if len(changes) == before:
            break
    checks = list(getattr(module, "CHECKS", [])) + ([*module.FLAGS, _persona_check(lang)] if role == "gpt" else [])
    flags = [flag for check in checks for flag in check(text)]
    return FixResult(text, changes, flags)


@cache
def _persona_check(lang: str):
    return persona_left_alone(list(_module(lang).GENDER))


def conventions(lang: str) -> str:
    return (_module(lang).__doc__ or "").strip()


@cache
def rules_version() -> str:
    """Hash of the rule tables and code: recorded on every row the rules touched."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return "rv-" + h.hexdigest()[:16]
