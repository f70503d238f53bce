"""NTREX-128 dev references (professional translations of English news), read where they lie."""

from __future__ import annotations

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
