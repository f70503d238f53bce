"""The ten languages: names, scripts, direction, and how much longer than English their text runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    name: str
    script: str  # Unicode script name as `regex` knows it
    rtl: bool = False
    # characters of translation per character of English source (token budgets are derived from it)
    expansion: float = 1.3


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "Latin", expansion=1.0),
        Language("zh", "Simplified Chinese", "Han", expansion=0.5),
        Language("hi", "Hindi", "Devanagari", expansion=1.2),
        Language("es", "Spanish", "Latin", expansion=1.25),
        Language("fr", "French", "Latin", expansion=1.3),
        Language("ar", "Modern Standard Arabic", "Arabic", rtl=True, expansion=1.1),
        Language("bn", "Bengali", "Bengali", expansion=1.2),
        Language("ru", "Russian", "Cyrillic", expansion=1.2),
        Language("ur", "Urdu", "Arabic", rtl=True, expansion=1.2),
        Language("ja", "Japanese", "Han", expansion=0.6),
    )
}
SOURCE_LANGUAGE = "en"
TARGET_LANGUAGES = tuple(code for code in LANGUAGES if code != SOURCE_LANGUAGE)


def parse_languages(text: str) -> list[str]:
    """``all`` or a comma list like ``zh,hi`` → language codes in canonical order; a clear error otherwise."""
    text = text.strip()
    if text == "all":
        return list(LANGUAGES)
    codes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in LANGUAGES]
    if unknown or not codes:
        raise ValueError(
            f"unknown language code(s) {', '.join(unknown) or '(none given)'}; use 'all' or a comma list of {', '.join(LANGUAGES)}"
        )
    return [c for c in LANGUAGES if c in codes]
