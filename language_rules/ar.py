"""Modern Standard Arabic conventions (Arabic typographic practice; Unicode Arabic block notes).

- Arabic comma ،, question mark ؟ and semicolon ؛ after Arabic text, with no space before them.
- Tatweel (kashida, ـ) used to stretch a word between two letters is removed; a tatweel next to a space,
  digit or Latin word (as in الـ 5G) is a real joiner and stays.
- Digits: Western digits, as the source numbers are; a turn that mixes Arabic-Indic and Western digits gets
  Western ones.
- Persona: masculine first-person adjectives (أنا متأكد); the feminine form right after أنا is rewritten.
  Addressing the user in the feminine (أنتِ) is flagged.
"""

from language_rules.base import GenderPair, flag_patterns, gender_rules, rule, unify_digits

SOURCE = "Arabic typographic practice; Unicode Arabic block"
_LETTER = r"[\p{Arabic}&&\p{L}]"

RULES = [
    rule(
        "ar.punct",
        rf"(?<={_LETTER}[\p{{M}}]*)[ \t]*([,?;])(?!\p{{N}})",
        lambda m: {",": "،", "?": "؟", ";": "؛"}[m.group(1)],
        SOURCE,
    ),
    rule("ar.no_space_before_punct", r"(?<=\S)[ \t]+(?=[،؟؛])", "", SOURCE),
    rule("ar.tatweel", rf"(?<={_LETTER})\u0640+(?={_LETTER})", "", SOURCE),
    unify_digits("ar.digits_consistent", "arabic_indic", "western", SOURCE),
]
_PAIRS = [
    GenderPair(f"أنا {m}", f"أنا {f}")
    for m, f in [("متأكد", "متأكدة"), ("سعيد", "سعيدة"), ("مستعد", "مستعدة"), ("قادر", "قادرة"), ("آسف", "آسفة")]
]
_SPEECH = r"(?<!\w)(?:قال|قالت|يقول|تقول|أضاف|أضافت|صرح|صرحت|أوضح|أوضحت|كتب|كتبت)(?!\w)"
GENDER = gender_rules("ar", _PAIRS, "persona policy: masculine first person", speech_words=_SPEECH)
FLAGS = [flag_patterns([(r"(?<!\w)أنتِ(?!\w)", "gender: user addressed in the feminine (policy: masculine singular)")])]
