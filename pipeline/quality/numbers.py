"""The numbers of a translation against its English source: LLaVA answers are full of counts and quantities, and a
translation that turns "3 people" into 4 is wrong however fluent.

Numbers are read across scripts (ASCII, Devanagari, Bengali, Arabic-Indic, Extended Arabic-Indic, full-width
digits: any Unicode decimal digit), with the decimal mark of each language (a comma in es, fr and ru; the Arabic
decimal separator, or a point, in ar and ur; a point elsewhere) and its grouping marks ignored (1,000 · 1.000 ·
1 000 · 1,00,000). English number words for small counts (one … twenty, a dozen, twice, ordinals from second on,
"an hour": an article before a unit) and a number followed by
thousand/million/billion may be written as digits; Chinese and Japanese numerals (三, 十二, 五百, 3万) and the
small-count words of the other target languages may stand for a source number; a number before an imperial unit
may be written converted into the metric unit the translation uses, rounded no more finely than its digits show
(249.5 kg as 250 or 249, not 251; 20 as 18–22), and kept exactly where the unit is kept. What a translation may
not do is change a number: drop one the source writes with digits (or as a count or month word: "six", "June",
"May 30"; each number of the translation stands for one of the source's: "4 to 4 inches" for "1 to 4" has a 4
too many) and write one the source does not have. That sends the turn to review, with the numbers in the reason. (Measured on ntrex-dev's professional references, news written
freely: a number dropped alone or added alone is common there and is left to the other checks.)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

import regex

# A number: digits of one script with grouping or decimal marks between them (a mark is only part of a number
# when digits follow it).
_NUMBER = regex.compile(r"\d+(?:[.,\u066b\u066c\u060c'\u2019]\d+|[\u00a0\u202f ]\d{3}(?!\d))*", regex.V1)
_DECIMAL_MARK = {"es": ",", "fr": ",", "ru": ",", "ar": "\u066b", "ur": "\u066b"}
_WORDS_EN = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "dozen": 12, "once": 1, "twice": 2, "single": 1, "pair": 2, "couple": 2,
    "both": 2, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "half": 0.5, "a": 1, "an": 1, "double": 2, "triple": 3,
}  # fmt: skip
_SCALES_EN = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "hundred": 1e2, "k": 1e3, "m": 1e6,
              "bn": 1e9}  # fmt: skip
_IMPERIAL = regex.compile(
    r"(?:\s*(?:to|-|–|and|or)\s*\d[\d.,]*)?[\s-]*(?P<unit>inch|inches|in\.|feet|foot|ft|yards?|miles?|mph|pounds?|lbs?|"
    r"ounces?|oz|gallons?|degrees?|°F|F\b|acres?)",
    regex.I,
)
# What an imperial number becomes in the metric unit a translation writes (cm, m, km, km/h, kg, g, l, ha); degrees may
# be Fahrenheit or already Celsius.
_TO_METRIC = {"in": (2.54,), "fe": (0.3048, 30.48), "fo": (0.3048, 30.48), "ft": (0.3048, 30.48), "ya": (0.9144,),
              "mi": (1.609,), "mp": (1.609,), "po": (0.4536,), "lb": (0.4536,), "ou": (28.35,), "oz": (28.35,),
              "ga": (3.785,), "ac": (0.4047,)}  # fmt: skip


def _metric(value: float, unit: str) -> set[float]:
    """The values ``value`` ``unit`` may have once converted (the unit's first two letters name it)."""
    if unit.lower().startswith(("de", "°f")) or unit.lower() == "f":
        return {value, round((value - 32) * 5 / 9, 1), round(value * 5 / 9, 1)}  # a temperature, or a difference
    return {value * factor for factor in _TO_METRIC.get(unit[:2].lower(), ())}


def _step(value: float) -> float:
    """How finely ``value`` is rounded as written: 1 for 27, 10 for 270, 0.1 for 2.7, 5 for 135, 25 for 250 (a
    round number is read as rounded to at most a tenth of itself, or 1: 20 as 18–22)."""
    digits, exponent = Decimal(repr(value)).normalize().as_tuple()[1:]
    return min((5 if digits[-1] == 5 else 1) * 10.0**exponent, max(0.1 * abs(value), 1.0))


def _close_any(converted: set[float], values: set[float]) -> bool:
    """Whether one of the ``converted`` values is among ``values`` as a translator rounds it: less than one step of
    the rounding written away (250 kg for 249.5, 135 km/h for 136.8, 8 cm for 7.6, 2,5 cm for 2.54; not 251 kg)."""
    return any(abs(v - c) < _step(v) for c in converted for v in values)


# Metric units in a translation (the unit a converted imperial number comes with).
_METRIC = regex.compile(
    r"(?<!\p{L})(?:km|cm|mm|kg|m|°C|kilo|centím|centim|mètre|metro|grado|degré|километр|сантиметр|метр|килограмм|"
    r"градус|км|см|кг|كيلو|سنتيمتر|متر|درجة|किलो|सेंटीमीटर|मीटर|डिग्री|কিলো|সেন্টিমিটার|মিটার|ডিগ্রি|کلو|سینٹی|میٹر|ڈگری)"
    r"|公里|厘米|公斤|千克|摄氏|キロ|センチ|メートル|摂氏",
    regex.V1 | regex.I,
)
_MONTHS_EN = ("january february march april may june july august september october november december").split()
# Words that name one count and nothing else, and months: a translation that has none of their values but writes a
# number the source lacks changed it ("Six people" → 9人, "in June" → 7月). "May" is also a name (a month next to a
# day: May 30), "a" and "first" are more than numbers ("at first", "a man"): they stay optional only. Ordinals from
# "second" on are counted: a translation writes them with digits (2度目, 第2) or as words, rarely as another number.
_COUNT_WORDS_EN = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen "
    "nineteen twenty thirty forty fifty dozen decade pair twice second third fourth fifth sixth seventh eighth ninth "
    "tenth".split()
)
# "a"/"an" before a unit of time or distance counts one ("an hour later": 1時間後, 一个小时; "about a mile": 1マイル),
# not in "half an hour", "a quarter of an hour", "an hour and a half", "60 miles an hour", "twice a day"
_ARTICLE_COUNT = regex.compile(
    r"\s+(?:minute|hour|day|week|fortnight|month|year|decade|century|mile|kilomet(?:re|er)|metre|meter|foot|inch|yard"
    r"|pound|kilo(?:gram)?)\b(?!\s+(?:and|or)\s+an?\s+half)",
    regex.I,
)
_ARTICLE_NOT_COUNT = regex.compile(
    r"\b(?:half|quarter|of|per|every|times|once|twice|miles|mph|kilometres|kilometers|km|dollars|pounds|euros)\s+$",
    regex.I,
)
_IDENTIFIER = regex.compile(r"(?<![\d.,])0\d+(?:[ -]\d+)+|(?<![\d.,])0\d{3,}")  # 0800 555 111: a phone number
_DATE = regex.compile(r"May\s+\d{1,2}(?!\d)|(?<=\d{1,2}\s+)May")
_OTHER_WORDS_EN = {"decade": 10, "decades": 10, "century": 100, "centuries": 100, "percent": 100, "week": 7}
# Small-count words of the targets (what a person writes for "two dogs"), read only on the translation's side.
_WORDS = {
    "es": "cero uno una un dos tres cuatro cinco seis siete ocho nueve diez once doce veinte",
    "fr": "zéro un une deux trois quatre cinq six sept huit neuf dix onze douze vingt",
    "ru": "ноль один одна одно два две три четыре пять шесть семь восемь девять десять двенадцать двадцать",
    "hi": "शून्य एक दो तीन चार पांच पाँच छह छः सात आठ नौ दस बारह बीस",
    "bn": "শূন্য এক দুই তিন চার পাঁচ ছয় সাত আট নয় দশ বারো কুড়ি বিশ",
    "ur": "صفر ایک دو تین چار پانچ چھ سات آٹھ نو دس بارہ بیس",
    "ar": "صفر واحد واحدة اثنان اثنين اثنتان ثلاثة ثلاث أربعة أربع خمسة خمس ستة ست سبعة سبع ثمانية ثماني تسعة تسع عشرة عشر",
}
_WORD_VALUES = {
    "es": [0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20],
    "fr": [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20],
    "ru": [0, 1, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20],
    "hi": [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9, 10, 12, 20],
    "bn": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20, 20],
    "ur": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20],
    "ar": [0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10],
}
# Scale words after a number in a translation: 2800 millones, 300 ألف, 5 লাখ (a value the source may write whole).
_SCALE_WORDS = regex.compile(
    r"[\s-]*(mil|millones|millón|millon|millions?|milliards?|млн|млрд|тыс|тысяч\w*|миллион\w*|миллиард\w*|ألف|آلاف|مليون|ملايين"
    r"|مليار|हज़ार|हजार|लाख|करोड़|হাজার|লাখ|কোটি|ہزار|لاکھ|کروڑ)(?!\w)",
    regex.V1,
)
_SCALE_VALUES = {"mil": 1e3, "тыс": 1e3, "ألف": 1e3, "آلاف": 1e3, "हज़ार": 1e3, "हजार": 1e3, "হাজার": 1e3,
                 "ہزار": 1e3, "लाख": 1e5, "লাখ": 1e5, "لاکھ": 1e5, "करोड़": 1e7, "কোটি": 1e7, "کروڑ": 1e7,
                 "млн": 1e6, "млрд": 1e9, "مليون": 1e6, "ملايين": 1e6, "مليار": 1e9}  # fmt: skip
