"""The ``polyglot`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipeline.ingest.validate import DEFAULT_MAX_TURN_CHARS


def _number(text: str, kind: type, low: float, high: float | None = None) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
    if value != value or value < low or (high is not None and value > high):  # value != value: NaN
        bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
        raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {text}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, 1)


def _count(text: str) -> int:
    return _number(text, int, 0)


def _seconds(text: str) -> float:
    return _number(text, float, 0.0)


def _share(text: str) -> float:
    return _number(text, float, 0.0, 1.0)


def _budget(text: str) -> int | None:
    """A review budget: a count, or 'all' (None: every conversation, for an evaluation set)."""
    return None if text.strip().lower() == "all" else _number(text, int, 0)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.ingest.tables import ingest

    summary = ingest(args.inputs, args.workspace, shard_size=args.shard_size, max_turn_chars=args.max_turn_chars,
                     english=not args.any_language)
    print(summary.render())
    print(f"tables written to {Path(args.workspace) / 'ingest'}")
    for line in summary.files_stopped:
        print(f"error: {line}", file=sys.stderr)
    return 1 if summary.files_stopped else 0


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _raised_by_the_project(exc: BaseException) -> bool:
    """An error this project raised on purpose, with a message for the user: one of its own error types, or a
    ValueError / FileNotFoundError / RuntimeError raised in its own code (not inside a library)."""
    from annotation.client import ReviewServerUnavailable
    from pipeline.backends import BackendUnavailable

    if isinstance(exc, (BackendUnavailable, ReviewServerUnavailable)):
        return True
    if not isinstance(exc, (ValueError, FileNotFoundError, RuntimeError)) or exc.__traceback__ is None:
        return False
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = Path(tb.tb_frame.f_code.co_filename).resolve()
    return where.is_relative_to(PROJECT_ROOT) and not {".venv", "site-packages"} & set(where.parts)


class _NoTracebackForExpectedErrors(logging.Filter):
    """Prefect logs a failed flow or task run with its traceback. For an error the command then reports in one
    line (a server down, a value refused), the traceback only buries that line; bugs keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and _raised_by_the_project(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


def prefect_defaults() -> None:
    """Quiet, local, private Prefect unless the user configured otherwise (a server via PREFECT_API_URL)."""
    from pipeline.processes import home

    os.environ.setdefault("PREFECT_HOME", str(home() / "prefect"))
    # Prefect makes only the last directory of its home; without the parents its server never starts
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForExpectedErrors())


