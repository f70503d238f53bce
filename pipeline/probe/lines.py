"""Probe a translator on reference translations through the real path: the lines of a reference folder (the NTREX
layout of ``../shared/data/ntrex-dev``) become one-turn conversations, are ingested, translated (answer checks,
retries, loop stops), assembled (language rules, QE signals) and back-translated by the judge like any workspace's
turns; every translated turn is then scored against its reference (sentence chrF), and the references themselves
run through the same QE as if they were translations.

A probe keeps its own ingest and translated shards under ``WORKSPACE/probes/NAME/`` and shares the workspace's
translation memory: probing again sends only what is missing. Calibration (:mod:`pipeline.quality.calibrate`)
and translator qualification (:mod:`pipeline.probe.qualify`) are built on it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

import language_rules
from pipeline.assemble.translations import assemble_language
from pipeline.ingest.tables import ingest
from pipeline.quality.backtranslation import Judge, bt_chrf, bt_key, chrf, make_backtranslator
from pipeline.quality.calibrate import Record
from pipeline.quality.embedding import EmbedJudge, last_clause_cosines, make_embedder
from pipeline.quality.score import Calibration, defaults, turn_features
from pipeline.quality.signals import QEConfig, TurnQE, assess, degenerate_reference
from pipeline.references import load_pairs
from pipeline.translate.backends import OpenAIChatBackend
from pipeline.translate.memory import TranslationMemory
from pipeline.translate.requests import LanguageCounts, TranslateSummary, plan, translate_units
from pipeline.translate.settings import TranslatorConfig


@dataclass
class ProbeTurn:
    line: int
    source: str
    reference: str
    text: str  # the translation as assembled (or the reference itself, for a reference record)
    qe: TurnQE
    back_translation: str | None
    bt_chrf: float | None
    chrf: float | None  # against the reference (None for the reference itself)
    reference_record: bool = False
    flags: list[str] = field(default_factory=list)  # the language rules' flags on the assembled turn
    embed_sim: float | None = None  # the embedding judge's cosine of source and text (None: no judge)

    @property
    def judge_remarked(self) -> bool:
        """Sent back to English, and the judge answered with a remark instead (:func:`bt_chrf` gave None)."""
        return self.back_translation is not None and self.bt_chrf is None

    def record(self, band: list[float] | None) -> Record:
        return Record(turn_features(self.qe, self.bt_chrf, band, self.embed_sim), self.chrf, self.reference_record)


@dataclass
class Probe:
    lang: str
    translator_version: str
    turns: list[ProbeTurn] = field(default_factory=list)  # translations, then references
    requests: int = 0  # translation requests sent now (0 when everything came from the memory)
    completion_tokens: int = 0  # of the probe's answers kept in the memory (all attempts)
    seconds: float = 0.0  # wall time of the translate step now
    answers_passing: float = 0.0  # share of the probe's units whose answer passed the answer checks

    @property
    def translations(self) -> list[ProbeTurn]:
        return [t for t in self.turns if not t.reference_record]

    @property
    def references(self) -> list[ProbeTurn]:
        return [t for t in self.turns if t.reference_record]


def probe_name(refs: Path, lines: list[int]) -> str:
    import hashlib

    return f"{Path(refs).name}-{hashlib.blake2b(json.dumps(lines).encode(), digest_size=4).hexdigest()}"


def run_probe(
    workspace: Path,
    refs: Path,
    lang: str,
    lines: list[int],
    server: str,
    translator: TranslatorConfig,
    judge: Judge | None,
    concurrency: int = 16,
    qe_config: QEConfig | None = None,
    references: bool = True,
    say=None,
    embed_judge: EmbedJudge | None = None,
) -> Probe:
    """Translate ``lines`` of ``refs`` into ``lang`` with ``translator`` at ``server``, back-translate every turn with
    ``judge`` (None: none) and embed it with ``embed_judge`` (None: none), and measure each against its reference;
    with ``references``, run the references through QE too. Lines whose reference fails the form checks itself are left out, and ``say`` (default: stderr)
    is told how many and why, in one line."""
    workspace = Path(workspace)
    qe_config = qe_config or QEConfig()
    pairs = load_pairs(refs, lang)
    bad = [n for n in lines if not 0 <= n < len(pairs)]
    if bad:
        raise ValueError(f"{refs} has {len(pairs)} lines; asked for line(s) {bad[:5]}")
    dropped = {
        n: why
        for n in lines
        if (why := degenerate_reference(*pairs[n], lang, th=qe_config.for_lang(lang), bands=qe_config.bands))
    }
    if dropped:
        lines = [n for n in lines if n not in dropped]
        (say or (lambda line: print(line, file=sys.stderr, flush=True)))(
            f"{lang}: {len(dropped)} of {len(lines) + len(dropped)} reference line(s) of {Path(refs).name} left out, "
            f"they fail the form checks themselves: "
            + "; ".join(f"line {n} ({why})" for n, why in list(dropped.items())[:3])
            + (" …" if len(dropped) > 3 else "")
        )
    folder = workspace / "probes" / probe_name(refs, lines)
    source = folder / "lines.jsonl"
    if not (folder / "ingest" / "summary.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        source.write_text(
            "".join(
                json.dumps(
                    {"id": f"line-{n:05d}", "conversations": [{"from": "human", "value": pairs[n][0]}]},
                    ensure_ascii=False,
                )
                + "\n"
                for n in lines
            ),
            encoding="utf-8",
        )
        ingest([source], folder)
    memory = TranslationMemory(workspace / "tm")
    translators = {lang: translator}
    summary = TranslateSummary()
    jobs = plan(folder / "ingest", [lang], memory, translators, summary)
    started = time.perf_counter()
    if jobs:
        backend = OpenAIChatBackend(server, retry_seconds=600, request_timeout=7200)

        async def send() -> None:
            try:
                await translate_units(jobs, backend, translators, memory, summary, concurrency, commit_age=30.0)
            finally:
                await backend.close()

        asyncio.run(send())
    result = Probe(
        lang, translator.version(lang), requests=summary.requests_sent, seconds=round(time.perf_counter() - started, 1)
    )
    # every turn back-translated; the score's own calibration plays no part in what the probe measures
    assemble_language(
        folder,
        lang,
        memory,
        translator,
        LanguageCounts(),
        judge=judge,
        bt_rate=1.0 if judge else 0.0,
        qe_config=qe_config,
        calibration=defaults(lang),
        embed_judge=embed_judge,
    )
    rows = pl.read_parquet(folder / "translations" / lang / "*.parquet").sort("id")
    units = pl.read_parquet(folder / "ingest" / "unique_units.parquet", columns=["unit_hash"])["unit_hash"].to_list()
    entries = memory.load(lang, result.translator_version, units)
    result.completion_tokens = sum(e.completion_tokens for e in entries.values())
    result.answers_passing = round(sum(e.status == "ok" for e in entries.values()) / max(1, len(units)), 4)
    for row in rows.iter_rows(named=True):
        n = int(row["id"].removeprefix("line-"))
        text = row["conversations"][0]["value"]
        # the form checks again on the assembled turn (the shard's status also holds the score's verdict)
        qe = assess(
            pairs[n][0], text, lang, flags=row["turn_flags"][0], th=qe_config.for_lang(lang), bands=qe_config.bands
        )
        result.turns.append(
            ProbeTurn(
                n,
                pairs[n][0],
                pairs[n][1],
                text,
                qe,
                row["turn_back_translation"][0],
                row["turn_bt_chrf"][0],
                chrf(text, pairs[n][1]),
                flags=list(row["turn_flags"][0] or []),
                embed_sim=row["turn_embed_sim"][0],
            )
        )
    if references and judge:
        backtranslate = make_backtranslator(judge, memory, lang)
        refs_fixed = [language_rules.apply(pairs[n][1], lang, "human").text for n in lines]
        keys = [bt_key(f"reference:{refs.name}", n, text) for n, text in zip(lines, refs_fixed)]
        english = backtranslate(list(zip(keys, refs_fixed)))
        sims = (
            make_embedder(embed_judge, memory, lang)([(k, pairs[n][0], t) for k, n, t in zip(keys, lines, refs_fixed)])
            if embed_judge
            else [None] * len(lines)
        )
        th, bands = qe_config.for_lang(lang), qe_config.bands
        for n, text, back, sim in zip(lines, refs_fixed, english, sims):
            qe = assess(pairs[n][0], text, lang, th=th, bands=bands)
            result.turns.append(
                ProbeTurn(
                    n, pairs[n][0], pairs[n][1], text, qe, back, bt_chrf(back, pairs[n][0]), None, True, embed_sim=sim
                )
            )
    return result


def _kept_references(
    refs: Path, lang: str, lines: list[int], qe_config: QEConfig
) -> list[tuple[int, str, str, TurnQE]]:
    """(line, English source, reference as a translate run outputs it, its form checks) for the references on
    ``lines`` that the form checks let through."""
    pairs = load_pairs(refs, lang)
    out = []
    for n in (n for n in lines if 0 <= n < len(pairs)):
        text = language_rules.apply(pairs[n][1], lang, "human").text
        checked = assess(pairs[n][0], text, lang, th=qe_config.for_lang(lang), bands=qe_config.bands)
        if checked.status != "rejected":
            out.append((n, pairs[n][0], text, checked))
    return out


def capping_references(
    workspace: Path,
    refs: Path,
    lang: str,
    lines: list[int],
    embed_judge: EmbedJudge | None = None,
    judge: Judge | None = None,
    qe_config: QEConfig | None = None,
) -> list[tuple[int, Record, float | None]]:
    """The references on ``lines`` (those the form checks let through) as a calibration's capping references: (line,
    a record of their form signals — with ``judge``, their back-translation's chrF (a judge's remark: none); with
    ``embed_judge``, their cosine with the source —, the cosine of the source with their last clause or None). No
    translation: a calibration caps its thresholds and sets the last clause's floor
    (:func:`pipeline.quality.calibrate.tail_floor`) on many more references than it translates. Both answers are
    kept in the workspace's memory under the keys the probe gives its own references: asked once."""
    qe_config = qe_config or QEConfig()
    kept = _kept_references(refs, lang, lines, qe_config)
    memory = TranslationMemory(Path(workspace) / "tm")
    tag = f"reference:{Path(refs).name}"
    keys = [bt_key(tag, n, text) for n, _, text, _ in kept]
    sims: list[float | None] = [None] * len(kept)
    tails: list[float | None] = [None] * len(kept)
    if embed_judge:
        embed = make_embedder(embed_judge, memory, lang)
        sims = embed([(k, source, text) for k, (_, source, text, _) in zip(keys, kept)])
        tails = last_clause_cosines(embed, [(tag, n, source, text) for n, source, text, _ in kept])
    bts: list[float | None] = [None] * len(kept)
    if judge:
        english = make_backtranslator(judge, memory, lang)([(k, text) for k, (_, _, text, _) in zip(keys, kept)])
        bts = [bt_chrf(back, source) for back, (_, source, _, _) in zip(english, kept)]
    band = qe_config.bands.get(lang)
    return [
        (n, Record(turn_features(q, bt, band, sim), None, True), tail)
        for (n, _, _, q), bt, sim, tail in zip(kept, bts, sims, tails)
    ]


