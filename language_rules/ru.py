"""Russian conventions (Мильчин, Чельцова, *Справочник издателя и автора*).

- Quotation marks «…» ("…" and “…” around Russian text; „…“ inside «» stays).
- A spaced em dash — between words (a spaced hyphen or en dash there becomes one).
- Register: formal (вы); ты in an assistant turn is flagged.
- Persona: masculine past tense and short adjectives right after я (я сделал, я уверен) are the policy; the
  feminine forms there are rewritten; a feminine past tense elsewhere in a sentence with я is flagged.
"""

from language_rules.base import GenderPair, flag_patterns, gender_rules, rule

SOURCE = "Мильчин, Чельцова: Справочник издателя и автора"

RULES = [
    rule("ru.quotes", r"[\"“]([^\"“”„\n]*\p{Cyrillic}[^\"“”„\n]*)[\"”]", "«\\1»", SOURCE),
    rule("ru.spaced_dash", r"(?<=[\p{Cyrillic}\p{P}]) [-–] (?=\p{Cyrillic})", " — ", SOURCE),
]
_PAIRS = [
    GenderPair(f"я {m}", f"я {f}")
    for m, f in [
        ("был", "была"),
        ("сделал", "сделала"),
        ("увидел", "увидела"),
        ("заметил", "заметила"),
        ("рад", "рада"),
        ("уверен", "уверена"),
        ("готов", "готова"),
        ("должен", "должна"),
        ("смог", "смогла"),
        ("описал", "описала"),
    ]
]
_SPEECH = r"(?<!\w)(?:сказал\w*|заявил\w*|говорит|говорил\w*|рассказал\w*|отметил\w*|пояснил\w*|написал\w*|добавил\w*|призналась|признался|по словам)(?!\w)"
GENDER = gender_rules("ru", _PAIRS, "persona policy: masculine first person", speech_words=_SPEECH)
FLAGS = [
    flag_patterns(
        [
            (
                r"(?i)(?<!\w)я(?!\w)[^.!?\n]*(?<!\w)\p{Cyrillic}+ла(?!\w)",
                "gender: feminine past tense near я, uncertain (policy: masculine)",
            ),
            (r"(?i)(?<!\w)(?:ты|тебя|тебе|твой)(?!\w)", "register: informal address (policy: вы)"),
        ]
    )
]
