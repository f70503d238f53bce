"""Cut a turn into translation units with its structure protected, and put it back together.

A turn becomes a *skeleton* (the bytes nobody translates: list markers, code blocks, line breaks, the
``<image>`` line, surrounding white space) interleaved with *units* (one per line of prose). Inside a unit,
protected spans (inline code, URLs, e-mail addresses, number and box lists, ``<image>``) are replaced by
placeholders ``⟦0⟧``, ``⟦1⟧``… numbered per unit, so identical sentences with different boxes share one
translation. ``reassemble(segment(t)) == t`` holds byte for byte for every string; :func:`segment` asserts it.

The placeholder brackets themselves are protected spans: any ``⟦``/``⟧`` already in the source is masked,
so a masked unit contains ``⟦``/``⟧`` only as placeholders and nothing can collide with them.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

PLACEHOLDER_OPEN, PLACEHOLDER_CLOSE = "⟦", "⟧"
PLACEHOLDER_RE = re.compile(r"⟦(\d+)⟧")
IMAGE_TOKEN = "<image>"

_URL_CHARS = r"[^\s<>\"'`\[\]⟦⟧]"
_URL_END = r"[^\s<>\"'`\[\]⟦⟧.,;:!?)}]"
_URL = rf"(?:https?|ftp)://{_URL_CHARS}*{_URL_END}|www\.{_URL_CHARS}*{_URL_END}"
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}"
_NUMBER = r"-?\d+(?:\.\d+)?%?"
_NUMBER_LIST = rf"\[\s*{_NUMBER}(?:\s*,\s*{_NUMBER})+\s*\]|\(\s*{_NUMBER}(?:\s*,\s*{_NUMBER})+\s*\)"
_INLINE_CODE = r"(?P<ticks>`{1,3})[^`\n]+?(?P=ticks)"
PROTECTED_RE = re.compile(
    "|".join(
        [
            r"⟦\d+⟧",  # text that already looks like a placeholder
            r"[⟦⟧]",  # a lone bracket of ours
            re.escape(IMAGE_TOKEN),
            _INLINE_CODE,
            _URL,
            _EMAIL,
            _NUMBER_LIST,
        ]
    )
)
_PROTECTED_HINT = re.compile(r"[⟦⟧<`@\[(]|://|www\.")

# A list marker at the start of a line: "1. ", "2) ", "- ", "* ", "• ", "A. ", "b) ", "### ".
_LIST_MARKER = r"[ \t]*+(?:\d{1,3}[.)]|[A-Za-z][.)]|[-*+•–]|#{1,6})[ \t]++"
# One line: optional list marker, white space, then the prose (group 1) up to trailing white space.
# Possessive quantifiers and a greedy body keep this linear on long runs of white space.
_LINE_RE = re.compile(rf"^(?:{_LIST_MARKER})?[^\S\n]*+(\S(?:[^\n]*\S)?)[^\S\n]*$", re.M)
FENCE_LINE_RE = re.compile(r"^[ \t]*(?:```|~~~)[^\n]*$", re.M)
# Two letters anywhere: a line with fewer (a lone answer letter, a number) is not worth translating.
_TWO_LETTERS = re.compile(r"[^\W\d_].*?[^\W\d_]", re.S)


class Unit(NamedTuple):
    """One translatable piece of a turn: masked text plus the original values of its placeholders."""

    text: str
    spans: tuple[str, ...]

    @property
    def key(self) -> str:
        return unit_hash(self.text)

    def unmask(self) -> str:
        return unmask(self.text, self.spans)


class SegmentedTurn(NamedTuple):
    """``skeleton[0] + unit[0] + skeleton[1] + … + unit[n-1] + skeleton[n]`` is the turn."""

    skeleton: tuple[str, ...]
    units: tuple[Unit, ...]

    def reassemble(self, texts: list[str] | None = None) -> str:
        """The turn again; with ``texts`` (masked, one per unit), the turn with those texts in place."""
        if texts is None:
            texts = [u.text for u in self.units]
        elif len(texts) != len(self.units):
            raise ValueError(f"expected {len(self.units)} unit texts, got {len(texts)}")
        parts = [self.skeleton[0]]
        for unit, text, skel in zip(self.units, texts, self.skeleton[1:]):
            parts.append(unmask(text, unit.spans))
            parts.append(skel)
        return "".join(parts)


def unit_hash(masked_text: str) -> str:
    return hashlib.blake2b(masked_text.encode("utf-8"), digest_size=16).hexdigest()


def mask(text: str) -> Unit:
    """Replace protected spans with numbered placeholders."""
    if not _PROTECTED_HINT.search(text):
        return Unit(text, ())
    spans: list[str] = []

    def _sub(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"{PLACEHOLDER_OPEN}{len(spans) - 1}{PLACEHOLDER_CLOSE}"

    return Unit(PROTECTED_RE.sub(_sub, text), tuple(spans))


def unmask(masked: str, spans: tuple[str, ...] | list[str]) -> str:
    """Put the original spans back (single pass: a restored span is never substituted again).

    A placeholder with no span (a model invented it) is left as it is; :func:`placeholder_problems` flags it.
    """
    if "⟦" not in masked:
        return masked

    def _restore(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return spans[i] if i < len(spans) else m.group(0)

    return PLACEHOLDER_RE.sub(_restore, masked)


def placeholder_problems(translated: str, n_placeholders: int) -> list[str]:
    """What is wrong with the placeholders of a translation: missing, duplicated or unknown ones."""
    if not n_placeholders and PLACEHOLDER_OPEN not in translated and PLACEHOLDER_CLOSE not in translated:
        return []  # the common case, answered without the regular expression
    seen = [int(m) for m in PLACEHOLDER_RE.findall(translated)]
    problems = []
    for i in range(n_placeholders):
        count = seen.count(i)
        if count == 0:
            problems.append(f"placeholder {i} missing")
        elif count > 1:
            problems.append(f"placeholder {i} duplicated")
    problems.extend(f"unknown placeholder {i}" for i in sorted(set(seen)) if i >= n_placeholders)
    if translated.count(PLACEHOLDER_OPEN) != len(seen) or translated.count(PLACEHOLDER_CLOSE) != len(seen):
        problems.append("broken placeholder bracket")
    return problems


def image_position(text: str) -> str:
    """Where ``<image>`` sits in a turn: before/after the text (on its own line), inline, alone or none."""
    if IMAGE_TOKEN not in text:
        return "none"
    if text.strip() == IMAGE_TOKEN:
        return "alone"
    if text.startswith(IMAGE_TOKEN + "\n"):
        return "before"
    if text.endswith("\n" + IMAGE_TOKEN):
        return "after"
    return "inline"


def segment(text: str) -> SegmentedTurn:
    """Cut a turn into skeleton and units (a unit is the prose of one line, list marker excluded)."""
    skeleton: list[str] = []
    units: list[Unit] = []
    last = 0
    for start, end in _prose_regions(text):
        for line in _LINE_RE.finditer(text, start, end):
            core = line.group(1)
            unit = mask(core)
            if unit.spans and unit.unmask() != core:  # pragma: no cover - a bug, never data
                raise AssertionError(f"masking does not round-trip for {core[:80]!r}")
            if _TWO_LETTERS.search(unit.text):
                skeleton.append(text[last : line.start(1)])
                units.append(unit)
                last = line.end(1)
    skeleton.append(text[last:])
    # The skeleton is the text between the units, so the turn round-trips once every unit does (checked above).
    return SegmentedTurn(tuple(skeleton), tuple(units))


def _prose_regions(text: str) -> list[tuple[int, int]]:
    """(start, end) of the text outside fenced code blocks (a fence line and all up to its closing line)."""
    if "```" not in text and "~~~" not in text:
        return [(0, len(text))]
    regions = []
    start = 0
    inside = False
    for fence in FENCE_LINE_RE.finditer(text):
        if not inside:
            regions.append((start, fence.start()))
        start = fence.end() + 1
        inside = not inside
    if not inside and start <= len(text):
        regions.append((start, len(text)))
    return regions
