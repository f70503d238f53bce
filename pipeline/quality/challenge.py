"""A challenge set for quality estimation: professional reference lines with meaning errors injected by
deterministic, seeded perturbations, built on the fly from a references folder (the NTREX layout) and never
stored. What QE exists for is catching these while it keeps every untouched reference accepted.

Kinds (each a function of the line, the folder's other lines and a seeded generator):

- ``misaligned`` — another line's reference: a fluent translation of something else;
- ``omission`` — the last 40–60 % of the reference cut, at a clause boundary where there is one;
- ``addition`` — a clause of another line's reference appended;
- ``number`` — one number changed (lines whose reference has a number written with digits);
- ``untranslated`` — the second half of the reference replaced by the English source's second half.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import regex

KINDS = ("misaligned", "omission", "addition", "number", "untranslated")
# Clause boundaries: a comma, semicolon or colon of any script (Latin, CJK full-width and ideographic, Arabic), then
# the space after it where there is one.
_CLAUSE = regex.compile(r"[,;:،؛、，；：]\s*", regex.V1)
_SPACELESS = ("zh", "ja")
_DIGITS = regex.compile(r"\d+", regex.V1)


@dataclass(frozen=True)
class Challenge:
    line: int
    kind: str
    source: str  # the English line
    target: str  # the perturbed reference
    reference: str  # the untouched reference


def _cut_point(text: str, lang: str, low: float, high: float, rng: random.Random) -> int | None:
    """Where to cut ``text`` so that a share in [low, high] of it is kept: a clause boundary in that range if there is
    one, else a word boundary (a character for Chinese and Japanese)."""
    n = len(text)
    lo, hi = int(n * low), int(n * high)
    clauses = [m.end() for m in _CLAUSE.finditer(text) if lo <= m.start() <= hi]
    if clauses:
        return rng.choice(clauses)
    if lang in _SPACELESS:
        return rng.randint(lo, hi) if hi > lo else None
    spaces = [m.start() for m in regex.finditer(r"\s", text) if lo <= m.start() <= hi]
    return rng.choice(spaces) if spaces else None


def _first_clause(text: str) -> str:
    m = _CLAUSE.search(text, pos=max(1, len(text) // 4))
    return text[: m.start()] if m else text


def _other(n: int, count: int, rng: random.Random) -> int:
    return (n + rng.randint(1, count - 1)) % count


def _change_number(text: str, rng: random.Random) -> str | None:
    found = list(_DIGITS.finditer(text))
    if not found:
        return None
    m = rng.choice(found)
    digits = m.group(0)
    value = int("".join(str(unicodedata.decimal(c)) for c in digits))
    new = str(value + rng.choice((1, 2, 3, 7)) if value < 10 else value + rng.choice((1, 10, 100)) * rng.choice((1, 2)))
    zero = ord(digits[0]) - unicodedata.decimal(digits[0])  # keep the script: the zero of these digits
    written = "".join(chr(zero + int(d)) for d in new)
    return text[: m.start()] + written + text[m.end() :]


def perturb(kind: str, n: int, pairs: list[tuple[str, str]], lang: str, rng: random.Random) -> str | None:
    """The reference of line ``n`` with a ``kind`` error, or None when the line cannot carry one."""
    source, reference = pairs[n]
    if kind == "misaligned":
        other = pairs[_other(n, len(pairs), rng)][1]
        return other if other.strip() != reference.strip() else None
    if kind == "omission":
        cut = _cut_point(reference, lang, 0.4, 0.6, rng)
        return reference[:cut].rstrip(" ,;:،؛、，；：") if cut else None
    if kind == "addition":
        clause = _first_clause(pairs[_other(n, len(pairs), rng)][1]).strip()
        joiner = "，" if lang in _SPACELESS else "، " if lang in ("ar", "ur") else ", "
        return reference.rstrip(" .。।؟?!！") + joiner + clause if clause else None
    if kind == "number":
        return _change_number(reference, rng)
    if kind == "untranslated":
        cut = _cut_point(reference, lang, 0.4, 0.6, rng)
        words = source.split()
        if not cut or len(words) < 4:
            return None
        joiner = "" if lang in _SPACELESS else " "
        return reference[:cut].rstrip() + joiner + " ".join(words[len(words) // 2 :])
    raise ValueError(f"unknown challenge kind {kind!r}; one of {', '.join(KINDS)}")


def challenge_set(
    refs: Path, lang: str, lines: list[int], kinds: tuple[str, ...] = KINDS, seed: int = 0
) -> list[Challenge]:
    """The challenges of ``lines`` of the references folder ``refs`` in ``lang``: the same seed, the same set. Lines
    whose reference fails the form checks itself are left out (see :func:`pipeline.quality.signals.
    degenerate_reference`)."""
    from pipeline.quality.signals import degenerate_reference
    from pipeline.references import load_pairs

    pairs = load_pairs(refs, lang)
    out = []
    for n in lines:
        if degenerate_reference(*pairs[n], lang):
            continue
        for kind in kinds:
            rng = random.Random(f"{seed}:{lang}:{n}:{kind}")
            target = perturb(kind, n, pairs, lang, rng)
            if target is not None and target.strip() != pairs[n][1].strip():
                out.append(Challenge(n, kind, pairs[n][0], target, pairs[n][1]))
    return out


# what QE should catch of each kind (rejected or sent to review); the untouched references: at most 5 %
GOALS = {"misaligned": 0.99, "untranslated": 0.95, "number": 0.95, "omission": 0.80, "addition": 0.60}
HEADER = f"{'lang':<5}{'kind':<14}{'lines':>6}{'caught':>8}{'rejected':>10}{'review':>8}{'goal':>6}"


def report(lang: str, by_kind: dict[str, Counter]) -> tuple[list[str], dict[str, dict]]:
    """The table lines of one language (``by_kind``: kind → statuses counted, "reference" for the untouched
    references) under :data:`HEADER`, and the same as figures (kind → n, caught, rejected)."""
    lines, figures = [], {}
    for kind in ("reference", *KINDS):
        c = by_kind.get(kind, Counter())
        n = sum(c.values())
        if not n:
            continue
        caught = (c["rejected"] + c["needs_review"]) / n
        figures[kind] = {"n": n, "caught": round(caught, 3), "rejected": round(c["rejected"] / n, 3)}
        goal = f"{GOALS[kind]:.0%}" if kind in GOALS else "≤ 5%"
        lines.append(
            f"{lang:<5}{kind:<14}{n:>6}{caught:>8.0%}{c['rejected'] / n:>10.0%}{c['needs_review'] / n:>8.0%}{goal:>6}"
        )
    return lines, figures


def totals(counts: dict[str, Counter]) -> list[str]:
    """One line per kind over every language (``counts``: kind → statuses counted)."""
    return [
        f"  {kind:<14}{sum(c.values()):>6}{(c['rejected'] + c['needs_review']) / sum(c.values()):>8.1%} caught, "
        f"{c['rejected'] / sum(c.values()):.1%} rejected"
        for kind, c in counts.items()
        if sum(c.values())
    ]
