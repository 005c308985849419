"""Contrastive losses on sentence embeddings; one loss per module.

* :class:`MultipleNegativesRankingLoss` (``mnrl``): in-batch negatives (every rank's batch when
  training on several ranks), optional hard negatives and symmetric term.
* :class:`CachedMultipleNegativesRankingLoss` (``cached_mnrl``): the same loss, computed
  GradCache-style so the batch can be far larger than what fits in memory at once.
* :func:`bank_loss` (``bank``): each query against its positive and a fixed bank of negatives
  (alignment's frozen-pivot embeddings of the whole training data).
"""

from modsent.train.losses.bank import bank_loss
from modsent.train.losses.cached_mnrl import CachedMultipleNegativesRankingLoss
from modsent.train.losses.gather import gather_rows
from modsent.train.losses.mnrl import MultipleNegativesRankingLoss, mnrl_loss

__all__ = ["bank_loss", "MultipleNegativesRankingLoss", "CachedMultipleNegativesRankingLoss", "mnrl_loss", "gather_rows"]
