"""Hindi conventions (Devanagari; Central Hindi Directorate standard orthography).

- Sentences end with the danda । — a ``|``, a Latin ``I`` or a full stop ``.`` used in its place is replaced,
  and no space stands before ।. Abbreviations keep their dots (डॉ., एस.: one or two letters that are not a
  common short word such as है, or a dotted chain), and so do numbers.
- The nukta stands right after its consonant, once (a nukta after a vowel sign is moved back); the
  precomposed and the letter + nukta forms of क़ are canonically equivalent and both kept. ZWJ/ZWNJ only
  next to a virama.
- Digits: one system per turn; a turn that mixes Devanagari and Western digits gets Western ones (the
  numbers the source gave).
- Register: formal, the user is आप; तुम/तू in an assistant turn is flagged.
- Persona: the assistant speaks in masculine first-person forms (सकता हूँ, रहा हूँ); a feminine form next to
  हूँ is rewritten (certain); other feminine first-person hints (मैं … थी) are flagged, never guessed.
"""

from language_rules.base import GenderPair, flag_patterns, gender_rules
from language_rules.indic import indic_rules

# Short words that end sentences (a ``.`` after them is a full stop, not an abbreviation's dot).
_SHORT = {
    "है",
    "हैं",
    "था",
    "थे",
    "थी",
    "हो",
    "हूँ",
    "हूं",
    "गया",
    "गई",
    "गए",
    "ही",
    "भी",
    "नहीं",
    "रहा",
    "रही",
    "रहे",
    "दें",
    "करें",
}
RULES = indic_rules("hi", "Devanagari", "\u094d", "\u093c", "\u093e-\u094c", "devanagari", "\u0903", _SHORT)
_PAIRS = [
    GenderPair(f"{m} {aux}", f"{f} {aux}")
    for m, f in [
        ("सकता", "सकती"),
        ("रहा", "रही"),
        ("चुका", "चुकी"),
        ("गया", "गई"),
        ("करता", "करती"),
        ("देता", "देती"),
        ("पाता", "पाती"),
        ("चाहता", "चाहती"),
    ]
    for aux in ("हूँ", "हूं")
] + [GenderPair(m, f) for m, f in [("सकूँगा", "सकूँगी"), ("करूँगा", "करूँगी"), ("दूँगा", "दूँगी"), ("बताऊँगा", "बताऊँगी")]]
_SPEECH = r"(?<!\w)(?:कहा|कहती|कहते|कहता|कहना|बताया|बताती|बोली|बोला|बोले|लिखा)(?!\w)"
GENDER = gender_rules("hi", _PAIRS, "persona policy: masculine first person", speech_words=_SPEECH)
FLAGS = [
    flag_patterns(
        [
            (
                r"मैं[^।?\n]*(?<!\w)(?:थी|गई|रही|सकती)(?!\w)",
                "gender: feminine first-person form, uncertain (policy: masculine)",
            ),
            (r"(?<!\w)(?:तुम|तू|तुम्हें|तुम्हारा)(?!\w)", "register: informal address (policy: आप)"),
        ]
    )
]
