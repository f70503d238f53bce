"""Probe: the real path run on professional reference translations, to measure what the pipeline cannot measure on
LLaVA text (it has no reference).

In: a folder of line-aligned references (the NTREX layout of ``../shared/data/ntrex-dev``) and a translator.
:mod:`.lines` turns lines into one-turn conversations and sends them through ingest, translation (answer checks,
loop stops), assembly (language rules, QE signals) and back-translation, then scores each against its reference;
the references themselves go through QE as translations. :mod:`.qualify` measures the translators of a
translators file that way and chooses one per language.

Out: ``WORKSPACE/probes/NAME/`` (a probe's own ingest and shards; translations go to the workspace's memory, so a
probe run again sends nothing), calibrations (``WORKSPACE/quality/calibration/``, fitted by
:mod:`pipeline.quality.calibrate`) and qualifications (``WORKSPACE/translator/qualification.jsonl``).
"""
