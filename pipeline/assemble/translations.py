"""Translated conversations: the memory's units put back into turns, the language rules applied, every turn
scored by quality estimation, and human text in place of machine text wherever a person decided.

Owns ``WORKSPACE/translations/{lang}/shard-NNNNN.parquet`` — one row per conversation in the LLaVA schema plus
status, provenance and QE columns (:data:`TRANSLATION_SCHEMA`) — written by :func:`assemble_language` (one
shard × language at a time) and read by :func:`translations`. English is a pass-through copy with the same
schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import language_rules
from pipeline.assemble import second_chance
from pipeline.assemble.humans import Override, apply_to_table
from pipeline.ingest.shards import iter_shard_turns, shard_dirs
from pipeline.quality import signals as quality
from pipeline.quality.backtranslation import Judge, bt_chrf, bt_key, make_backtranslator, sampled
from pipeline.quality.embedding import EmbedJudge, last_clause_cosines, make_embedder
from pipeline.quality.score import Calibration
from pipeline.quality.score import load as load_calibration
from pipeline.storage import write_atomic
from pipeline.translate.memory import Entry, TranslationMemory
from pipeline.translate.requests import LanguageCounts
from pipeline.translate.settings import TranslatorConfig

SOURCE_VERSION = "source"

TRANSLATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("image", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
        ("lang", pa.string()),
        ("conv_key", pa.string()),
        ("status", pa.string()),  # ok | flagged (any turn flagged)
        ("turn_status", pa.list_(pa.string())),
        ("turn_flags", pa.list_(pa.list_(pa.string()))),
        ("translator_version", pa.string()),
        ("translator", pa.string()),  # JSON: model, adapter, prompt hash, sampling
        ("raw_values", pa.list_(pa.string())),  # each turn as reassembled, before the language rules
        ("fixes", pa.list_(pa.string())),  # each turn's rule changes, JSON [{rule, start, end, before, after}]
        ("rules_version", pa.string()),
        ("source_file", pa.string()),
        ("record_index", pa.int64()),
        ("qe_status", pa.string()),  # accepted | needs_review | rejected (worst turn)
        ("turn_qe_status", pa.list_(pa.string())),
        ("turn_qe_reasons", pa.list_(pa.list_(pa.string()))),
        ("turn_lang_detected", pa.list_(pa.string())),
        ("turn_lang_prob", pa.list_(pa.float32())),
        ("turn_script_share", pa.list_(pa.float32())),
        ("turn_length_ratio", pa.list_(pa.float32())),
        ("turn_bt_chrf", pa.list_(pa.float32())),  # chrF of the turns sent back to English, else null (also: a remark)
        ("turn_back_translation", pa.list_(pa.string())),  # the judge's English for those turns (shown to reviewers)
        ("turn_embed_sim", pa.list_(pa.float32())),  # the embedding judge's cosine of source and turn, else null
        ("qe_score", pa.float32()),  # the worst turn's score
        ("turn_qe_score", pa.list_(pa.float32())),  # estimated probability that the turn is a usable translation
        ("turn_human", pa.list_(pa.string())),  # null | reviewed | corrected: a person decided this turn's text
        ("review_status", pa.string()),  # unreviewed | reviewed | corrected | written (any turn; the most involved)
        ("human_corrected", pa.bool_()),
    ]
)
QE_TURN_COLUMNS = (
    "turn_qe_status",
    "turn_qe_reasons",
    "turn_lang_detected",
    "turn_lang_prob",
    "turn_script_share",
    "turn_length_ratio",
)


def _unit_text(entries: dict[str, Entry], unit_hash: str, index: int) -> tuple[str, list[str]]:
    """The masked text for a unit in a translated turn: the translation, or the flagged raw answer with its flags."""
    entry = entries.get(unit_hash)
    if entry is None:
        return "", [f"unit {index}: not translated"]
    if entry.status == "ok":  # a kept second-chance candidate says so (its flag is taken off the turn's flags)
        return entry.text, [f for f in entry.flags if f.startswith(second_chance.FLAG)]
    return entry.raw.strip(), [f"unit {index}: {flag}" for flag in entry.flags]


def assemble_shard(
    shard_dir: Path,
    lang: str,
    out_path: Path,
    entries: dict[str, Entry] | None,
    translator_version: str,
    translator_json: str,
    counts: LanguageCounts,
    backtranslate: Callable[[list[tuple[str, str]]], list[str]] | None = None,
    bt_rate: float = 0.0,
    seed: int = 0,
    qe_config: quality.QEConfig | None = None,
    human: dict[tuple[str, int], Override] | None = None,
    calibration: Calibration | None = None,
    embed: Callable[[list[tuple[str, str, str]]], list[float]] | None = None,
) -> None:
    """Write the shard's conversations in ``lang`` (``entries`` None: the English source), language rules applied.

    The reassembled text of each turn is kept in ``raw_values``; the rules' changes in ``fixes``; what the
    rules cannot decide becomes a turn flag. A ``bt_rate`` share of the turns (seeded) goes back to English through
    ``backtranslate``; every turn goes to ``embed`` (the embedding judge); both skip the turns the form checks
    reject. Every turn is scored by ``calibration`` (:mod:`pipeline.quality.score`) and its status
    decided by the form checks and the score. Turns in ``human`` (reviewers' text) replace the machine text:
    humans win over every machine run.
    """
    rules_version = language_rules.rules_version()
    qe_config = qe_config or quality.QEConfig()
    if entries is not None and calibration is None:
        raise ValueError("a translated shard needs the calibration of its language's quality score")
    signals: list[list[quality.TurnQE]] = []
    second: list[list[bool]] = []
    thresholds = qe_config.for_lang(lang)
    convs = pq.read_table(shard_dir / "conversations.parquet")
    turn_iter = iter_shard_turns(shard_dir, None if entries is None else partial(_unit_text, entries))
    out: dict[str, list] = {name: [] for name in TRANSLATION_SCHEMA.names}
    bt_jobs: list[tuple[int, int, str, str]] = []  # (row, turn, translated text, English source)
    embed_jobs: list[tuple[int, int, str, str]] = []
    for conv_key, conv_id, image, n_turns, source_file, record_index in zip(
        *(convs.column(n).to_pylist() for n in ("conv_key", "id", "image", "n_turns", "source_file", "record_index"))
    ):
        conversation, statuses, flags, raws, fixes, bt = [], [], [], [], [], []
        turn_qe: dict[str, list] = {name: [] for name in QE_TURN_COLUMNS}
        turn_signals: list[quality.TurnQE] = []
        chances: list[bool] = []  # per turn: holds a candidate a second chance kept
        for _ in range(n_turns):
            turn = next(turn_iter)
            role, value, text = turn.role, turn.source, turn.text
            turn_flags = [f for f in turn.flags if not f.startswith(second_chance.FLAG)]
            chances.append(len(turn_flags) < len(turn.flags))
            fixed = language_rules.apply(text, lang, role)
            turn_flags.extend(f"rules: {flag}" for flag in fixed.flags)
            raws.append(text)
            fixes.append(json.dumps([c.to_dict() for c in fixed.changes], ensure_ascii=False))
            conversation.append({"from": role, "value": fixed.text})
            q = (
                quality.assess(value, fixed.text, lang, flags=turn_flags, th=thresholds, bands=qe_config.bands)
                if entries is not None
                else quality.TurnQE()
            )
            human_turn = bool(human) and (conv_key, len(bt)) in human
            # a turn the form checks reject stays rejected whatever its score: no judge request is spent on it (the
            # loops of a weak translator were the longest and slowest back-translations)
            judged = not human_turn and q.status != "rejected" and fixed.text.strip()
            if backtranslate and judged and sampled(seed, lang, conv_key, len(bt), bt_rate):
                bt_jobs.append((len(out["id"]), len(bt), fixed.text, value))
            if embed and judged:
                embed_jobs.append((len(out["id"]), len(bt), fixed.text, value))
            bt.append(None)
            turn_signals.append(q)
            for name, v in zip(
                QE_TURN_COLUMNS, (q.status, q.reasons, q.lang_detected, q.lang_prob, q.script_share, q.length_ratio)
            ):
                turn_qe[name].append(v)
            statuses.append("flagged" if turn_flags else "ok")
            flags.append(turn_flags)
        flagged = "flagged" in statuses
        counts.conversations += 1
        counts.conversations_flagged += flagged
        counts.turns += n_turns
        counts.turns_flagged += statuses.count("flagged")
        for name, value in (
            ("id", conv_id),
            ("image", image),
            ("conversations", conversation),
            ("lang", lang),
            ("conv_key", conv_key),
            ("status", "flagged" if flagged else "ok"),
            ("turn_status", statuses),
            ("turn_flags", flags),
            ("translator_version", translator_version),
            ("translator", translator_json),
            ("raw_values", raws),
            ("fixes", fixes),
            ("rules_version", rules_version),
            ("qe_status", None),
            *turn_qe.items(),
            ("turn_bt_chrf", bt),
            ("turn_back_translation", [None] * n_turns),
            ("turn_embed_sim", [None] * n_turns),
            ("qe_score", None),
            ("turn_qe_score", [None] * n_turns),
            ("source_file", source_file),
            ("record_index", record_index),
            ("turn_human", [None] * n_turns),
            ("review_status", "unreviewed"),
            ("human_corrected", False),
        ):
            out[name].append(value)
        signals.append(turn_signals)
        second.append(chances)
    if bt_jobs:
        english = backtranslate([(bt_key(out["conv_key"][row], turn, text), text) for row, turn, text, _ in bt_jobs])
        for (row, turn, _, source), back in zip(bt_jobs, english):
            out["turn_bt_chrf"][row][turn] = bt_chrf(back, source)  # None: the judge's remark, not a translation
            out["turn_back_translation"][row][turn] = back
    tails: dict[tuple[int, int], float | None] = {}
    if embed_jobs:
        sims = embed(
            [(bt_key(out["conv_key"][row], turn, text), source, text) for row, turn, text, source in embed_jobs]
        )
        for (row, turn, _, _), sim in zip(embed_jobs, sims):
            out["turn_embed_sim"][row][turn] = sim
        if lang in calibration.tail_accept_by_lang:  # the last clause too, where the calibration reads it
            items = [(out["conv_key"][row], turn, source, text) for row, turn, text, source in embed_jobs]
            sims = last_clause_cosines(embed, items)
            tails = {(row, turn): sim for (row, turn, _, _), sim in zip(embed_jobs, sims)}
    band = qe_config.bands.get(lang)
    for row, turn_signals in enumerate(signals):
        if entries is None:  # the English source: nothing to score
            out["qe_status"][row] = quality.worst(out["turn_qe_status"][row])
            continue
        judged = list(zip(turn_signals, out["turn_bt_chrf"][row], out["turn_embed_sim"][row]))
        backs = out["turn_back_translation"][row]
        verdicts = [
            calibration.verdict(q, bt, band, sim, tails.get((row, turn)), backs[turn] is not None and bt is None)
            for turn, (q, bt, sim) in enumerate(judged)
        ]
        scores = [score for score, _, _ in verdicts]
        for turn, ((q, _, _), (_, status, reason)) in enumerate(zip(judged, verdicts)):
            if status == "accepted" and second[row][turn]:
                # the candidate was chosen by this very score: that it scores well proves little, a person checks it
                status, reason = "needs_review", second_chance.REVIEW_REASON
            out["turn_qe_status"][row][turn] = status
            if reason:
                out["turn_qe_reasons"][row][turn] = [*q.reasons, reason]
        out["turn_qe_score"][row] = scores
        out["qe_score"][row] = min(scores) if scores else None
        out["qe_status"][row] = quality.worst(out["turn_qe_status"][row])
    table = pa.table(out, schema=TRANSLATION_SCHEMA)
    if human:
        table, _ = apply_to_table(table, human)
    write_atomic(out_path, lambda f: pq.write_table(table, f))


def translations_path(workspace: Path, lang: str, shard_dir: Path) -> Path:
    return workspace / "translations" / lang / f"shard-{shard_dir.name}.parquet"


BT_SAMPLE = 0.1  # share of turns back-translated for a language whose translator is known to be good


def assemble_language(
    workspace: Path,
    lang: str,
    memory: TranslationMemory,
    config: TranslatorConfig,
    counts: LanguageCounts,
    shards: list[Path] | None = None,
    judge: Judge | None = None,
    bt_rate: float | None = None,
    seed: int = 0,
    qe_config: quality.QEConfig | None = None,
    human: dict[tuple[str, int], Override] | None = None,
    calibration: Calibration | None = None,
    embed_judge: EmbedJudge | None = None,
) -> list[Path]:
    """Assemble every shard (or the given ones) of the workspace in ``lang``.

    Back-translation through ``judge``: ``bt_rate`` of the turns, or by default (None) every turn — unless the
    language's calibration found its translator known to be good, then a :data:`BT_SAMPLE` share. ``calibration``:
    the quality score's (default: the workspace's for this translator version, else the shipped defaults, silently:
    the translate flow names the uncalibrated languages once per run, :func:`pipeline.quality.score.notices`).
    ``human``: the reviewers' text for turns of ``lang`` (conv_key, turn index → text, kind), from
    :func:`pipeline.review.corrections.overrides`: it replaces the machine text. ``embed_judge``: the embedding
    judge every turn goes to (its cosine is scored where the calibration was fitted with its model)."""
    if bt_rate is not None and not 0.0 <= bt_rate <= 1.0:
        raise ValueError(f"back-translation rate must be between 0 and 1, got {bt_rate}")
    if lang == "en":
        entries, version, desc, human = None, SOURCE_VERSION, json.dumps({"source": True}), None
        backtranslate = embed = None
    else:
        version = config.version(lang)
        desc = json.dumps(config.description(lang), sort_keys=True)
        th = (qe_config or quality.QEConfig()).for_lang(lang)
        calibration = calibration or load_calibration(workspace, lang, version, say=lambda _line: None)
        calibration = calibration.with_thresholds(th.score_reject, th.score_accept).for_embedder(
            embed_judge.model if embed_judge else None
        )
        if bt_rate is None:
            bt_rate = BT_SAMPLE if calibration.known_good else 1.0
        backtranslate = make_backtranslator(judge, memory, lang) if judge and bt_rate > 0 else None
        embed = make_embedder(embed_judge, memory, lang) if embed_judge else None
    paths = []
    for shard in shards if shards is not None else shard_dirs(workspace / "ingest"):
        if lang != "en":  # only the shard's units: memory follows the shard, not the whole translation memory
            shard_units = pq.read_table(shard / "units.parquet", columns=["unit_hash"]).column("unit_hash").unique()
            entries = memory.load(lang, version, shard_units.to_pylist())
            # the candidates a second chance kept stand in for the first answers (which stay on record)
            entries.update(second_chance.overlay(memory, lang, version, shard_units.to_pylist()))
        path = translations_path(workspace, lang, shard)
        assemble_shard(
            shard,
            lang,
            path,
            entries,
            version,
            desc,
            counts,
            backtranslate,
            bt_rate or 0.0,
            seed,
            qe_config,
            human,
            calibration,
            embed,
        )
        paths.append(path)
    return paths


def translations(workspace: Path, langs: list[str], columns: list[str]) -> pl.DataFrame:
    """The given columns of every translated shard of ``langs``, as one frame."""
    frames = []
    for lang in langs:
        files = sorted((workspace / "translations" / lang).glob("shard-*.parquet"))
        if files:
            frames.append(pl.read_parquet(files, columns=columns))
    if not frames:
        raise FileNotFoundError(
            f"no translated shards under {workspace / 'translations'}: run 'polyglot translate' first"
        )
    return pl.concat(frames)
