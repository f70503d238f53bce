"""NTREX-128 dev references (professional translations of English news), read where they lie, and the corpus
scores a translation gets against them (chrF, BLEU with the tokenizer each script needs)."""

from __future__ import annotations

import os
from pathlib import Path

NTREX_FILES = {
    "en": "eng-US",
    "zh": "zho-CN",
    "hi": "hin",
    "es": "spa",
    "fr": "fra",
    "ar": "arb",
    "bn": "ben",
    "ru": "rus",
    "ur": "urd",
    "ja": "jpn",
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


def bleu_tokenizer(lang: str) -> str:
    """sacrebleu's tokenizer for ``lang``: Chinese words, Japanese characters, 13a otherwise."""
    return {"zh": "zh", "ja": "char"}.get(lang, "13a")


def corpus_scores(lang: str, hypotheses: list[str], references: list[str]) -> tuple[float, float]:
    """(chrF, BLEU) of ``hypotheses`` against one reference each, rounded to 2 places."""
    from sacrebleu.metrics import BLEU, CHRF

    return (
        round(CHRF().corpus_score(hypotheses, [references]).score, 2),
        round(
            BLEU(tokenize=bleu_tokenizer(lang), effective_order=True).corpus_score(hypotheses, [references]).score, 2
        ),
    )
