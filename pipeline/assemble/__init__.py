"""Assemble: the translation memory and the ingest tables in, translated conversations out.

Every turn is put back together from its units (:mod:`pipeline.ingest.shards`), run through its language's
rules (:mod:`language_rules`), scored (:mod:`pipeline.quality`), and replaced by a person's text wherever a
reviewer decided it (:mod:`.humans`: humans win).

Out (:mod:`.translations`): ``WORKSPACE/translations/{lang}/shard-NNNNN.parquet``, one row per conversation in
the LLaVA schema plus status, provenance and QE columns; :func:`.translations.translations` reads them.
"""
