"""English left in a translation: runs of the English source's words copied into the target. A Chinese line whose
second half stayed English was detected as English at 0.90 with a script share of 0.6 and accepted; text in the
source's language inside a translation is a hard failure, not a doubt."""

from __future__ import annotations

import regex

from pipeline.ingest.units import PROTECTED_RE

_LATIN_WORD = regex.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
# Titles and names are often kept in English, quoted or in brackets: "AI Superpowers: China, Silicon Valley and the
# New World Order", (Member of the Welsh Parliament). Left out before looking for copied English.
_QUOTED = regex.compile(
    r"“[^”]*”|«[^»]*»|„[^“”]*[“”]|\"[^\"]*\"|'[^']*'|‘[^’]*’|\([^)]*\)|（[^）]*）|「[^」]*」|『[^』]*』"
)
_ENGLISH_FUNCTION_WORDS = frozenset(
    "the an of to in and is was are were for with that this it as at by from be has have had will would not but or "
    "they their them its his her he she we you about".split()
)


def copied_english(source: str, target: str) -> int:
    """The longest run of words of the English ``source`` copied in order into ``target`` that reads as English
    left untranslated — four words or more with two of English's own function words written in lower case, or six
    with one — else 0. Names and titles kept in English (quoted or bracketed, or without such words) do not
    count."""
    words = [w.lower() for w in _LATIN_WORD.findall(PROTECTED_RE.sub(" ", source))]
    following = set(zip(words, words[1:]))
    found = run = function = 0
    previous = None
    for word in _LATIN_WORD.findall(_QUOTED.sub(" ", PROTECTED_RE.sub(" ", target))):
        if previous is not None and (previous, word.lower()) in following:
            run += 1
        else:
            run, function = 1, 0
        function += word in _ENGLISH_FUNCTION_WORDS
        if (run >= 4 and function >= 2) or (run >= 6 and function >= 1):
            found = max(found, run)
        previous = word.lower()
    return found
