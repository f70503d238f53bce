"""Shared rules for Hindi (Devanagari) and Bengali (Bengali script): danda, nukta, joiners, digits.

Sources: Unicode Standard ch. 12 (South and Central Asia-I) and Unicode TN on Indic scripts for nukta
forms (the precomposed nukta letters are composition exclusions: NFC writes them as letter + nukta) and for
ZWJ/ZWNJ (they only mean something right after a virama); the Hindi and Bengali style guides of the Central
Hindi Directorate and Bangla Academy for the danda ।.
"""

from __future__ import annotations

import regex

from language_rules.base import rule, unify_digits

SOURCE = "Unicode Standard ch. 12; Unicode TN on Indic scripts; CHD / Bangla Academy style"


def full_stop_to_danda(script: str, visarga: str, short_words: set[str]):
    """A replacement for a ``.`` right after a word of ``script`` at a sentence end: the danda, unless the word
    is an abbreviation — one or two letters that are not a common short word (डॉ., एस., ড.; one letter at the
    end of a line), a word ending in the visarga (ডাঃ.), or the last part of a dotted chain (ইউ.এন.)."""
    word_re = regex.compile(rf"[\p{{{script}}}&&[\p{{L}}\p{{M}}]]+$", regex.V1)
    letter_re = regex.compile(r"\p{L}", regex.V1)

    def replace(m) -> str:
        before = m.string[: m.start()]
        word = word_re.search(before).group(0)
        if before[: -len(word)].endswith(".") or word.endswith(visarga):
            return "."
        line_end = not m.string[m.end() :].split("\n", 1)[0].strip()
        if len(letter_re.findall(word)) >= (2 if line_end else 3) or word in short_words:
            return "।"
        return "."

    return replace


def indic_rules(
    lang: str,
    script: str,
    virama: str,
    nukta: str,
    vowel_signs: str,
    native_digits: str,
    visarga: str,
    short_words: set[str],
) -> list:
    letter = rf"[\p{{{script}}}&&[\p{{L}}\p{{M}}]]"
    return [
        rule(f"{lang}.danda_pipe", rf"(?<={letter})[ \t]*\|(?=[ \t]|$)", "।", SOURCE),
        rule(
            f"{lang}.danda_full_stop",
            rf"(?<={letter})\.(?=[ \t]+\p{{{script}}}|[ \t\r]*$)",
            full_stop_to_danda(script, visarga, short_words),
            SOURCE,
        ),
        rule(f"{lang}.danda_latin_i", rf"(?<={letter})[ \t]*I(?=[ \t]+\p{{{script}}}|[ \t]*$)", "।", SOURCE),
        rule(f"{lang}.no_space_before_danda", rf"(?<={letter})[ \t]+(?=।)", "", SOURCE),
        # The nukta belongs right after its consonant, once. (Precomposed and letter + nukta forms are
        # canonically equivalent and both occur in professional text: both are left as they are.)
        rule(f"{lang}.nukta_after_vowel_sign", f"([{vowel_signs}])({nukta})", "\\2\\1", SOURCE),
        rule(f"{lang}.nukta_repeated", f"{nukta}{{2,}}", nukta, SOURCE),
        rule(f"{lang}.stray_joiner", rf"(?<=[\p{{{script}}}&&[^{virama}]])[\u200c\u200d]+(?!{virama})", "", SOURCE),
        unify_digits(f"{lang}.digits_consistent", native_digits, "western", SOURCE + "; digits: one system per turn"),
    ]
