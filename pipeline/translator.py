"""What a translation request is: prompt per language, sampling, token budget, version, and answer checks."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources

from pipeline.languages import LANGUAGES
from pipeline.ingest.units import placeholder_problems

# Target-script tokens per character, roughly, for common multilingual tokenizers (budgets, not accounting).
_TOKENS_PER_CHAR = {"Latin": 0.4, "Cyrillic": 0.5, "Han": 1.2, "Devanagari": 1.2, "Bengali": 1.2, "Arabic": 0.7}

REFUSAL_RE = re.compile(
    r"^\s*(?:I(?:'m| am) sorry|I (?:cannot|can't|can not|am unable to|won't) (?:translate|help|assist|do that)|"
    r"As an AI|Sorry, (?:but )?I|I apologi[sz]e)",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[^\W\d_]{2,}")
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")


@cache
def prompt_template(lang: str) -> str:
    """The system prompt for ``lang``, shipped as package data (``pipeline/prompts/{lang}.txt``)."""
    if lang not in LANGUAGES or lang == "en":
        raise ValueError(f"no translation prompt for {lang!r}: choose one of {', '.join(c for c in LANGUAGES if c != 'en')}")
    return resources.files("pipeline.prompts").joinpath(f"{lang}.txt").read_text(encoding="utf-8").strip()


@cache
def retry_reminder() -> str:
    return resources.files("pipeline.prompts").joinpath("_retry_reminder.txt").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class TranslatorConfig:
    """Everything that decides what the translator answers; its hash per language is the translator version."""

    model: str
    adapter: str | None = None
    weights: str | None = None  # the weights behind ``model`` when known (``gguf-sha256:…`` for an imported GGUF)
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    budget_factor: float = 1.5  # × the expected number of tokens of the translation
    min_tokens: int = 16
    max_tokens: int = 2048
    length_retries: int = 1  # retries with a doubled budget when the answer was cut off
    problem_retries: int = 1  # retries with a reminder for empty, refusal, copy or placeholder problems
    few_shot: tuple[tuple[str, str], ...] = ()  # (English unit, reviewed translation) pairs shown before the unit
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if not self.model:
            problems.append("model must be named")
        if not 0.0 <= self.temperature <= 2.0:
            problems.append(f"temperature must be between 0 and 2, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.budget_factor <= 0 or self.min_tokens < 1 or self.max_tokens < self.min_tokens:
            problems.append("token budget settings must satisfy budget_factor > 0 and 1 <= min_tokens <= max_tokens")
        if self.length_retries < 0 or self.problem_retries < 0:
            problems.append("retry counts must not be negative")
        if any(len(pair) != 2 or not all(isinstance(x, str) and x.strip() for x in pair) for pair in self.few_shot):
            problems.append("few-shot examples must be (source, translation) pairs of non-empty text")
        if problems:
            raise ValueError("translator settings: " + "; ".join(problems))

    @property
    def served_model(self) -> str:
        """The name to put in requests: the adapter when one is active (vLLM serves adapters by name)."""
        return self.adapter or self.model

    def description(self, lang: str) -> dict:
        d = asdict(self)
        d["prompt_sha256"] = hashlib.sha256(prompt_template(lang).encode()).hexdigest()
        d["reminder_sha256"] = hashlib.sha256(retry_reminder().encode()).hexdigest()
        return d

    def version(self, lang: str) -> str:
        """Hash of (model, adapter, prompt template, sampling and budget settings) for ``lang``."""
        blob = json.dumps(self.description(lang), sort_keys=True).encode()
        return "tv-" + hashlib.sha256(blob).hexdigest()[:16]

    def messages(self, lang: str, source: str, problems: list[str] | None = None) -> list[dict]:
        return build_messages(lang, source, problems, self.few_shot)

    def budget(self, lang: str, source: str) -> int:
        language = LANGUAGES[lang]
        expected = len(source) * language.expansion * _TOKENS_PER_CHAR.get(language.script, 1.0)
        return max(self.min_tokens, min(self.max_tokens, math.ceil(expected * self.budget_factor) + 8))

    def sampling(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}


def build_messages(
    lang: str, source: str, problems: list[str] | None = None, examples: tuple[tuple[str, str], ...] = ()
) -> list[dict]:
    """The chat request for one unit: system prompt, worked examples as earlier turns, then the unit."""
    messages = [{"role": "system", "content": prompt_template(lang)}]
    for example_source, example_target in examples:
        messages += [{"role": "user", "content": example_source}, {"role": "assistant", "content": example_target}]
    if problems:
        source = f"{source}\n\n{retry_reminder().format(problems='; '.join(problems))}"
    messages.append({"role": "user", "content": source})
    return messages


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
        out = out[m.end():].strip()
    if out.endswith(")") and (m := _NOTE_TAIL.search(out)) and not _NOTE_TAIL.search(src) and m.start() > 0:
        repairs.append(f"note: {m.group(0).strip()[:200]}")
        out = out[: m.start()].rstrip()
    if len(out) >= 2 and out[0] in _QUOTES and out[-1] == _QUOTES[out[0]] and not (src[:1] in _QUOTES and src[-1:] == _QUOTES.get(src[:1])):
        inner = out[1:-1]
        if _QUOTES[out[0]] not in inner and out[0] not in inner and inner.strip():
            repairs.append(f"quotes: {out[0]}…{out[-1]}")
            out = inner.strip()
    return out, repairs


def answer_problems(
    source: str, n_placeholders: int, text: str, finish_reason: str | None, lang: str | None = None,
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
    if lang not in (None, "zh", "ja") and _HAN_RE.search(stripped) and len(_HAN_RE.findall(stripped)) >= 2 and not _HAN_RE.search(source):
        problems.append("wrong script: Chinese characters in the answer")  # the drift chat models of the Qwen family show
    if copied_example(source, stripped, examples):
        problems.append("copied example: the answer repeats a worked example's translation instead of translating this text")
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
                covered[block.a: block.a + block.size] = b"\x01" * block.size
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
