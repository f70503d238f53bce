"""The translator backend: an async client for a vLLM OpenAI-compatible server (one or several replicas).

A backend answers one chat request at a time (``complete``); the caller runs many at once. With a ``watch``
the answer is streamed and ``watch`` sees it grow: when it says stop (the model is looping, say), the stream is
closed — vLLM then aborts the request instead of generating to the token budget — and the completion comes back
with ``finish_reason`` :data:`STOPPED`. Transient
failures (connection errors, timeouts, 5xx, 429, answers that are not a chat completion) are retried with
exponential backoff and full jitter until ``retry_seconds`` run out, then :class:`BackendUnavailable` stops
the run (nothing committed is lost; a rerun resumes). A 4xx answer is permanent for that request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson


@dataclass(slots=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


STOPPED = "stopped"  # finish reason of a streamed answer the caller's watch ended early
Watch = Callable[[str], bool]  # the answer so far → stop generating now


class BackendUnavailable(Exception):
    """The server did not give a usable answer within the retry budget (transient: rerun to resume)."""


class RequestRejected(Exception):
    """The server refused this request (4xx other than 429): retrying the same request will not help."""


class Backend(Protocol):
    requests_sent: int

    async def complete(
        self, messages: list[dict], max_tokens: int, sampling: dict, model: str, watch: Watch | None = None
    ) -> Completion: ...

    async def close(self) -> None: ...


def endpoints(server: str) -> list[str]:
    """The base URLs in ``server``: one URL, or several separated by commas (replicas serving the same model)."""
    urls = [u.strip().rstrip("/").removesuffix("/v1") for u in server.split(",") if u.strip()]
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if not urls or bad:
        raise ValueError(f"server URL must start with http:// or https:// (several: comma-separated), got {server!r}")
    return urls


class OpenAIChatBackend:
    """aiohttp client for ``POST {base_url}/v1/chat/completions`` (aiohttp keeps a CPU vLLM server saturated).

    With several endpoints (``"http://a:8000,http://b:8000"``) each request goes to the healthy endpoint with
    the fewest requests in flight; an endpoint that fails (connection error, 5xx, 429, timeout) rests for a
    growing cool-down while the others carry on, and the request is retried at once elsewhere. Only when no
    endpoint gives a usable answer for ``retry_seconds`` does the run stop.

    Hand-written on purpose, not the OpenAI SDK or a retry library: least-busy routing across replicas with a
    per-replica rest, a retry budget that starts at the first failure, streaming with a watch that closes the
    stream, and a client cheap enough to keep many replicas busy from one process (measured with the pipeline's
    work around it, 2 AVX2 cores, the load-test server on the other core: 0.96-0.99x a bare aiohttp client that
    streams, 0.97-1.08x a bare one that does not where no answer is streamed, 2,400-3,400 requests/s; docs/operations.md,
    "Sizing").
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        request_timeout: float = 1800.0,
        retry_seconds: float = 180.0,
        backoff_base: float = 0.5,
        backoff_max: float = 15.0,
        connections: int = 256,
    ):
        self.endpoints = endpoints(base_url)
        if retry_seconds < 0 or request_timeout <= 0:
            raise ValueError("retry_seconds must be >= 0 and request_timeout > 0")
        self.base_url = ",".join(self.endpoints)
        self.api_key = api_key
        self.request_timeout = request_timeout
        self.retry_seconds = retry_seconds
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.connections = connections
        self.requests_sent = 0
        self.retries = 0
        self.in_flight = {u: 0 for u in self.endpoints}
        self.answered = {u: 0 for u in self.endpoints}  # usable answers per endpoint
        self._resting_until = {u: 0.0 for u in self.endpoints}
        self._failures = {u: 0 for u in self.endpoints}
        self._session = None
        self._urls: dict = {}  # endpoint → its parsed chat URL (parsed once, not per request)
        self._embedding_urls: dict = {}  # endpoint → its parsed embeddings URL

    def _pick(self) -> str | None:
        """The healthy endpoint with the fewest requests in flight (None: every endpoint is resting)."""
        now = time.monotonic()
        if len(self.endpoints) == 1:
            only = self.endpoints[0]
            return only if self._resting_until[only] <= now else None
        healthy = [u for u in self.endpoints if self._resting_until[u] <= now]
        return min(healthy, key=lambda u: (self.in_flight[u], self.endpoints.index(u))) if healthy else None

    def _failed(self, url: str) -> None:
        self._failures[url] += 1
        rest = min(self.backoff_max, self.backoff_base * 2 ** (self._failures[url] - 1))
        self._resting_until[url] = time.monotonic() + rest

    async def _session_get(self):
        import aiohttp

        if self._session is None:
            from yarl import URL

            self._urls = {u: URL(f"{u}/v1/chat/completions") for u in self.endpoints}
            self._embedding_urls = {u: URL(f"{u}/v1/embeddings") for u in self.endpoints}
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                connector=aiohttp.TCPConnector(limit=self.connections),
            )
        return self._session

    async def complete(
        self, messages: list[dict], max_tokens: int, sampling: dict, model: str, watch: Watch | None = None
    ) -> Completion:
        """One chat completion. With ``watch`` the answer is streamed and checked as it grows (every
        :data:`WATCH_EVERY` characters); when ``watch`` returns True the stream is closed, the server aborts the
        request, and the completion has ``finish_reason`` :data:`STOPPED` with the text so far."""
        # orjson: measured 1 µs to encode a request (json: 14) and 2 µs to parse an answer (json: 9); UTF-8 on the
        # wire, not \\u escapes
        request = {"model": model, "messages": messages, "max_tokens": max_tokens, **sampling}
        if watch is not None:
            request.update(stream=True, stream_options={"include_usage": True})
            return await self._post(orjson.dumps(request), lambda resp: _read_stream(resp, watch))
        return await self._post(orjson.dumps(request), _read_completion)

    async def candidates(
        self, messages: list[dict], max_tokens: int, sampling: dict, model: str, n: int
    ) -> list[Completion]:
        """``n`` answers to one chat request (vLLM's ``n``: sampled together, the prompt computed once), not
        streamed; each completion's token count is its own (the usage's total spread evenly)."""
        request = {"model": model, "messages": messages, "max_tokens": max_tokens, "n": n, **sampling}
        return await self._post(orjson.dumps(request), _read_completions)

    async def embeddings(self, texts: list[str], model: str) -> list[list[float]]:
        """One vector per text from ``POST /v1/embeddings`` (an embedding model, e.g. vLLM's pooling runner); a
        text longer than the model's context is cut to it (vLLM's ``truncate_prompt_tokens`` -1)."""
        request = {"model": model, "input": texts, "truncate_prompt_tokens": -1}
        await self._session_get()
        return await self._post(
            orjson.dumps(request), lambda resp: _read_embeddings(resp, len(texts)), self._embedding_urls
        )

    async def _post(self, body: bytes, read, urls: dict | None = None):
        """POST ``body`` to the least busy healthy endpoint (its URL in ``urls``, default the chat URLs) and
        ``read`` the 200 answer; retried elsewhere or later as the class says."""
        import aiohttp

        session = await self._session_get()
        urls = urls or self._urls
        # The retry budget starts at the first failure: time spent waiting for an answer that then fails (a
        # long queue on a server that dies) does not count against trying the other endpoints.
        deadline: float | None = None
        attempt = 0
        error = "no endpoint available"
        while True:
            attempt += 1
            base = self._pick()
            if base is None:  # every endpoint is resting: wait for the first to come back
                deadline = deadline or time.monotonic() + self.retry_seconds
                wake = min(self._resting_until.values())
                if wake > deadline:
                    raise self._unavailable(attempt - 1, error)
                await asyncio.sleep(max(0.0, wake - time.monotonic()) + random.uniform(0, self.backoff_base))
                continue
            url = urls[base]
            self.requests_sent += 1
            self.in_flight[base] += 1
            try:
                async with session.post(url, data=body, headers=_JSON) as resp:
                    if resp.status == 200:
                        completion = await read(resp)
                        self._failures[base] = 0
                        self.answered[base] += 1
                        return completion
                    answer = await resp.read()
                    if resp.status == 429 or resp.status >= 500:
                        error = f"{base}: HTTP {resp.status}: {_excerpt(answer, 200)}"
                    else:
                        raise RequestRejected(f"HTTP {resp.status} from {url}: {_excerpt(answer, 300)}")
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                error = f"{base}: {type(exc).__name__}: {exc}"
            except _BadAnswer as exc:
                error = f"{base}: {'not an embeddings answer' if urls is self._embedding_urls else 'not a chat completion'}: {exc}"
            finally:
                self.in_flight[base] -= 1
            self._failed(base)
            self.retries += 1
            deadline = deadline or time.monotonic() + self.retry_seconds
            if time.monotonic() > deadline:
                raise self._unavailable(attempt, error)
            if self._pick() is None:  # nowhere else to go now: back off with jitter before the next try
                delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
                if time.monotonic() + delay > deadline:
                    raise self._unavailable(attempt, error)
                await asyncio.sleep(delay)

    def _unavailable(self, attempts: int, error: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"the server at {self.base_url} gave no usable answer in {attempts} attempt(s) over "
            f"{self.retry_seconds:.0f} s (last: {error}). Check that it runs (polyglot services status), "
            f"then rerun: finished work is kept and only the rest is sent."
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _BadAnswer(Exception):
    pass


_JSON = {"Content-Type": "application/json"}


def _excerpt(body: bytes, n: int) -> str:
    return body[:n].decode("utf-8", errors="replace")


async def _read_completion(resp) -> Completion:
    return _parse_completion(await resp.read())


async def _read_completions(resp) -> list[Completion]:
    body = await resp.read()
    try:
        data = orjson.loads(body)
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        usage = data.get("usage") or {}
        texts = [(c["message"]["content"] or "", c.get("finish_reason")) for c in choices]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _BadAnswer(f"{type(exc).__name__} in {_excerpt(body, 200)!r}") from None
    if not texts or not all(isinstance(t, str) for t, _ in texts):
        raise _BadAnswer(f"no text answers in {_excerpt(body, 200)!r}")
    each = usage.get("completion_tokens", 0) // len(texts)
    return [Completion(t, finish, usage.get("prompt_tokens", 0), each) for t, finish in texts]


async def _read_embeddings(resp, n: int) -> list[list[float]]:
    body = await resp.read()
    try:
        data = sorted(orjson.loads(body)["data"], key=lambda d: d["index"])
        vectors = [d["embedding"] for d in data]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _BadAnswer(f"{type(exc).__name__} in {_excerpt(body, 200)!r}") from None
    if len(vectors) != n or not all(isinstance(v, list) and v and len(v) == len(vectors[0]) for v in vectors):
        raise _BadAnswer(f"expected {n} vectors of one size, got {_excerpt(body, 200)!r}")
    return vectors


def _parse_completion(body: bytes) -> Completion:
    try:
        data = orjson.loads(body)
        choice = data["choices"][0]
        text = choice["message"]["content"]
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _BadAnswer(f"{type(exc).__name__} in {_excerpt(body, 200)!r}") from None
    if text is not None and not isinstance(text, str):
        raise _BadAnswer(f"content is {type(text).__name__}, not text")
    return Completion(
        text or "", choice.get("finish_reason"), usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    )


WATCH_EVERY = 48  # characters of new answer text between two looks of the watch (a look is linear in the text)


async def _sse_events(resp):
    """The events of a server-sent event stream, a list per network read (a read can carry many events: split and
    parsed together, they cost a fraction of reading line by line through aiohttp and parsing one by one). The
    ``[DONE]`` marker ends the stream. Raises :class:`_BadAnswer` on a payload that is not JSON."""
    rest = b""
    async for chunk in resp.content.iter_any():
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        datas = [line[5:].strip() for line in lines if line.startswith(b"data:")]
        done = b"[DONE]" in datas
        if done:
            datas = datas[: datas.index(b"[DONE]")]
        if datas:
            try:
                yield orjson.loads(b"[" + b",".join(datas) + b"]")
            except ValueError:
                bad = next((d for d in datas if not _parses(d)), datas[0])
                raise _BadAnswer(f"JSONDecodeError in the stream: {_excerpt(bad, 200)!r}") from None
        if done:
            return
    if rest.startswith(b"data:") and (data := rest[5:].strip()) != b"[DONE]":
        try:
            yield [orjson.loads(data)]
        except ValueError:
            raise _BadAnswer(f"JSONDecodeError in the stream: {_excerpt(data, 200)!r}") from None


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
        return True
    except ValueError:
        return False


async def _read_stream(resp, watch: Watch) -> Completion:
    """Read a streamed chat completion (server-sent events), showing the text to ``watch`` as it grows; close the
    stream as soon as ``watch`` says stop. Token counts: the server's usage when the stream ends normally; for a
    stopped one, the content chunks received (vLLM streams a token or a few per chunk: a lower bound)."""
    parts: list[str] = []
    finish, usage, chunks, size, looked = None, {}, 0, 0, 0
    async for events in _sse_events(resp):
        for event in events:
            try:
                usage = event.get("usage") or usage
                for choice in event.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        parts.append(piece)
                        size += len(piece)
                        chunks += 1
                    finish = choice.get("finish_reason") or finish
            except (AttributeError, TypeError) as exc:
                raise _BadAnswer(
                    f"{type(exc).__name__} in the stream: {_excerpt(orjson.dumps(event), 200)!r}"
                ) from None
            if finish is None and size - looked >= WATCH_EVERY:
                # The watch looks at fixed lengths (every WATCH_EVERY characters), between events, not where a chunk
                # or a network read happened to end: how many tokens a chunk carries depends on the server's speed
                # and load, and a stopped answer's text (kept as the flagged raw answer, shown in the shards) must
                # not, or a rerun of the same work differs.
                text = "".join(parts)
                while size - looked >= WATCH_EVERY:
                    looked += WATCH_EVERY
                    if watch(text[:looked]):
                        resp.close()  # the server sees the client go and aborts the request
                        return Completion(text[:looked], STOPPED, usage.get("prompt_tokens", 0), chunks)
    if finish is None:
        raise _BadAnswer("the stream ended without a finish reason")
    return Completion("".join(parts), finish, usage.get("prompt_tokens", 0), usage.get("completion_tokens", chunks))
