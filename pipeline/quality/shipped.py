"""How the shipped default calibration's thresholds are capped per language (``bench/bench_quality.py`` and
``bench/bench_embedding.py`` write ``default_calibration.json`` with them): the defaults score every language and
every translator, so each language's professional references must stay accepted by them — measured on lines the caps
never saw (docs/quality.md, "the reference guard")."""

from __future__ import annotations

import math
from dataclasses import replace

from pipeline.quality.calibrate import FORM_REFERENCES_TO_REVIEW, Record, capped
from pipeline.quality.score import (
    BOTH_FEATURES,
    MEANING_FEATURES,
    NO_DOUBT,
    Calibration,
    Judged,
    Logistic,
    turn_features,
)


def _scores(model: Logistic, features: tuple[str, ...], records: list[Record], form: dict | None = None) -> list[float]:
    """The references' scores; with ``form``, their form signals set to it."""
    return [
        model.probability({**r.features, **(form or {})})
        for r in records
        if r.reference and set(features) <= set(r.features)
    ]


def capped_by_language(calibration: Calibration, records_by_lang: dict[str, list[Record]]) -> Calibration:
    """The shipped defaults' back-translation models (with and without the cosine) with their thresholds capped by
    each language's references among ``records_by_lang`` (:func:`capped`): fitted on languages pooled, they were
    capped by the pooled references, and the 3 % lowest of those were all Hindi (a weak judge back-translates Hindi
    worst): Hindi's own references went to review at 12 % on the calibration lines, 14 % on held-out ones."""
    by_lang = list(records_by_lang.values())
    meaning = capped(
        Judged(calibration.with_meaning, calibration.reject_below, calibration.accept_from),
        [_scores(calibration.with_meaning, MEANING_FEATURES, records) for records in by_lang],
    )
    both = calibration.with_embedding
    return replace(
        calibration,
        reject_below=meaning.reject_below,
        accept_from=meaning.accept_from,
        with_embedding=both and capped(both, [_scores(both.model, BOTH_FEATURES, records) for records in by_lang]),
        figures={
            **calibration.figures,
            "back_translation_thresholds": f"capped by each of {'/'.join(records_by_lang)}'s own references",
        },
    )


def own_bt_thresholds(calibration: Calibration, references_by_lang: dict[str, list[Record]], lines: str) -> Calibration:
    """``calibration`` with thresholds of their own for the back-translation models of each language in
    ``references_by_lang`` (its references on ``lines``, back-translated by the judge and embedded) where they need
    lower ones than :func:`capped_by_language` set (``bt_thresholds_by_lang``; never higher): the 1.5B judge reads
    Urdu and Bengali worse than the languages the models were fitted on — with Hindi's thresholds it sent 7 % of Urdu
    references to review with the back-translation alone and 16 % with the cosine beside it (lines 0-159)."""
    meaning = Judged(calibration.with_meaning, calibration.reject_below, calibration.accept_from)
    both = calibration.with_embedding
    own: dict[str, dict[str, list[float]]] = {}
    for lang, records in references_by_lang.items():
        for name, judged, features in (
            ("back_translation", meaning, MEANING_FEATURES),
            ("with_embedding", both, BOTH_FEATURES),
        ):
            if judged is None:
                continue
            # review below accept_from as scored; rejection only where the meaning alone rejects (the form raising
            # no doubt: Calibration.meaning_rejects), so reject_below is capped by those scores
            accept = capped(judged, [_scores(judged.model, features, records)]).accept_from
            reject = capped(judged, [_scores(judged.model, features, records, NO_DOUBT)]).reject_below
            if (min(reject, accept), accept) != (judged.reject_below, judged.accept_from):
                own.setdefault(lang, {})[name] = [min(reject, accept), accept]
    note = (
        f"{', '.join(own)}: their own, capped by their references on ntrex-dev lines {lines}"
        if own
        else f"no language of {'/'.join(references_by_lang)} needs its own (their references on lines {lines})"
    )
    return replace(
        calibration,
        bt_thresholds_by_lang=own,
        figures={**calibration.figures, "back_translation_thresholds_by_lang": note},
    )


def references_form_accept(
    calibration: Calibration, ntrex_dir, langs: list[str], skip: range = range(0)
) -> dict[str, float]:
    """Per language, the form-only threshold of the shipped defaults: the highest (in steps of 0.005) at which at
    most :data:`FORM_REFERENCES_TO_REVIEW` of the language's references (every line of ``ntrex_dir`` but ``skip``,
    the lines a bench keeps to measure on) go to review on the form path — the form checks' doubts counted."""
    import language_rules
    from pipeline.quality.signals import QEConfig, assess
    from pipeline.references import load_pairs

    config = QEConfig()
    out = {}
    for lang in langs:
        band = config.bands.get(lang)
        checked = [
            assess(s, language_rules.apply(t, lang, "human").text, lang, th=config.for_lang(lang), bands=config.bands)
            for n, (s, t) in enumerate(load_pairs(ntrex_dir, lang))
            if n not in skip
        ]
        # the scores of the references the checks let through; of them, ``allowed`` may fall below the threshold
        free = sorted(
            calibration.form_only.probability(turn_features(q, None, band)) for q in checked if q.status == "accepted"
        )
        allowed = int(FORM_REFERENCES_TO_REVIEW * len(checked)) - (len(checked) - len(free))
        out[lang] = math.floor(free[allowed] * 200) / 200 if 0 <= allowed < len(free) else 0.0
    return out


def cosine_reject_cut(calibration: Calibration, lang: str) -> float | None:
    """The cosine below which ``calibration``'s cosine-only model rejects a turn of ``lang`` whose form raises no
    doubt (None: it has no such model, or rejects no cosine in [0, 1])."""
    alone = calibration.embedding_only
    if alone is None:
        return None
    model, reject, _, _ = replace(calibration, lang=lang).judged(False, True)

    def rejects(cosine: float) -> bool:
        return model.probability({**NO_DOUBT, "embed_sim": cosine}) < reject

    low, high = 0.0, 1.0
    if not rejects(low) or rejects(high):  # rejects nothing, or everything: no cut to carry over
        return None
    for _ in range(40):  # the score grows with the cosine: bisect to the cut
        middle = (low + high) / 2
        low, high = (middle, high) if rejects(middle) else (low, middle)
    return math.floor(high * 10_000) / 10_000


def defaults_cosine_floor(shipped: Calibration, embed_model: str | None, lang: str) -> float | None:
    """The cosine from which a fresh calibration of ``lang`` fitted with ``embed_model`` lets its cosine reject
    nothing on its own (``calibrate(cosine_floor=…)``, :attr:`Calibration.cosine_reject_floor_by_lang`): the shipped
    defaults' cut for the language (:func:`cosine_reject_cut`) where they read the same embedding model, else None.
    The defaults' cosine thresholds are capped by the references of nine languages (1,436 on ntrex-dev lines 0-159;
    on every line at most 0.4 % of a language's rejected); a fresh calibration's by one language's few hundred, whose
    lowest can lie far above the 0.2 % tail it must keep: a fresh Russian calibration capped by 259 references
    (lowest cosine 0.625) rejected 0.8 % of 642 others (free translations, cosines 0.48-0.60)."""
    if not embed_model or embed_model != shipped.embed_model:
        return None
    return cosine_reject_cut(shipped, lang)
