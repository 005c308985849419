"""An English STS set machine-translated into every target language, for ``evaluate.translated_sts``.

Target-language STS data is rare; the usual stand-in (stsb_multi_mt) is STS-B translated by an MT
engine. This builds that set with the run's own translate engine (Apertium or NLLB), so it exists for
every language the run translates into. Each file is MTEB-style JSONL, line-aligned with the English one,
so the evaluator recombines them into each language alone and English against each target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from modsent.corpus.sts_data import read_stsb
from modsent.io import atomic_write_text

if TYPE_CHECKING:
    from modsent.translate.config import TranslateConfig

__all__ = ["write_translated_sts"]


def write_translated_sts(source: Path, config: TranslateConfig, files: dict[str, Path]) -> None:
    """Write ``files[lang]`` (JSONL: sentence1, sentence2, score) for the English STS-benchmark file ``source``
    (``files`` holds the source language) and its translation into every other language of ``files`` by
    ``config``'s engine."""
    from modsent.translate.stage import translate_sentences

    english = read_stsb(source)
    count = len(english.scores)
    translated = translate_sentences(config, [*english.sentences1, *english.sentences2])
    texts = {config.source_language: (list(english.sentences1), list(english.sentences2))}
    texts.update({lang: (lines[:count], lines[count:]) for lang, lines in translated.items()})
    for lang, path in files.items():
        first, second = texts[lang]
        atomic_write_text(path, "".join(
            json.dumps({"sentence1": a, "sentence2": b, "score": float(score)}, ensure_ascii=False) + "\n"
            for a, b, score in zip(first, second, english.scores)))
