"""Bitext mining at corpus scale: embed two monolingual collections on Ray Data, search with FAISS,
score pairs by ratio margin (``modsent mine``: :mod:`modsent.mine.config`, :mod:`modsent.mine.stage`), and its
BUCC-style evaluation (``modsent mine-eval``: :mod:`modsent.mine.bucc`).

Public API: :func:`run_mine` and :class:`MineConfig` (the job), :func:`mine_pairs` (margin mining
on two embedding matrices), :class:`Searcher` / :func:`build_index` (exact or trained FAISS
search), :func:`read_side` (streamed, deduplicated inputs). Importing this package imports
neither Ray nor torch.
"""

from modsent.mine.config import AUTO, MODES, BuccConfig, EmbedConfig, IndexConfig, MineConfig, ScoreConfig
from modsent.mine.index import BuiltIndex, MineIndexError, Searcher, build_index, estimate_index_bytes
from modsent.mine.inputs import MineInputError, SentenceSet, read_side
from modsent.mine.stage import MineModelError, MineResult
from modsent.mine.stage import run as run_mine
from modsent.mine.score import MinedPairs, mine_pairs

__all__ = [
    "AUTO", "MODES", "BuccConfig", "EmbedConfig", "IndexConfig", "MineConfig", "ScoreConfig", "BuiltIndex", "MineIndexError",
    "Searcher", "build_index", "estimate_index_bytes", "MineInputError", "SentenceSet", "read_side",
    "MineModelError", "MineResult", "run_mine", "MinedPairs", "mine_pairs",
]
