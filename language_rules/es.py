"""Spanish conventions (RAE, *Ortografía de la lengua española* 2010, §3.4.3).

- Questions and exclamations open with ¿ and ¡: a sentence that ends in ? (or !) and has no opening mark
  gets one at its start (after an opening quote, if any).
- Register: formal (usted); tú in an assistant turn is flagged.
- Persona: masculine agreement for adjectives about the assistant (estoy seguro); the feminine form after
  estoy is rewritten.
"""

from language_rules.base import GenderPair, flag_patterns, gender_rules, rule

SOURCE = "RAE Ortografía 2010 §3.4.3"


def _open(mark: str, close: str):
    def repl(m):
        body = m.group(0)
        lead = len(body) - len(body.lstrip("\"“«'‘"))
        return body[:lead] + mark + body[lead:]

    name = f"es.opening_{'question' if close == '?' else 'exclamation'}"
    return rule(name, rf"(?<=^|[.!?:;]\s+)[\"“«'‘]*\p{{Latin}}[^.!?¿¡:;\n]*\{close}", repl, SOURCE)


RULES = [_open("¿", "?"), _open("¡", "!")]
_PAIRS = [
    GenderPair(f"estoy {m}", f"estoy {f}")
    for m, f in [
        ("seguro", "segura"),
        ("encantado", "encantada"),
        ("contento", "contenta"),
        ("preparado", "preparada"),
        ("listo", "lista"),
        ("convencido", "convencida"),
    ]
]
_SPEECH = r"(?<!\w)(?:dijo|dice|decía|afirmó|afirma|declaró|explicó|aseguró|comentó|añadió|escribió)(?!\w)"
GENDER = gender_rules("es", _PAIRS, "persona policy: masculine agreement", speech_words=_SPEECH)
FLAGS = [flag_patterns([(r"(?i)(?<!\w)(?:tú|contigo)(?!\w)", "register: informal address (policy: usted)")])]