_CJK_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9}  # fmt: skip
_CJK_UNITS = {"十": 10, "百": 100, "千": 1000}
_CJK_BIG = {"千": 1e3, "万": 1e4, "萬": 1e4, "亿": 1e8, "億": 1e8}
_CJK_NUMERAL = regex.compile(r"[〇零一二两兩三四五六七八九十百千]+")
# 500万, 3千, 1億2,500万 (125 million)
_CJK_SCALED = regex.compile(r"(\d+(?:,\d{3})*(?:\.\d+)?)\s*([千万萬亿億])(?:(\d+(?:,\d{3})*)\s*([千万萬]))?")


def _digits(token: str) -> str:
    return "".join(str(unicodedata.decimal(c)) if c.isdigit() else c for c in token)


def _value(token: str, decimal: str) -> float | None:
    """The value of a number token, ``decimal`` its language's decimal mark; the other marks group digits."""
    token = _digits(token)
    marks = [c for c in token if not c.isdigit()]
    if not marks:
        return float(token)
    last = token.rfind(marks[-1])
    # a decimal part: the language's decimal mark once, last, and not followed by exactly three digits where the
    # same mark also groups (1.000 in Spanish is a thousand; 1.5 is one and a half)
    is_decimal = marks[-1] == decimal and marks.count(decimal) == 1 and not (decimal == "," and len(token) - last == 4)
    is_decimal = is_decimal or (marks[-1] == "\u066b")
    whole = regex.sub(r"\D", "", token[:last] if is_decimal else token)
    try:
        return float(f"{whole}.{token[last + 1 :]}") if is_decimal else float(whole)
    except ValueError:
        return None


