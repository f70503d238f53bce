"""Prefect flow ``finetune``: corrections → supervised set → LoRA adapter → hot-load → evaluate → activate.

Thin wrapper over :mod:`pipeline.train` and :mod:`pipeline.translate.registry`. A failed training run or an adapter
that does not win leaves every language's active translator as it was; each decision is in
``translator/history.jsonl``, the figures in ``reports/finetune-<version>.json`` and the adapter's metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from pipeline.languages import parse_languages
from pipeline.storage import write_atomic
from pipeline.train import finetune as ft
from pipeline.train import supervised
from pipeline.translate import registry
from pipeline.translate.served import load_adapter, model_cards, served_base, trainable_weights
from pipeline.translate.settings import TranslatorConfig


@task(name="supervised-set")
def supervised_task(workspace: str, langs: list[str], settings: dict) -> dict:
    s = ft.FinetuneSettings(**settings)
    data = supervised.supervised_examples(Path(workspace), langs)
    keys = supervised.held_out_keys(Path(workspace), s.held_out_ids) if s.held_out_ids else None
    train, held, dropped = supervised.split(data.examples, s.held_out, s.seed, keys)
    return {
        "train": [asdict(e) for e in train],
        "held_out": [asdict(e) for e in held],
        "held_out_dropped": dropped,
        "turns": data.turns,
        "skipped": data.skipped,
    }


@task(name="train-adapter")
def train_task(workspace: str, train: list[dict], base_model: str, settings: dict, model: str) -> dict:
    return ft.train_adapter(
        Path(workspace),
        [supervised.Example(**e) for e in train],
        base_model,
        ft.FinetuneSettings(**settings),
        TranslatorConfig(model=model),
    )


@task(name="evaluate")
def evaluate_task(server: str, candidates: dict, splits: dict) -> dict:
    configs = {
        name: {lang: TranslatorConfig(**c) for lang, c in by_lang.items()} for name, by_lang in candidates.items()
    }
    examples = {name: [supervised.Example(**e) for e in rows] for name, rows in splits.items()}
    return ft.scores_json(ft.evaluate(server, configs, examples))


def _config_dict(config: TranslatorConfig) -> dict:
    d = asdict(config)
    d["few_shot"] = tuple(tuple(p) for p in d["few_shot"])
    return d


@flow(name="finetune", log_prints=False)
def finetune_flow(
    workspace: str, server: str, langs: str = "all", model: str | None = None, base_model: str | None = None, **settings
) -> dict:
    """Train an adapter on the corrections of ``langs`` and make it active where it beats the current translator."""
    s = ft.FinetuneSettings(**settings)
    ws = Path(workspace)
    languages = [lang for lang in parse_languages(langs) if lang != "en"]
    cards = model_cards(server)
    base = cards[0]
    model, weights = served_base(server, model)
    base_model = base_model or trainable_weights(base.get("root")) or model
    data = supervised_task(workspace, languages, asdict(s))
    result = {
        "languages": languages,
        "base_model": base_model,
        "examples": {k: data[k] for k in ("turns", "skipped", "held_out_dropped")},
    }
    result["examples"]["train"] = len(data["train"])
    result["examples"]["held_out"] = len(data["held_out"])
    try:
        meta = train_task(workspace, data["train"], base_model, asdict(s), model)
    except ft.TrainingFailed as exc:
        for lang in languages:
            registry.record(ws, lang, {"decision": "kept", "reason": str(exc)}, None)
        raise
    load_adapter(server, meta["served_name"], meta["path"])
    registry.load_active_adapters(server, ws, languages)
    train = [supervised.Example(**e) for e in data["train"]]
    current = registry.translators(ws, TranslatorConfig(model=model, weights=weights), languages)
    candidates: dict[str, dict[str, dict]] = {"current": {}, "adapter": {}, "few-shot": {}}
    for lang in languages:
        candidates["current"][lang] = _config_dict(current[lang])
        candidates["adapter"][lang] = _config_dict(
            TranslatorConfig(model=model, adapter=meta["served_name"], weights=weights)
        )
        shots = supervised.few_shot_examples(train, lang, s.few_shot)
        if shots:
            candidates["few-shot"][lang] = _config_dict(replace(current[lang], few_shot=shots))
    splits = {
        "held_out": data["held_out"],
        "train": [asdict(e) for e in supervised.train_sample(train, s.train_eval, s.seed)],
    }
    scores = evaluate_task(server, candidates, splits)
    decisions = []
    entries = registry.active(ws)
    for lang in languages:
        held = {name: ft.Score(**sc) for name, sc in scores.get("held_out", {}).get(lang, {}).items()}
        d = ft.decide(lang, held, s)
        entry = None
        if d.activated == "adapter":
            entry = {
                "adapter": meta["served_name"],
                "adapter_path": meta["path"],
                "adapter_version": meta["version"],
                "few_shot": [],
                "held_out_chrf": d.best_chrf,
            }
        elif d.activated == "few-shot":
            entry = {
                **entries.get(lang, {}),
                "few_shot": [list(p) for p in candidates["few-shot"][lang]["few_shot"]],
                "held_out_chrf": d.best_chrf,
            }
        registry.record(
            ws,
            lang,
            {
                "decision": "activated" if entry else "needs a better translator" if d.needs_translator else "kept",
                "candidate": d.activated,
                "reason": d.reason,
                "adapter_version": meta["version"],
                "held_out": scores.get("held_out", {}).get(lang),
            },
            entry,
        )
        decisions.append(asdict(d))
    ft.update_metadata(meta, evaluation=scores, decisions=decisions)
    result.update(adapter=meta, scores=scores, decisions=decisions)
    report = ws / "reports" / f"finetune-{meta['version']}.json"
    write_atomic(report, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    result["report"] = str(report)
    create_table_artifact(
        key="finetune",
        table=[
            {
                "lang": d["lang"],
                "activated": d["activated"],
                "current_chrf": d["current_chrf"],
                "best": d["best"],
                "best_chrf": d["best_chrf"],
                "reason": d["reason"],
            }
            for d in decisions
        ],
        description=f"Adapter {meta['version']} ({meta['served_name']}) trained on {len(train)} units",
    )
    return result
