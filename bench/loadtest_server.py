"""An instant OpenAI-compatible chat server for LOAD TESTS ONLY. IT IS NOT A TRANSLATOR.

It answers ``POST /v1/chat/completions`` at once (streamed as server-sent events when asked, in pieces of a few
words like a real server) with a deterministic pseudo-translation of the last user
message: a professional sentence of the target language (told from the system prompt) picked by a hash of the
message from ``--references`` (ntrex-dev: ``newstest2019-ref.{code}.txt``), followed by the message's
placeholders ``⟦n⟧`` in order. It has nothing to do with the message's meaning; it only looks like an answer
in the right language and script, so that the pipeline's checks, language rules and QE do the work they do on
real answers while the server costs next to nothing. Every reply names the model ``loadtest-not-a-translator``
and carries ``system_fingerprint: "loadtest: not a translator"``. ``GET /v1/models`` lists that model;
``GET /metrics`` counts answered requests under vLLM's metric names, so tools that read a vLLM server's request
count work here too.

    .venv/bin/python bench/loadtest_server.py --port 8300 [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
from pathlib import Path

from aiohttp import web

MODEL = "loadtest-not-a-translator"
DEFAULT_REFERENCES = (
    Path(os.environ.get("POLYGLOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "ntrex-dev"
)
_FILES = {
    "Chinese": "zho-CN",
    "Hindi": "hin",
    "Spanish": "spa",
    "French": "fra",
    "Arabic": "arb",
    "Bengali": "ben",
    "Russian": "rus",
    "Urdu": "urd",
    "Japanese": "jpn",
}
_LANGUAGE = re.compile(r"into (?:Modern Standard |Simplified )?(\w+)")
_PLACEHOLDER = re.compile(r"⟦\d+⟧")


def load_references(folder: Path) -> dict[str, list[str]]:
    return {
        name: [
            line
            for line in (folder / f"newstest2019-ref.{code}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        for name, code in _FILES.items()
    }


def pseudo_translate(references: dict[str, list[str]], system: str, text: str) -> str:
    m = _LANGUAGE.search(system)
    lines = references.get(m.group(1) if m else "Spanish", references["Spanish"])
    pick = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") % len(lines)
    placeholders = _PLACEHOLDER.findall(text)
    return lines[pick].strip() + ("" if not placeholders else " " + " ".join(placeholders))


class LoadTestServer:
    def __init__(self, references: dict[str, list[str]], delay: float = 0.0) -> None:
        self.references = references
        self.delay = delay
        self.answered = 0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        user = messages[-1]["content"].split("\n\nYour previous answer was not usable", 1)[0]
        text = pseudo_translate(self.references, system, user)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.answered += 1
        head = {"id": f"loadtest-{self.answered}", "model": MODEL, "system_fingerprint": "loadtest: not a translator"}
        usage = {"prompt_tokens": len(user) // 4 + 150, "completion_tokens": len(text) // 3 + 1}
        if not body.get("stream"):
            return web.json_response(
                {
                    **head,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces = [text[i : i + 32] for i in range(0, len(text), 32)]
        events = [
            {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            for piece in pieces
        ]
        events.append(
            {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        )
        events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        await response.write(
            "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"
        )
        await response.write_eof()
        return response

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": MODEL, "root": "load test: not a translator", "parent": None}]}
        )

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=f'vllm:request_success_total{{finished_reason="stop",model_name="{MODEL}"}} {self.answered}\n'
            f'http_requests_total{{handler="/v1/chat/completions",method="POST",status="2xx"}} {self.answered}\n'
        )


def app(references: Path = DEFAULT_REFERENCES, delay: float = 0.0) -> web.Application:
    server = LoadTestServer(load_references(references), delay)
    application = web.Application(client_max_size=16 << 20)
    application.add_routes(
        [
            web.post("/v1/chat/completions", server.chat),
            web.get("/v1/models", server.models),
            web.get("/metrics", server.metrics),
        ]
    )
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer (a slow server stand-in)")
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    web.run_app(
        app(args.references, args.delay), host=args.host, port=args.port, access_log=None, print=lambda *_: None
    )


if __name__ == "__main__":
    main()
