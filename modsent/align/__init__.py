"""Cross-lingual alignment (step 4): a parallel adapter per language, trained against the frozen English pivot.

* :mod:`modsent.align.config` and :mod:`modsent.align.stage` — ``modsent align``: :class:`AlignConfig`,
  :func:`run_align` (``stage.run``).
* :mod:`modsent.align.pivot_cache` — the pivot's embeddings of English sentences, computed once
  and read by every language's run (:class:`PivotCache`).

The adapter module itself and the routed multi-language encoder live in ``modsent.models``
(:mod:`modsent.models.adapter`, :mod:`modsent.models.modular`), shared with evaluation.
"""

from __future__ import annotations

from modsent.align.pivot_cache import PivotCache, PivotCacheError, PivotIdentity, sentence_keys
from modsent.align.config import AlignConfig, AlignDataConfig, AlignDataError
from modsent.align.stage import build_align_job
from modsent.align.stage import run as run_align

__all__ = [
    "AlignConfig", "AlignDataConfig", "AlignDataError", "PivotCache", "PivotCacheError", "PivotIdentity",
    "build_align_job", "run_align", "sentence_keys",
]
