"""NTREX-128 dev references (professional translations of English news), read where they lie."""

from __future__ import annotations

import os
from pathlib import Path

NTREX_FILES = {
    "en": "eng-US", "zh": "zho-CN", "hi": "hin", "es": "spa", "fr": "fra",
    "ar": "arb", "bn": "ben", "ru": "rus", "ur": "urd", "ja": "jpn",
}


def load_pairs(ntrex_dir: Path, lang: str) -> list[tuple[str, str]]:
    """(English source line, reference line in ``lang``), aligned."""
    src = (Path(ntrex_dir) / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    ref = (Path(ntrex_dir) / f"newstest2019-ref.{NTREX_FILES[lang]}.txt").read_text(encoding="utf-8").splitlines()
    if len(src) != len(ref):
        raise ValueError(f"{ntrex_dir}: {len(src)} source lines but {len(ref)} {lang} lines")
    return list(zip(src, ref))


def shared_data() -> Path:
    """The folder of real data the tests and benchmarks read in place: ``POLYGLOT_SHARED_DATA``, else
    ``../shared/data`` beside the project."""
    return Path(os.environ.get("POLYGLOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
