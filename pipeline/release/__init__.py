"""Release: translated shards in, immutable versioned releases out — and the loading API downstream teams use.

:mod:`.releases` writes ``WORKSPACE/releases/vN/`` (Parquet shards in the Hugging Face datasets layout, a
manifest with the sha256 of every file, a dataset card), verifies, diffs and exports releases to LLaVA JSON;
:mod:`.evaluation_sets` does the same for evaluation sets in the LLaVA-Bench layout.

Downstream code loads a release through this package::

    from pipeline.release import load, load_datasets
"""

from pipeline.release.releases import ReleaseError, load, load_datasets, verify

__all__ = ["ReleaseError", "load", "load_datasets", "verify"]
