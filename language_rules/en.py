"""English: a pass-through that only makes white space and quotes consistent.

- Runs of spaces inside a line become one space; spaces and tabs at the end of a line go.
- Quotes: where a text mixes straight and curly double quotes, all become the kind the text uses most.
- No persona rules (English first-person forms carry no gender).
"""

from language_rules.base import Change, rule

SOURCE = "project convention"

_CURLY = {"“": '"', "”": '"'}


def _consistent_quotes(text: str, changes: list[Change]) -> str:
    straight = text.count('"')
    curly = text.count("“") + text.count("”")
    if not straight or not curly:
        return text
    if straight >= curly:
        return rule("en.quotes_consistent", "[“”]", lambda m: _CURLY[m.group(0)], SOURCE).apply(text, changes)
    state = {"open": True}

    def to_curly(m):
        mark = "“" if state["open"] else "”"
        state["open"] = not state["open"]
        return mark

    return rule("en.quotes_consistent", '"', to_curly, SOURCE).apply(text, changes)


RULES = [
    rule("en.collapse_spaces", r"(?<=\S) {2,}(?=\S)", " ", SOURCE),
    rule("en.trailing_space", r"[ \t]+$", "", SOURCE),
    _consistent_quotes,
]
GENDER = []
FLAGS = []
