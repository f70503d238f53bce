"""Which translator is active per language, and the adapter versions that fine-tuning produced.

Layout under the workspace:

- ``adapters/aNNNN/`` — one LoRA adapter version: peft's ``adapter_config.json`` and weights, plus
  ``polyglot.json`` (served name, base model, data hash, hyper-parameters, training and evaluation metrics).
  A version directory appears by rename once complete and is never changed afterwards.
- ``translator/active.json`` — language → the active translator's parts: adapter (served name, path,
  version) and few-shot examples. A language absent from it uses the base model as started.
- ``translator/history.jsonl`` — every decision (activated or kept) with its reason and figures.

The translate flow builds each language's :class:`TranslatorConfig` from the active entry, so a newly
activated adapter changes the translator version and the next run re-translates with it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from pipeline.storage import write_atomic
from pipeline.translate.served import load_adapter
from pipeline.translate.settings import TranslatorConfig


def adapters_dir(workspace: Path) -> Path:
    return Path(workspace) / "adapters"


def _active_path(workspace: Path) -> Path:
    return Path(workspace) / "translator" / "active.json"


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def active(workspace: Path) -> dict[str, dict]:
    """lang → active entry (``adapter``, ``adapter_path``, ``adapter_version``, ``few_shot``, figures)."""
    path = _active_path(workspace)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))["langs"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} is not a translator registry ({exc}); restore it from translator/history.jsonl or delete it to use the base model"
        ) from None


def record(workspace: Path, lang: str, decision: dict, entry: dict | None) -> None:
    """Append ``decision`` to the history; with ``entry``, make it the active translator of ``lang``."""
    decision = {"lang": lang, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **decision}
    if entry is not None:
        langs = active(workspace)
        langs[lang] = {**entry, "activated_at": decision["at"]}
        _write_json(_active_path(workspace), {"langs": langs})
    history = Path(workspace) / "translator" / "history.jsonl"
    history.parent.mkdir(parents=True, exist_ok=True)
    with open(history, "a", encoding="utf-8") as f:
        f.write(json.dumps(decision, ensure_ascii=False, sort_keys=True) + "\n")


def config_for(base: TranslatorConfig, entry: dict | None) -> TranslatorConfig:
    """The translator for a language: ``base`` with the active adapter and few-shot examples (if any)."""
    if not entry:
        return base
    return replace(
        base, adapter=entry.get("adapter"), few_shot=tuple(tuple(pair) for pair in entry.get("few_shot") or ())
    )


def translators(workspace: Path, base: TranslatorConfig, langs: list[str]) -> dict[str, TranslatorConfig]:
    """Each language's translator. An adapter named on the command line (``base.adapter``) wins over the registry."""
    if base.adapter:
        return {lang: base for lang in langs}
    entries = active(workspace)
    return {lang: config_for(base, entries.get(lang)) for lang in langs}


def load_active_adapters(server: str, workspace: Path, langs: list[str]) -> list[str]:
    """Hot-load the active adapters of ``langs`` that the server does not serve yet (after a restart, say)."""
    loaded = []
    for lang, entry in active(workspace).items():
        if lang in langs and entry.get("adapter") and load_adapter(server, entry["adapter"], entry["adapter_path"]):
            loaded.append(entry["adapter"])
    return loaded
