"""Back-translation chrF on a sample: the translated turn is sent back to English through the same server
and scored with sacrebleu's chrF against the English source. A seeded per-turn draw picks the sample
(``rate`` of the turns), and answers are kept in the translation memory (language ``bt-LL``), so a rerun sends
nothing again. Answers are keyed per turn (:func:`bt_key`), so reruns give the same scores. The score is
information for reviewers and the report; it does not change a turn's status.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from importlib import resources

from pipeline.ingest.units import unit_hash
from pipeline.translate.backends import OpenAIChatBackend
from pipeline.translate.memory import Entry, TranslationMemory
from pipeline.translate.settings import TranslatorConfig


def prompt() -> str:
    return resources.files("pipeline.translate.prompts").joinpath("_back_translation.txt").read_text(encoding="utf-8").strip()


def sampled(seed: int, lang: str, conv_key: str, turn_index: int, rate: float) -> bool:
    digest = hashlib.blake2b(f"{seed}\x1f{lang}\x1f{conv_key}\x1f{turn_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < rate


def chrf(hypothesis: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    return round(CHRF().sentence_score(hypothesis, [reference]).score, 2)


Ask = Callable[[list[str]], list[str]]  # texts → English back-translations, in order


def bt_key(conv_key: str, turn_index: int, text: str) -> str:
    """The memory key of one turn's back-translation. Per turn, not per text: two shard tasks never ask for the
    same key, so each turn's score comes from the one answer its own task received and stored (a text shared by
    turns of different shards asked twice at once could get two different answers from a server that is not
    batch-invariant, and a rerun could then read the other one)."""
    return unit_hash(f"{conv_key}\x1f{turn_index}\x1f{text}")


def make_backtranslator(
    server: str, config: TranslatorConfig, memory: TranslationMemory, lang: str, concurrency: int = 16, ask: Ask | None = None
) -> Callable[[list[tuple[str, str]]], list[str]]:
    """A function: (key from :func:`bt_key`, text in ``lang``) pairs → English back-translations (cached in
    ``memory``). ``ask`` replaces the server (tests)."""
    version = hashlib.sha256(f"{config.version(lang)}\x1f{prompt()}".encode()).hexdigest()[:16]
    bt_lang = f"bt-{lang}"
    ask = ask or (lambda texts: asyncio.run(_ask(server, config, texts, concurrency)))

    def run(items: list[tuple[str, str]]) -> list[str]:
        done = memory.load(bt_lang, version, {key for key, _ in items})
        missing = sorted({(key, text) for key, text in items if key not in done})
        if missing:
            new = ask([text for _, text in missing])
            entries = [Entry(key, bt_lang, version, "ok", answer, answer) for (key, _), answer in zip(missing, new)]
            memory.commit(entries)
            done.update({e.unit_hash: e for e in entries})
        return [done[key].text or "" for key, _ in items]

    return run


async def _ask(server: str, config: TranslatorConfig, texts: list[str], concurrency: int) -> list[str]:
    backend = OpenAIChatBackend(server)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(text: str) -> str:
        async with semaphore:
            messages = [{"role": "system", "content": prompt()}, {"role": "user", "content": text}]
            answer = await backend.complete(messages, min(config.max_tokens, 2 * len(text) + 16), config.sampling(), config.model)
            return answer.text.strip()

    try:
        return list(await asyncio.gather(*(one(t) for t in texts)))
    finally:
        await backend.close()
