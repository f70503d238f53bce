"""vLLM server settings on a CPU, compared on the same requests: output tokens/s and time to first token.

Starts ``polyglot services up vllm``'s server for each setting in turn (``--setting NAME='vllm serve options'``,
repeatable; ``VAR=value`` words before the options set environment variables for that server), sends the same
translation requests to each — the first ``--lines`` ntrex-dev lines into each of ``--langs``, with the project's
prompts, token budgets and loop watch, ``--concurrency`` in flight, streamed — and prints per setting: start-up
seconds, wall seconds, output tokens/s (the server's own generation counter ÷ wall), time to first token of each
request (median, 90th percentile, maximum; the very first request apart, it waits for the first batch), requests
stopped as loops, preemptions, prefix-cache hits, and chrF against the references per language (a stopped loop
counts as an empty answer): a setting that changes the weights (an int8 model folder as ``--model``) shows what
its speed costs in quality.

    .venv/bin/python bench/bench_server.py --model .polyglot/models/gguf-cc324af070c2ecbf \\
        --setting 'defaults=' --setting 'small-chunks=--max-num-batched-tokens 256'

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import processes
from pipeline.references import corpus_scores, load_pairs, shared_data
from pipeline.serve.vllm import start_vllm
from pipeline.translate.backends import WATCH_EVERY
from pipeline.translate.requests import loop_watch
from pipeline.translate.served import served_models
from pipeline.translate.settings import TranslatorConfig


def metrics(url: str) -> dict[str, float]:
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        key = name.split("{", 1)[0]
        if key in (
            "vllm:generation_tokens_total",
            "vllm:prompt_tokens_total",
            "vllm:num_preemptions_total",
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total",
        ):
            out[key] = out.get(key, 0.0) + float(value)
    return out


async def one(session, url: str, payload: dict, source: str, lang: str, started: float) -> dict:
    """One streamed request: seconds to its first content, content chunks, whether the loop watch stopped it."""
    watch = loop_watch(source, lang)
    sent = time.monotonic()
    first = None
    parts: list[str] = []
    looked = 0
    stopped = False
    async with session.post(
        f"{url}/v1/chat/completions", data=orjson.dumps(payload), headers={"Content-Type": "application/json"}
    ) as resp:
        async for line in resp.content:
            if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
                continue
            event = orjson.loads(line[5:].strip())
            for choice in event.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    first = first or time.monotonic()
                    parts.append(piece)
            size = sum(map(len, parts))
            if watch and size - looked >= WATCH_EVERY:
                looked = size
                if watch("".join(parts)):
                    stopped = True
                    resp.close()
                    break
    return {
        "queued_at": sent - started,
        "ttft": (first - sent) if first else None,
        "chunks": len(parts),
        "stopped": stopped,
        "lang": lang,
        "source": source,
        "text": "" if stopped else "".join(parts).strip(),
    }


async def load(
    url: str, model: str, requests: list[tuple[dict, str, str]], concurrency: int
) -> tuple[float, list[dict]]:
    queue = iter(requests)
    results: list[dict] = []
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=7200)) as session:

        async def worker():
            for payload, source, lang in queue:
                results.append(await one(session, url, {**payload, "model": model}, source, lang, started))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started, results


def build_requests(langs: list[str], lines: int) -> list[tuple[dict, str, str]]:
    config = TranslatorConfig(model="bench")
    out = []
    for lang in langs:
        for source, _ in load_pairs(shared_data() / "ntrex-dev", lang)[:lines]:
            payload = {
                "messages": config.messages(lang, source),
                "max_tokens": config.budget(lang, source),
                **config.sampling(),
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            out.append((payload, source, lang))
    return out


def chrf_by_language(langs: list[str], results: list[dict]) -> dict[str, float]:
    """chrF of each language's answers against the NTREX references of the same lines."""
    out = {}
    for lang in langs:
        refs = dict(load_pairs(shared_data() / "ntrex-dev", lang))
        mine = [r for r in results if r["lang"] == lang]
        out[lang] = corpus_scores(lang, [r["text"] for r in mine], [refs[r["source"]] for r in mine])[0]
    return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="what services up vllm takes: a folder, a GGUF file, a hub name")
    parser.add_argument(
        "--setting", action="append", required=True, help="NAME='[VAR=value …] vllm serve options' (repeatable)"
    )
    parser.add_argument("--langs", default="es,zh,hi")
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--port", type=int, default=8411)
    args = parser.parse_args()
    requests = build_requests(args.langs.split(","), args.lines)
    report = {
        "model": args.model,
        "requests": len(requests),
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "avx512": "avx512f" in open("/proc/cpuinfo").read(),
        "settings": {},
    }
    print(
        f"{len(requests)} requests ({args.langs} × {args.lines} lines), {args.concurrency} in flight, {os.cpu_count()} CPUs",
        flush=True,
    )
    print(
        f"{'setting':<22}{'start s':>8}{'wall s':>8}{'out tok/s':>10}{'ttft med':>9}{'p90':>7}{'max':>7}{'first':>7}{'loops':>6}"
        f"{'preempt':>8}{'prefix hit':>11}  chrF {'/'.join(args.langs.split(','))}"
    )
    for spec in args.setting:
        name, _, rest = spec.partition("=")
        words = shlex.split(rest)
        env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
        options = [w for w in words if not ("=" in w and not w.startswith("-"))]
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        t0 = time.monotonic()
        record = start_vllm(args.model, port=args.port, extra_args=options)
        startup = time.monotonic() - t0
        try:
            model = served_models(record.url)[0]
            before = metrics(record.url)
            wall, results = asyncio.run(load(record.url, model, requests, args.concurrency))
            after = metrics(record.url)
        finally:
            processes.stop("vllm", args.port)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        first_sent = min(results, key=lambda r: r["queued_at"])
        ttfts = [r["ttft"] for r in results if r is not first_sent and r["ttft"] is not None]
        if not ttfts:
            raise SystemExit(
                f"{name}: no request got an answer from the server; its log says why "
                f"({processes.home() / 'logs' / f'vllm-{args.port}.log'})"
            )
        chrf = chrf_by_language(args.langs.split(","), results)
        row = {
            "startup_s": round(startup, 1),
            "wall_s": round(wall, 1),
            "output_tokens_per_s": round(delta.get("vllm:generation_tokens_total", 0.0) / wall, 2),
            "ttft_median_s": round(statistics.median(ttfts), 1),
            "ttft_p90_s": round(quantile(ttfts, 0.9), 1),
            "ttft_max_s": round(max(ttfts), 1),
            "ttft_first_s": round(first_sent["ttft"] or 0.0, 1),
            "stopped_loops": sum(r["stopped"] for r in results),
            "preemptions": int(delta.get("vllm:num_preemptions_total", 0)),
            "prefix_cache_hit_share": round(
                delta.get("vllm:prefix_cache_hits_total", 0)
                / max(1.0, delta.get("vllm:prefix_cache_queries_total", 0)),
                2,
            ),
            "generated_tokens": int(delta.get("vllm:generation_tokens_total", 0)),
            "chrf": chrf,
            "options": rest,
        }
        report["settings"][name] = row
        print(
            f"{name:<22}{row['startup_s']:>8}{row['wall_s']:>8}{row['output_tokens_per_s']:>10}{row['ttft_median_s']:>9}"
            f"{row['ttft_p90_s']:>7}{row['ttft_max_s']:>7}{row['ttft_first_s']:>7}{row['stopped_loops']:>6}{row['preemptions']:>8}"
            f"{row['prefix_cache_hit_share']:>11}  {' / '.join(f'{v:.1f}' for v in chrf.values())}",
            flush=True,
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