def scored(
    probe: Probe, calibration: Calibration, qe_config: QEConfig | None = None
) -> list[tuple[ProbeTurn, float, str]]:
    """Every turn of ``probe`` with its score and status under ``calibration``."""
    band = (qe_config or QEConfig()).bands.get(probe.lang)
    out = []
    for turn in probe.turns:
        score, status, _ = calibration.verdict(turn.qe, turn.bt_chrf, band, turn.embed_sim, None, turn.judge_remarked)
        out.append((turn, score, status))
    return out


def recorded_turns(
    recording: dict, lang: str, split: str, data: Path, qe_config: QEConfig | None = None
) -> list[ProbeTurn]:
    """The turns of ``split`` of a probe recording (``bench/bench_quality.py --record``: line numbers and model
    output only) rebuilt as the probe builds them, the English sources and references read from ``data``; the form
    checks run again on the recorded text."""
    qe_config = qe_config or QEConfig()
    th, bands = qe_config.for_lang(lang), qe_config.bands
    pairs = load_pairs(data, lang)
    out = []
    for r in (r for r in recording["languages"][lang] if r["split"] == split):
        source, reference = pairs[r["line"]]
        back = r["back_translation"]
        if r["kind"] == "reference":
            text = language_rules.apply(reference, lang, "human").text
            qe = assess(source, text, lang, th=th, bands=bands)
            out.append(ProbeTurn(r["line"], source, reference, text, qe, back, bt_chrf(back, source), None, True))
        else:
            qe = assess(source, r["text"], lang, flags=r["flags"], th=th, bands=bands)
            out.append(
                ProbeTurn(
                    r["line"],
                    source,
                    reference,
                    r["text"],
                    qe,
                    back,
                    bt_chrf(back, source),
                    chrf(r["text"], reference),
                    flags=r["flags"],
                )
            )
    return out


def load_recordings(paths: list[Path]) -> dict:
    """Several probe recordings (``bench/bench_quality.py --record``, one per model and set of languages) as one:
    ``languages`` holds each language's records from the file that has them, ``models`` each language's
    ``(model, judge)``. A language recorded in two files is an error: which answers to use would be a guess."""
    merged: dict = {"languages": {}, "models": {}}
    for path in paths:
        recording = json.loads(Path(path).read_text(encoding="utf-8"))
        for lang, rows in recording["languages"].items():
            if lang in merged["languages"]:
                raise ValueError(f"{path}: {lang} is recorded in another file too; give each language one recording")
            merged["languages"][lang] = rows
            merged["models"][lang] = (recording["model"], recording["judge"])
    return merged
