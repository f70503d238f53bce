"""The labeling page of a language's review project (a Label Studio labeling config).

What a reviewer sees, top to bottom: the image the conversation is about (zoomable; a note instead when there
is none or it is missing), the earlier turns of the conversation (English, as context), the English
turn to check, what to do with it (check and correct the machine translation pre-filled in an editable box — a
prediction carrying the translator version —, or, for a turn the checks rejected, write the translation from
scratch in an empty box), the quality score with the translation back into English, what quality estimation noticed and what
the automatic fixers changed, error categories and a 1–5
rating. Arabic and Urdu boxes are right-to-left. Scripts that need a font most computers lack (Nastaliq,
Naskh, Devanagari, Bengali, Chinese, Japanese) get one served by Label Studio itself (see ``annotation.assets``).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from annotation.assets import served_family
from pipeline.languages import LANGUAGES

CATEGORIES = (
    "ok",
    "grammar",
    "gender",
    "punctuation",
    "terminology",
    "mistranslation",
    "omission",
    "addition",
    "wrong language",
)
# Names of the labeling controls; the pull reads annotations by these.
TRANSLATION, CATEGORIES_CONTROL, RATING, SOURCE = "translation", "categories", "rating", "english"

FONTS = {
    "ur": "'Noto Nastaliq Urdu', 'Jameel Noori Nastaleeq', 'Alvi Nastaleeq', 'Urdu Typesetting', 'Noto Naskh Arabic', serif",
    "ar": "'Noto Naskh Arabic', 'Amiri', 'Scheherazade New', 'Arabic Typesetting', serif",
    "hi": "'Noto Sans Devanagari', 'Mangal', sans-serif",
    "bn": "'Noto Sans Bengali', 'Vrinda', sans-serif",
    "zh": "'Noto Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif",
    "ja": "'Noto Sans JP', 'Hiragino Sans', 'Yu Gothic', sans-serif",
}
LINE_HEIGHT = {"ur": 2.4, "ar": 1.9}


def project_title(prefix: str, lang: str) -> str:
    return f"{prefix} · {LANGUAGES[lang].name} ({lang})"


def label_config(lang: str, font_faces: str = "") -> str:
    """The labeling config of ``lang``'s project; ``font_faces``: @font-face rules of the served font
    (:func:`annotation.assets.font_css`), put first in the font list so the page never depends on what fonts
    the reviewer's computer has."""
    language = LANGUAGES[lang]
    direction = "rtl" if language.rtl else "ltr"
    font = FONTS.get(lang, "inherit")
    if font_faces and served_family(lang):
        font = f"'{served_family(lang)}', {font}"
    css = (
        # !important: Label Studio's own stylesheet sets the font on every element of the page
        f".pg-target, .pg-target * {{ direction: {direction}; text-align: {'right' if language.rtl else 'left'}; "
        f"font-family: {font} !important; font-size: 18px !important; line-height: {LINE_HEIGHT.get(lang, 1.6)} !important; "
        "unicode-bidi: plaintext; }\n"
        "    .pg-context { color: #555; font-size: 13px; white-space: pre-wrap; max-height: 14em; overflow-y: auto; }\n"
        "    .pg-notes { color: #7a4b00; font-size: 13px; white-space: pre-wrap; }\n"
        "    .pg-quality { color: #234; font-size: 13px; white-space: pre-wrap; }\n"
        "    .pg-image-note { color: #555; font-size: 12px; }"
    )
    if font_faces:
        css = font_faces.strip().replace("\n", "\n    ") + "\n    " + css
    choices = "\n".join(f"      <Choice value={quoteattr(c)}/>" for c in CATEGORIES)
    return f"""<View>
  <Style>
    {css}
  </Style>
  <Header value="The image this conversation is about (scroll or use the buttons to zoom)" size="6"/>
  <Image name="image" value="$image" zoom="true" zoomControl="true" rotateControl="false" maxWidth="720px"/>
  <View className="pg-image-note">
    <Text name="image_note" value="$image_note"/>
  </View>
  <Header value="Earlier turns of the conversation (English)" size="6"/>
  <View className="pg-context">
    <Text name="context" value="$context" granularity="word"/>
  </View>
  <Header value="English turn ($role)" size="5"/>
  <Text name="{SOURCE}" value="$english"/>
  <Header value={quoteattr(f"{language.name} translation: if the machine's text is in the box, correct it where it needs it (click the pencil beside it and edit); if the box is empty, the machine's text was rejected: write the translation yourself. Then Submit.")} size="5"/>
  <View className="pg-target" style="direction: {direction}">
    <TextArea name="{TRANSLATION}" toName="{SOURCE}" editable="true" rows="6" maxSubmissions="1" required="true"
              requiredMessage="Write, keep or correct the translation before submitting"/>
  </View>
  <Header value="The machine's estimate, and its translation back into English (a help if you read the language less well than English)" size="6"/>
  <View className="pg-quality">
    <Text name="quality" value="$quality"/>
  </View>
  <Header value="What the machine checks noticed, and what the automatic fixers changed" size="6"/>
  <View className="pg-notes">
    <Text name="notes" value="$notes"/>
  </View>
  <Header value="Error categories (tick every one that applied to the machine text; 'ok' if none)" size="6"/>
  <Choices name="{CATEGORIES_CONTROL}" toName="{SOURCE}" choice="multiple" showInline="true">
{choices}
  </Choices>
  <Header value="Overall quality of the machine translation (1 = unusable, 5 = perfect)" size="6"/>
  <Rating name="{RATING}" toName="{SOURCE}" maxRating="5"/>
</View>
"""
