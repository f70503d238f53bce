"""The correction loop on a real model: reviewers' corrections → LoRA on CPU → evaluation through the server →
activation only where it wins → a translate run under the adapter. Bench only (hours on a 2-core CPU).

ntrex-dev is split by document (``DOCUMENT_IDS.tsv``: no document on both sides) into training and held-out
lines; the professional references play the reviewers' corrections. Every line becomes a one-turn LLaVA
conversation; the workspace ingests them and gets machine translations of the training lines, then each
training turn gets a review: a Label Studio task built by the push's own code (``build_tasks``), annotated
with the reference text, turned into a corrections row by the pull's own code (``annotation_row``), appended
and applied as the pull does. Then ``polyglot finetune`` (the real command) trains the adapter, evaluates the
current translator, the few-shot prompt and the adapter on the held-out lines through ``--server``, hot-loads
the adapter and decides per language; ``polyglot translate`` re-translates the held-out lines.

To keep hours down, the machine text the "reviewers" corrected comes from ``--draft-server`` (default: the
instant load-test server, which is not a translator): what trains the adapter is the corrected text alone.
Every figure that is reported — held-out chrF/BLEU of base, few-shot and adapter — comes from ``--server``.

It prints per language: held-out chrF and BLEU of the base translator, the few-shot prompt and the adapter;
adapter ÷ base; training examples, steps, wall time and peak RSS of training; the activation decision; then
the translator version of the re-translated held-out lines. The last line is one JSON object.

    .venv/bin/python bench/bench_finetune.py --server http://127.0.0.1:8000 --langs es,zh,hi
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.review import annotation_row, apply_corrections, build_tasks
from pipeline.processes import free_port
from pipeline.references import (
    load_pairs,
    shared_data,
)
from pipeline.review import corrections
from pipeline.translate import registry

DATA = shared_data() / "ntrex-dev"


def split_by_document(data: Path, held_share: float, seed: int) -> tuple[list[int], list[int]]:
    """Line numbers of the training and held-out documents (a seeded draw of whole documents)."""
    docs = [line.split("\t")[0].strip() for line in (data / "DOCUMENT_IDS.tsv").read_text().splitlines()]
    held_docs = {
        d
        for d in set(docs)
        if int(hashlib.blake2b(f"{seed}:{d}".encode(), digest_size=8).hexdigest(), 16) / 2**64 < held_share
    }
    return [i for i, d in enumerate(docs) if d not in held_docs], [i for i, d in enumerate(docs) if d in held_docs]


def polyglot(*args: str, timeout: float = 6 * 3600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"polyglot {args[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="vLLM server of the real model (--enable-lora)")
    parser.add_argument(
        "--draft-server", default=None, help="server whose answers the reviewers corrected (default: load test)"
    )
    parser.add_argument("--langs", default="es,zh,hi")
    parser.add_argument("--train-lines", type=int, default=160, help="training lines per language (short ones first)")
    parser.add_argument("--held-lines", type=int, default=40, help="held-out lines per language")
    parser.add_argument("--max-chars", type=int, default=140, help="longest English line used")
    parser.add_argument("--held-share", type=float, default=0.25, help="share of documents held out")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workspace", type=Path, default=ROOT / "bench" / "out" / "finetune")
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--modules", default="attention", choices=["all", "attention"])
    parser.add_argument("--layers", type=int, default=8, help="LoRA on the top N layers only (0: all)")
    parser.add_argument(
        "--train-eval", type=int, default=16, help="training units per language translated again (training figures)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--from-scratch",
        action="store_true",
        help="every conversation routed to be translated from scratch: a turn whose draft the checks rejected becomes "
        "a from-scratch task (the reference as the person's own text), the others corrections (issue 36; use the real "
        "model as --draft-server so that its rejected drafts decide which)",
    )
    parser.add_argument(
        "--after-lines",
        type=int,
        default=None,
        help="held-out lines the last translate run re-translates into every language (default: all)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="a finetune report of an earlier run of this workspace: print its figures and do only the last translate run",
    )
    args = parser.parse_args()
    langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()]
    ws = args.workspace
    if args.report:  # resume after the hours of training and evaluation
        try:
            report = json.loads(args.report.read_text())
            report["adapter"]["training"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            parser.error(f"--report {args.report}: not a finetune report ({type(exc).__name__}: {exc})")
        return summarise(ws, args, langs, report, None)
    ws.mkdir(parents=True, exist_ok=True)

    train_lines, held_lines = split_by_document(args.data, args.held_share, args.seed)
    english = (args.data / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    usable = lambda ids: [i for i in ids if 25 <= len(english[i]) <= args.max_chars]  # noqa: E731
    train_ids, held_ids = usable(train_lines)[: args.train_lines], usable(held_lines)[: args.held_lines]
    docs = [line.split("\t")[0] for line in (args.data / "DOCUMENT_IDS.tsv").read_text().splitlines()]
    assert not {docs[i] for i in train_ids} & {docs[i] for i in held_ids}, "a document on both sides"
    print(
        f"ntrex-dev split by document: {len(train_ids)} training lines from {len({docs[i] for i in train_ids})} documents, "
        f"{len(held_ids)} held-out lines from {len({docs[i] for i in held_ids})} others",
        flush=True,
    )
    source = ws / "ntrex.jsonl"
    source.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"{'train' if i in train_ids else 'held'}-{i:04d}",
                    "conversations": [{"from": "human", "value": english[i]}],
                }
            )
            + "\n"
            for i in train_ids + held_ids
        )
    )

    # 1. the machine translations reviewers will correct (all lines ingested; training lines drafted)
    draft = args.draft_server
    loadtest = None
    if draft is None:
        port = free_port()
        loadtest = subprocess.Popen([sys.executable, str(ROOT / "bench" / "loadtest_server.py"), "--port", str(port)])
        draft = f"http://127.0.0.1:{port}"
        time.sleep(3)
    try:
        if not (ws / "review" / "corrections").exists():
            polyglot(
                "translate",
                str(source),
                "--workspace",
                str(ws),
                "--langs",
                ",".join(langs),
                "--server",
                draft,
                "--no-progress",
                "--bt-rate",
                "0",
                "--review-budget",
                "0",
            )
    finally:
        if loadtest:
            loadtest.terminate()

    # 2. reviews of every turn (the held-out ones are the evaluation references), written by the push's and the
    # pull's own code
    if not (ws / "review" / "corrections").exists():
        refs = {lang: [t for _, t in load_pairs(args.data, lang)] for lang in langs}
        rows = []
        now = datetime.now(UTC)
        shards = pl.read_parquet(ws / "translations" / langs[0] / "*.parquet", columns=["conv_key", "id"])
        keys = shards["conv_key"].to_list()
        task_id = 0
        kinds: dict[str, int] = {}
        for lang in langs:
            for task in build_tasks(ws, lang, keys, scratch=frozenset(keys) if args.from_scratch else frozenset()):
                kinds[task["data"]["task_kind"]] = kinds.get(task["data"]["task_kind"], 0) + 1
                task_id += 1
                line = int(task["data"]["conversation_id"].split("-")[1])
                annotation = {
                    "id": task_id,
                    "project": 1,
                    "completed_by": 1,
                    "was_cancelled": False,
                    "lead_time": 20.0,
                    "created_at": now.isoformat(),
                    "updated_at": now.isoformat(),
                    "result": [
                        {
                            "from_name": "translation",
                            "to_name": "english",
                            "type": "textarea",
                            "value": {"text": [refs[lang][line]]},
                        },
                        {
                            "from_name": "categories",
                            "to_name": "english",
                            "type": "choices",
                            "value": {"choices": ["mistranslation"]},
                        },
                    ],
                }
                rows.append(annotation_row({"id": task_id, **task}, annotation, {1: "ntrex reference"}, now))
        corrections.append(ws, rows)
        corrections.write_reviewed(ws)
        for lang in langs:
            apply_corrections(ws, lang)
        print(
            f"corrections in the table: {len(rows)} turns ({len(rows) // len(langs)} per language; "
            + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            + ")",
            flush=True,
        )

    # 3. the real command: train, evaluate through the real server, hot-load, decide
    started = time.perf_counter()
    held_file = ws / "held-out-ids.txt"
    held_file.write_text("".join(f"held-{i:04d}\n" for i in held_ids))
    proc = polyglot(
        "finetune",
        "--workspace",
        str(ws),
        "--langs",
        ",".join(langs),
        "--server",
        args.server,
        "--held-out-ids",
        str(held_file),
        "--max-steps",
        str(args.max_steps),
        "--batch-size",
        str(args.batch_size),
        "--learning-rate",
        str(args.learning_rate),
        "--rank",
        str(args.rank),
        "--alpha",
        str(2 * args.rank),
        "--modules",
        args.modules,
        "--layers",
        str(args.layers),
        "--train-eval",
        str(args.train_eval),
        "--seed",
        str(args.seed),
    )
    finetune_wall = time.perf_counter() - started
    print(proc.stdout)
    report = json.loads(Path(proc.stdout.strip().splitlines()[-1].removeprefix("report: ")).read_text())
    return summarise(ws, args, langs, report, finetune_wall)


def summarise(ws: Path, args, langs: list[str], report: dict, finetune_wall: float) -> int:
    meta = report["adapter"]
    training = meta["training"]
    out = {
        "model": report.get("base_model"),
        "train_examples": meta["train_examples"],
        "training": training,
        "finetune_wall_s": round(finetune_wall, 1) if finetune_wall is not None else None,
        "languages": {},
    }
    print(
        f"{'lang':<5}{'n':>4}{'chrF base':>11}{'few-shot':>10}{'adapter':>9}{'÷ base':>8}{'BLEU base':>11}{'adapter':>9}"
        f"  {'passing the checks':<20}decision"
    )
    share = lambda sc: f"{sc['delivered']:.0%}" if sc.get("delivered") is not None else "-"  # noqa: E731
    for lang in langs:
        held = report["scores"]["held_out"].get(lang, {})
        base, few, ada = held.get("current", {}), held.get("few-shot", {}), held.get("adapter", {})
        decision = next((d for d in report["decisions"] if d["lang"] == lang), {})
        ratio = (ada.get("chrf") or 0) / base["chrf"] if base.get("chrf") else None
        out["languages"][lang] = {
            "held_out": held,
            "adapter_over_base": round(ratio, 3) if ratio else None,
            "decision": decision,
        }
        print(
            f"{lang:<5}{ada.get('n', 0):>4}{base.get('chrf', 0):>11}{few.get('chrf', '-'):>10}{ada.get('chrf', 0):>9}"
            f"{ratio or 0:>8.2f}{base.get('bleu', 0):>11}{ada.get('bleu', 0):>9}  "
            f"{share(base) + ' / ' + share(few) + ' / ' + share(ada):<20}"
            f"{'ACTIVE ' + str(decision.get('activated')) if decision.get('activated') else 'kept'}: {decision.get('reason', '')}"
        )
    print(
        f"training: {meta['train_examples']} examples, {training['steps']} steps, {training['train_seconds']} s, peak RSS "
        f"{training.get('peak_rss_mb')} MB, longest sequence {training.get('longest_sequence')} tokens, loss {training['initial_loss']} → "
        f"{training['final_loss']} (LoRA rank {args.rank} on {args.modules} of the top {args.layers or 'all'} layers)"
    )

    # 4. a translate run under the active translators (the registry copied into a workspace of the held-out
    # lines only: re-translating the training lines too would add hours on a CPU and show nothing more)
    after = ws.parent / f"{ws.name}-after"
    shutil.rmtree(after, ignore_errors=True)
    after.mkdir(parents=True)
    if (ws / "translator").exists():
        shutil.copytree(ws / "translator", after / "translator")
    held_source = after / "held.jsonl"
    held_lines = [line for line in (ws / "ntrex.jsonl").read_text().splitlines() if '"held-' in line][
        : args.after_lines
    ]
    held_source.write_text("".join(line + "\n" for line in held_lines))
    proc = polyglot(
        "translate",
        str(held_source),
        "--workspace",
        str(after),
        "--langs",
        ",".join(langs),
        "--server",
        args.server,
        "--no-progress",
        "--bt-rate",
        "0",
        "--review-budget",
        "0",
        "--request-timeout",
        "7200",
    )
    ws = after
    requests = next(line for line in proc.stdout.splitlines() if line.startswith("requests sent"))
    active = registry.active(ws)
    for lang in langs:
        df = pl.read_parquet(ws / "translations" / lang / "*.parquet", columns=["id", "translator"])
        adapters = {json.loads(t).get("adapter") for t in df["translator"]}
        out["languages"][lang]["retranslated_with"] = sorted(a or "base" for a in adapters)
        print(
            f"{lang}: held-out lines now translated by {sorted(a or 'base model' for a in adapters)} "
            f"(active: {active.get(lang, {}).get('adapter') or 'base model'})"
        )
    print(requests)
    out["after"] = {"lines_per_language": len(held_lines), "requests": requests}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
