"""Shared primitives: protected spans, rules as regex substitutions that report every change, flags.

A rule never touches a protected span (``<image>``, code, URLs, e-mail addresses, number and box lists,
placeholders — the spans the backbone protects — plus fenced code blocks), and every rule is idempotent:
applying a language's rules twice gives what applying them once gave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import regex

from pipeline.ingest.units import FENCE_LINE_RE, PROTECTED_RE


@dataclass(frozen=True, slots=True)
class Change:
    rule: str
    start: int  # span in the text the rule was applied to
    end: int
    before: str
    after: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class FixResult:
    text: str
    changes: list[Change] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # what needs a person (never guessed)


def protected_ranges(text: str) -> list[tuple[int, int]]:
    ranges = [m.span() for m in PROTECTED_RE.finditer(text)]
    if "```" in text or "~~~" in text:
        fences = [m for m in FENCE_LINE_RE.finditer(text)]
        for open_, close in zip(fences[::2], fences[1::2] + [None] * (len(fences) % 2)):
            ranges.append((open_.start(), close.end() if close else len(text)))
    return sorted(ranges)


def _overlaps(start: int, end: int, ranges: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in ranges) or any(s == start == e for s, e in ranges)


Replacement = str | Callable[["regex.Match[str]"], str]


@dataclass(frozen=True)
class Rule:
    """``pattern`` → ``replacement`` outside protected spans (and outside ``also_skip``'s ranges, when given);
    ``id`` names it in change lists."""

    id: str
    pattern: regex.Pattern
    replacement: Replacement
    source: str = ""  # the norm it follows
    also_skip: Callable[[str], list[tuple[int, int]]] | None = None

    def apply(self, text: str, changes: list[Change]) -> str:
        protected = None
        out: list[str] = []
        last = 0
        for m in self.pattern.finditer(text):
            if protected is None:
                protected = protected_ranges(text) + (self.also_skip(text) if self.also_skip else [])
            if _overlaps(m.start(), m.end(), protected):
                continue
            new = self.replacement(m) if callable(self.replacement) else m.expand(self.replacement)
            if new == m.group(0):
                continue
            out.append(text[last : m.start()])
            out.append(new)
            changes.append(Change(self.id, m.start(), m.end(), m.group(0), new))
            last = m.end()
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


def rule(id: str, pattern: str, replacement: Replacement, source: str = "", flags: int = 0, also_skip=None) -> Rule:
    return Rule(id, regex.compile(pattern, flags | regex.V1 | regex.MULTILINE), replacement, source, also_skip)


def translate_chars(table: dict[str, str]) -> Callable[[regex.Match[str]], str]:
    trans = str.maketrans(table)
    return lambda m: m.group(0).translate(trans)


# Character classes shared by several languages.
HAN = r"\p{Han}"
KANA = r"\p{Hiragana}\p{Katakana}ー"
CJK_PUNCT = "，。？！：；（）、「」『』《》〈〉【】"
FULLWIDTH_ALNUM = {
    chr(c): chr(c - 0xFEE0) for c in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]
}
DIGITS = {
    "western": "0123456789",
    "devanagari": "०१२३४५६७८९",
    "bengali": "০১২৩৪৫৬৭৮৯",
    "arabic_indic": "٠١٢٣٤٥٦٧٨٩",
    "extended_arabic_indic": "۰۱۲۳۴۵۶۷۸۹",
}


def unify_digits(rule_id: str, native: str, target: str, source: str) -> Callable[[str, list[Change]], str]:
    """Where a text mixes ``native`` and ``target`` digits, write them all as ``target`` (mixing is never right)."""
    native_set, target_set = set(DIGITS[native]), set(DIGITS[target])
    table = dict(zip(DIGITS[native], DIGITS[target]))
    r = rule(rule_id, "[" + DIGITS[native] + "]+", translate_chars(table), source)

    def apply(text: str, changes: list[Change]) -> str:
        if native_set.isdisjoint(text) or target_set.isdisjoint(text):
            return text
        return r.apply(text, changes)

    return apply


@dataclass(frozen=True)
class GenderPair:
    """A first-person form of the assistant whose gender is certain from the words around it."""

    policy: str  # the form the language's persona policy wants
    other: str  # the same form in the other gender


# Quotation marks: opening → closing. “ closes „ (German, Russian) and opens in English; ’ is an apostrophe
# unless a ‘ opened it; a straight " opens and closes.
QUOTE_PAIRS = {"“": "”", "„": "“", "«": "»", "‹": "›", "「": "」", "『": "』", "‘": "’", "‚": "‘", '"': '"'}
_CLOSERS = {"”", "»", "›", "」", "』", "“"}
_SENTENCE = regex.compile(r"[^.!?।۔؟。！？\n]*(?:[.!?।۔؟。！？]+|\n|$)")


def quoted_ranges(text: str) -> list[tuple[int, int]]:
    """Spans inside quotation marks, line by line. A quote still open at the end of a line runs to its end; a
    closing mark with none open means the line began inside a quote (a quotation continued from before)."""
    ranges: list[tuple[int, int]] = []
    line_start = 0
    for line in text.split("\n"):
        stack: list[tuple[str, int]] = []
        for i, ch in enumerate(line):
            if stack and ch == QUOTE_PAIRS[stack[-1][0]]:
                opener, at = stack.pop()
                if not stack:
                    ranges.append((line_start + at, line_start + i + 1))
            elif ch in QUOTE_PAIRS:
                stack.append((ch, i))
            elif ch in _CLOSERS and not stack:
                ranges.append((line_start, line_start + i + 1))
        if stack:
            ranges.append((line_start + stack[0][1], line_start + len(line)))
        line_start += len(line) + 1
    return ranges


def speech_ranges(text: str, speech_words: regex.Pattern | None) -> list[tuple[int, int]]:
    """Where someone other than the assistant may be speaking: quotations, lines of dialogue opened by a dash,
    and sentences that report speech (``speech_words``: the language's verbs of saying)."""
    ranges = quoted_ranges(text)
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0)
        if not sentence.strip():
            continue
        if regex.match(r"\s*[—–―]\s", sentence) or (speech_words is not None and speech_words.search(sentence)):
            ranges.append(m.span())
    return ranges


def gender_rules(lang: str, pairs: list[GenderPair], source: str, speech_words: str | None = None) -> list[Rule]:
    """Rewrite certain first-person forms to the persona policy (whole words only; a capital kept) — but never
    inside quoted or reported speech, where the words are someone else's (:func:`persona_left_alone` flags them)."""
    words = regex.compile(speech_words, regex.V1 | regex.IGNORECASE) if speech_words else None
    skip = lambda text: speech_ranges(text, words)  # noqa: E731
    variants = []
    for p in pairs:
        variants.append(p)
        if p.other[0].upper() != p.other[0]:
            variants.append(GenderPair(p.policy[0].upper() + p.policy[1:], p.other[0].upper() + p.other[1:]))
    return [
        rule(f"{lang}.gender.persona", rf"(?<!\w){regex.escape(p.other)}(?!\w)", p.policy, source, also_skip=skip)
        for p in variants
    ]


def persona_left_alone(gender: list[Rule]) -> Callable[[str], list[str]]:
    """A check: the persona forms the gender rules did not rewrite because they stand in quoted or reported speech."""

    def check(text: str) -> list[str]:
        if not gender:
            return []
        protected = protected_ranges(text)
        speech = gender[0].also_skip(text) if gender[0].also_skip else []
        found = []
        for r in gender:
            for m in r.pattern.finditer(text):
                if not _overlaps(m.start(), m.end(), protected) and _overlaps(m.start(), m.end(), speech):
                    found.append(m.group(0))
        return [
            f"gender: {form!r} in quoted or reported speech, left as written (check who speaks)"
            for form in dict.fromkeys(found)
        ]

    return check


def flag_patterns(patterns: list[tuple[str, str]]) -> Callable[[str], list[str]]:
    """Flags (reason strings) for patterns that signal an uncertain gender or register: never rewritten."""
    compiled = [(regex.compile(p, regex.V1), reason) for p, reason in patterns]

    def check(text: str) -> list[str]:
        return [f"{reason}: {m.group(0)!r}" for pat, reason in compiled for m in [pat.search(text)] if m]

    return check
