"""Quality guards on machine translations, counted per language.

Checks (each sentence can trip several):

* ``empty`` — a non-blank source gave a blank translation;
* ``copy`` — the translation is the source unchanged (NLLB does this for languages it handles badly);
* ``repetition`` — runaway decoding: a chunk of 2–30 characters repeated ``max_repeats`` times in a row;
* ``length_ratio`` — the translation/source length ratio is more than ``length_ratio_factor`` times
  away from the language's median ratio (scripts differ in characters per word, hence the median).

>>> report = check_translations("deu_Latn", ["The cat sleeps on the mat."], ["Die Katze schläft."])
>>> report.counts["empty"], report.counts["copy"]
(0, 0)
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

__all__ = ["CHECKS", "QualityReport", "check_translations"]

CHECKS = ("empty", "copy", "repetition", "length_ratio")


@dataclass
class QualityReport:
    language: str
    checked: int = 0
    median_length_ratio: float = 0.0
    counts: Counter = field(default_factory=Counter)
    flagged: list[dict] = field(default_factory=list)  # review rows, at most max_review of them


def _repetition_pattern(max_repeats: int) -> re.Pattern:
    return re.compile(r"(.{2,30}?)\1{%d,}" % (max_repeats - 1), re.DOTALL)


def check_translations(language: str, sources: Sequence[str], translations: Sequence[str], *, max_repeats: int = 4,
                       length_ratio_factor: float = 3.0, min_source_chars: int = 10, max_review: int = 0) -> QualityReport:
    """Run every check on aligned ``sources``/``translations`` of one language."""
    report = QualityReport(language)
    repeated = _repetition_pattern(max_repeats)
    judged = [(s.strip(), t.strip()) for s, t in zip(sources, translations) if s.strip()]
    report.checked = len(judged)
    ratios = [len(t) / len(s) for s, t in judged if t and len(s) >= min_source_chars]
    report.median_length_ratio = statistics.median(ratios) if ratios else 0.0
    for source, translation in judged:
        issues = []
        if not translation:
            issues.append("empty")
        elif len(source) >= min_source_chars and translation == source:
            issues.append("copy")
        # A repetition already in the source ("ha ha ha ha") is not the model's doing.
        if translation and repeated.search(translation) and not repeated.search(source):
            issues.append("repetition")
        if translation and len(source) >= min_source_chars and report.median_length_ratio > 0:
            relative = (len(translation) / len(source)) / report.median_length_ratio
            if relative > length_ratio_factor or relative < 1 / length_ratio_factor:
                issues.append("length_ratio")
        for issue in issues:
            report.counts[issue] += 1
        if issues and len(report.flagged) < max_review:
            report.flagged.append({"language": language, "issues": issues, "source": source, "translation": translation})
    return report
