"""Quality: what the machine thinks of a translated turn, before any person sees it.

In: an English turn and its translation. :mod:`.signals` measures form — language ID (fastText lid.176,
langdetect), script share, length ratio against a per-language band (``length_bands.json``), repetition,
refusal, placeholder integrity — and gives each turn a status with reasons. :mod:`.backtranslation` sends a
turn back to English through a server and scores it with chrF against the source (answers kept in the
translation memory as language ``bt-LL``); :mod:`.embedding` asks an embedding server for the cosine of the
turn and its source (kept as ``emb-LL``). :mod:`.score` turns the signals into a calibrated score and a status.

Out: per-turn QE values; this package writes no table of its own (:mod:`pipeline.assemble` puts the values into
the translated shards).
"""
