"""Ingest: LLaVA files in, validated conversations cut into translation units out.

In: LLaVA JSON arrays, JSONL, concatenated JSON objects, gzip of any of them (:mod:`.readers`, streaming).
Each record is validated (:mod:`.validate`); each turn is cut into units — one per line of prose — with
``<image>``, code, URLs and number/box lists masked as placeholders (:mod:`.units`, round-trips exactly).

Out (:mod:`.tables`, under ``WORKSPACE/ingest/``): ``shards/NNNNN/{conversations,turns,units}.parquet``,
``unique_units.parquet`` (units deduplicated across every input: what the translate stage asks for),
``quarantine.parquet`` (every record that failed validation, with its reason), ``inputs.json`` and
``summary.json``. :mod:`.shards` reads the shard tables back and puts turns together again from units.
"""
