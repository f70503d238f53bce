"""Translator backends: an async client for a vLLM OpenAI-compatible server, and vLLM's offline engine.

A backend answers one chat request at a time (``complete``); the caller runs many at once. Transient
failures (connection errors, timeouts, 5xx, 429, answers that are not a chat completion) are retried with
exponential backoff and full jitter until ``retry_seconds`` run out, then :class:`BackendUnavailable` stops
the run (nothing committed is lost; a rerun resumes). A 4xx answer is permanent for that request.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class BackendUnavailable(Exception):
    """The server did not give a usable answer within the retry budget (transient: rerun to resume)."""


class RequestRejected(Exception):
    """The server refused this request (4xx other than 429): retrying the same request will not help."""


class Backend(Protocol):
    requests_sent: int

    async def complete(self, messages: list[dict], max_tokens: int, sampling: dict, model: str) -> Completion: ...

    async def close(self) -> None: ...


class OpenAIChatBackend:
    """aiohttp client for ``POST {base_url}/v1/chat/completions`` (aiohttp keeps a CPU vLLM server saturated)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        request_timeout: float = 600.0,
        retry_seconds: float = 180.0,
        backoff_base: float = 0.5,
        backoff_max: float = 15.0,
        connections: int = 256,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {base_url!r}")
        if retry_seconds < 0 or request_timeout <= 0:
            raise ValueError("retry_seconds must be >= 0 and request_timeout > 0")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self.request_timeout = request_timeout
        self.retry_seconds = retry_seconds
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.connections = connections
        self.requests_sent = 0
        self.retries = 0
        self._session = None

    async def _session_get(self):
        import aiohttp

        if self._session is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                connector=aiohttp.TCPConnector(limit=self.connections),
            )
        return self._session

    async def complete(self, messages: list[dict], max_tokens: int, sampling: dict, model: str) -> Completion:
        import aiohttp

        session = await self._session_get()
        payload = {"model": model, "messages": messages, "max_tokens": max_tokens, **sampling}
        deadline = time.monotonic() + self.retry_seconds
        attempt = 0
        url = f"{self.base_url}/v1/chat/completions"
        while True:
            attempt += 1
            self.requests_sent += 1
            try:
                async with session.post(url, json=payload) as resp:
                    body = await resp.text()
                    if resp.status == 200:
                        return _parse_completion(body)
                    if resp.status == 429 or resp.status >= 500:
                        error = f"HTTP {resp.status}: {body[:200]}"
                    else:
                        raise RequestRejected(f"HTTP {resp.status} from {url}: {body[:300]}")
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            except _BadAnswer as exc:
                error = f"not a chat completion: {exc}"
            delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
            if time.monotonic() + delay > deadline:
                raise BackendUnavailable(
                    f"the server at {self.base_url} gave no usable answer in {attempt} attempt(s) over "
                    f"{self.retry_seconds:.0f} s (last: {error}). Check that it runs (polyglot services status), "
                    f"then rerun: finished work is kept and only the rest is sent."
                )
            self.retries += 1
            await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _server_root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


def model_cards(base_url: str, timeout: float = 10.0) -> list[dict]:
    """What ``GET /v1/models`` lists: ``id`` (the name to request), ``root`` (for the base model: the path or
    hub name it was loaded from; for an adapter: its path) and ``parent`` (None for the base model). Base first."""
    import urllib.error
    import urllib.request

    url = _server_root(base_url) + "/v1/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
        models = [dict(m) for m in data["data"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendUnavailable(
            f"cannot list the models of the server at {url} ({exc}); start one with 'polyglot services up vllm' or pass --server"
        ) from None
    return sorted(models, key=lambda m: m.get("parent") is not None)


def served_models(base_url: str, timeout: float = 10.0) -> list[str]:
    """The model names an OpenAI-compatible server serves (``GET /v1/models``), base model first."""
    return [m["id"] for m in model_cards(base_url, timeout)]


def load_adapter(base_url: str, name: str, path: str, timeout: float = 300.0) -> bool:
    """Hot-load a LoRA adapter into a running vLLM server under ``name`` (``POST /v1/load_lora_adapter``).

    Returns False when the server already serves ``name``. The server needs ``--enable-lora`` and
    ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (``polyglot services up vllm`` sets both), and ``path`` must be
    readable by the server process.
    """
    import urllib.error
    import urllib.request

    if name in served_models(base_url):
        return False
    url = _server_root(base_url) + "/v1/load_lora_adapter"
    request = urllib.request.Request(
        url, data=json.dumps({"lora_name": name, "lora_path": str(path)}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:500]
        if "already" in body and name in served_models(base_url):
            return False
        raise RequestRejected(
            f"the server at {url} would not load adapter {name!r} from {path} (HTTP {exc.code}: {body}). It needs "
            f"--enable-lora, a --max-lora-rank at least the adapter's rank, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
            f"and read access to the adapter directory."
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise BackendUnavailable(f"cannot reach {url} to load adapter {name!r} ({exc}); check that the server runs") from None
    return True


class _BadAnswer(Exception):
    pass


def _parse_completion(body: str) -> Completion:
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"]["content"]
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _BadAnswer(f"{type(exc).__name__} in {body[:200]!r}") from None
    if text is not None and not isinstance(text, str):
        raise _BadAnswer(f"content is {type(text).__name__}, not text")
    return Completion(text or "", choice.get("finish_reason"), usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


class OfflineVLLMBackend:
    """vLLM's in-process ``LLM`` engine for one-box batch jobs (``pip install 'llava-polyglot[offline]'``).

    Requests arriving together are batched into one ``LLM.chat`` call, so the engine sees large batches.
    """

    def __init__(self, model: str, batch_window: float = 0.05, **engine_args):
        from vllm import LLM  # imported here: the extra is optional

        self.llm = LLM(model=model, **engine_args)
        self.batch_window = batch_window
        self.requests_sent = 0
        self._pending: list[tuple[list[dict], int, dict, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None

    async def complete(self, messages: list[dict], max_tokens: int, sampling: dict, model: str) -> Completion:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((messages, max_tokens, sampling, future))
        self.requests_sent += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        from vllm import SamplingParams

        await asyncio.sleep(self.batch_window)
        batch, self._pending = self._pending, []
        params = [SamplingParams(max_tokens=m, **s) for _, m, s, _ in batch]
        try:
            outputs = await asyncio.to_thread(self.llm.chat, [b[0] for b in batch], params, use_tqdm=False)
        except Exception as exc:  # the engine failed: every request of the batch fails the same way
            for *_, future in batch:
                future.set_exception(BackendUnavailable(f"vLLM engine failed: {exc}"))
            return
        for (*_, future), out in zip(batch, outputs):
            o = out.outputs[0]
            future.set_result(Completion(o.text, o.finish_reason, len(out.prompt_token_ids or []), len(o.token_ids)))

    async def close(self) -> None:
        return None
