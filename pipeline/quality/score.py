"""The quality score of a translated turn: ``turn_qe_score`` in [0, 1], the estimated probability that the turn is a
usable translation, and the status it decides.

The score combines the form signals of :mod:`pipeline.quality.signals` (language ID, script share, length
against the language's band, doubts, repetition) with the meaning signal of :mod:`pipeline.quality.backtranslation`
(chrF of the round trip to English against the source) in a logistic model per language and translator version,
calibrated on reference translations (:mod:`pipeline.quality.calibrate`: "usable" = sentence chrF against the
reference at least the language's floor). A turn that was not back-translated is scored by the same calibration's
model without the meaning signal.

Status: a form check that rejects (broken placeholders, wrong language, empty…) rejects whatever the score;
otherwise a score with the meaning signal below ``reject_below`` rejects and below ``accept_from`` sends the turn to
review, and the form's doubts keep sending it to review. A score from the form signals alone never rejects (they
cannot tell a right translation from a wrong one: the form-only model rejected 4.9 % of professional Chinese
references, short lines with perfect language ID): below ``form_accept_from`` it sends the turn to review. Calibrations live in ``WORKSPACE/quality/calibration/{lang}/{translator
version}.json``; a language without one uses the defaults shipped in ``default_calibration.json`` (fitted the same
way on ntrex-dev with Qwen2.5-Coder-1.5B, es/zh/hi pooled) and says so once.

With an embedding judge (:mod:`pipeline.quality.embedding`: the cosine of source and translation,
``embed_sim``) a calibration made with one has two more models, each with its own thresholds: the
back-translation and the cosine together, and the cosine alone — what every turn that was not back-translated
gets, so that the cosine, a meaning signal, decides where the form signals could only send to review. They are used
only with the embedding model they were fitted on (``embed_model``). Whatever meaning signal scores a turn, the form
signals still send it to review where they alone would (:meth:`Calibration.verdict`: an omission keeps most of a
line's meaning, not its length).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from pipeline.quality.signals import TurnQE

FORMAT = 1
# What the two models read. Chosen by measurement on 100 held-out real answers per language (Qwen2.5-Coder-1.5B,
# docs/quality.md): beside the back-translation, the length's distance from the band, the script share
# and the count of doubts added noise that lowered the ranking (Kendall τ with sentence chrF: es 0.08 with them,
# 0.28 without; zh 0.15 and 0.25; hi 0.46 and 0.41); they still act through the form checks and their doubts.
FORM_FEATURES = ("lang_prob", "script_share", "length_off", "doubts", "repetition")
MEANING_FEATURES = ("bt_chrf", "lang_prob", "repetition")
EMBEDDING_FEATURES = ("embed_sim", "lang_prob", "repetition")
BOTH_FEATURES = ("bt_chrf", "embed_sim", "lang_prob", "repetition")

JUDGE_REMARK_REASON = "no back-translation: the judge answered with a remark about the task, not a translation"


# the form signals of a turn that raises no doubt (what a missing signal reads as, and what
# :meth:`Calibration.meaning_rejects` puts in place of a turn's own)
NO_DOUBT = {"lang_prob": 1.0, "script_share": 1.0, "length_off": 0.0, "doubts": 0.0, "repetition": 0.0}


def turn_features(
    q: TurnQE, bt_chrf: float | None, band: list[float] | None, embed_sim: float | None = None
) -> dict[str, float]:
    """The model's inputs for one turn (missing signals take the value of a turn that raises no doubt)."""
    length_off = 0.0
    if q.length_ratio and band:
        centre = math.sqrt(
            max(band[0], 0.05) * max(band[1], 0.05)
        )  # a band opened to 0 (a lenient config) still has a centre
        length_off = abs(math.log(max(q.length_ratio, 1e-3) / centre))
    doubts = [r for r in q.reasons if not r.startswith("repetition")]
    out = {
        "lang_prob": NO_DOUBT["lang_prob"] if q.lang_prob is None else float(q.lang_prob),
        "script_share": NO_DOUBT["script_share"] if q.script_share is None else float(q.script_share),
        "length_off": length_off,
        "doubts": float(len(doubts)),
        "repetition": float("repetition" in q.reasons),
    }
    if bt_chrf is not None:
        out["bt_chrf"] = bt_chrf / 100.0
    if embed_sim is not None:
        out["embed_sim"] = float(embed_sim)
    return out


@dataclass
class Logistic:
    """P(usable) = sigmoid(intercept + Σ weight × (feature − mean) / scale)."""

    features: list[str]
    weights: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]

    def probability(self, x: dict[str, float]) -> float:
        z = self.intercept + sum(
            w * (x[f] - m) / s for f, w, m, s in zip(self.features, self.weights, self.mean, self.scale)
        )
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def _shown(x: float) -> str:
    """A score or threshold for a reason: two decimals, or two significant digits below 0.01 (a threshold of 0.0017
    is not "0.00")."""
    return f"{x:.2f}" if x >= 0.01 or x == 0 else f"{x:.2g}"


