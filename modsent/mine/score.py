"""Ratio-margin mining over k nearest neighbours in both directions (Artetxe & Schwenk, 2019; LASER).

For source x and target y, with ``fwd(x)`` the mean cosine of x to its k nearest targets and
``bwd(y)`` the mean cosine of y to its k nearest sources, the score of a candidate pair is
:func:`~modsent.search.ratio_margin` ``cos(x, y) / ((fwd(x) + bwd(y)) / 2)``. The
candidates are each source's k nearest targets (forward) and each target's k nearest sources
(backward); cosines are recomputed exactly from the embeddings, so an approximate index only
decides which candidates are looked at. Modes, as in LASER's ``mine_bitexts.py``:

* ``forward``: every source with its best-scoring target;
* ``backward``: every target with its best-scoring source;
* ``intersection``: pairs that are both a forward and a backward best;
* ``max``: forward and backward bests together, best first, keeping a pair only when neither its
  source nor its target was taken by a better pair (a one-to-one matching).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from modsent.mine.config import MODES
from modsent.search import ratio_margin

__all__ = ["MinedPairs", "margin_candidates", "mine_pairs", "SearchFn"]

SearchFn = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class MinedPairs:
    """Pairs of row ids, sorted by score (best first, then source id, then target id)."""

    source: np.ndarray  # int64
    target: np.ndarray  # int64
    score: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.score)

    def take(self, rows: np.ndarray) -> "MinedPairs":
        return MinedPairs(self.source[rows], self.target[rows], self.score[rows])

    def select(self, threshold: float | None = None, top_n: int | None = None) -> "MinedPairs":
        """Pairs scoring at least ``threshold``, then the first ``top_n`` of them."""
        keep = np.ones(len(self), dtype=bool) if threshold is None else self.score >= threshold
        rows = np.flatnonzero(keep)[:top_n]
        return self.take(rows)


def _sorted(source: np.ndarray, target: np.ndarray, score: np.ndarray) -> MinedPairs:
    order = np.lexsort((target, source, -score.astype(np.float64)))
    return MinedPairs(source[order].astype(np.int64), target[order].astype(np.int64), score[order].astype(np.float32))


def _exact_cosines(queries: np.ndarray, database: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """cos(query i, database ids[i, j]) for every candidate, from the (normalised) rows themselves."""
    out = np.empty(ids.shape, dtype=np.float32)
    for start in range(0, len(ids), 65_536):
        block = ids[start:start + 65_536]
        out[start:start + len(block)] = np.einsum("nd,nkd->nk", queries[start:start + len(block)].astype(np.float32),
                                                  database[block].astype(np.float32))
    return out


def margin_candidates(source: np.ndarray, target: np.ndarray, k: int, search: SearchFn
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward candidates with their margins.

    Returns (forward ids (n_src, k), forward margins, backward ids (n_tgt, k), backward margins).
    """
    k_fwd, k_bwd = min(k, len(target)), min(k, len(source))
    fwd_ids = search(source, target, k_fwd)[1]
    bwd_ids = search(target, source, k_bwd)[1]
    fwd_cos = _exact_cosines(source, target, fwd_ids)
    bwd_cos = _exact_cosines(target, source, bwd_ids)
    fwd_mean = fwd_cos.mean(axis=1)
    bwd_mean = bwd_cos.mean(axis=1)
    fwd_margin = ratio_margin(fwd_cos, fwd_mean[:, None], bwd_mean[fwd_ids])
    bwd_margin = ratio_margin(bwd_cos, bwd_mean[:, None], fwd_mean[bwd_ids])
    return fwd_ids, fwd_margin, bwd_ids, bwd_margin


def _one_to_one(pairs: MinedPairs) -> MinedPairs:
    """Walk pairs best first; keep one only when neither side was taken by a better one."""
    taken_src: set[int] = set()
    taken_tgt: set[int] = set()
    keep = []
    for row, (src, tgt) in enumerate(zip(pairs.source.tolist(), pairs.target.tolist())):
        if src not in taken_src and tgt not in taken_tgt:
            taken_src.add(src)
            taken_tgt.add(tgt)
            keep.append(row)
    return pairs.take(np.array(keep, dtype=np.int64))


def mine_pairs(source: np.ndarray, target: np.ndarray, k: int, mode: str, search: SearchFn) -> MinedPairs:
    """Candidate translation pairs between L2-normalised ``source`` and ``target`` rows (see the module docstring).

    ``search(queries, database, k) -> (similarities, ids)`` finds the candidates (exact or indexed).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    fwd_ids, fwd_margin, bwd_ids, bwd_margin = margin_candidates(source, target, k, search)
    src_rows = np.arange(len(source))
    tgt_rows = np.arange(len(target))
    fwd_col = fwd_margin.argmax(axis=1)
    bwd_col = bwd_margin.argmax(axis=1)
    fwd_best, fwd_score = fwd_ids[src_rows, fwd_col], fwd_margin[src_rows, fwd_col]
    bwd_best, bwd_score = bwd_ids[tgt_rows, bwd_col], bwd_margin[tgt_rows, bwd_col]
    if mode == "forward":
        return _sorted(src_rows, fwd_best, fwd_score)
    if mode == "backward":
        return _sorted(bwd_best, tgt_rows, bwd_score)
    if mode == "intersection":
        mutual = bwd_best[fwd_best] == src_rows
        return _sorted(src_rows[mutual], fwd_best[mutual], fwd_score[mutual])
    both = _sorted(np.concatenate([src_rows, bwd_best]), np.concatenate([fwd_best, tgt_rows]),
                   np.concatenate([fwd_score, bwd_score]))
    return _one_to_one(both)
