"""Review: who sees what, and what people decided (Label Studio itself is :mod:`annotation`'s business).

In: the translated shards (:mod:`pipeline.assemble`). :mod:`.routing` builds the review queue per language
(``WORKSPACE/review/queue.parquet``); :mod:`.report` writes the per-language QE report (``WORKSPACE/reports/``).

Out (:mod:`.corrections`): the corrections table ``WORKSPACE/review/corrections/`` (append-only, every
annotation version the pull brought back), the correction in force per turn, and ``review/reviewed.parquet``.
Later stages read it: assembly (humans win), routing (never queue a reviewed conversation again), training.
"""
