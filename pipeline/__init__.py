"""llava-polyglot core: pure, testable pipeline code (no Prefect).

The packages follow the loop (docs/architecture.md draws it and states which may import which):

- :mod:`pipeline.ingest` — LLaVA files → validated conversations → translation units (ingest tables).
- :mod:`pipeline.translate` — unique units → the translation memory, through a translator (settings, prompts,
  backends, answer checks, the active translator per language).
- :mod:`pipeline.quality` — what the machine thinks of a translated turn: QE signals, back-translation.
- :mod:`pipeline.assemble` — memory + ingest tables → translated shards: turns put back, language rules, QE,
  human text wherever a person decided.
- :mod:`pipeline.review` — who sees what (routing queue, quality report) and what people decided (corrections).
- :mod:`pipeline.probe` — the real path on reference translations: calibrates the quality score, qualifies
  translators.
- :mod:`pipeline.train` — corrections → LoRA adapters, evaluated and activated per language.
- :mod:`pipeline.release` — translated shards → immutable, checksummed releases; evaluation sets.
- :mod:`pipeline.serve` — local vLLM servers, model import, the tiny test models.
- :mod:`pipeline.cli` — the ``polyglot`` command line.

Shared modules every layer may use: :mod:`pipeline.languages`, :mod:`pipeline.references`,
:mod:`pipeline.storage`, :mod:`pipeline.processes`.
"""

__version__ = "0.1.0"