@dataclass
class Judged:
    """A model reading a meaning signal, with its own thresholds: below ``reject_below`` rejects, below
    ``accept_from`` sends to review."""

    model: Logistic
    reject_below: float
    accept_from: float


@dataclass
class Calibration:
    lang: str
    translator_version: str | None  # None: the shipped defaults, for any translator
    floor: float  # sentence chrF from which a translation counted as usable
    with_meaning: Logistic
    form_only: Logistic
    reject_below: float  # with the meaning signal: below rejects
    accept_from: float  # with the meaning signal: below sends to review
    known_good: bool  # the translator is good enough that a sample of back-translations will do
    figures: dict = field(default_factory=dict)  # what the calibration measured (lines, shares, τ, precision…)
    source: str = "calibrated"  # calibrated | defaults
    form_accept_from: float | None = None  # form signals only: below sends to review (None: ``accept_from``)
    embed_model: str | None = None  # the embedding model the two models below were fitted with
    with_embedding: Judged | None = None  # back-translation and cosine
    embedding_only: Judged | None = None  # cosine, no back-translation
    # the shipped defaults' form-only thresholds per language (each language's references score differently: short
    # Chinese lines low, Hindi high); a language not named here uses ``form_accept_from``
    form_accept_by_lang: dict[str, float] = field(default_factory=dict)
    # and the cosine-only model's accept threshold per language (references of one language embed closer to their
    # sources than another's); a language not named here uses ``embedding_only.accept_from``
    embedding_accept_by_lang: dict[str, float] = field(default_factory=dict)
    # and per language the cosine of the source with the translation's last clause below which a turn goes to review
    # (a clause added: :func:`pipeline.quality.embedding.last_clause`); fitted with ``embed_model``, like the models
    tail_accept_by_lang: dict[str, float] = field(default_factory=dict)
    # and the back-translation models' [reject_below, accept_from] per language ("back_translation", "with_embedding")
    # where its references need lower ones than the rest: a judge reads some languages worse (Urdu, Bengali)
    bt_thresholds_by_lang: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # and per language the cosine from which the cosine does not reject on its own (a score below ``reject_below``
    # then sends to review): a fresh calibration reading the shipped defaults' ``embed_model`` rejects no cosine the
    # defaults accept — one language's few hundred references place a 0.2 % tail worse than the defaults' nine
    # languages' (pipeline/quality/shipped.py, defaults_cosine_floor)
    cosine_reject_floor_by_lang: dict[str, float] = field(default_factory=dict)

    def judged(self, bt: bool, embed: bool) -> tuple[Logistic, float | None, float, str]:
        """(model, reject_below — None: it never rejects —, accept_from, reason suffix) for a turn with a
        back-translation (``bt``) and/or a cosine (``embed``, used only where this calibration has its models)."""
        own = self.bt_thresholds_by_lang.get(self.lang, {})
        if embed and bt and self.with_embedding:
            j = self.with_embedding
            reject, accept = own.get("with_embedding", (j.reject_below, j.accept_from))
            return j.model, reject, accept, ""
        if embed and not bt and self.embedding_only:
            j = self.embedding_only
            accept = self.embedding_accept_by_lang.get(self.lang, j.accept_from)
            return j.model, min(j.reject_below, accept), accept, " (embedding)"
        if bt:
            reject, accept = own.get("back_translation", (self.reject_below, self.accept_from))
            return self.with_meaning, reject, accept, ""
        return self.form_only, None, self.form_accept, " (form only)"

    def score(
        self, q: TurnQE, bt_chrf: float | None, band: list[float] | None, embed_sim: float | None = None
    ) -> float:
        return self.scored(turn_features(q, bt_chrf, band, embed_sim))

    def scored(self, features: dict[str, float]) -> float:
        """The score of a turn's :func:`turn_features`, by the model for the meaning signals they hold."""
        return round(self.judged("bt_chrf" in features, "embed_sim" in features)[0].probability(features), 4)

    def meaning_rejects(self, features: dict[str, float]) -> bool:
        """Whether the meaning signals in ``features`` (the back-translation's chrF, the cosine) reject on their own:
        the model's score with the form's signals at the value of a turn that raises no doubt is below its
        ``reject_below``. A turn whose score is below it only with its form's doubts (an unsure language ID, say) is
        sent to review instead: a form signal may send to review, only a meaning signal rejects. (The fresh Hindi
        calibration of the recorded answers weighs the language ID's probability heavily; with it, four of 300
        professional references back-translated by the 1.5B judge were rejected, none for their meaning alone.)"""
        model, reject, _, _ = self.judged("bt_chrf" in features, "embed_sim" in features)
        floor = self.cosine_reject_floor_by_lang.get(self.lang)
        if floor is not None and features.get("embed_sim", -1.0) >= floor:
            return False
        return reject is not None and model.probability({**features, **NO_DOUBT}) < reject

    def read_meaning(self, bt: bool, embed: bool) -> bool:
        """Whether a turn with a back-translation (``bt``) and/or a cosine (``embed``) is scored by a model that reads
        a meaning signal; such a turn is also sent to review where its form signals alone would send it (a form
        signal may send to review: an omission keeps most of a line's meaning, not its length)."""
        return bt or (embed and self.embedding_only is not None)

    @property
    def form_accept(self) -> float:
        if self.lang in self.form_accept_by_lang:
            return self.form_accept_by_lang[self.lang]
        return self.accept_from if self.form_accept_from is None else self.form_accept_from

    def verdict(
        self,
        q: TurnQE,
        bt_chrf: float | None,
        band: list[float] | None,
        embed_sim: float | None = None,
        tail_sim: float | None = None,
        judge_remarked: bool = False,
    ) -> tuple[float, str, str | None]:
        """(score, status, the score's reason or None) of a checked turn. A turn scored with a meaning signal (the
        back-translation, the cosine) is also sent to review where the form signals alone would send it
        (:meth:`read_meaning`): a form signal may send to review, only a meaning signal rejects. A score below
        ``reject_below`` that the meaning signals alone would not reject (with the form raising no doubt,
        :meth:`meaning_rejects`) sends to review.
        ``tail_sim``: the cosine of the source with the translation's last clause; below this calibration's
        threshold for the language an accepted turn goes to review (a clause added?). ``judge_remarked``: the turn was
        sent back to English and the judge answered with a remark about the task (``bt_chrf`` is then None): the
        meaning check it was sent for did not happen, so an accepted turn goes to review — unless the cosine scored
        it (the embedding judge checked its meaning; the 1.5B judge refuses 4 % of professional Urdu lines)."""
        features = turn_features(q, bt_chrf, band, embed_sim)
        score = self.scored(features)
        status, reason = self.status(q.status, score, bt_chrf is not None, embed_sim is not None)
        if status == "rejected" and q.status != "rejected" and not self.meaning_rejects(features):
            status, reason = "needs_review", f"{reason}, from the form's doubts: its meaning alone would not reject it"
        if status == "accepted" and self.read_meaning(bt_chrf is not None, embed_sim is not None):
            form = self.form_only.probability(turn_features(q, None, band))
            if form < self.form_accept:
                status = "needs_review"
                reason = f"quality score {_shown(form)} below {_shown(self.form_accept)} (form only)"
        tail_floor = self.tail_accept_by_lang.get(self.lang)
        if status == "accepted" and tail_sim is not None and tail_floor is not None and tail_sim < tail_floor:
            status = "needs_review"
            reason = f"last clause far from the source: cosine {tail_sim:.2f} below {tail_floor:.2f} (added?)"
        if status == "accepted" and judge_remarked and not self.read_meaning(False, embed_sim is not None):
            status, reason = "needs_review", JUDGE_REMARK_REASON
        return score, status, reason

    def status(self, form_status: str, score: float, meaning: bool, embed: bool = False) -> tuple[str, str | None]:
        """(status, the score's reason or None) for a turn the form checks gave ``form_status``; ``meaning``: the
        score read the back-translation, ``embed``: the cosine (neither: the form signals alone, which only ever
        send to review)."""
        if form_status == "rejected":
            return "rejected", None
        _, reject, accept, how = self.judged(meaning, embed)
        if reject is not None and score < reject:
            return "rejected", f"quality score {_shown(score)} below {_shown(reject)}{how}"
        if score < accept:
            return "needs_review", f"quality score {_shown(score)} below {_shown(accept)}{how}"
        return form_status, None

    def with_thresholds(self, reject_below: float | None, accept_from: float | None) -> Calibration:
        """The same calibration with the QE config's thresholds where it sets them (``accept_from`` for every
        model, ``reject_below`` for those reading a meaning signal)."""
        from dataclasses import replace

        def judged(j: Judged | None) -> Judged | None:
            if j is None:
                return None
            reject = j.reject_below if reject_below is None else reject_below
            accept = j.accept_from if accept_from is None else accept_from
            return replace(j, reject_below=min(reject, accept), accept_from=accept)

        reject = self.reject_below if reject_below is None else reject_below
        accept = self.accept_from if accept_from is None else accept_from
        form_accept = self.form_accept_from if accept_from is None else accept_from
        return replace(
            self,
            reject_below=min(reject, accept),
            accept_from=accept,
            form_accept_from=form_accept,
            form_accept_by_lang=self.form_accept_by_lang if accept_from is None else {},
            embedding_accept_by_lang=self.embedding_accept_by_lang if accept_from is None else {},
            bt_thresholds_by_lang=self.bt_thresholds_by_lang if accept_from is None and reject_below is None else {},
            with_embedding=judged(self.with_embedding),
            embedding_only=judged(self.embedding_only),
        )

    def for_embedder(self, embed_model: str | None) -> Calibration:
        """This calibration for a run whose embedding judge serves ``embed_model`` (None: no judge): its embedding
        models only where they were fitted with that model."""
        from dataclasses import replace

        if self.embed_model and embed_model == self.embed_model:
            return self
        return replace(
            self,
            embed_model=None,
            with_embedding=None,
            embedding_only=None,
            tail_accept_by_lang={},
            cosine_reject_floor_by_lang={},
        )

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        if data.get("format") != FORMAT:
            raise ValueError(f"calibration format {data.get('format')!r}, expected {FORMAT}")
        data = {k: v for k, v in data.items() if k != "format"}
        judged = lambda j: None if j is None else Judged(**{**j, "model": Logistic(**j["model"])})  # noqa: E731
        return cls(
            **{
                **data,
                "with_meaning": Logistic(**data["with_meaning"]),
                "form_only": Logistic(**data["form_only"]),
                "with_embedding": judged(data.get("with_embedding")),
                "embedding_only": judged(data.get("embedding_only")),
            }
        )


