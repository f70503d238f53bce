from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.units import PLACEHOLDER_RE, image_position, mask, placeholder_problems, segment, unmask

PROTECTED_SAMPLES = [
    "<image>",
    "[0.37, 0.584, 0.504, 0.709]",
    "(12, 7.5)",
    "`x = 1`",
    "``a`b``",
    "https://example.org/a/b?c=1",
    "www.example.com/x",
    "someone@example.com",
    "⟦0⟧",
    "⟦12⟧",
    "⟦",
    "⟧",
]


def test_units_and_skeleton_of_a_structured_turn():
    turn = (
        "<image>\nHere are the boxes:\n\n1. A cat at [0.1, 0.2, 0.3, 0.4].\n- See https://x.org/a.\n"
        "```python\nprint('not translated')\n```\nB"
    )
    seg = segment(turn)
    assert [u.text for u in seg.units] == ["Here are the boxes:", "A cat at ⟦0⟧.", "See ⟦0⟧."]
    assert seg.units[1].spans == ("[0.1, 0.2, 0.3, 0.4]",)
    assert seg.units[2].spans == ("https://x.org/a",)
    assert seg.skeleton[0] == "<image>\n"
    assert seg.skeleton[2] == "\n- "
    assert seg.skeleton[-1] == "\n```python\nprint('not translated')\n```\nB"
    assert seg.reassemble() == turn


def test_translated_units_keep_structure():
    seg = segment("1. A dog at [0.1, 0.2, 0.3, 0.4]\n2. A cat")
    out = seg.reassemble(["Un perro en ⟦0⟧", "Un gato"])
    assert out == "1. Un perro en [0.1, 0.2, 0.3, 0.4]\n2. Un gato"
    with pytest.raises(ValueError):
        seg.reassemble(["only one"])


def test_same_sentence_with_other_boxes_is_one_unit():
    a = segment("The dog is at [0.1, 0.2, 0.3, 0.4].").units[0]
    b = segment("The dog is at [0.5, 0.6, 0.7, 0.8].").units[0]
    assert a.key == b.key and a.spans != b.spans


def test_lines_without_prose_stay_in_the_skeleton():
    for text in ["B", "42", "<image>", "[1, 2, 3]", "- ", "", "\n\n"]:
        seg = segment(text)
        assert seg.units == () and seg.skeleton == (text,)


def test_placeholder_problems():
    assert placeholder_problems("a ⟦0⟧ b ⟦1⟧", 2) == []
    assert placeholder_problems("a ⟦0⟧", 2) == ["placeholder 1 missing"]
    assert placeholder_problems("⟦0⟧ ⟦0⟧ ⟦1⟧", 2) == ["placeholder 0 duplicated"]
    assert placeholder_problems("⟦0⟧ ⟦5⟧", 1) == ["unknown placeholder 5"]
    assert placeholder_problems("⟦0⟧ ⟦", 1) == ["broken placeholder bracket"]


def test_image_position():
    assert image_position("<image>\nWhat?") == "before"
    assert image_position("What?\n<image>") == "after"
    assert image_position("What <image> is") == "inline"
    assert image_position("<image>") == "alone"
    assert image_position("What?") == "none"


def test_whitespace_runs_do_not_blow_up():
    # Linear-time line pattern: a long run of spaces after a list marker must not backtrack quadratically.
    text = "- " + " " * 30_000 + "some words"
    seg = segment(text)
    assert [u.text for u in seg.units] == ["some words"] and seg.reassemble() == text


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
pieces = st.one_of(
    texts, st.sampled_from(PROTECTED_SAMPLES), st.sampled_from(["\n", "\n\n", "1. ", "- ", "```\n", "  "])
)


@settings(max_examples=600, deadline=None)
@given(st.lists(pieces, max_size=25))
def test_any_text_round_trips(parts):
    text = "".join(parts)
    seg = segment(text)
    assert seg.reassemble() == text
    for unit in seg.units:
        # placeholders in masked text are exactly 0..n-1, each once: nothing collides with source text
        found = [int(m) for m in PLACEHOLDER_RE.findall(unit.text)]
        assert found == list(range(len(unit.spans)))
        assert unit.text.count("⟦") == len(unit.spans) == unit.text.count("⟧")
        assert unmask(unit.text, unit.spans) == unit.unmask()


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=25))
def test_masking_round_trips_and_protects_every_span(parts):
    text = "".join(parts)
    unit = mask(text)
    assert unmask(unit.text, unit.spans) == text
    for sample in ("<image>", "[0.37, 0.584, 0.504, 0.709]", "someone@example.com"):
        if sample in text and sample not in "".join(unit.spans):
            pytest.fail(f"{sample!r} left unprotected in {unit.text!r}")
