"""Bengali conventions (Bangla Academy standard spelling).

- Sentences end with the dari । (``|``, a Latin ``I`` or a full stop ``.`` in its place is replaced); no space
  before ।. Abbreviations keep their dots (ড., রেভ.: one or two letters that are not a common short word such
  as আছে; ডাঃ. with the visarga; dotted chains such as ইউ.এন.), and so do numbers.
- The nukta stands right after its consonant, once (ড়, ঢ়, য় precomposed or as letter + nukta are
  canonically equivalent and both kept); ZWJ/ZWNJ only next to a hasanta (virama), as in র‍্য.
- Digits: one system per turn; a turn that mixes Bengali and Western digits gets Western ones.
- Register: formal, the user is আপনি; তুমি/তুই in an assistant turn is flagged.
- Persona: Bengali verbs carry no gender; nothing to rewrite.
"""

from language_rules.base import flag_patterns
from language_rules.indic import indic_rules

# Short words that end sentences (a ``.`` after them is a full stop, not an abbreviation's dot).
_SHORT = {"আছে", "হয়", "না", "নয়", "ছিল", "হবে", "যায়", "গেছে", "করে", "দেয়", "নেই", "পারে"}
RULES = indic_rules("bn", "Bengali", "\u09cd", "\u09bc", "\u09be-\u09cc\u09d7", "bengali", "\u0983", _SHORT)
GENDER = []
FLAGS = [flag_patterns([(r"(?<!\w)(?:তুমি|তুই|তোমার|তোর)(?!\w)", "register: informal address (policy: আপনি)")])]
