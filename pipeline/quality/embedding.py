"""The embedding judge: the cosine of a multilingual embedding model's vectors for the English source and the
translation (``turn_embed_sim``), a meaning signal of the quality score (:mod:`pipeline.quality.score`) beside
the back-translation's chrF.

It needs an OpenAI-compatible ``/v1/embeddings`` endpoint (``--embed-server``): vLLM serving a multilingual
embedding model with its pooling runner (``polyglot services up vllm --embedding --model …``). One embedding
request costs a forward pass over the two texts and no generated token — a fraction of a back-translation — so
every turn the form checks did not reject gets one. Texts carry the prefix the model was trained with for
sentence similarity (:data:`PREFIXES`; ``--embed-prefix`` for another model). Cosines are kept in the
translation memory (language ``emb-LL``, version = hash of the model and prefix), keyed per turn like
back-translations, so a rerun sends nothing and gives the same scores.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import regex

from pipeline.translate.backends import OpenAIChatBackend, RequestRejected
from pipeline.translate.memory import TranslationMemory

# (part of the model's name, the prefix its model card gives for sentence similarity), first match wins
PREFIXES = (
    ("embeddinggemma", "task: sentence similarity | query: "),
    ("e5", "query: "),
)
PAIRS_PER_REQUEST = 16  # (source, translation) pairs per embeddings request: 32 texts
# Where a translation's clauses end: clause and sentence marks of every script (not a point or comma between digits).
_CLAUSE_END = regex.compile(r"(?<!\d)[.,](?!\d)|[;:!?،؛、，；：。！？।۔]", regex.V1)


def last_clause(text: str) -> str | None:
    """The translation's last clause, or None when it has only one. A clause appended to a translation (an
    addition) is far in meaning from the source on its own, however close the whole stays."""
    parts = [p.strip() for p in _CLAUSE_END.split(text) if any(c.isalnum() for c in p)]
    return parts[-1] if len(parts) >= 2 else None


def last_clause_cosines(
    embed: Callable[[list[tuple[str, str, str]]], list[float]], items: list[tuple[str, int, str, str]]
) -> list[float | None]:
    """For each (tag, index, English source, translation): the cosine of the source with the translation's last
    clause (None where it has one clause only), asked of ``embed`` (:func:`make_embedder`'s function: the memory
    keeps them, keyed ``tail:<tag>``, index and clause)."""
    from pipeline.quality.backtranslation import bt_key

    clauses = [(n, tag, i, source, c) for n, (tag, i, source, text) in enumerate(items) if (c := last_clause(text))]
    sims = embed([(bt_key(f"tail:{tag}", i, clause), source, clause) for _, tag, i, source, clause in clauses])
    out: list[float | None] = [None] * len(items)
    for (n, *_), sim in zip(clauses, sims):
        out[n] = sim
    return out


def default_prefix(model: str) -> str:
    name = model.lower()
    return next((prefix for part, prefix in PREFIXES if part in name), "")


class EmbeddingServerError(RuntimeError):
    """The embedding server refused or gave nothing usable: the message says what and what to do."""


@dataclass(frozen=True)
class EmbedJudge:
    """Who embeds: a server (one URL or replicas), the model it serves, and the prefix put before every text
    (None: the model's own, :func:`default_prefix`)."""

    server: str
    model: str
    prefix: str | None = None

    def text_prefix(self) -> str:
        return default_prefix(self.model) if self.prefix is None else self.prefix

    def version(self) -> str:
        return "emb-" + hashlib.sha256(f"{self.model}\x1f{self.text_prefix()}".encode()).hexdigest()[:16]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


Ask = Callable[[list[tuple[str, str]], Callable[[int, float], None]], None]  # pairs, on_answer(index, cosine)


def cosines(judge: EmbedJudge, pairs: list[tuple[str, str]], concurrency: int = 4) -> list[float]:
    """The cosine of each (English source, translation) pair, asked of the judge's server now (no memory)."""
    out: list[float] = [0.0] * len(pairs)

    def on_answer(index: int, similarity: float) -> None:
        out[index] = similarity

    asyncio.run(_ask(judge, pairs, concurrency, on_answer))
    return out


def make_embedder(
    judge: EmbedJudge,
    memory: TranslationMemory,
    lang: str,
    concurrency: int = 4,
    ask: Ask | None = None,
    commit_age: float = 30.0,
) -> Callable[[list[tuple[str, str, str]]], list[float]]:
    """A function: (key from :func:`pipeline.quality.backtranslation.bt_key`, English source, text in ``lang``)
    triples → cosines, kept in ``memory`` (committed in batches as they arrive). ``ask`` replaces the server."""
    version = judge.version()
    emb_lang = f"emb-{lang}"
    ask = ask or (lambda pairs, on_answer: asyncio.run(_ask(judge, pairs, concurrency, on_answer)))

    def run(items: list[tuple[str, str, str]]) -> list[float]:
        def ask_missing(missing: list[tuple], on_answer: Callable[[int, str], None]) -> None:
            ask([(source, text) for _, source, text in missing], lambda i, sim: on_answer(i, f"{sim:.6f}"))

        done = memory.kept_answers(emb_lang, version, items, ask_missing, commit_age, batch=256)
        return [float(done[key].text) for key, _, _ in items]

    return run


async def _ask(
    judge: EmbedJudge, pairs: list[tuple[str, str]], concurrency: int, on_answer: Callable[[int, float], None]
) -> None:
    backend = OpenAIChatBackend(judge.server)
    semaphore = asyncio.Semaphore(concurrency)
    prefix = judge.text_prefix()

    async def batch(start: int) -> None:
        chunk = pairs[start : start + PAIRS_PER_REQUEST]
        async with semaphore:
            try:
                vectors = await backend.embeddings([prefix + t for pair in chunk for t in pair], judge.model)
            except RequestRejected as exc:
                raise EmbeddingServerError(
                    f"the embedding server {judge.server} refused a request for model {judge.model!r} ({exc}); "
                    "it must serve an embedding model (polyglot services up vllm --embedding --model …) under that "
                    "name (--embed-model)"
                ) from None
        for i in range(len(chunk)):
            on_answer(start + i, cosine(vectors[2 * i], vectors[2 * i + 1]))

    try:
        await asyncio.gather(*(batch(i) for i in range(0, len(pairs), PAIRS_PER_REQUEST)))
    finally:
        await backend.close()