def _cjk_value(text: str) -> float | None:
    total, digit = 0, None
    for c in text:
        if c in _CJK_DIGITS:
            digit = _CJK_DIGITS[c]
        else:
            total += (1 if digit is None else digit) * _CJK_UNITS[c]
            digit = None
    return float(total + (digit or 0))


@cache
def _word_re(lang: str) -> regex.Pattern | None:
    words = _WORDS.get(lang)
    return regex.compile(rf"(?<!\w)(?:{'|'.join(words.split())})(?!\w)", regex.V1 | regex.I) if words else None


@dataclass
class SourceNumbers:
    # written with digits: the translation must keep each, as one of its values (5 million: 5 or 5,000,000)
    written: list[set[float]] = field(default_factory=list)
    optional: set[float] = field(default_factory=set)  # what its words and notations may stand for as well
    counted: list[float] = field(default_factory=list)  # words that name a count or a month and nothing else
    converted: list[tuple[float, set[float]]] = field(default_factory=list)  # imperial numbers, metric values


def source_numbers(source: str, converted: bool = True) -> SourceNumbers:
    """The numbers of an English source; ``converted``: the translation writes metric units, so a number before an
    imperial unit may be written converted (10 inches: 25 centímetros)."""
    out = SourceNumbers()
    written, optional, counted = out.written, out.optional, out.counted
    for m in _NUMBER.finditer(source):
        value = _value(m.group(0), ".")
        if value is None:
            continue
        decade = regex.match(r"'?s\b", source[m.end() :])
        if decade and value < 100:  # the 80s: los años 80, 80 年代, or from 80 to 89 °F: 26 to 32 °C
            celsius = range(int((value - 32) * 5 / 9), round((value + 9 - 32) * 5 / 9) + 1)
            written.append({float(v) for v in [*range(int(value), int(value) + 10), *celsius]})
            continue
        scale = regex.match(r"\s*(thousand|million|billion|trillion|hundred|bn|m|k)\b", source[m.end() :], regex.I)
        if converted and (unit := _IMPERIAL.match(source, m.end())):
            optional.add(value)
            out.converted.append((value, _metric(value, unit.group("unit"))))
        elif scale:  # "5 million" may become 500万, 5 millones or 5,000,000
            written.append({value, value * _SCALES_EN[scale.group(1).lower()]})
        elif years := regex.match(r"(?<=(\d\d)\d\d[-–])\d\d(?!\d)", source, pos=m.start()):
            written.append({value, float(years.group(1) + m.group(0))})  # 1950-53: 1953
        else:
            written.append({value})
        clock = regex.match(r"\s*([ap])\.?m\b\.?", source[m.end() :], regex.I)
        if clock:  # 7.55am: 7:55, 7 h 55; 3 p.m.: 15:00
            hour, _, minutes = m.group(0).partition(".")
            hour = float(_digits(hour)) + (12 if clock.group(1).lower() == "p" and float(_digits(hour)) < 12 else 0)
            optional |= {hour, float(_digits(minutes) or 0), hour - 12 if hour > 12 else hour}
        if decade and value % 10 == 0:
            optional |= {value % 100, value // 100 + 1}  # the 1930s: los años 30, 20 世纪 30 年代
    for m in regex.finditer(r"[A-Za-z]+", source):
        word = m.group(0).lower()
        value = _WORDS_EN.get(word, _OTHER_WORDS_EN.get(word))
        month = word in _MONTHS_EN and (word != "may" or bool(_DATE.match(source, m.start())))
        if word in _MONTHS_EN:
            value = _MONTHS_EN.index(word) + 1  # June: 6月
        if value is None:
            continue
        if word == "half" and (article := regex.match(r"\s+an?\b", source, pos=m.end())):
            if unit := _IMPERIAL.match(source, article.end()):  # half an inch: 1,3 cm, 0.5 インチ
                out.converted.append((0.5, _metric(0.5, unit.group("unit")) if converted else set()))
                continue
        article = word in ("a", "an") and bool(_ARTICLE_COUNT.match(source, m.end()))
        if article and _ARTICLE_NOT_COUNT.search(source, 0, m.start()):
            article = False
        if not (word in _COUNT_WORDS_EN or month or article):
            optional.add(float(value))  # "a", "first", may as a verb or a name: a number may stand for it
            continue
        # a count or a month (June: 6月; May 30, 30 May): one number of the translation stands for it
        if converted and (unit := _IMPERIAL.match(source, m.end())):  # a two-foot brim: 60 cm
            out.converted.append((float(value), _metric(float(value), unit.group("unit"))))
        else:
            counted.append(float(value))
    return out


def target_numbers(target: str, lang: str) -> tuple[list[set[float]], list[float]]:
    """(for each number the translation writes with digits, the values it may mean — its language's marks, or the
    English ones a translator kept, as in protected box lists; the values its number words and numerals stand
    for)."""
    decimal = _DECIMAL_MARK.get(lang, ".")
    written, optional = [], []
    scaled, inside = {}, set()
    for m in _CJK_SCALED.finditer(target):
        scaled[m.start(1)] = float(_digits(m.group(1)).replace(",", "")) * _CJK_BIG[m.group(2)]
        if m.group(3):  # the second part of 1億2,500万 belongs to the first
            scaled[m.start(1)] += float(_digits(m.group(3)).replace(",", "")) * _CJK_BIG[m.group(4)]
            inside.add(m.start(3))
    for m in _NUMBER.finditer(target):
        if m.start() in inside:
            continue
        values = {v for v in (_value(m.group(0), decimal), _value(m.group(0), ".")) if v is not None}
        if m.start() in scaled:
            values.add(scaled[m.start()])
        if word := _SCALE_WORDS.match(target, m.end()):
            name = word.group(1)
            scale = _SCALE_VALUES.get(name) or (
                1e3 if name.startswith("тысяч") else 1e9 if name.startswith(("milliard", "миллиард")) else 1e6
            )
            values |= {v * scale for v in list(values)}
        if values:
            written.append(values)
    if lang in ("zh", "ja"):
        for m in _CJK_NUMERAL.finditer(target):
            optional.append(_cjk_value(m.group(0)))
    if (words := _word_re(lang)) is not None:
        values = dict(zip(_WORDS[lang].split(), _WORD_VALUES[lang]))
        for m in words.finditer(target):
            optional.append(float(values.get(m.group(0).lower(), values.get(m.group(0), -1))))
    return written, optional


def _without_identifiers(source: str, target: str) -> tuple[str, str]:
    """``source`` and ``target`` without the phone and account numbers (0800 555 111) the target keeps digit group
    for digit group, in any order (a right-to-left translation may write 111 555 0800)."""
    for m in reversed(list(_IDENTIFIER.finditer(source))):
        groups = regex.findall(r"\d+", m.group(0))
        kept = target
        for group in groups:
            found = next((g for g in regex.finditer(r"\d+", kept, regex.V1) if _digits(g.group(0)) == group), None)
            if found is None:
                break
            kept = kept[: found.start()] + " " + kept[found.end() :]
        else:
            source, target = source[: m.start()] + " " + source[m.end() :], kept
    return source, target


def number_mismatch(source: str, target: str, lang: str) -> str | None:
    """Why the numbers of ``target`` (in ``lang``) do not match those of the English ``source``, else None."""
    source, target = _without_identifiers(source, target)
    src = source_numbers(source, converted=bool(_METRIC.search(target)))
    tgt_written, tgt_optional = target_numbers(target, lang)
    if not tgt_written:
        return None
    # each number of the translation stands for one of the source's: "At 2pm two vans" needs a 2 twice
    tokens = [(values, True) for values in tgt_written] + [({v}, False) for v in tgt_optional]

    def found(match: Callable[[set[float]], bool]) -> bool:
        i = next((i for i, (values, _) in enumerate(tokens) if match(values)), None)
        if i is not None:
            del tokens[i]
        return i is not None

    missing = [
        v
        for v, metric in src.converted
        if not found(lambda values, v=v, metric=metric: v in values or _close_any(metric, values))
    ]
    missing += [min(vs) for vs in src.written if not found(lambda values, vs=vs: bool(values & vs))]
    missing += [v for v in src.counted if not found(lambda values, v=v: v in values)]
    # what the translation writes with digits and no number of the source stood for ("4 to 4 inches": the second 4)
    extra = [min(values) for values, digits in tokens if digits and not values & src.optional]
    # a number changed: one of the source's is gone and one it does not have is there. A number dropped alone is
    # left to the other checks (a free translation says "100 percent" as "entirely"), and so is one added alone
    # (a month, a decade written as digits).
    if not missing or not extra:
        return None

    def show(values: list[float]) -> str:
        return ", ".join(f"{v:g}" for v in dict.fromkeys(values))

    parts = ([f"{show(missing)} of the source missing"] if missing else []) + (
        [f"{show(extra)} not in the source"] if extra else []
    )
    return "numbers differ: " + "; ".join(parts)
