"""Single-function tests of the translator's settings and answer checks, and of the HTTP backend's retries
against a small local aiohttp server."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from pipeline.backends import BackendUnavailable, OpenAIChatBackend, RequestRejected
from pipeline.languages import parse_languages
from pipeline.translator import TranslatorConfig, answer_problems, build_messages, prompt_template


def test_answer_problems():
    src = "A dog at ⟦0⟧ runs across the grass."
    assert answer_problems(src, 1, "Un perro en ⟦0⟧ corre por la hierba.", "stop") == []
    assert answer_problems(src, 1, "Un perro en ⟦0⟧ corre", "length") == ["truncated"]
    assert answer_problems(src, 1, "   ", "stop") == ["empty"]
    assert "refusal" in answer_problems(src, 1, "I'm sorry, I cannot translate ⟦0⟧ this.", "stop")
    assert "untranslated" in answer_problems(src, 1, src, "stop")
    assert answer_problems(src, 1, "Un perro corre.", "stop") == ["placeholder 0 missing"]
    assert answer_problems("Python", 0, "Python", "stop") == []  # a copied name is fine


def test_version_changes_with_everything_that_changes_the_answer():
    base = TranslatorConfig(model="m")
    assert base.version("zh") == TranslatorConfig(model="m").version("zh")
    others = [TranslatorConfig(model="m2"), TranslatorConfig(model="m", adapter="a1"), TranslatorConfig(model="m", temperature=0.5)]
    assert len({base.version("zh"), *(c.version("zh") for c in others)}) == 4
    assert base.version("zh") != base.version("hi")  # the prompt differs


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="temperature"):
        TranslatorConfig(model="m", temperature=5)
    with pytest.raises(ValueError, match="unknown language code"):
        parse_languages("zh,xx")
    with pytest.raises(ValueError, match="no translation prompt"):
        prompt_template("en")
    assert parse_languages("ur,zh") == ["zh", "ur"] and len(parse_languages("all")) == 10


def test_prompts_state_the_policies():
    assert "Modern Standard Arabic" in prompt_template("ar")
    for lang in ("hi", "es", "fr", "ar", "ru", "ur"):
        assert "Persona" in prompt_template(lang) and "formal" in prompt_template(lang).lower()
    messages = build_messages("fr", "Hello ⟦0⟧", ["placeholder 0 missing"])
    assert messages[0]["role"] == "system" and "placeholder 0 missing" in messages[1]["content"]


def test_budget_grows_with_source_and_is_capped():
    c = TranslatorConfig(model="m", max_tokens=300)
    assert c.budget("zh", "short") >= c.min_tokens
    assert c.budget("hi", "x" * 50) < c.budget("hi", "x" * 80) < 300
    assert c.budget("hi", "x" * 10_000) == 300


def _chat(content="ok", finish="stop"):
    return {"choices": [{"message": {"content": content}, "finish_reason": finish}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


async def _serve(responses):
    """A local server answering each request with the next (status, body) of ``responses``."""
    calls = []

    async def handler(request):
        calls.append(await request.json())
        status, body = responses[min(len(calls), len(responses)) - 1]
        return web.Response(status=status, text=body if isinstance(body, str) else json.dumps(body))

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}", calls


def _complete(responses, retry_seconds=5.0):
    async def run():
        runner, url, calls = await _serve(responses)
        backend = OpenAIChatBackend(url, retry_seconds=retry_seconds, backoff_base=0.01, backoff_max=0.05)
        try:
            return await backend.complete([{"role": "user", "content": "hi"}], 5, {"temperature": 0}, "m"), backend, calls
        finally:
            await backend.close()
            await runner.cleanup()

    return asyncio.run(run())


def test_retries_5xx_and_429_then_succeeds():
    answer, backend, calls = _complete([(503, "busy"), (429, "slow down"), (200, _chat("bonjour"))])
    assert answer.text == "bonjour" and answer.finish_reason == "stop"
    assert backend.requests_sent == 3 and len(calls) == 3 and calls[0]["max_tokens"] == 5


def test_nonsense_answers_are_retried_then_reported():
    with pytest.raises(BackendUnavailable, match="not a chat completion"):
        _complete([(200, "<html>not json</html>")], retry_seconds=0.3)
    with pytest.raises(BackendUnavailable, match="rerun"):
        _complete([(200, {"choices": []})], retry_seconds=0.3)


def test_client_errors_are_not_retried():
    with pytest.raises(RequestRejected, match="HTTP 400"):
        _complete([(400, "max_tokens too large")])


def test_unreachable_server_gives_a_clear_error():
    async def run():
        backend = OpenAIChatBackend("http://127.0.0.1:9", retry_seconds=0.3, backoff_base=0.01)
        try:
            await backend.complete([], 5, {}, "m")
        finally:
            await backend.close()

    with pytest.raises(BackendUnavailable, match="http://127.0.0.1:9.*polyglot services status"):
        asyncio.run(run())


def test_few_shot_examples_are_earlier_turns_and_part_of_the_version():
    plain = TranslatorConfig(model="m")
    shots = TranslatorConfig(model="m", few_shot=(("Describe the image.", "Describe la imagen."),))
    messages = shots.messages("es", "Hello ⟦0⟧")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "Describe la imagen." and messages[-1]["content"] == "Hello ⟦0⟧"
    assert plain.messages("es", "Hello ⟦0⟧") == build_messages("es", "Hello ⟦0⟧")
    assert shots.version("es") != plain.version("es") != TranslatorConfig(model="m", adapter="a0001").version("es")
    with pytest.raises(ValueError, match="few-shot examples must be"):
        TranslatorConfig(model="m", few_shot=(("only source",),))
