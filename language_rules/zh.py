"""Simplified Chinese conventions (W3C *Requirements for Chinese Text Layout*, clreq; GB/T 15834-2011).

- Full-width punctuation after Chinese text where it is certain: an ASCII , ; . ? ! between two Han
  characters, an ASCII ? or ! or . ending a Chinese sentence, ASCII parentheses around Chinese text that
  follow Chinese text. (An ASCII colon before a quote or a Latin word is left alone: professional text
  uses it.)
- Spaces between Chinese characters, or next to full-width punctuation, are flagged, not removed: the
  professional reference (NTREX) has such spaces in 4% of its lines, beyond what an automatic rule may
  touch, and whether a space separates a name or a headline takes a person.
- Full-width ASCII letters and digits (Ａ, １) become half-width (clreq §3.1: Western letters and digits are
  set half-width).
- Persona: Chinese first-person forms carry no gender (我); nothing to rewrite.
"""

from language_rules.base import FULLWIDTH_ALNUM, flag_patterns, rule, translate_chars

SOURCE = "W3C clreq; GB/T 15834-2011"
_ASCII_TO_FULL = {",": "，", ";": "；", ".": "。", "?": "？", "!": "！"}

RULES = [
    rule("zh.fullwidth_alnum", "[" + "".join(FULLWIDTH_ALNUM) + "]+", translate_chars(FULLWIDTH_ALNUM), SOURCE),
    rule("zh.punct_between_han", r"(?<=\p{Han})[,;.?!](?=\p{Han})", translate_chars(_ASCII_TO_FULL), SOURCE),
    rule("zh.sentence_end", r"(?<=\p{Han})[?!.](?=[ \t]*$)", translate_chars(_ASCII_TO_FULL), SOURCE),
    rule("zh.parentheses", r"(?<=\p{Han})\(([^()\n]*\p{Han}[^()\n]*)\)", "（\\1）", SOURCE),
]
GENDER = []
FLAGS = []
CHECKS = [
    flag_patterns(
        [
            (
                r"\p{Han}[ \t]+[\p{Han}，。？！；、]|[，。？！；、][ \t]+\p{Han}",
                "spacing: a space between Chinese characters",
            ),
            (r"\p{Han}[,;:?!][ \t]+\p{Han}", "punctuation: an ASCII mark inside Chinese text"),
        ]
    )
]
