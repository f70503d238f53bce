"""Back-translation: a translated turn sent back to English and compared with the English source (chrF).

It is the meaning signal of the quality score (:mod:`pipeline.quality.score`): form checks cannot tell fluent
nonsense from a translation, a round trip to English can. The *judge* answers it: by default the translator's own
server and base model; ``--judge-server`` (and ``--judge-model``) for another, e.g. a bigger model on a GPU.
Answers are kept in the translation memory (language ``bt-LL``, version = hash of the judge and the prompt),
committed as they arrive (a crash loses at most the last few seconds), so a rerun sends nothing again. Answers
are keyed per turn (:func:`bt_key`), so reruns give the same scores. Which turns are sent: every turn of a
language whose translator is not known to be good, a seeded sample otherwise (:func:`sampled`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from pipeline.ingest.units import unit_hash
from pipeline.translate.backends import OpenAIChatBackend
from pipeline.translate.checks import REFUSAL_RE
from pipeline.translate.memory import TranslationMemory
from pipeline.translate.requests import loop_watch


def prompt() -> str:
    return (
        resources.files("pipeline.translate.prompts")
        .joinpath("_back_translation.txt")
        .read_text(encoding="utf-8")
        .strip()
    )


def sampled(seed: int, lang: str, conv_key: str, turn_index: int, rate: float) -> bool:
    digest = hashlib.blake2b(f"{seed}\x1f{lang}\x1f{conv_key}\x1f{turn_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def chrf(hypothesis: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    return round(CHRF().sentence_score(hypothesis, [reference]).score, 2)


# What a judge says about the task instead of translating (a weak judge does it on texts it cannot read): "I will
# translate the given text into English faithfully and completely. Please provide the text for translation."
_REMARK_RE = re.compile(
    r"^(?:[\w ]{0,40},\s*)?I (?:will|can|could|would|shall|'ll|am going to|have|had)(?: only| already)? "
    r"(?:translate|translated|provide (?:the|a|an) (?:English )?translation)\b"
    r"|please provide (?:me with )?(?:the|a|your) (?:full |complete |original |whole |actual )?text\b"
    r"|^this is (?:a|the|an) (?:English )?translation of the (?:given|provided|following) text"
    r"|^the (?:given |provided )?text is already in English",
    re.IGNORECASE,
)


def judge_remark(back: str, source: str) -> bool:
    """``back`` is the judge talking about the task (a refusal, "I will translate…", "please provide the text"), not a
    translation: one paragraph that matches where the English source does not (an answer that goes on after a
    preamble holds a translation)."""
    text = back.strip()
    if "\n" in text or text.endswith(":"):
        return False
    return any(rx.search(text) and not rx.search(source) for rx in (REFUSAL_RE, _REMARK_RE))


def bt_chrf(back: str | None, source: str) -> float | None:
    """chrF of a back-translation with the English source; None where the judge gave none: no answer, an empty one,
    or a remark about the task (:func:`judge_remark`) — the judge failed there, not the translation: the turn is
    scored without it, and sent to review rather than accepted
    (:meth:`pipeline.quality.score.Calibration.verdict`'s ``judge_remarked``)."""
    if back is None or not back.strip() or judge_remark(back, source):
        return None
    return chrf(back, source)


def bt_key(conv_key: str, turn_index: int, text: str) -> str:
    """The memory key of one turn's back-translation. Per turn, not per text: two shard tasks never ask for the
    same key, so each turn's score comes from the one answer its own task received and stored (a text shared by
    turns of different shards asked twice at once could get two different answers from a server that is not
    batch-invariant, and a rerun could then read the other one)."""
    return unit_hash(f"{conv_key}\x1f{turn_index}\x1f{text}")


@dataclass(frozen=True)
class Judge:
    """Who back-translates: a server (one URL or replicas) and the model it serves there."""

    server: str
    model: str
    max_tokens: int = 2048

    def version(self) -> str:
        return "bt-" + hashlib.sha256(f"{self.model}\x1f{prompt()}".encode()).hexdigest()[:16]


Ask = Callable[[list[str], Callable[[int, str], None]], None]  # texts, on_answer(index, English) → None


def make_backtranslator(
    judge: Judge,
    memory: TranslationMemory,
    lang: str,
    concurrency: int = 16,
    ask: Ask | None = None,
    commit_age: float = 30.0,
) -> Callable[[list[tuple[str, str]]], list[str]]:
    """A function: (key from :func:`bt_key`, text in ``lang``) pairs → English back-translations, kept in
    ``memory``: answers are committed in batches as they arrive, never older than ``commit_age`` seconds.
    ``ask`` replaces the server (tests)."""
    version = judge.version()
    bt_lang = f"bt-{lang}"
    ask = ask or (lambda texts, on_answer: asyncio.run(_ask(judge, texts, concurrency, on_answer)))

    def run(items: list[tuple[str, str]]) -> list[str]:
        done = memory.kept_answers(
            bt_lang, version, items, lambda missing, on_answer: ask([t for _, t in missing], on_answer), commit_age
        )
        return [done[key].text or "" for key, _ in items]

    return run


async def _ask(judge: Judge, texts: list[str], concurrency: int, on_answer: Callable[[int, str], None]) -> None:
    backend = OpenAIChatBackend(judge.server)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int, text: str) -> None:
        async with semaphore:
            messages = [{"role": "system", "content": prompt()}, {"role": "user", "content": text}]
            budget = min(judge.max_tokens, 2 * len(text) + 16)
            answer = await backend.complete(
                messages, budget, {"temperature": 0.0, "top_p": 1.0}, judge.model, loop_watch(text, "en")
            )
            on_answer(index, answer.text.strip())

    try:
        await asyncio.gather(*(one(i, t) for i, t in enumerate(texts)))
    finally:
        await backend.close()
