"""A plan before a run: what ``polyglot translate`` would send for a workspace's ingested units, per language, and how
long it would take — without sending one translation request.

Per language: the units the memory lacks for the language's translator version (the run's own
:func:`pipeline.translate.requests.plan`), back-translation requests as the run would decide them (``bt_rate``, else
every turn, or a :data:`~pipeline.assemble.translations.BT_SAMPLE` share for a translator known to be good: an upper
bound, since turns the form checks reject get none), turns the embedding judge would embed (with ``--embed-server``: every
turn at most, :data:`~pipeline.quality.embedding.PAIRS_PER_REQUEST` to a request), and estimated input and output
tokens of the translator's server. Output tokens per English
source character come from the translator's measured ratio (its qualification, else earlier answers in the memory to
these units), else :data:`DEFAULT_OUTPUT_TOKENS_PER_CHAR`; the source of each is named in the plan."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from pipeline.assemble.translations import BT_SAMPLE
from pipeline.quality.score import load as load_calibration
from pipeline.translate.memory import TranslationMemory
from pipeline.translate.requests import TranslateSummary, Translators, plan
from pipeline.translate.translators import qualifications

# Measured with Qwen2.5's tokenizer (the packaged 1.5B model's) on the 1,005 NTREX-128 dev lines (mean 127 English
# characters): tokens of the professional reference per character of the English source. Tokenizers of other
# model families differ; a qualification of the translator replaces these with its own answers' ratio.
DEFAULT_OUTPUT_TOKENS_PER_CHAR = {
    "zh": 0.223,
    "hi": 1.0,
    "es": 0.308,
    "fr": 0.328,
    "ar": 0.354,
    "bn": 1.079,
    "ru": 0.392,
    "ur": 0.664,
    "ja": 0.299,
}
ENGLISH_TOKENS_PER_CHAR = 0.213  # the same tokenizer on the English sources: a back-translation's answer
PROMPT_TOKENS = 215  # the project's prompt without the text, chat template included (189-254 by language)
PROMPT_TOKENS_PER_CHAR = 0.218  # the text inside the prompt


@dataclass
class LanguagePlan:
    lang: str
    units: int  # unique units of the workspace
    cached: int  # in the memory for this translator version already
    human_only: int  # in turns a person decided only
    requests: int  # translation requests (first attempts; retries add to them)
    source_chars: int  # English characters those requests carry
    bt_rate: float
    bt_requests: int  # back-translations at most (form-rejected turns get none)
    input_tokens: int
    output_tokens: int
    output_per_char: float
    output_ratio_from: str  # "qualification", "memory" or "default"
    embed_turns: int = 0  # turns the embedding judge embeds at most (an embedding server's work: no tokens counted)
    embed_requests: int = 0


def output_ratio(workspace: Path, lang: str, version: str, units: dict[str, str]) -> tuple[float, str]:
    """Output tokens per English source character of ``lang``'s translator, and where the figure comes from."""
    row = qualifications(workspace).get((version, lang))
    if row and row.get("output_tokens_per_char"):
        return float(row["output_tokens_per_char"]), "qualification"
    memory = TranslationMemory(Path(workspace) / "tm")
    files = [p for key in memory.keys() if key[0] == lang for p in memory.files(*key)]
    if files and units:
        seen = (
            pl.scan_parquet(files)
            .select("unit_hash", "attempts", "completion_tokens")
            .filter(pl.col("unit_hash").is_in(list(units)) & (pl.col("completion_tokens") > 0))
            .collect()
        )
        chars = sum(len(units[h]) * a for h, a in zip(seen["unit_hash"], seen["attempts"]))
        if chars >= 2000:  # enough text for a ratio
            return round(seen["completion_tokens"].sum() / chars, 3), "memory"
    return DEFAULT_OUTPUT_TOKENS_PER_CHAR[lang], "default"