def calibration_path(workspace: Path, lang: str, translator_version: str) -> Path:
    return Path(workspace) / "quality" / "calibration" / lang / f"{translator_version}.json"


def defaults(lang: str) -> Calibration:
    """The shipped calibration (any translator), for a language without one of its own."""
    data = json.loads(
        resources.files("pipeline.quality").joinpath("default_calibration.json").read_text(encoding="utf-8")
    )
    return Calibration.from_dict({**data, "lang": lang, "source": "defaults", "known_good": False})


def _read(workspace: Path, lang: str, translator_version: str) -> tuple[Calibration | None, str | None]:
    """(the workspace's calibration, None), or (None, why not: None when there is none yet, else what is wrong)."""
    path = calibration_path(workspace, lang, translator_version)
    if not path.exists():
        return None, None
    try:
        return Calibration.from_dict(json.loads(path.read_text(encoding="utf-8"))), None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return (
            None,
            f"its calibration {path} cannot be read ({type(exc).__name__}: {exc}); calibrate again or delete it",
        )


def load(workspace: Path, lang: str, translator_version: str, say=None) -> Calibration:
    """The calibration of (``lang``, ``translator_version``) in the workspace, else the defaults — and then ``say``
    (default: stderr) is told why, in one line: none yet, or a file that cannot be read (naming it). A run over
    several languages says it once with :func:`notices` and passes a silent ``say``."""
    calibration, why = _read(workspace, lang, translator_version)
    if calibration is None:
        (say or (lambda line: print(line, file=sys.stderr, flush=True)))(
            f"quality score for {lang}: the shipped default calibration, "
            f"{why or f'no calibration for its translator {translator_version} (polyglot qe calibrate makes one)'}"
        )
    return calibration or defaults(lang)


