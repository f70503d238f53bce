"""Japanese conventions (W3C *Requirements for Japanese Text Layout*, JLReq).

- Japanese commas and full stops after Japanese text: 、 and 。, never ，．or ASCII , . (JLReq §3.1.4).
  Half-width ? ! : after Japanese text are left alone: modern professional text uses them.
- 「」 for quotations: a pair of "…" (or “…”) whose content is Japanese becomes 「…」; pairs are taken in
  order, so "Twp"と"Pwp" stays as it is.
- No space before or after 、 and 。 next to Japanese text; other spaces between Japanese characters are
  flagged (professional headlines use them as separators).
- Full-width ASCII letters and digits become half-width.
- Persona: the assistant says 私 (gender-neutral); nothing to rewrite.
"""

import regex

from language_rules.base import FULLWIDTH_ALNUM, HAN, KANA, Change, flag_patterns, rule, translate_chars

SOURCE = "W3C JLReq"
_JA = f"[{HAN}{KANA}]"
_MARKS = {",": "、", "，": "、", "．": "。", ".": "。"}
_PAIR = regex.compile(r"\"[^\"\n]*\"|“[^“”\n]*”", regex.V1)
_HAS_JA = regex.compile(_JA, regex.V1)
_HAS_LATIN = regex.compile(r"\p{Latin}", regex.V1)


def _quotes(text: str, changes: list[Change]) -> str:
    def repl(m):
        inner = m.group(0)[1:-1]
        return f"「{inner}」" if _HAS_JA.search(inner) and not _HAS_LATIN.search(inner) else m.group(0)

    return rule("ja.quotes", _PAIR.pattern, repl, SOURCE).apply(text, changes)


RULES = [
    rule("ja.fullwidth_alnum", "[" + "".join(FULLWIDTH_ALNUM) + "]+", translate_chars(FULLWIDTH_ALNUM), SOURCE),
    rule("ja.comma_stop", rf"(?<={_JA})(?:[,.](?![\p{{N}}\p{{Latin}}])|[，．])", translate_chars(_MARKS), SOURCE),
    _quotes,
    rule("ja.no_space_around_comma_stop", rf"(?<={_JA})[ \t]+(?=[、。])|(?<=[、。])[ \t]+(?={_JA})", "", SOURCE),
]
GENDER = []
FLAGS = []
CHECKS = [flag_patterns([(rf"(?<={_JA})[ \t]+(?={_JA})", "spacing: a space between Japanese characters")])]
