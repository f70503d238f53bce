"""English left in a translation: runs of the English source's words copied into the target. A Chinese line whose
second half stayed English was detected as English at 0.90 with a script share of 0.6 and accepted; text in the
source's language inside a translation is a hard failure, not a doubt."""

from __future__ import annotations

import regex

from pipeline.ingest.units import PROTECTED_RE
from pipeline.languages import LANGUAGES

_WORD = regex.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|\|")  # "|" marks a quotation left out: a run stops there
_QUOTED = regex.compile(
    r"“([^”]*)”|«([^»]*)»|„([^“”]*)[“”]|\"([^\"]*)\"|(?<![A-Za-z])'((?:[^']|'(?=[A-Za-z]))*)'(?![A-Za-z])|‘([^’]*)’"
    r"|\(([^)]*)\)|（([^）]*)）|「([^」]*)」|『([^』]*)』"
)  # a single quote inside a word ("it's") is an apostrophe
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the an of to in and is was are were for with that this it as at by from be has have had will would not but or "
    "they their them its his her he she we you about on after over into than who which there been being so".split()
)


def _is_text(words: list[str]) -> bool:
    """Whether words read as English text rather than a name or a title: most of the words that are not function
    words are written in lower case ("after the hearing"; not "Newport on the Levee", "Game of Thrones")."""
    content = [w for w in words if w not in _ENGLISH_FUNCTION_WORDS]
    lower = sum(w[0].islower() for w in content)
    return lower >= 1 and lower * 2 >= len(content)


def _unquote(m: regex.Match) -> str:
    """A quotation stays when it reads as English text of three words or more (speech left untranslated: 'it's so
    awful') or is all in lower case (of 'playing politics'); a quoted or bracketed title or name (“Save the
    Children”, (Member of the Welsh Parliament)) is left out."""
    inner = next(g for g in m.groups() if g is not None)
    words = _WORD.findall(inner)
    lower = bool(words) and all(w[0].islower() for w in words)
    return f" {inner} " if lower or (len(words) >= 3 and _is_text(words)) else " | "


def _left_in(run: list[str], latin: bool) -> bool:
    """Whether a run of copied words is English left untranslated rather than a name or a title kept."""
    function = sum(w in _ENGLISH_FUNCTION_WORDS for w in run)
    if len(run) >= 5 and function >= 2:  # "and between St. Louis and Des Moines": a sentence, names and all
        return True
    # in a Latin-script translation a lower-case word may be the target's own ("femme fatale"): one of English's
    # function words must be there too; in another script three lower-case English words are English
    return len(run) >= 3 and (function > 0 or not latin) and _is_text(run)


def copied_english(source: str, target: str, lang: str) -> int:
    """The longest run of words of the English ``source`` copied in order into ``target`` (in ``lang``) that reads
    as English left untranslated, else 0: three words or more, most of them in lower case — in a Latin-script
    translation one of them one of English's own function words — or five words or more with two function words
    ("and Omaha, Nebraska, and between St. Louis"). Names and titles kept in English (capitalised, or quoted or
    bracketed) do not count. Of the 9,016 ntrex-dev references of the nine languages it finds one (three words a
    Japanese translator left in English)."""
    latin = LANGUAGES[lang].script == "Latin"
    words = [w.lower() for w in _WORD.findall(PROTECTED_RE.sub(" ", source))]
    following = set(zip(words, words[1:]))
    found, run = 0, []
    for word in _WORD.findall(_QUOTED.sub(_unquote, PROTECTED_RE.sub(" ", target))):
        if word == "|":
            run = []
            continue
        run = run + [word] if run and (run[-1].lower(), word.lower()) in following else [word]
        if _left_in(run, latin):
            found = max(found, len(run))
    return found
