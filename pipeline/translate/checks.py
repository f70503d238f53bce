"""Answer checks: what chat models put around a translation (removed where certain), and what makes an answer
unusable as a translation (refusal, copy of the source, extra lines, broken placeholders, a loop, Chinese drift,
a copied worked example)."""

from __future__ import annotations

import re
import zlib
from operator import eq

from pipeline.ingest.units import placeholder_problems

REFUSAL_RE = re.compile(
    r"^\s*(?:I(?:'m| am) sorry|I (?:cannot|can't|can not|am unable to|won't) (?:translate|help|assist|do that)|"
    # an apology that opens a sentence of its own ("I apologize, but…", "I apologize for the confusion"), not an
    # apology translated ("I apologize to everyone for…": the 1.5B judge's faithful English of a French mistranslation)
    r"As an AI|Sorry, (?:but )?I|I apologi[sz]e(?:[,.!;]|\s*$|\s+(?:but|for (?:the|any|this|that|my)\b)))",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[^\W\d_]{2,}")
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")


# What chat models put around a translation. Each pattern is removed only where the English unit does not
# have the same thing itself (a unit that begins "Translation:" keeps its translated label).
_LABEL = (
    r"(?:(?:here(?:'s| is) (?:the |your |a |my )?)?(?:[\w-]+ )?translation(?: (?:in|into|to) [\w-]+)?(?: of the (?:text|sentence))?"
    r"|translated(?: text)?|翻译|译文|翻訳|訳|traducción(?: al español)?|traduction(?: en français)?|перевод(?: на русский)?"
    r"|अनुवाद|হিন্দি অনুবাদ|অনুবাদ|ترجمہ|ترجمة|ترجمه)"
)
_PREAMBLE_LINE = re.compile(rf"^\s*(?:(?:sure|certainly|of course|okay)[!,.]?\s*)?{_LABEL}\s*[:：]\s*$", re.IGNORECASE)
_PREAMBLE_INLINE = re.compile(rf"^\s*{_LABEL}\s*[:：]\s*(?=\S)", re.IGNORECASE)
_NOTE_LINE = re.compile(
    r"^\s*(?:\(?\s*(?:note|notes|explanation|nota|remarque|примечание|注意|注|备注|説明|नोट|টীকা|نوٹ|ملاحظة)\s*[:：]|\(note\b)",
    re.IGNORECASE,
)
_NOTE_TAIL = re.compile(r"\s*\((?:note|nota|remarque|примечание|注)\s*[:：][^()]*\)\s*$", re.IGNORECASE)
_QUOTES = {'"': '"', "“": "”", "«": "»", "「": "」", "『": "』", "„": "“", "'": "'", "‘": "’"}
_FENCE = re.compile(r"^\s*```[\w+-]*\n(.*?)\n?```\s*$", re.S)


def clean_answer(source: str, text: str) -> tuple[str, list[str]]:
    """The translation inside a chat answer, and what was removed to get it (``repairs``: "preamble: …",
    "quotes: “…”", "fence", "note: …"). Only what is certain is removed: a wrapper the English unit does not
    have. Anything else stays and is judged by :func:`answer_problems`."""
    repairs: list[str] = []
    out = text.strip()
    src = source.strip()
    if "```" not in src and (m := _FENCE.match(out)):
        out = m.group(1).strip()
        repairs.append("fence: ```")
    lines = out.split("\n")
    if "\n" not in src and len(lines) > 1:
        kept = []
        for i, line in enumerate(lines):
            if i == 0 and _PREAMBLE_LINE.match(line):
                repairs.append(f"preamble: {line.strip()}")
            elif kept and _NOTE_LINE.match(line):  # a note closes the answer: it and what follows go
                repairs.append(f"note: {' '.join(x.strip() for x in lines[i:] if x.strip())[:200]}")
                break
            elif line.strip() or kept:
                kept.append(line)
        out = "\n".join(kept).strip()
    if (m := _PREAMBLE_INLINE.match(out)) and not _PREAMBLE_INLINE.match(src):
        repairs.append(f"preamble: {m.group(0).strip()}")
        out = out[m.end() :].strip()
    if out.endswith(")") and (m := _NOTE_TAIL.search(out)) and not _NOTE_TAIL.search(src) and m.start() > 0:
        repairs.append(f"note: {m.group(0).strip()[:200]}")
        out = out[: m.start()].rstrip()
    if (
        len(out) >= 2
        and out[0] in _QUOTES
        and out[-1] == _QUOTES[out[0]]
        and not (src[:1] in _QUOTES and src[-1:] == _QUOTES.get(src[:1]))
    ):
        inner = out[1:-1]
        if _QUOTES[out[0]] not in inner and out[0] not in inner and inner.strip():
            repairs.append(f"quotes: {out[0]}…{out[-1]}")
            out = inner.strip()
    return out, repairs


def answer_problems(
    source: str,
    n_placeholders: int,
    text: str,
    finish_reason: str | None,
    lang: str | None = None,
    examples: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """What makes an answer (cleaned by :func:`clean_answer`) unusable as a translation (empty list: usable).

    ``examples``: the worked (English, translation) pairs the prompt showed, whose translations a model that
    cannot translate tends to repeat."""
    problems = []
    if finish_reason == "length":
        problems.append("truncated")
    stripped = text.strip()
    if not stripped:
        problems.append("empty")
        return problems
    if REFUSAL_RE.match(stripped):
        problems.append("refusal")
    if stripped == source.strip() and len(_WORD_RE.findall(source)) >= 3:
        problems.append("untranslated")
    extra = stripped.count("\n") - source.strip().count("\n")
    if extra > 0:
        problems.append(f"extra lines: {extra} more than the source (an explanation or a second version?)")
    problems.extend(placeholder_problems(stripped, n_placeholders))
    if (
        lang not in (None, "zh", "ja")
        and _HAN_RE.search(stripped)
        and len(_HAN_RE.findall(stripped)) >= 2
        and not _HAN_RE.search(source)
    ):
        problems.append(
            "wrong script: Chinese characters in the answer"
        )  # the drift chat models of the Qwen family show
    if copied_example(source, stripped, examples):
        problems.append(
            "copied example: the answer repeats a worked example's translation instead of translating this text"
        )
    return problems


_COPY_STRETCH = 10  # characters in one run shared with an example's translation before they count as copied
_COPY_SHARE = 0.75  # of the answer copied (real copies: 0.83-0.98; neighbouring lines of a news story: up to 0.71)
_COPY_MARGIN = 0.5  # beyond the share of the English text found in the examples' English


def _copied_share(text: str, others: list[str]) -> float:
    """Share of ``text``'s characters inside runs of at least ``_COPY_STRETCH`` characters that also occur in one
    of ``others``."""
    from difflib import SequenceMatcher

    text = text.strip()
    if not text:
        return 0.0
    covered = bytearray(len(text))
    for other in others:
        for block in SequenceMatcher(None, text, other, autojunk=False).get_matching_blocks():
            if block.size >= _COPY_STRETCH:
                covered[block.a : block.a + block.size] = b"\x01" * block.size
    return sum(covered) / len(text)


def copied_example(source: str, text: str, examples: tuple[tuple[str, str], ...]) -> bool:
    """Whether most of ``text`` is copied from the worked examples' translations — more than the English text is
    made of the examples' English. Seen on a real model that cannot write the language (Qwen2.5-Coder-0.5B in
    Hindi): its few-shot answers were the last example's translation with a word or two in front, which chrF
    credits for shared words."""
    if not examples or len(text.strip()) < 2 * _COPY_STRETCH:
        return False
    copied = _copied_share(text, [target for _, target in examples])
    if copied < _COPY_SHARE:
        return False
    return copied - _copied_share(source.casefold(), [english.casefold() for english, _ in examples]) >= _COPY_MARGIN


def _has_run(tokens: list[str], repeats: int = 4, longest: int = 8) -> bool:
    """Whether some sequence of 1 to ``longest`` tokens occurs ``repeats`` times in a row (a model's loop): for
    each length k, the positions where a token equals the one k before, as bytes, hold a stretch of k × (repeats −
    1) ones (compared in C: ~6 µs for a 400-character answer)."""
    if len(tokens) < repeats:
        return False
    for k in range(1, longest + 1):
        need = k * (repeats - 1)
        if len(tokens) - k < need:
            break
        if b"\x01" * need in bytes(map(eq, tokens[k:], tokens)):
            return True
    return False


_SPACE = re.compile(r"\s+")


def _tokens(text: str, lang: str | None) -> list[str]:
    """Words, or the characters other than spaces in Chinese and Japanese."""
    return list(_SPACE.sub("", text)) if lang in ("zh", "ja") else text.split()


def _compresses(text: str) -> bool:
    raw = text.encode("utf-8")
    return len(zlib.compress(raw)) < 0.2 * len(raw)


def is_repetitive(text: str, lang: str | None = None, min_chars: int = 40) -> bool:
    """A loop: a word (a character in Chinese and Japanese) or a group of up to eight repeated four times in a
    row, or text that compresses to a fifth of its size. Linear in the text (a backreference regex was ~2 ms a
    turn, too slow for every turn of a large run)."""
    if len(text) < min_chars:
        return False
    return _has_run(_tokens(text, lang)) or _compresses(text)


_RUN_SPAN = 8 * 4  # tokens a run of :func:`_has_run` spans at most (eight tokens, four times)


class GrowingLoopCheck:
    """:func:`is_repetitive` for the prefixes of one growing answer, as a stream reader shows them (each longer than
    the last): the run check looks only at the tokens a new run could end in (the new ones and the :data:`_RUN_SPAN`
    before them — a run in the older ones would have been found at an earlier look), and the compression check
    once the text has grown by ``compress_every`` characters since it last ran. The verdict at each look depends on
    the prefix only, never on how the answer arrived. Called with a text that does not extend the last one, it
    checks that text whole and starts again from it. Measured: 0.19 ms of client CPU per 430-character answer
    looked at every 48 characters with the whole check; bench/bench_scale.py's client figures show what this saves."""

    def __init__(self, lang: str, min_chars: int = 40, compress_every: int = 192):
        self.lang, self.min_chars, self.compress_every = lang, min_chars, compress_every
        self._text, self._tokens, self._compressed_at = "", 0, 0

    def __call__(self, text: str) -> bool:
        if self._look(text):
            self._text = ""  # a loop found: the next text is checked whole
            return True
        return False

    def _look(self, text: str) -> bool:
        if not (self._text and len(text) > len(self._text) and text.startswith(self._text)):
            self._text, self._tokens, self._compressed_at = text, len(_tokens(text, self.lang)), len(text)
            return is_repetitive(text, self.lang, self.min_chars)
        tokens = _tokens(text, self.lang)
        start = max(0, self._tokens - 1 - _RUN_SPAN)  # the last token seen may have been part of a word
        self._text, self._tokens = text, len(tokens)
        if len(text) < self.min_chars:
            return False
        if _has_run(tokens[start:]):
            return True
        if len(text) - self._compressed_at >= self.compress_every:
            self._compressed_at = len(text)
            return _compresses(text)
        return False
