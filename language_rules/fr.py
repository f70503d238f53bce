"""French conventions (Imprimerie nationale, *Lexique des règles typographiques*).

- A no-break space before : (U+00A0) and a narrow no-break space before ; ! ? (U+202F) where a plain space
  or none stands. Either no-break space already there is kept.
- A no-break space inside « » where there is no space at all (a plain space there is left: professional
  text has it).
- Register: formal (vous); tu/toi in an assistant turn is flagged.
- Persona: masculine agreement for adjectives about the assistant (je suis sûr); the feminine form after
  je suis is rewritten.
"""

from language_rules.base import GenderPair, flag_patterns, gender_rules, rule

SOURCE = "Imprimerie nationale, Lexique des règles typographiques"
_BEFORE = r"(?<=\p{Latin}[\p{M}]*[\)\]»%]?)"

RULES = [
    rule("fr.nbsp_before_colon", _BEFORE + r"[ \t]?:(?=[ \t]|$)", "\u00a0:", SOURCE),
    rule("fr.nnbsp_before_mark", _BEFORE + r"[ \t]?([;!?])", "\u202f\\1", SOURCE),
    rule("fr.nbsp_after_opening_guillemet", r"«(?=\p{Latin})", "«\u00a0", SOURCE),
    rule("fr.nbsp_before_closing_guillemet", r"(?<=\p{Latin}[\p{M}]*[.!?…]?)»", "\u00a0»", SOURCE),
]
_PAIRS = [
    GenderPair(f"je suis {m}", f"je suis {f}")
    for m, f in [
        ("sûr", "sûre"),
        ("ravi", "ravie"),
        ("désolé", "désolée"),
        ("content", "contente"),
        ("prêt", "prête"),
        ("certain", "certaine"),
        ("heureux", "heureuse"),
    ]
]
_SPEECH = r"(?<!\w)(?:dit|disait|a déclaré|déclare|affirme|a affirmé|a expliqué|explique|a ajouté|ajoute|raconte|a raconté|écrit)(?!\w)"
GENDER = gender_rules("fr", _PAIRS, "persona policy: masculine agreement", speech_words=_SPEECH)
FLAGS = [flag_patterns([(r"(?i)(?<!\w)(?:tu|toi)(?!\w)", "register: informal address (policy: vous)")])]
