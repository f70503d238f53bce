"""English left in a translation: runs of the English source's words copied into the target. A Chinese line whose
second half stayed English was detected as English at 0.90 with a script share of 0.6 and accepted; text in the
source's language inside a translation is a hard failure, not a doubt."""

from __future__ import annotations

import regex

from pipeline.ingest.units import PROTECTED_RE

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
    awful'); a quoted or bracketed title or name (“Save the Children”, (Member of the Welsh Parliament)) is left out."""
    inner = next(g for g in m.groups() if g is not None)
    words = _WORD.findall(inner)
    return f" {inner} " if len(words) >= 3 and _is_text(words) else " | "


def copied_english(source: str, target: str) -> int:
    """The longest run of words of the English ``source`` copied in order into ``target`` that reads as English
    left untranslated — three words or more, one of them one of English's own function words written in lower
    case, most of the others in lower case — else 0. Names and titles kept in English (capitalised, or quoted or
    bracketed) do not count. On every ntrex-dev reference of the nine languages it finds none."""
    words = [w.lower() for w in _WORD.findall(PROTECTED_RE.sub(" ", source))]
    following = set(zip(words, words[1:]))
    found, run = 0, []
    for word in _WORD.findall(_QUOTED.sub(_unquote, PROTECTED_RE.sub(" ", target))):
        if word == "|":
            run = []
            continue
        run = run + [word] if run and (run[-1].lower(), word.lower()) in following else [word]
        if len(run) >= 3 and any(w in _ENGLISH_FUNCTION_WORDS for w in run) and _is_text(run):
            found = max(found, len(run))
    return found