def notices(workspace: Path, versions: dict[str, str], embed_model: str | None = None) -> list[str]:
    """What a run over ``versions`` (language → translator version) says about its calibrations: one line naming
    every language without one (the shipped defaults score it), one line per calibration that cannot be read; with
    an embedding judge serving ``embed_model``, one line naming the languages whose calibration was not fitted with
    it (their cosines are recorded, not scored)."""
    missing, lines, unfitted = [], [], []
    for lang, version in versions.items():
        calibration, why = _read(workspace, lang, version)
        if why:
            lines.append(f"quality score for {lang}: the shipped default calibration, {why}")
        elif calibration is None:
            missing.append(lang)
        if embed_model and (calibration or defaults(lang)).embed_model != embed_model:
            unfitted.append(lang)
    if missing:
        lines.insert(
            0,
            f"quality score for {', '.join(missing)}: the shipped default calibration, no calibration for "
            f"{'its translator' if len(missing) == 1 else 'their translators'} (polyglot qe calibrate makes one)",
        )
    if unfitted:
        lines.append(
            f"embedding judge {embed_model}: the cosines of {', '.join(unfitted)} are recorded (turn_embed_sim) but not "
            f"scored: no calibration of {'it' if len(unfitted) == 1 else 'them'} was fitted with that model "
            f"(polyglot qe calibrate --embed-server …)"
        )
    return lines
