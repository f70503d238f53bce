"""The machine's second chance: a rejected turn is translated again, once, as ``n`` sampled candidates chosen by
quality (quality-aware reranking).

After a language is assembled, the units of its rejected turns (``mode`` ``rejected``; ``review``: the turns sent to
review too) that no person decided and that occur in no other turn — an accepted turn is never touched — are asked
again with vLLM's ``n`` at a stated temperature (no per-request seed: see
:meth:`~pipeline.translate.settings.TranslatorConfig.sampling`). Each candidate that passes the answer checks, and
the first answer, is scored the way a turn is: the form signals and the judge's back-translation (kept in the
memory like every back-translation) through the language's calibrated score. A candidate is kept when it scores
above the first answer.

What was decided is kept in the translation memory under the translator version with :data:`SUFFIX` — a separate
attempt of that unit: ``ok`` with the kept candidate, or ``flagged`` when none beat the first answer. The first
answer stays on record under its own version; assembling overlays the kept candidates (:func:`overlay`), and a
rerun sends nothing for a unit that had its second chance, whatever the outcome. A turn holding a kept candidate is
never accepted on its score alone — the candidate was chosen by that score (measured on the 1.5B: turns so chosen
scored as accepted at chrF 13-18 against the references) — it goes to review at best.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.quality import signals as quality
from pipeline.quality.backtranslation import Judge, bt_chrf, make_backtranslator
from pipeline.quality.score import Calibration
from pipeline.translate.backends import OpenAIChatBackend, RequestRejected
from pipeline.translate.checks import answer_problems, clean_answer
from pipeline.translate.memory import Entry, TranslationMemory
from pipeline.translate.requests import load_unique_units, units_only_in
from pipeline.translate.settings import TranslatorConfig

SUFFIX = "~second-chance"
FLAG = "second chance:"  # the flags of the memory's second-chance entries start with it
REVIEW_REASON = "second chance: a candidate chosen by the quality score, so the score alone cannot accept it"
MODES = ("off", "rejected", "review")
TEMPERATURE = 0.7  # the candidates' sampling temperature (measured by hand on the 1.5B: see docs/quality.md)


@dataclass
class SecondChance:
    turns: int = 0  # turns eligible (rejected, or sent to review with mode "review")
    units: int = 0  # units asked again now (units that had their second chance before are not)
    candidates: int = 0  # answers received
    usable: int = 0  # of those, passing the answer checks
    kept: int = 0  # units whose best candidate beat the first answer
    tokens: int = 0  # output tokens of the candidates (back-translations not counted)


def version(translator_version: str) -> str:
    return translator_version + SUFFIX


def overlay(memory: TranslationMemory, lang: str, translator_version: str, units: list[str]) -> dict[str, Entry]:
    """The kept candidates among ``units``: unit hash → entry, to put in place of the first answers."""
    kept = memory.load(lang, version(translator_version), units)
    return {h: e for h, e in kept.items() if e.status == "ok" and e.text}


def eligible(workspace: Path, lang: str, mode: str) -> tuple[dict[str, tuple[str, int]], int]:
    """(unit hash → (English unit, placeholders)) of the turns ``mode`` gives a second chance, and how many turns
    those are; units that also occur in any other turn are left out."""
    statuses = {"rejected"} if mode == "rejected" else {"rejected", "needs_review"}
    files = sorted((Path(workspace) / "translations" / lang).glob("shard-*.parquet"))
    if not files:
        return {}, 0
    shards = pl.read_parquet(files, columns=["conv_key", "turn_qe_status", "turn_human"])
    chosen = {
        (k, i)
        for k, st, human in zip(*(shards[c].to_list() for c in ("conv_key", "turn_qe_status", "turn_human")))
        for i, s in enumerate(st)
        if s in statuses and not (human and human[i])
    }
    wanted = units_only_in(Path(workspace) / "ingest", chosen)
    units = load_unique_units(Path(workspace) / "ingest")
    return {h: (text, marks) for h, text, marks in units if h in wanted}, len(chosen)


def _score(source: str, text: str, lang: str, back: str | None, calibration: Calibration, qe: quality.QEConfig):
    q = quality.assess(source, text, lang, th=qe.for_lang(lang), bands=qe.bands)
    if q.status == "rejected":
        return -1.0
    return calibration.score(q, bt_chrf(back, source), qe.bands.get(lang))


async def _ask(
    backend: OpenAIChatBackend, config: TranslatorConfig, lang: str, units: dict, n: int, concurrency: int
) -> dict[str, list]:
    semaphore = asyncio.Semaphore(concurrency)
    out: dict[str, list] = {}
    sampling = {"temperature": TEMPERATURE, "top_p": config.top_p}

    async def one(unit_hash: str, text: str) -> None:
        async with semaphore:
            try:
                out[unit_hash] = await backend.candidates(
                    config.messages(lang, text), config.budget(lang, text), sampling, config.served_model, n
                )
            except RequestRejected as exc:
                out[unit_hash] = exc

    try:
        await asyncio.gather(*(one(h, t) for h, (t, _) in units.items()))
    finally:
        await backend.close()
    return out


def run(
    workspace: Path,
    lang: str,
    mode: str,
    config: TranslatorConfig,
    server: str,
    judge: Judge,
    calibration: Calibration,
    qe: quality.QEConfig,
    n: int = 4,
    concurrency: int = 16,
) -> SecondChance:
    """Give the eligible units of ``lang`` their second chance (see the module's docstring); returns the counts."""
    if mode not in MODES:
        raise ValueError(f"second chance must be one of {', '.join(MODES)}, got {mode!r}")
    if n < 1:
        raise ValueError(f"candidates must be at least 1, got {n}")
    counts = SecondChance()
    if mode == "off" or lang == "en":
        return counts
    ws = Path(workspace)
    memory = TranslationMemory(ws / "tm")
    first_version = config.version(lang)
    units, counts.turns = eligible(ws, lang, mode)
    done = memory.unit_hashes(lang, version(first_version))
    units = {h: v for h, v in units.items() if h not in done}
    if not units:
        return counts
    counts.units = len(units)
    first = memory.load(lang, first_version, list(units))
    answers = asyncio.run(_ask(OpenAIChatBackend(server), config, lang, units, n, concurrency))
    # every usable candidate and each first answer, back-translated by the judge (kept in the memory: a rerun
    # asks nothing again) and scored as a turn would be
    options: dict[str, list[tuple[str, str, int]]] = {}  # unit → (text, raw, tokens) of the usable candidates
    for h, got in answers.items():
        if isinstance(got, Exception):
            continue
        counts.candidates += len(got)
        source, marks = units[h]
        for c in got:
            counts.tokens += c.completion_tokens
            text, _ = clean_answer(source, c.text)
            if not answer_problems(source, marks, text, c.finish_reason, lang, config.few_shot):
                options.setdefault(h, []).append((text, c.text, c.completion_tokens))
                counts.usable += 1
    backtranslate = make_backtranslator(judge, memory, lang)
    texts = [(h, "first", first[h].text) for h in units if h in first and first[h].text]
    texts += [(h, str(i), text) for h, opts in options.items() for i, (text, _, _) in enumerate(opts)]
    backs = backtranslate([(f"second-chance\x1f{h}\x1f{text}", text) for h, _, text in texts]) if texts else []
    back = {(h, which): b for (h, which, _), b in zip(texts, backs)}
    entries = []
    for h, (source, _) in units.items():
        base = -1.0
        if h in first and first[h].text:
            base = _score(source, first[h].text, lang, back.get((h, "first")), calibration, qe)
        scored = [
            (_score(source, text, lang, back.get((h, str(i))), calibration, qe), i)
            for i, (text, _, _) in enumerate(options.get(h, []))
        ]
        best = max(scored, default=None)
        tokens = sum(t for _, _, t in options.get(h, []))
        if best is not None and best[0] > base:
            text, raw, _ = options[h][best[1]]
            counts.kept += 1
            flag = f"{FLAG} candidate {best[1] + 1} of {n} kept, score {best[0]:.2f} over {base:.2f}"
            entries.append(Entry(h, lang, version(first_version), "ok", text, raw, [flag], "stop", 1, 0, tokens))
        else:
            why = answers[h] if isinstance(answers.get(h), Exception) else "no candidate scored above the first answer"
            entries.append(
                Entry(
                    h, lang, version(first_version), "flagged", None, "", [f"second chance: {why}"], None, 1, 0, tokens
                )
            )
    memory.commit(entries)
    return counts
