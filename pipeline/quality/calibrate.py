"""Calibrate the quality score on reference translations: fit, per language and translator version, the mapping
from signals to the probability that a turn is usable, and choose the status thresholds.

Input: probe records (:mod:`pipeline.probe.lines`) — reference lines translated by the translator through the
real path, each with its signals, its back-translation chrF and its sentence chrF against the reference; and the
references themselves run through QE as translations. A translated line is *usable* when its sentence chrF is at
least the language's floor (QE config ``usable_chrf``; defaults in :data:`FLOORS`); a reference always is.

Two logistic regressions (scikit-learn) on standardised features — with the back-translation and without it —
and thresholds chosen on the calibration records for a stated precision: ``accept_from`` is the lowest score
above which at least ``precision`` of the translations are usable, and ``reject_below`` the highest score below
which at least ``precision`` are unusable; both capped so that references stay accepted. The caps keep a margin
below the goals (at most 0.5 % of references rejected, 5 % sent to review, on lines the calibration never saw):
at most 0.2 % of the calibration's references below ``reject_below`` and 3 % below ``accept_from`` (where they are
too few to read such a share off, from a normal fitted to their logits: :func:`_quantile`). The form-only
model never rejects; its ``form_accept_from`` is chosen the same way, capped by the references' form-only scores.
Where the records carry the embedding judge's cosine (``embed_sim``), two more models are fitted — with the
back-translation and the cosine, and with the cosine alone — each with thresholds chosen the same way on the
records it scores.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from pipeline.quality.score import (
    BOTH_FEATURES,
    EMBEDDING_FEATURES,
    FORM_FEATURES,
    MEANING_FEATURES,
    Calibration,
    Judged,
    Logistic,
)

# Sentence chrF against one professional reference from which a translation counts as usable. Character n-gram
# scores run lower for scripts written without spaces (zh, ja) and for morphologically rich languages; set
# ``usable_chrf`` per language in the QE config to change them.
FLOORS = {"zh": 25.0, "ja": 25.0, "es": 45.0, "fr": 45.0, "ru": 40.0, "ar": 35.0, "hi": 35.0, "bn": 35.0, "ur": 35.0}
KNOWN_GOOD_SHARE = (
    0.9  # translations usable from which the translator is "known good" (a back-translation sample will do)
)


# Shares of the calibration's references allowed below each threshold: margins under the goals (≤ 0.5 % of references
# rejected, ≤ 5 % sent to review, on every reference line, not only the calibration's).
REFERENCES_REJECTED = 0.002
REFERENCES_TO_REVIEW = 0.03
# The shipped defaults' form-only thresholds, per language: set on most ntrex-dev lines, they must hold on documents
# they never saw, and references of one document resemble each other (a 3 % cap on 905 lines sent 8-9 % of es and
# ar references on lines 160-259 to review), hence half the share.
FORM_REFERENCES_TO_REVIEW = 0.015
FORM_ACCEPT_NOTE = (
    "per language (form_accept_by_lang): at most 1.5 % of the language's references on every {data} line but "
    "{first}-{last} to review on the form path; form_accept_from, the lowest, for any other language"
)

# The last clause's cosine (pipeline.quality.embedding.last_clause_cosines) sends an accepted turn to review below a
# floor per language at which this share of the references fall: a third doubt beside the form's and the cosine's,
# hence a smaller share. Fewer references with a last clause than TAIL_MIN_REFERENCES set no floor.
TAIL_REFERENCES_TO_REVIEW = 0.01
TAIL_MIN_REFERENCES = 50


def tail_floor(reference_tails: list[float | None]) -> float | None:
    """The floor of the last clause's cosine for references whose last clauses scored ``reference_tails`` (None:
    one clause only): at most :data:`TAIL_REFERENCES_TO_REVIEW` of them below it, read as every cap is
    (:func:`_quantile`: where they are few, a lower tolerance bound); None where too few have one."""
    tails = [t for t in reference_tails if t is not None]
    if len(tails) < TAIL_MIN_REFERENCES:
        return None
    return _floor4(_quantile(tails, TAIL_REFERENCES_TO_REVIEW))


@dataclass
class Record:
    features: dict[str, float]  # turn_features(); "bt_chrf" when back-translated, "embed_sim" when embedded
    chrf: float | None  # sentence chrF against the reference (None for a reference itself)
    reference: bool = False  # the professional reference taken as a translation

    def usable(self, floor: float) -> bool:
        return self.reference or (self.chrf is not None and self.chrf >= floor)


# The meaning signals a model with both reads get one weight: the sum of their standardised values, the z-average of
# back-translation chrF and cosine. Fitted freely, the pooled defaults put all the weight on the cosine (bt-chrF -0.02,
# cosine 1.09); on the recorded held-out lines (bench/bench_embedding.py) tying them moved Kendall τ of the defaults
# es 0.29 -> 0.33, zh 0.34 -> 0.36, hi 0.44 -> 0.44, and of fresh calibrations hi 0.42 -> 0.47.
TIED = ("bt_chrf", "embed_sim")


def _fit(records: list[Record], floor: float, features: tuple[str, ...]) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    rows = [[r.features[f] for f in features] for r in records]
    labels = [int(r.usable(floor)) for r in records]
    mean = [sum(col) / len(col) for col in zip(*rows)]
    # a feature that does not vary (its spread a rounding error, written as 0 with six decimals) is left unscaled
    spread = [math.sqrt(sum((v - m) ** 2 for v in col) / len(col)) for col, m in zip(zip(*rows), mean)]
    scale = [s if s >= 1e-6 else 1.0 for s in spread]
    x = [[(v - m) / s for v, m, s in zip(row, mean, scale)] for row in rows]
    if len(set(labels)) < 2:  # every line usable (or none): a model that says so, with no slope
        p = min(max(sum(labels) / len(labels), 0.01), 0.99)
        return Logistic(list(features), [0.0] * len(features), math.log(p / (1 - p)), mean, scale)
    tied = [i for i, f in enumerate(features) if f in TIED] if set(TIED) <= set(features) else []
    if tied:  # one column for their sum, its weight given to each
        x = [[sum(row[i] for i in tied)] + [v for i, v in enumerate(row) if i not in tied] for row in x]
    fitted = LogisticRegression(C=1.0, max_iter=1000).fit(x, labels)
    coef = [float(w) for w in fitted.coef_[0]]
    if tied:
        rest = iter(coef[1:])
        coef = [coef[0] if i in tied else next(rest) for i in range(len(features))]
    return Logistic(
        list(features),
        [round(w, 6) for w in coef],
        round(float(fitted.intercept_[0]), 6),
        [round(m, 6) for m in mean],
        [round(s, 6) for s in scale],
    )


# Fewer references than this expected below a share, and its empirical quantile is one of the lowest few references —
# a poor estimate: below the lowest of 60 a new reference falls with probability 1/61 (1.6 %, against a 0.2 % goal).
# Measured on the recorded 1.5B back-translations (held-out lines 60-159): fresh calibrations rejected 2-4 % of the
# hi and zh references and the defaults, capped by the three languages pooled, sent 14 % of hi's to review.
TAIL_FIT_BELOW = 5


TAIL_CONFIDENCE = 0.9


def tolerance_factor(n: int, q: float, confidence: float = TAIL_CONFIDENCE) -> float:
    """k such that mean − k·sd of ``n`` draws from a normal lies below its ``q`` quantile with probability
    ``confidence`` (the one-sided normal tolerance factor, in the approximation of Natrella's handbook): a point
    estimate of the quantile from a few dozen references lies above the true one half the time."""
    zq, zc = statistics.NormalDist().inv_cdf(1 - q), statistics.NormalDist().inv_cdf(confidence)
    a = 1 - zc * zc / (2 * (n - 1))
    b = zq * zq - zc * zc / n
    return (zq + math.sqrt(max(zq * zq - a * b, 0.0))) / a


def _quantile(values: list[float], q: float) -> float:
    """The score below which a share ``q`` of references is expected: the empirical quantile, or where fewer than
    :data:`TAIL_FIT_BELOW` of them fall below it, the lower of it and a normal fitted to the values' logits (a score
    is a probability, a cosine lies mostly between 0 and 1; a weak judge's worst references lie far below the
    others), read as a lower tolerance bound (:func:`tolerance_factor`). Measured: with sixty references the fitted
    quantile itself still let a fresh calibration reject 2 % of the held-out references of hi and zh; a last clause's
    floor read off ~300 references as their empirical 1 % sent 1.3-3.3 % of 640 other references to review."""
    ordered = sorted(values)
    if not ordered:
        return 1.0
    empirical = ordered[min(len(ordered) - 1, max(0, int(math.floor(q * len(ordered)))))]
    if q * len(ordered) >= TAIL_FIT_BELOW or len(ordered) < 3:
        return empirical
    logits = [math.log(p / (1 - p)) for p in (min(max(v, 1e-6), 1 - 1e-6) for v in ordered)]
    spread = statistics.stdev(logits)
    if spread < 1e-9:
        return empirical
    fitted = statistics.fmean(logits) - tolerance_factor(len(ordered), q) * spread
    return min(empirical, 1 / (1 + math.exp(-fitted)))


def choose_thresholds(
    scored: list[tuple[float, bool]],
    reference_scores: list[float],
    precision: float,
    to_review: float = REFERENCES_TO_REVIEW,
) -> tuple[float, float]:
    """(reject_below, accept_from) for translations' (score, usable) pairs and the references' scores, of which at
    most ``to_review`` may fall below ``accept_from``."""
    candidates = sorted({s for s, _ in scored} | {0.0, 1.0})
    accept = 1.0
    for t in candidates:  # the lowest threshold whose accepted side is precise enough
        above = [u for s, u in scored if s >= t]
        if above and sum(above) / len(above) >= precision:
            accept = t
            break
    reject = 0.0
    for t in reversed(candidates):  # the highest threshold whose rejected side is precise enough
        below = [u for s, u in scored if s < t]
        if below and sum(not u for u in below) / len(below) >= precision:
            reject = t
            break
    if reference_scores:  # references stay accepted, with a margin for lines the calibration did not see
        reject = min(reject, _quantile(reference_scores, REFERENCES_REJECTED))
        accept = min(accept, _quantile(reference_scores, to_review))
    # rounded down: a threshold rounded up past the reference it was capped at would reject or review that reference
    return _floor4(min(reject, accept)), _floor4(accept)


def _floor4(x: float) -> float:
    return math.floor(x * 10_000) / 10_000


def capped(judged: Judged, reference_scores: list[list[float]], to_review: float = REFERENCES_TO_REVIEW) -> Judged:
    """``judged`` with its thresholds lowered where needed so that in every list of references' scores (one per
    language) at most :data:`REFERENCES_REJECTED` fall below ``reject_below`` and ``to_review`` below ``accept_from``:
    what shipped defaults, which score any language, need (one list: one language's own thresholds)."""
    accept = min([judged.accept_from] + [_quantile(s, to_review) for s in reference_scores if s])
    reject = min([judged.reject_below, accept] + [_quantile(s, REFERENCES_REJECTED) for s in reference_scores if s])
    return Judged(judged.model, _floor4(reject), _floor4(accept))


def kendall_tau(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import kendalltau

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return round(float(kendalltau(a, b).statistic), 3)


def pooled(by_language: dict[str, list[Record]], floors: dict[str, float]) -> list[Record]:
    """Records of several languages as one set, each usable by its own language's floor (chrF taken as the
    distance above that floor, the floor then 0): what the shipped defaults are fitted on."""
    return [
        Record(r.features, None if r.chrf is None else r.chrf - floors[lang], r.reference)
        for lang, records in by_language.items()
        for r in records
    ]


def _judged(
    records: list[Record], floor: float, features: tuple[str, ...], precision: float, with_references: bool = False
) -> Judged:
    """A meaning model fitted on ``records`` (each holding ``features``) and its thresholds chosen on them.

    The model is fitted on the translations alone where they hold both usable and unusable lines: references, all
    "usable" by definition, back-translate and embed like a good machine answer only partly, and fitting on them
    bent the model towards what tells a reference from a machine (measured on the recorded 1.5B answers, held-out
    lines 60-159: Kendall τ with them / without them, back-translation model es 0.28 / 0.30, zh 0.25 / 0.27; with
    the cosine too es 0.27 / 0.33, zh 0.29 / 0.38). Where the translations are all one class (hi: none usable), or
    ``with_references`` (pooled defaults, which score languages whose translations were all unusable: fitted
    without them, their probabilities for Hindi collapsed to ~0 and ranked nothing), the references join the fit.
    The thresholds are capped by the references either way."""
    translations = [r for r in records if not r.reference]
    both_classes = len({r.usable(floor) for r in translations}) == 2
    model = _fit(translations if both_classes and not with_references else records, floor, features)
    reject, accept = choose_thresholds(
        [(model.probability(r.features), r.usable(floor)) for r in translations],
        [model.probability(r.features) for r in records if r.reference],
        precision,
    )
    return Judged(model, reject, accept)


def calibrate(
    lang: str,
    translator_version: str | None,
    records: list[Record],
    floor: float,
    precision: float = 0.9,
    embed_model: str | None = None,
    with_references: bool = False,
    cap_references: list[Record] | tuple = (),
    reference_tails: list[float | None] | tuple = (),
    cosine_floor: float | None = None,
) -> Calibration:
    """Fit the calibration of ``lang`` from ``records`` (translations and references); with ``embed_model``, the
    embedding judge that gave the records' ``embed_sim``, also the models that read it. ``with_references``: the
    meaning models are fitted on the references too (see :func:`_judged`). ``cap_references``: more references, not
    translated: the embedded ones cap the thresholds of the cosine alone as the shipped defaults' are capped (at most
    :data:`FORM_REFERENCES_TO_REVIEW` of them to review), the back-translated ones (with the probe's references) the
    back-translation's (and, embedded too, those of the model reading both). ``reference_tails``:
    the cosines of references' sources with their last clauses (:func:`tail_floor`), which set the language's floor
    for the last clause where the embedding models are fitted. ``cosine_floor``: the cosine from which the cosine
    rejects nothing on its own (:func:`pipeline.quality.shipped.defaults_cosine_floor`)."""
    translations = [r for r in records if not r.reference]
    references = [r for r in records if r.reference]
    if len(translations) < 8:
        raise ValueError(f"{lang}: {len(translations)} translated probe lines are too few to calibrate on (at least 8)")
    with_bt = [r for r in records if "bt_chrf" in r.features]
    if not with_bt:
        raise ValueError(f"{lang}: no probe line was back-translated: the calibration needs the meaning signal")
    meaning = _judged(with_bt, floor, MEANING_FEATURES, precision, with_references)
    form = _fit(records, floor, FORM_FEATURES)
    embedded = [r for r in records if "embed_sim" in r.features] if embed_model else []
    embedded_translations = sum(not r.reference for r in embedded)
    if embedded and embedded_translations < 8:  # the form checks rejected the rest: too few to learn from
        embedded = []
    both = [r for r in embedded if "bt_chrf" in r.features]
    calibration = Calibration(
        lang,
        translator_version,
        floor,
        meaning.model,
        form,
        meaning.reject_below,
        meaning.accept_from,
        False,
        embed_model=embed_model if embedded else None,
        with_embedding=_judged(both, floor, BOTH_FEATURES, precision, with_references) if len(both) >= 8 else None,
        embedding_only=_judged(embedded, floor, EMBEDDING_FEATURES, precision, with_references) if embedded else None,
    )
    if cosine_floor is not None and calibration.embed_model:
        calibration.cosine_reject_floor_by_lang = {lang: cosine_floor}

    backtranslated = [r for r in cap_references if "bt_chrf" in r.features]
    if backtranslated:
        # sixty probe references capped the back-translation's thresholds: a fresh calibration then rejected 2 % of
        # the held-out references of hi, which the 1.5B judge back-translated as other sentences (chrF 9-10, far below
        # every calibration reference); 178 more back-translated references took that to 0 %
        def capped_by(judged: Judged, features: tuple[str, ...]) -> Judged:
            refs = [r for r in [*backtranslated, *references] if set(features) <= set(r.features)]
            return capped(judged, [[judged.model.probability(r.features) for r in refs]])

        meaning = capped_by(meaning, MEANING_FEATURES)
        calibration.with_meaning = meaning.model
        calibration.reject_below, calibration.accept_from = meaning.reject_below, meaning.accept_from
        if calibration.with_embedding:
            calibration.with_embedding = capped_by(calibration.with_embedding, BOTH_FEATURES)

    capping = [r for r in cap_references if "embed_sim" in r.features]
    if capping and calibration.embedding_only:
        # sixty probe references capped the cosine's thresholds at their lowest; on every ntrex-dev line a fresh
        # calibration then rejected 1-2 % of the references of hi and zh (the recorded 1.5B answers)
        alone = calibration.embedding_only
        calibration.embedding_only = capped(
            alone,
            [[alone.model.probability(r.features) for r in [*capping, *(r for r in embedded if r.reference)]]],
            FORM_REFERENCES_TO_REVIEW,
        )

    def score(r: Record) -> float:
        bt, embed = "bt_chrf" in r.features, "embed_sim" in r.features
        return calibration.judged(bt, embed)[0].probability(r.features)

    def rejected(r: Record) -> bool:  # as Calibration.verdict decides: for the meaning signals alone
        reject = calibration.judged("bt_chrf" in r.features, "embed_sim" in r.features)[1]
        return reject is not None and score(r) < reject and calibration.meaning_rejects(r.features)

    def to_review(r: Record) -> bool:
        """As :meth:`Calibration.verdict` decides (the form-only doubt beside a meaning signal included)."""
        bt, embed = "bt_chrf" in r.features, "embed_sim" in r.features
        if rejected(r):
            return False
        if calibration.status("accepted", score(r), bt, embed)[0] != "accepted":
            return True
        return calibration.read_meaning(bt, embed) and form.probability(r.features) < calibration.form_accept

    scored = [(score(r), r.usable(floor)) for r in translations]
    # the form-only model on every line (what a turn that is not back-translated gets): review, never reject
    ref_form_scores = [form.probability(r.features) for r in references]
    # (capped harder: the form signals also send a turn scored with a meaning signal to review, Calibration.verdict)
    _, calibration.form_accept_from = choose_thresholds(
        [(form.probability(r.features), r.usable(floor)) for r in translations],
        ref_form_scores + [form.probability(r.features) for r in capping],  # the embedded references' form too
        precision,
        FORM_REFERENCES_TO_REVIEW,
    )
    usable_share = sum(u for _, u in scored) / len(scored)
    calibration.known_good = usable_share >= KNOWN_GOOD_SHARE
    calibration.figures = {
        "translations": len(translations),
        "references": len(references),
        "precision_target": precision,
        "usable_share": round(usable_share, 3),
        "kendall_tau_score_chrf": kendall_tau([s for s, _ in scored], [r.chrf for r in translations]),
        "references_rejected": round(sum(map(rejected, references)) / max(1, len(references)), 3),
        "references_to_review": round(sum(map(to_review, references)) / max(1, len(references)), 3),
        "references_to_review_form_only": round(
            sum(s < calibration.form_accept_from for s in ref_form_scores) / max(1, len(ref_form_scores)), 3
        ),
    }
    if embed_model and not embedded:
        calibration.figures["embedding"] = (
            f"not fitted: {embedded_translations} translated lines were embedded (the form checks rejected the "
            f"others), at least 8 are needed"
        )
    if calibration.cosine_reject_floor_by_lang:
        calibration.figures["cosine_reject_floor"] = f"the cosine rejects on its own only below {cosine_floor}"
    if capping and calibration.embedding_only:
        calibration.figures["embedding_capped_by_references"] = len(capping)
    if backtranslated:
        calibration.figures["backtranslation_capped_by_references"] = len(backtranslated)
    if reference_tails and calibration.embedding_only:
        floor = tail_floor(list(reference_tails))
        with_clause = sum(t is not None for t in reference_tails)
        if floor is None:
            calibration.figures["last_clause"] = (
                f"no floor: {with_clause} references have a last clause, at least {TAIL_MIN_REFERENCES} are needed"
            )
        else:
            calibration.tail_accept_by_lang = {lang: floor}
            calibration.figures["last_clause"] = (
                f"to review below cosine {floor}: {TAIL_REFERENCES_TO_REVIEW:.0%} of {with_clause} references' last "
                f"clauses expected below it at most ({TAIL_CONFIDENCE:.0%} lower tolerance bound where few)"
            )
    if embedded:
        alone = calibration.embedding_only.model
        calibration.figures["kendall_tau_embedding_only"] = kendall_tau(
            [alone.probability(r.features) for r in embedded if not r.reference],
            [r.chrf for r in embedded if not r.reference],
        )
    return calibration
