"""Bengali conventions (Bangla Academy standard spelling).

- Sentences end with the dari । (``|`` or a Latin ``I`` in its place is replaced); no space before ।.
- The nukta stands right after its consonant, once (ড়, ঢ়, য় precomposed or as letter + nukta are
  canonically equivalent and both kept); ZWJ/ZWNJ only next to a hasanta (virama), as in র‍্য.
- Digits: one system per turn; a turn that mixes Bengali and Western digits gets Western ones.
- Register: formal, the user is আপনি; তুমি/তুই in an assistant turn is flagged.
- Persona: Bengali verbs carry no gender; nothing to rewrite.
"""

from language_rules.base import flag_patterns
from language_rules.indic import indic_rules

RULES = indic_rules("bn", "Bengali", "\u09cd", "\u09bc", "\u09be-\u09cc\u09d7", "bengali")
GENDER = []
FLAGS = [flag_patterns([(r"(?<!\w)(?:তুমি|তুই|তোমার|তোর)(?!\w)", "register: informal address (policy: আপনি)")])]