def make_plan(
    workspace: Path,
    langs: list[str],
    translators: Translators,
    human: dict[str, set[tuple[str, int]]],
    bt_rate: float | None,
    turns: int,
    units_in_turns: int,
    embed: bool = False,
) -> list[LanguagePlan]:
    """The plan of each target language of ``langs`` for the workspace's ingested units (``turns``: its turns, made
    of ``units_in_turns`` units, repeats counted; ``embed``: the run has an embedding judge)."""
    from pipeline.quality.embedding import PAIRS_PER_REQUEST
    from pipeline.translate.requests import load_unique_units

    ws = Path(workspace)
    units = {h: text for h, text, _ in load_unique_units(ws / "ingest")}
    memory = TranslationMemory(ws / "tm")
    mean_unit = sum(map(len, units.values())) / max(len(units), 1)
    turn_chars = mean_unit * units_in_turns / max(turns, 1)  # a back-translation carries a whole turn
    plans = []
    for lang in [lang for lang in langs if lang != "en"]:
        summary = TranslateSummary()
        jobs = plan(ws / "ingest", [lang], memory, translators, summary, human)
        counts = summary.languages[lang]
        version = translators[lang].version(lang)
        rate = bt_rate
        if rate is None:
            rate = BT_SAMPLE if load_calibration(ws, lang, version, say=lambda _line: None).known_good else 1.0
        per_char, source = output_ratio(ws, lang, version, units)
        chars = sum(len(j.text) for j in jobs)
        out = round(chars * per_char)
        bt = round(turns * rate) if rate else 0
        # a back-translation's prompt carries the translation (as long as this run's answers, on average)
        bt_in = round(bt * (PROMPT_TOKENS + turn_chars * per_char))
        bt_out = round(bt * turn_chars * ENGLISH_TOKENS_PER_CHAR)
        plans.append(
            LanguagePlan(
                lang,
                counts.unique_units,
                counts.cached,
                counts.human_only,
                len(jobs),
                chars,
                rate,
                bt,
                round(len(jobs) * PROMPT_TOKENS + chars * PROMPT_TOKENS_PER_CHAR) + bt_in,
                out + bt_out,
                per_char,
                source,
                turns if embed else 0,
                -(-turns // PAIRS_PER_REQUEST) if embed else 0,
            )
        )
    return plans


async def _probe(server: str, model: str, requests: int, max_tokens: int) -> tuple[int, float]:
    import httpx

    from pipeline.translate.backends import endpoints

    base = endpoints(server)[0]
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Write the numbers from one to three hundred in words."}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(client.post(f"{base}/v1/chat/completions", json=body) for _ in range(requests))
        )
        seconds = time.perf_counter() - started
    for answer in answers:
        answer.raise_for_status()
    return sum(a.json()["usage"]["completion_tokens"] for a in answers), seconds


def probe_rate(server: str, model: str, concurrency: int, max_tokens: int = 64) -> tuple[float, str]:
    """Output tokens/s of the server with ``concurrency`` (at most 16) requests of ``max_tokens`` in flight at once,
    from one short burst that translates nothing; and a line saying how it was measured."""
    requests = max(1, min(concurrency, 16))
    tokens, seconds = asyncio.run(_probe(server, model, requests, max_tokens))
    return tokens / seconds, f"measured now: {requests} requests of up to {max_tokens} tokens at once, {seconds:.1f} s"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def render(plans: list[LanguagePlan], rate: float | None, rate_from: str) -> str:
    embed = any(p.embed_turns for p in plans)
    lines = [
        f"{'lang':<5}{'units':>9}{'cached':>9}{'requests':>10}{'bt ≤':>9}{'embed ≤' if embed else '':>9}"
        f"{'in tokens':>13}{'out tokens':>13}{'out/char':>10}  ratio from"
    ]
    for p in plans:
        lines.append(
            f"{p.lang:<5}{p.units:>9,}{p.cached:>9,}{p.requests:>10,}{p.bt_requests:>9,}"
            f"{f'{p.embed_turns:,}' if embed else '':>9}{p.input_tokens:>13,}{p.output_tokens:>13,}"
            f"{p.output_per_char:>10.3f}  {p.output_ratio_from}"
        )
    requests, bt = sum(p.requests for p in plans), sum(p.bt_requests for p in plans)
    tokens_in, tokens_out = sum(p.input_tokens for p in plans), sum(p.output_tokens for p in plans)
    lines.append(
        f"total: {requests:,} translation requests + at most {bt:,} back-translations; "
        f"{tokens_in:,} input and {tokens_out:,} output tokens (retries add to these)"
    )
    if embed:
        lines.append(
            f"embedding judge: at most {sum(p.embed_turns for p in plans):,} turns embedded in "
            f"{sum(p.embed_requests for p in plans):,} requests to the embedding server (not in the tokens above)"
        )
    lines.append(f"per 1,000 output tokens/s of server throughput: {_duration(tokens_out / 1000)}")
    if rate:
        lines.append(f"at {rate:,.1f} output tokens/s ({rate_from}): {_duration(tokens_out / rate)}")
    else:
        lines.append(f"time: {rate_from}")
    return "\n".join(lines)


def as_json(plans: list[LanguagePlan], rate: float | None, rate_from: str) -> dict:
    out = sum(p.output_tokens for p in plans)
    return {
        "languages": [asdict(p) for p in plans],
        "tokens_per_second": rate,
        "tokens_per_second_from": rate_from,
        "seconds": round(out / rate, 1) if rate else None,
    }
