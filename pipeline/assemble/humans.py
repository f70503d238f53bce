"""Humans win: the text a person decided for a turn replaces the machine text in an assembled shard.

The corrections themselves (which one is in force for a turn) come from the review stage
(:func:`pipeline.review.corrections.overrides`); this module only applies them to shard rows.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.quality.signals import worst

HUMAN_REVIEWED = "reviewed"  # a person accepted the machine text as it was
HUMAN_CORRECTED = "corrected"  # a person changed it
HUMAN_WRITTEN = "written"  # a person translated the turn from scratch (the machine text was rejected)
Override = tuple[str, str]  # (text, HUMAN_REVIEWED | HUMAN_CORRECTED | HUMAN_WRITTEN)


def apply_to_table(table: pa.Table, human: dict[tuple[str, int], Override]) -> tuple[pa.Table, int]:
    """Put human text in place of machine text in a translated shard; returns (table, turns changed).

    A human turn is ``ok`` with no flags, QE ``accepted`` with no reasons and a quality score of 1, and ``turn_human`` says who decided;
    ``raw_values``/``fixes`` keep describing the machine text. Idempotent: applying twice changes nothing more.
    """
    rows = table.to_pylist()
    changed = 0
    for row in rows:
        turns = row["conversations"]
        kinds = row.get("turn_human") or [None] * len(turns)
        for i, turn in enumerate(turns):
            hit = human.get((row["conv_key"], i))
            if hit is None:
                continue
            text, kind = hit
            if turn["value"] != text or kinds[i] != kind:
                changed += 1
            turn["value"] = text
            kinds[i] = kind
            row["turn_status"][i] = "ok"
            row["turn_flags"][i] = []
            row["turn_qe_status"][i] = "accepted"
            row["turn_qe_reasons"][i] = []
            if row.get("turn_qe_score") is not None:
                row["turn_qe_score"][i] = 1.0  # a person's text is usable: they decided it
        row["turn_human"] = kinds
        row["status"] = "flagged" if "flagged" in row["turn_status"] else "ok"
        row["qe_status"] = worst(row["turn_qe_status"])
        if row.get("turn_qe_score"):
            row["qe_score"] = min(row["turn_qe_score"])
        row["review_status"] = next(
            (kind for kind in (HUMAN_WRITTEN, HUMAN_CORRECTED, HUMAN_REVIEWED) if kind in kinds), "unreviewed"
        )
        row["human_corrected"] = HUMAN_CORRECTED in kinds or HUMAN_WRITTEN in kinds
    return pa.Table.from_pylist(rows, schema=table.schema), changed
