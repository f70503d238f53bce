"""Urdu conventions (National Language Authority (Muqtadira) typographic practice; Unicode Arabic block notes).

- Urdu punctuation after Urdu text: full stop ۔ (a ``.`` ending a line), comma ،, question mark ؟,
  semicolon ؛; no space before them.
- Urdu letters, not their Arabic look-alikes: ی (not ي), ک (not ك), ہ (not ه).
- Digits: Extended Arabic-Indic (۰–۹) and Arabic-Indic (٠–٩) are never mixed: the latter become the former.
- Register: formal, the user is آپ; تم/تو in an assistant turn is flagged.
- Persona: masculine first-person forms (سکتا ہوں); a feminine form next to ہوں is rewritten (certain), other
  feminine hints (میں … تھی) are flagged.
"""

from language_rules.base import GenderPair, flag_patterns, gender_rules, rule, translate_chars, unify_digits

SOURCE = "NLA (Muqtadira) Urdu typography; Unicode Arabic block"
_LETTER = r"[\p{Arabic}&&\p{L}]"

RULES = [
    rule("ur.letters", "[يكه]", translate_chars({"ي": "ی", "ك": "ک", "ه": "ہ"}), SOURCE),
    rule("ur.full_stop", rf"(?<={_LETTER}[\p{{M}}]*)[ \t]*\.(?=[ \t]*$|[ \t]+{_LETTER})", "۔", SOURCE),
    rule(
        "ur.punct",
        rf"(?<={_LETTER}[\p{{M}}]*)[ \t]*([,?;])(?!\p{{N}})",
        lambda m: {",": "،", "?": "؟", ";": "؛"}[m.group(1)],
        SOURCE,
    ),
    rule("ur.no_space_before_punct", r"(?<=\S)[ \t]+(?=[۔،؟؛])", "", SOURCE),
    unify_digits("ur.digits_consistent", "arabic_indic", "extended_arabic_indic", SOURCE),
]
_PAIRS = [
    GenderPair(f"{m} {aux}", f"{f} {aux}")
    for m, f in [
        ("سکتا", "سکتی"),
        ("رہا", "رہی"),
        ("چکا", "چکی"),
        ("گیا", "گئی"),
        ("کرتا", "کرتی"),
        ("دیتا", "دیتی"),
        ("چاہتا", "چاہتی"),
    ]
    for aux in ("ہوں",)
] + [
    GenderPair(m, f)
    for m, f in [("سکوں گا", "سکوں گی"), ("کروں گا", "کروں گی"), ("دوں گا", "دوں گی"), ("بتاؤں گا", "بتاؤں گی")]
]
_SPEECH = r"(?<!\w)(?:کہا|کہتی|کہتے|کہتا|کہنا|بتایا|بتاتی|بولی|بولا|بولے|لکھا)(?!\w)"
GENDER = gender_rules("ur", _PAIRS, "persona policy: masculine first person", speech_words=_SPEECH)
FLAGS = [
    flag_patterns(
        [
            (
                r"میں[^۔؟\n]*(?<!\w)(?:تھی|گئی|رہی|سکتی)(?!\w)",
                "gender: feminine first-person form, uncertain (policy: masculine)",
            ),
            (r"(?<!\w)(?:تم|تمہیں|تمہارا)(?!\w)", "register: informal address (policy: آپ)"),
        ]
    )
]
