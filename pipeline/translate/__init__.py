"""Translate: unique units in, the translation memory out.

In: ``WORKSPACE/ingest/unique_units.parquet`` (from :mod:`pipeline.ingest`) and, per language, the translator
to use (:mod:`.registry`: the base model, or the adapter and few-shot examples the fine-tune loop activated).

- :mod:`.settings` — what decides an answer (model, weights, adapter, prompt template, sampling, budget) and
  its hash, the *translator version*; prompts ship as package data in ``prompts/``.
- :mod:`.backends` — the async chat client for vLLM's OpenAI-compatible server (replicas, retries);
  :mod:`.served` — what a server serves (models, weights, adapters hot-loaded).
- :mod:`.checks` — every answer is cleaned (preambles, quotes, notes removed where certain) and checked
  (truncated, looped, refused, copied, placeholders broken…).
- :mod:`.requests` — plan the (unit, language) pairs the memory lacks and send them with bounded concurrency.

Out (:mod:`.memory`): ``WORKSPACE/tm/lang=LL/version=TV/`` — one entry per (unit, language, translator
version), ``ok`` or ``flagged`` with reasons; a rerun sends nothing twice. Also owns ``translator/active.json``
and ``translator/history.jsonl`` (:mod:`.registry`).
"""
