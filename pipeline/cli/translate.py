"""``polyglot translate`` and the options every command that translates takes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from pipeline.cli.common import (
    VLLM_URL,
    bt_rate,
    budget,
    embed_options,
    positive_int,
    positive_seconds,
    prefect_defaults,
    seconds,
    share,
)


def run_translate(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages

    parse_languages(args.langs)  # bad values fail here, before anything starts
    from pipeline.quality.signals import QEConfig

    QEConfig.load(args.qe_config)
    if args.translators:
        from pipeline.translate.translators import load

        load(args.translators)  # a bad file fails here, in one line, before anything starts
    if missing := [str(path) for path in args.inputs if not Path(path).is_file()]:
        print(f"polyglot translate: error: input not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.plan:
        return run_plan(args)
    prefect_defaults()
    from flows.translate import AssemblyFailed, translate_flow
    from pipeline.translate.backends import BackendUnavailable
    from pipeline.translate.translators import Unqualified

    flow_fn = translate_flow
    if args.dask_workers or args.dask_address:
        from prefect_dask import DaskTaskRunner

        runner = (
            DaskTaskRunner(address=args.dask_address)
            if args.dask_address
            else DaskTaskRunner(
                cluster_kwargs={
                    "n_workers": args.dask_workers,
                    "threads_per_worker": 1,
                    "processes": True,
                    "dashboard_address": None,
                }
            )
        )
        flow_fn = translate_flow.with_options(task_runner=runner)
    if not args.no_progress:
        print("polyglot translate: starting the flow (Prefect)", file=sys.stderr, flush=True)
    try:
        result = flow_fn(
            inputs=[str(p) for p in args.inputs],
            workspace=str(args.workspace),
            langs=args.langs,
            server=args.server,
            model=args.model,
            adapter=args.adapter,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            limit=args.limit,
            retry_seconds=args.retry_seconds,
            request_timeout=args.request_timeout,
            progress=not args.no_progress,
            review_budget=args.review_budget,
            scratch_share=args.scratch_share,
            seed=args.seed,
            bt_rate=args.bt_rate,
            judge_server=args.judge_server,
            judge_model=args.judge_model,
            embed_server=args.embed_server,
            embed_model=args.embed_model,
            embed_prefix=args.embed_prefix,
            qe_config=str(args.qe_config) if args.qe_config else None,
            partitions=args.partitions or args.dask_workers or dask_workers(args.dask_address) or 1,
            commit_seconds=args.commit_seconds,
            commit_age=args.commit_age,
            translators=str(args.translators) if args.translators else None,
            allow_unqualified=args.allow_unqualified,
            second_chance=args.second_chance,
            candidates=args.candidates,
        )
    except BackendUnavailable as exc:
        print(f"polyglot translate: stopped: {exc}", file=sys.stderr)
        return 3
    except Unqualified as exc:
        for line in exc.lines:
            print(f"polyglot translate: refused: {line}", file=sys.stderr)
        return 2
    except AssemblyFailed as exc:  # the languages that assembled are written: their summary, then what failed
        report(exc.result, args.workspace, frozenset(where.split("/")[0] for where in exc.failures))
        for where, why in exc.failures.items():
            print(f"polyglot translate: failed: {where}: {why}", file=sys.stderr)
        return 1
    report(result, args.workspace)
    return 0


def run_plan(args: argparse.Namespace) -> int:
    """``--plan``: ingest (or read the workspace's ingest), then per language what the run would send and how long it
    would take; no translation request is sent."""
    from flows.settings import TranslateSettings
    from pipeline.ingest.tables import existing_summary, ingest
    from pipeline.languages import parse_languages
    from pipeline.probe import planning
    from pipeline.review.corrections import overrides
    from pipeline.translate.backends import BackendUnavailable
    from pipeline.translate.served import served_base
    from pipeline.translate.settings import TranslatorConfig
    from pipeline.translate.translators import load

    ws = Path(args.workspace)
    languages = parse_languages(args.langs)
    targets = [lang for lang in languages if lang != "en"]
    if args.inputs:
        summary = ingest(args.inputs, ws, limit=args.limit).to_dict()
    else:
        summary = existing_summary(ws).to_dict()
    assumed: list[str] = []

    def base(servers: str, model: str | None) -> tuple[str, str | None] | None:
        try:
            return served_base(servers, model)
        except BackendUnavailable:
            return None

    lanes, answering = {}, None
    if args.translators:
        file = load(args.translators)
        for lang in targets:
            translator = file.for_language(lang)
            found = base(translator.servers, translator.model)
            if found is None:
                found = (translator.model or translator.name, None)
                assumed.append(f"{lang}: {translator.servers} did not answer, planned for {found[0]} as named")
            config = asdict(translator.config(*found))
            lanes[lang] = {"translator": translator.name, "server": translator.servers, "config": config}
        model, weights = lanes[targets[0]]["config"]["model"], lanes[targets[0]]["config"]["weights"]
    elif found := base(args.server, args.model):
        (model, weights), answering = found, args.server
    elif args.model:
        model, weights = args.model, None
        assumed.append(f"no server answered at {args.server}: planned for --model {model} (its weights unknown)")
    else:
        print(
            f"polyglot translate: error: no server answered at {args.server}: give --model NAME (the model the run "
            f"will serve) to plan without one",
            file=sys.stderr,
        )
        return 2
    settings = TranslateSettings(args.server, model, args.adapter, weights=weights, lanes=lanes)
    translators: dict[str, TranslatorConfig] = settings.translators(ws, targets)
    human = {lang: set(overrides(ws, lang)) for lang in targets}
    plans = planning.make_plan(
        ws, targets, translators, human, args.bt_rate, summary["turns"], summary["units"], bool(args.embed_server)
    )
    if args.tokens_per_second:
        rate, rate_from = args.tokens_per_second, "--tokens-per-second"
    elif answering:
        rate, rate_from = planning.probe_rate(answering, model, args.concurrency)
    else:
        rate, rate_from = None, "no server to measure: give --tokens-per-second N"
    print(
        f"plan for {summary['valid']:,} conversations ({summary['turns']:,} turns) → {','.join(targets)}; "
        f"no translation request sent"
    )
    for line in assumed:
        print(f"assumed: {line}")
    print(planning.render(plans, rate, rate_from))
    path = ws / "plan.json"
    path.write_text(json.dumps(planning.as_json(plans, rate, rate_from), indent=1))
    print(f"plan written to {path}")
    return 0


def dask_workers(address: str | None) -> int | None:
    """How many workers the Dask scheduler at ``address`` has now (the default number of partitions there)."""
    if not address:
        return None
    from distributed import Client

    with Client(address, timeout=60) as client:
        return len(client.scheduler_info(n_workers=-1)["workers"]) or None


def report(result: dict, workspace: Path, failed: frozenset[str] = frozenset()) -> None:
    """The run's summary on the terminal: ingest, requests and tokens per language, QE shares, where things went."""
    from pipeline.ingest.tables import IngestSummary
    from pipeline.translate.requests import LanguageCounts, TranslateSummary

    ing = result["ingest"]
    ing.pop("dedup_ratio", None)
    ingest_summary = IngestSummary(**ing)
    summary = TranslateSummary(
        {k: LanguageCounts(**v) for k, v in result["languages"].items()},
        result["requests_sent"],
        result["unique_pairs_requested"],
        result["seconds"],
    )
    print(ingest_summary.render())
    print(summary.render(ingest_summary.valid, ingest_summary.quarantined, failed))
    for key, compacted in result.get("compacted", {}).items():
        print(f"translation memory {key}: {compacted['files_before']} files compacted into {compacted['files_after']}")
    print(f"shards written to {Path(workspace).resolve() / 'translations'}/<lang>/")
    from flows.reporting import second_chance_line

    for lang, sc in result.get("second_chance", {}).items():
        print(second_chance_line(lang, sc))
    if "qe" in result:
        qe = result["qe"]
        print(f"{'lang':<5}{'accepted':>10}{'review':>8}{'rejected':>10}")
        for row in qe["summary"]:
            print(f"{row['lang']:<5}{row['accepted']:>10}{row['needs_review']:>8}{row['rejected']:>10}")
        print(
            f"review queue: {qe['queue']} conversations in {qe['queue_path']}; plots in {Path(qe['plots'][0]).parent}"
        )


def translate_options(p: argparse.ArgumentParser, review_budget: int | None = 1000) -> None:
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--langs", default="all", help="'all' or a comma list, e.g. zh,hi,ar")
    p.add_argument(
        "--translators",
        type=Path,
        default=os.environ.get("POLYGLOT_TRANSLATORS"),
        help="a translators file (TOML): the translator of each language, on its own servers; languages whose "
        "translator has no qualification or scored below its floor are refused",
    )
    p.add_argument(
        "--allow-unqualified", action="store_true", help="translate with an unqualified translator all the same"
    )
    p.add_argument(
        "--server",
        default=VLLM_URL,
        help="vLLM server URL; several replicas comma-separated (requests go to the least busy one)",
    )
    p.add_argument(
        "--model", default=os.environ.get("POLYGLOT_MODEL"), help="served model name (default: the server's base model)"
    )
    p.add_argument("--adapter", default=None, help="a LoRA adapter the server serves by this name")
    p.add_argument(
        "--plan",
        action="store_true",
        help="send nothing: ingest, then say per language the requests, tokens and time the run would take",
    )
    p.add_argument(
        "--tokens-per-second",
        type=positive_seconds,
        default=None,
        help="--plan: the servers' output tokens/s (default: measured by a short burst to --server)",
    )
    p.add_argument(
        "--dask-workers",
        type=positive_int,
        default=None,
        help="run the translation partitions and shard tasks on a local Dask cluster of N processes",
    )
    p.add_argument(
        "--dask-address",
        default=None,
        help="run the partitions and shard tasks on this Dask scheduler (tcp://host:8786)",
    )
    p.add_argument(
        "--partitions",
        type=positive_int,
        default=None,
        help="split the missing units into N tasks with their own clients (default: --dask-workers, or the workers "
        "--dask-address has when the run starts, else 1)",
    )
    p.add_argument("--concurrency", type=positive_int, default=64, help="requests in flight (per partition)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="results per memory commit")
    p.add_argument(
        "--commit-age",
        type=positive_seconds,
        default=30.0,
        help="a result never waits longer than this to be committed (what a crash or kill -9 can lose)",
    )
    p.add_argument(
        "--commit-seconds",
        type=seconds,
        default=2.0,
        help="while results come faster, commit at most this often (up to 16 batches at once; 0: every batch)",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="read at most N records")
    p.add_argument("--retry-seconds", type=seconds, default=180.0, help="how long to retry an unreachable server")
    p.add_argument(
        "--request-timeout",
        type=seconds,
        default=1800.0,
        help="seconds one answer may take (a CPU server with a real model writes a long answer in minutes)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--review-budget",
        type=budget,
        default=review_budget,
        help="sampled conversations per language for review; 'all': every conversation (an evaluation set)",
    )
    p.add_argument(
        "--second-chance",
        choices=["off", "rejected", "review"],
        default="off",
        help="translate the units of rejected turns (review: and of turns sent to review) once more as --candidates "
        "sampled answers, keeping the one the quality score rates best if it beats the first answer (default off: "
        "it costs about N+1 times the tokens of those turns and a back-translation per candidate)",
    )
    p.add_argument(
        "--candidates", type=positive_int, default=4, help="sampled answers per unit in a second chance (default 4)"
    )
    p.add_argument(
        "--scratch-share",
        type=share,
        default=0.2,
        help="share of a language's review budget given to rejected conversations as translate-from-scratch "
        "tasks, while it has any (default 0.2; 0: none)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the review and back-translation samples")
    p.add_argument(
        "--bt-rate",
        type=bt_rate,
        default=None,
        metavar="auto|SHARE",
        help="turns sent back to English for the quality score: auto (default) every turn, unless the language's "
        "calibration found its translator known good, then 10%%; or a share (0: none)",
    )
    p.add_argument(
        "--judge-server",
        default=os.environ.get("POLYGLOT_JUDGE_URL"),
        help="server that back-translates (default: the translator's); e.g. a bigger model on a GPU",
    )
    p.add_argument("--judge-model", default=None, help="model the judge server serves for it (default: its base model)")
    embed_options(p)
    p.add_argument(
        "--qe-config", type=Path, default=None, help="JSON file of QE thresholds (default, per language, length bands)"
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate LLaVA files into languages through a vLLM server (Prefect flow)")
    p.add_argument("inputs", nargs="*", type=Path, help="LLaVA files; none: use what the workspace ingested before")
    translate_options(p)
    p.set_defaults(func=run_translate)