def _cmd_translate(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages

    parse_languages(args.langs)  # bad values fail here, before anything starts
    from pipeline.qe import QEConfig

    QEConfig.load(args.qe_config)
    prefect_defaults()
    from flows.translate import translate_flow
    from pipeline.backends import BackendUnavailable

    flow_fn = translate_flow
    if args.dask_workers or args.dask_address:
        from prefect_dask import DaskTaskRunner

        runner = (DaskTaskRunner(address=args.dask_address) if args.dask_address else
                  DaskTaskRunner(cluster_kwargs={"n_workers": args.dask_workers, "threads_per_worker": 1, "processes": True,
                                                 "dashboard_address": None}))
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
            seed=args.seed,
            bt_rate=args.bt_rate,
            qe_config=str(args.qe_config) if args.qe_config else None,
            partitions=args.partitions or args.dask_workers or 1,
            commit_seconds=args.commit_seconds,
        )
    except BackendUnavailable as exc:
        print(f"polyglot translate: stopped: {exc}", file=sys.stderr)
        return 3
    from pipeline.ingest.tables import IngestSummary
    from pipeline.translate import LanguageCounts, TranslateSummary

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
    print(summary.render(ingest_summary.valid, ingest_summary.quarantined))
    for key, report in result.get("compacted", {}).items():
        print(f"translation memory {key}: {report['files_before']} files compacted into {report['files_after']}")
    print(f"shards written to {Path(args.workspace).resolve() / 'translations'}/<lang>/")
    if "qe" in result:
        qe = result["qe"]
        print(f"{'lang':<5}{'accepted':>10}{'review':>8}{'rejected':>10}")
        for row in qe["summary"]:
            print(f"{row['lang']:<5}{row['accepted']:>10}{row['needs_review']:>8}{row['rejected']:>10}")
        print(f"review queue: {qe['queue']} conversations in {qe['queue_path']}; plots in {Path(qe['plots'][0]).parent}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from pipeline import benchmark

    if args.action == "translate":
        from pipeline.languages import parse_languages

        parse_languages(args.langs)
        data = benchmark.read_set(args.questions, args.answers, args.context)
        args.inputs = [benchmark.save(args.workspace, data)]
        print(f"evaluation set: {len(data.questions)} questions, {len(data.answers)} reference answers, {len(data.context)} captions")
        return _cmd_translate(args)
    from pipeline.languages import parse_languages

    result = benchmark.publish(args.workspace, args.version, parse_languages(args.langs) if args.langs else None)
    print(f"{'lang':<5}{'questions':>10}{'answers':>9}{'captions':>9}{'reviewed':>10}{'untranslated':>14}")
    for lang, c in result.counts.items():
        reviewed = "source" if c["reviewed_items"] is None else f"{c['reviewed_items']}/{c['items']}"
        print(f"{lang:<5}{c['questions']:>10}{c['answers']:>9}{c['context']:>9}{reviewed:>10}{c.get('untranslated_items') or 0:>14}")
    print(f"evaluation set {result.version} written to {result.path} (LLaVA-Bench layout per language; verify with: "
          f"polyglot release verify {result.version} --workspace {args.workspace})")
    return 0


def _cmd_langid(args: argparse.Namespace) -> int:
    from pipeline.qe import identify

    for line in sys.stdin:
        text = line.rstrip("\n")
        print(identify(text)[0] if text.strip() else "")
    return 0


def _cmd_qe(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from pipeline.qe import QEConfig, assess

    config = QEConfig.load(args.qe_config)
    sources = args.source.read_text(encoding="utf-8").splitlines()
    targets = args.target.read_text(encoding="utf-8").splitlines()
    if len(sources) != len(targets):
        raise ValueError(f"{args.source} has {len(sources)} lines but {args.target} has {len(targets)}: the files must be line-aligned")
    counts: Counter[str] = Counter()
    for n, (src, tgt) in enumerate(zip(sources, targets), 1):
        q = assess(src, tgt, args.lang, th=config.for_lang(args.lang), bands=config.bands)
        counts[q.status] += 1
        print(json.dumps({"line": n, **q.to_dict()}, ensure_ascii=False))
    total = len(sources) or 1
    print(" ".join(f"{k} {counts[k]} ({counts[k] / total:.1%})" for k in ("accepted", "needs_review", "rejected")), file=sys.stderr)
    return 0


def _cmd_services(args: argparse.Namespace) -> int:
    from pipeline import processes

    if args.action == "up" and args.service == "vllm":
        import shlex

        rec = processes.start_vllm(
            args.model, port=args.port or 8000, fallback_to_tiny=args.fallback_to_tiny, max_model_len=args.max_model_len,
            dtype=args.dtype, extra_args=shlex.split(args.vllm_args or ""),
        )
        print(f"vllm running: {rec.url} serving {rec.served_model} (pid {rec.pid}, log {rec.log})")
    elif args.action == "up":
        data_dir = args.workspace / "labelstudio" if args.workspace else None
        rec = processes.start_labelstudio(port=args.port or 8080, data_dir=data_dir, image_root=args.image_root)
        login = processes.labelstudio_login()
        print(f"labelstudio running: {rec.url} (pid {rec.pid}, data {rec.model}, log {rec.log})")
        print(f"admin: {login.username}; password and API key: {login.source}")
        print("invite reviewers with: polyglot review invite")
    elif args.action == "down":
        stopped = processes.stop(args.service, args.port)
        print("\n".join(f"stopped {r.name} on port {r.port} (pid {r.pid})" for r in stopped) or f"no {args.service} server recorded")
    else:
        rows = processes.status()
        if not rows:
            print("no services recorded")
        for rec, state in rows:
            print(f"{rec.name:<12}{state:<20}{rec.url:<28}pid {rec.pid:<8}{rec.served_model}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from pipeline import models

    folder = models.import_gguf(args.gguf, args.out, args.dtype, log=lambda m: print(m, file=sys.stderr, flush=True))
    manifest = models.imported(folder)
    print(f"{folder}\t{manifest['served_name']}\t{manifest['architecture']}\tgguf sha256 {manifest['gguf_sha256']}")
    print(f"serve it with: polyglot services up vllm --model {folder}", file=sys.stderr)
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    from annotation.client import ReviewServerUnavailable, connect, invite_url

    if args.action == "invite":
        print(invite_url(*connect()))
        return 0
    from pipeline.languages import parse_languages

    if args.langs:
        parse_languages(args.langs)
    prefect_defaults()
    try:
        connect()  # a clear message, before any flow starts, when the server is down or refuses the key
        if args.action == "push":
            from flows.review import review_push_flow

            result = review_push_flow(str(args.workspace), args.langs, args.project_prefix, args.overlap, args.image_root)
            print(f"{'lang':<5}{'convs':>7}{'tasks':>7}{'new':>7}{'already':>9}  project")
            for lang, c in result.items():
                print(f"{lang:<5}{c['conversations']:>7}{c['tasks']:>7}{c['created']:>7}{c['already_there']:>9}  {c['project_id']}")
        else:
            from flows.review import review_pull_flow

            result = review_pull_flow(str(args.workspace), args.langs)
            print(f"{'lang':<5}{'new':>6}{'edits':>7}{'corrected':>11}{'skipped':>9}{'applied':>9}")
            for lang, c in result["languages"].items():
                print(f"{lang:<5}{c['new_versions']:>6}{c['edits']:>7}{c['corrected']:>11}{c['skipped']:>9}{c['turns_applied']:>9}")
            print(f"corrections: {result['corrections_file'] or 'nothing new'}")
            for row in result["agreement"]:
                print(
                    f"agreement {row['lang']}: {row['tasks_with_overlap']} tasks with two reviewers, chrF {row['mean_chrf']}, "
                    f"same categories {row['category_exact_share']:.0%}, rating gap {row['mean_rating_gap']}"
                )
    except ReviewServerUnavailable as exc:
        print(f"polyglot review {args.action}: stopped: {exc}", file=sys.stderr)
        return 3
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages

    parse_languages(args.langs)
    settings = _finetune_settings(args)
    prefect_defaults()
    from flows.finetune import finetune_flow
    from pipeline.backends import BackendUnavailable

    try:
        result = finetune_flow(str(args.workspace), args.server, args.langs, args.model, args.base_model, **settings)
    except BackendUnavailable as exc:
        print(f"polyglot finetune: stopped: {exc}", file=sys.stderr)
        return 3
    ex, meta = result["examples"], result["adapter"]
    skipped = ", ".join(f"{n} {reason}" for reason, n in ex["skipped"].items()) or "none"
    print(f"supervised set: {ex['turns']} corrected turns → {ex['train']} training units, {ex['held_out']} held-out units "
          f"({ex['held_out_dropped']} held-out units also in training left out); turns left out: {skipped}")
    t = meta["training"]
    print(f"adapter {meta['version']} ({meta['served_name']}): {t['steps']} steps, loss {t['initial_loss']} → {t['final_loss']}, "
          f"greedy-exact on training units {t['greedy_exact']:.0%}, {t['train_seconds']} s on {t['device']}; hot-loaded")
    print(f"{'split':<9}{'lang':<5}{'n':>4}  {'chrF current → few-shot → adapter':<40}{'BLEU current → adapter':<26}{'exact':>7}"
          f"  answers passing the checks")
    share = lambda sc: f"{sc['delivered']:.0%}" if sc.get("delivered") is not None else "-"  # noqa: E731
    for split_name in ("held_out", "train"):
        for lang, by in result["scores"].get(split_name, {}).items():
            cur, few, ada = by.get("current", {}), by.get("few-shot", {}), by.get("adapter", {})
            chrf = f"{cur.get('chrf')} → {few.get('chrf', '-')} → {ada.get('chrf')}"
            bleu = f"{cur.get('bleu')} → {ada.get('bleu')}"
            print(f"{split_name:<9}{lang:<5}{ada.get('n', 0):>4}  {chrf:<40}{bleu:<26}{ada.get('exact') or 0:>7.0%}"
                  f"  {share(cur)} → {share(few)} → {share(ada)}")
    _print_decisions(result["decisions"])
    print(f"report: {result['report']}")
    return 0


def _print_decisions(decisions: list[dict]) -> None:
    for d in decisions:
        print(f"{d['lang']}: {'ACTIVE ' + d['activated'] if d['activated'] else 'kept the current translator'} — {d['reason']}")


def _finetune_settings(args: argparse.Namespace) -> dict:
    from pipeline.finetune import FinetuneSettings

    settings = dict(
        rank=args.rank, alpha=args.alpha, learning_rate=args.learning_rate, max_steps=args.max_steps, seed=args.seed,
        held_out=args.held_out, few_shot=args.few_shot, activate=args.activate, min_gain=args.min_gain,
        candidates=tuple(c.strip() for c in args.candidates.split(",") if c.strip()),
        batch_size=args.batch_size, modules=args.modules, layers=args.layers, train_eval=args.train_eval,
        held_out_ids=str(args.held_out_ids.resolve()) if args.held_out_ids else None,
    )
    FinetuneSettings(**settings)  # every bad value named before anything starts
    return settings


def _cmd_cycle(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages
    from pipeline.qe import QEConfig

    parse_languages(args.langs)
    QEConfig.load(args.qe_config)
    settings = _finetune_settings(args)
    prefect_defaults()
    from annotation.client import ReviewServerUnavailable
    from flows.cycle import STEPS, cycle_flow
    from pipeline.backends import BackendUnavailable

    translate = dict(progress=False, bt_rate=args.bt_rate, review_budget=args.review_budget, seed=args.seed,
                     qe_config=str(args.qe_config) if args.qe_config else None)
    try:
        out = cycle_flow([str(p) for p in args.inputs], str(args.workspace), args.server, args.langs, args.min_corrections,
                         args.project_prefix, args.overlap, translate, {**settings, "base_model": args.base_model})
    except (BackendUnavailable, ReviewServerUnavailable) as exc:
        print(f"polyglot cycle: stopped: {exc}; rerun to go on from the step that stopped", file=sys.stderr)
        return 3
    for step in STEPS:
        mark = "ran" if step in out["ran"] else "done before" if step in out["skipped"] else "waiting" if out["waiting"] and step == "pull" else "-"
        print(f"round {out['round']} {step:<12}{mark}")
    if out["waiting"]:
        print(f"waiting: {out['waiting']}")
    if "finetune" in out["results"]:
        _print_decisions(out["results"]["finetune"]["decisions"])
    print(f"round {out['round']} complete" if out["complete"] else f"round {out['round']} not complete: run the same command again to go on")
    return 0


def _release_path(workspace: Path | None, ref: str) -> str:
    """``vN`` inside WORKSPACE/releases, or a release directory / fsspec URL as given."""
    from pipeline.release import VERSION_RE, releases_dir

    if VERSION_RE.fullmatch(ref):
        if workspace is None:
            raise ValueError(f"{ref} is a version: give --workspace (or the release's path or URL)")
        return str(releases_dir(workspace) / ref)
    return ref


def _cmd_publish(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages

    langs = parse_languages(args.langs) if args.langs else None
    prefect_defaults()
    from flows.release import publish_flow

    result = publish_flow(str(args.workspace), args.version, args.shard_rows, langs)
    print(f"{'lang':<5}{'rows':>8}{'ok':>8}{'accepted':>10}{'reviewed':>10}{'corrected':>11}")
    for lang, c in result["counts"].items():
        print(f"{lang:<5}{c['rows']:>8}{c['status_ok']:>8}{c['qe'].get('accepted', 0):>10}{c['reviewed']:>10}{c['human_corrected']:>11}")
    print(result["notes"])
    print(f"release {result['version']} written to {result['path']} (parent {result['parent'] or 'none'}); verified")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from pipeline import release

    if args.action == "verify":
        path = _release_path(args.workspace, args.release)
        problems = release.verify(path)
        for problem in problems:
            print(f"BAD {problem}", file=sys.stderr)
        if problems:
            print(f"release {path} failed verification: {len(problems)} problem(s); do not use it (republish or restore the files)", file=sys.stderr)
            return 1
        manifest = release.read_manifest(path)
        print(f"release {manifest['version']} at {path}: {len(manifest['files'])} files, every sha256 matches the manifest")
        return 0
    a, b = _release_path(args.workspace, args.a), _release_path(args.workspace, args.b)
    changes = release.diff(a, b, examples=args.examples)
    print(f"{'lang':<5}{'added':>8}{'removed':>9}{'changed':>9}")
    for lang, c in changes.items():
        print(f"{lang:<5}{len(c['added']):>8}{len(c['removed']):>9}{len(c['changed']):>9}")
    for lang, c in changes.items():
        for ex in c["examples"]:
            print(f"  {lang} {ex['id']} turn {ex['turn']}: {ex['before']!r} → {ex['after']!r}")
    if args.json:
        args.json.write_text(json.dumps(changes, indent=2, ensure_ascii=False) + "\n")
    return 0


def _cmd_export_llava(args: argparse.Namespace) -> int:
    from pipeline.languages import parse_languages
    from pipeline.release import export_llava

    langs = parse_languages(args.langs) if args.langs else None
    counts = export_llava(_release_path(args.workspace, args.release), args.out, langs, args.mix, not args.all_rows, args.seed)
    for name, n in counts.items():
        print(f"{args.out / f'llava_{name}.json'}: {n} conversations")
    return 0


def _cmd_tm(args: argparse.Namespace) -> int:
    from pipeline.memory import TranslationMemory

    root = Path(args.workspace) / "tm"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist: no translation memory in this workspace")
    memory = TranslationMemory(root)
    done = 0
    for lang, version in memory.keys():
        before = len(memory.files(lang, version))
        report = memory.compact(lang, version, min_files=args.min_files)
        if report["entries"] is not None:
            done += 1
            print(f"{lang:<7}{version:<22}{before:>7} files → {report['files_after']:>3}   {report['entries']} entries merged")
    print(f"compacted {done} of {len(memory.keys())} (language, version) sets in {root}")
    return 0


def _cmd_fix(args: argparse.Namespace) -> int:
    import json

    import language_rules

    language_rules.apply("", args.lang)  # an unknown language fails here, before reading
    for n, line in enumerate(sys.stdin, 1):
        body = line[:-1] if line.endswith("\n") else line
        result = language_rules.apply(body, args.lang, args.role)
        sys.stdout.write(result.text + ("\n" if line.endswith("\n") else ""))
        if args.explain:
            for change in result.changes:
                print(json.dumps({"line": n, **change.to_dict()}, ensure_ascii=False), file=sys.stderr)
            for flag in result.flags:
                print(json.dumps({"line": n, "flag": flag}, ensure_ascii=False), file=sys.stderr)
    sys.stdout.flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polyglot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="read LLaVA files, cut turns into units, write Parquet tables",
                       description="Exit status: 0 every file read to its end; 1 a file stopped early (cut or broken: "
                       "the records before the break were kept, the message names the file and byte offset); 2 bad arguments.")
    p.add_argument("inputs", nargs="+", type=Path, help="LLaVA JSON/JSONL files, gzip or not")
    p.add_argument("--workspace", required=True, type=Path, help="directory for the tables")
    p.add_argument("--shard-size", type=_positive_int, default=10_000, help="conversations per shard")
    p.add_argument("--max-turn-chars", type=_positive_int, default=DEFAULT_MAX_TURN_CHARS,
                   help="longer turns are quarantined as turn_too_long")
    p.add_argument("--any-language", action="store_true",
                   help="do not require English turns (check a translated file, e.g. a release's LLaVA export)")
    p.set_defaults(func=_cmd_ingest)

    def translate_options(p: argparse.ArgumentParser, review_budget: int | None = 1000) -> None:
        p.add_argument("--workspace", required=True, type=Path)
        p.add_argument("--langs", default="all", help="'all' or a comma list, e.g. zh,hi,ar")
        p.add_argument("--server", default=os.environ.get("POLYGLOT_VLLM_URL", "http://127.0.0.1:8000"),
                       help="vLLM server URL; several replicas comma-separated (requests go to the least busy one)")
        p.add_argument("--model", default=os.environ.get("POLYGLOT_MODEL"), help="served model name (default: the server's base model)")
        p.add_argument("--adapter", default=None, help="a LoRA adapter the server serves by this name")
        p.add_argument("--dask-workers", type=_positive_int, default=None,
                       help="run the translation partitions and shard tasks on a local Dask cluster of N processes")
        p.add_argument("--dask-address", default=None, help="run the partitions and shard tasks on this Dask scheduler (tcp://host:8786)")
        p.add_argument("--partitions", type=_positive_int, default=None,
                       help="split the missing units into N tasks with their own clients (default: --dask-workers, else 1)")
        p.add_argument("--concurrency", type=_positive_int, default=64, help="requests in flight (per partition)")
        p.add_argument("--batch-size", type=_positive_int, default=64, help="results per memory commit")
        p.add_argument("--commit-seconds", type=_seconds, default=2.0,
                       help="while results come faster, commit at most this often (up to 16 batches at once; 0: every batch)")
        p.add_argument("--limit", type=_positive_int, default=None, help="read at most N records")
        p.add_argument("--retry-seconds", type=_seconds, default=180.0, help="how long to retry an unreachable server")
        p.add_argument("--request-timeout", type=_seconds, default=1800.0,
                       help="seconds one answer may take (a CPU server with a real model writes a long answer in minutes)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.add_argument("--review-budget", type=_budget, default=review_budget,
                       help="sampled conversations per language for review; 'all': every conversation (an evaluation set)")
        p.add_argument("--seed", type=int, default=0, help="seed of the review and back-translation samples")
        p.add_argument("--bt-rate", type=_share, default=0.05, help="share of turns back-translated for chrF (0: none)")
        p.add_argument("--qe-config", type=Path, default=None, help="JSON file of QE thresholds (default, per language, length bands)")

    p = sub.add_parser("translate", help="translate LLaVA files into languages through a vLLM server (Prefect flow)")
    p.add_argument("inputs", nargs="*", type=Path, help="LLaVA files; none: use what the workspace ingested before")
    translate_options(p)
    p.set_defaults(func=_cmd_translate)

    p = sub.add_parser("benchmark", help="evaluation sets (LLaVA-Bench layout): translate every item, review every item, release")
    bench = p.add_subparsers(dest="action", required=True)
    q = bench.add_parser("translate", help="translate an evaluation set; every translated item goes to the review queue")
    q.add_argument("questions", type=Path, help="questions.jsonl (question_id, image, text, category)")
    q.add_argument("--answers", type=Path, default=None, help="answers_gpt4.jsonl (question_id, text): the reference answers")
    q.add_argument("--context", type=Path, default=None, help="context.jsonl (id, image, caption)")
    translate_options(q, review_budget=None)
    q.set_defaults(func=_cmd_benchmark)
    q = bench.add_parser("publish", help="release the set per language in the LLaVA-Bench layout, with checksums and a card")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--version", default=None, help="vN (default: the next number); an existing version is refused")
    q.add_argument("--langs", default=None, help="default: every translated language")
    q.set_defaults(func=_cmd_benchmark)

    def finetune_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-model", default=None, help="weights to train on (default: what the server loaded)")
        p.add_argument("--rank", type=int, default=8)
        p.add_argument("--alpha", type=int, default=16)
        p.add_argument("--learning-rate", type=float, default=5e-3)
        p.add_argument("--max-steps", type=int, default=600, help="at most this many steps (stops once corrections are reproduced)")
        p.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split, training and samples")
        p.add_argument("--held-out", type=float, default=0.2, help="share of corrected conversations kept for evaluation")
        p.add_argument("--held-out-ids", type=Path, default=None,
                       help="a file of conversation ids (one a line) to keep for evaluation instead of a seeded share")
        p.add_argument("--few-shot", type=int, default=4, help="corrections in the prompt of the few-shot candidate (0: skip it)")
        p.add_argument("--candidates", default="adapter", help="which may become active: adapter, few-shot or both")
        p.add_argument("--activate", default="better", choices=["better", "always", "never"], help="better: only if held-out chrF improves")
        p.add_argument("--min-gain", type=float, default=0.0, help="chrF points a candidate must add to become active")
        p.add_argument("--batch-size", type=int, default=8, help="training examples per step")
        p.add_argument("--modules", default="all", choices=["all", "attention"], help="LoRA on every projection, or attention only")
        p.add_argument("--layers", type=int, default=0, help="LoRA on the top N layers only (0: all); cheaper on a CPU")
        p.add_argument("--train-eval", type=int, default=64,
                       help="training units per language translated again for the training figures (seeded sample; 0: none)")

    vllm_url = os.environ.get("POLYGLOT_VLLM_URL", "http://127.0.0.1:8000")
    p = sub.add_parser("finetune", help="train a LoRA adapter on reviewers' corrections, evaluate it, activate it if better")
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--langs", default="all", help="'all' or a comma list")
    p.add_argument("--server", default=vllm_url, help="vLLM server URL (--enable-lora)")
    p.add_argument("--model", default=os.environ.get("POLYGLOT_MODEL"), help="served base model name (default: the server's)")
    finetune_options(p)
    p.set_defaults(func=_cmd_finetune)

    p = sub.add_parser("cycle", help="translate → push → pull → finetune → re-translate; a rerun goes on where it stopped")
    p.add_argument("inputs", nargs="*", type=Path, help="LLaVA files; none: what the workspace ingested before")
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--langs", default="all", help="'all' or a comma list")
    p.add_argument("--server", default=vllm_url, help="vLLM server URL (--enable-lora)")
    p.add_argument("--min-corrections", type=_positive_int, default=1, help="corrections since the last fine-tune needed to go on")
    p.add_argument("--project-prefix", default="llava-polyglot", help="Label Studio project titles: PREFIX · Language (code)")
    p.add_argument("--overlap", type=_share, default=0.1, help="share of tasks that get a second reviewer")
    p.add_argument("--review-budget", type=_count, default=1000, help="sampled conversations per language for review")
    p.add_argument("--bt-rate", type=_share, default=0.05, help="share of turns back-translated for chrF")
    p.add_argument("--qe-config", type=Path, default=None, help="JSON file of QE thresholds")
    finetune_options(p)
    p.set_defaults(func=_cmd_cycle)

    p = sub.add_parser("publish", help="write an immutable, checksummed release vN of the translations (Prefect flow)")
    p.add_argument("--workspace", required=True, type=Path)
    p.add_argument("--version", default=None, help="vN (default: the next number); an existing version is refused")
    p.add_argument("--shard-rows", type=_positive_int, default=10_000, help="conversations per Parquet file")
    p.add_argument("--langs", default=None, help="default: every translated language")
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("release", help="check or compare releases")
    rel = p.add_subparsers(dest="action", required=True)
    q = rel.add_parser("verify", help="check every file against the manifest's sha256")
    q.add_argument("release", help="vN (with --workspace), a release directory or an fsspec URL")
    q.add_argument("--workspace", type=Path, default=None)
    q.set_defaults(func=_cmd_release)
    q = rel.add_parser("diff", help="conversations added, removed and changed per language from A to B")
    q.add_argument("a")
    q.add_argument("b")
    q.add_argument("--workspace", type=Path, default=None)
    q.add_argument("--examples", type=_count, default=3, help="changed conversations to show per language")
    q.add_argument("--json", type=Path, default=None, help="also write the whole diff here")
    q.set_defaults(func=_cmd_release)

    p = sub.add_parser("export-llava", help="LLaVA training JSON per language (and mixed) from a release")
    p.add_argument("release", help="vN (with --workspace), a release directory or an fsspec URL")
    p.add_argument("--workspace", type=Path, default=None)
    p.add_argument("--out", type=Path, required=True, help="directory for llava_{lang}.json")
    p.add_argument("--langs", default=None, help="default: every language of the release")
    p.add_argument("--mix", action="store_true", help="also llava_mix.json: every language, shuffled, ids suffixed -LANG")
    p.add_argument("--all-rows", action="store_true", help="also rows with untranslated turns or QE-rejected ones")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed of the mixed file")
    p.set_defaults(func=_cmd_export_llava)

    p = sub.add_parser("tm", help="the translation memory: compact its part files")
    tm_sub = p.add_subparsers(dest="action", required=True)
    q = tm_sub.add_parser("compact", help="merge the part files of every (language, version) into sorted segments")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--min-files", type=_positive_int, default=1, help="leave sets with fewer part files as they are")
    q.set_defaults(func=_cmd_tm)

    p = sub.add_parser("fix", help="apply a language's rules to lines on stdin, fixed lines on stdout")
    p.add_argument("--lang", required=True, help="language code, e.g. hi")
    p.add_argument("--role", default="gpt", choices=["gpt", "human"], help="speaker: persona rules apply to gpt")
    p.add_argument("--explain", action="store_true", help="write each change and flag as a JSON line on stderr")
    p.set_defaults(func=_cmd_fix)

    p = sub.add_parser("langid", help="language of each line on stdin (fastText lid.176)")
    p.set_defaults(func=_cmd_langid)

    p = sub.add_parser("qe", help="quality estimation of line-aligned source/target files: JSON per pair")
    p.add_argument("--lang", required=True)
    p.add_argument("--source", required=True, type=Path)
    p.add_argument("--target", required=True, type=Path)
    p.add_argument("--qe-config", type=Path, default=None, help="JSON file of QE thresholds")
    p.set_defaults(func=_cmd_qe)

    p = sub.add_parser("services", help="start, stop and list local servers")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("service", nargs="?", default="vllm", choices=["vllm", "labelstudio"])
    p.add_argument("--model", default="tiny",
                   help="hub name, model folder, or a .gguf file (imported once, cached by sha256); 'tiny': the test model")
    p.add_argument("--port", type=_positive_int, default=None)
    p.add_argument("--fallback-to-tiny", action="store_true", help="serve the tiny model when the model hub is unreachable")
    p.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"],
                   help="vllm: weights and compute type; auto: float32 on CPUs without AVX-512 BF16/AMX (said when chosen)")
    p.add_argument("--max-model-len", type=_positive_int, default=4096, help="vllm: longest prompt + answer in tokens")
    p.add_argument("--vllm-args", default=None, help="vllm: more 'vllm serve' options, one string, e.g. '--max-num-seqs 8'")
    p.add_argument("--workspace", type=Path, default=None, help="labelstudio: keep its data in WORKSPACE/labelstudio")
    p.add_argument("--image-root", default=os.environ.get("POLYGLOT_IMAGE_ROOT"),
                   help="labelstudio: a local folder of the conversations' images to serve to reviewers (or a URL prefix)")
    p.set_defaults(func=_cmd_services)

    p = sub.add_parser("models", help="model files: import a GGUF file into a folder vLLM serves")
    models_sub = p.add_subparsers(dest="action", required=True)
    q = models_sub.add_parser("import", help="GGUF → Hugging Face folder (once per file: cached by its sha256)")
    q.add_argument("gguf", type=Path, help="a .gguf model file")
    q.add_argument("--out", type=Path, default=None, help="folder to write (default: POLYGLOT_HOME/models/gguf-SHA)")
    q.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"], help="weights' type in the folder")
    q.set_defaults(func=_cmd_models)

    p = sub.add_parser("review", help="native-speaker review in Label Studio: push the queue, pull corrections")
    review = p.add_subparsers(dest="action", required=True)
    q = review.add_parser("push", help="send the routing queue as tasks (idempotent)")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--langs", default="all", help="'all' or a comma list")
    q.add_argument("--overlap", type=_share, default=0.1, help="share of tasks that get a second reviewer (0 to 1)")
    q.add_argument("--project-prefix", default="llava-polyglot", help="project titles: PREFIX · Language (code)")
    q.add_argument("--image-root", default=os.environ.get("POLYGLOT_IMAGE_ROOT"),
                   help="the conversations' images: a URL prefix (https://…/train2017/) or a local folder Label Studio serves")
    q.set_defaults(func=_cmd_review)
    q = review.add_parser("pull", help="fetch new and edited annotations into the corrections table")
    q.add_argument("--workspace", required=True, type=Path)
    q.add_argument("--langs", default=None, help="default: every language pushed from this workspace")
    q.set_defaults(func=_cmd_review)
    q = review.add_parser("invite", help="print the sign-up link for new reviewers")
    q.set_defaults(func=_cmd_review)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `polyglot qe … | head` ends quietly
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"polyglot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
