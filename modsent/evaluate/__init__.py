"""Evaluation of sentence encoders: STS/STR, Belebele (accuracy and retrieval), FAISS bitext retrieval.

Everything works over the :class:`Encoder` protocol (``encode(texts, lang, aligned)``); the entry
point is :func:`run_evaluation` with an :class:`EvaluateConfig`.
"""

from __future__ import annotations

from modsent.evaluate.belebele import answer_accuracy, evaluate_belebele, qa_strings
from modsent.evaluate.cache import EmbeddingCache, EncoderOutputError
from modsent.models.encoders import Encoder, SingleModelEncoder, effective_aligned, encode_length_sorted, normalize_rows
from modsent.corpus.evaluation_data import (
    BelebeleData,
    BelebeleItem,
    EvaluationDataError,
    LanguageNotFoundError,
    MissingDataFileError,
    STSPairs,
    read_belebele,
    read_belebele_language,
    read_parallel_lines,
)
from modsent.corpus.sts_data import read_kardes, read_kardes_files, read_mteb_sts, read_str, read_stsb
from modsent.evaluate.retrieval import (
    bitext_accuracy,
    evaluate_bitext,
    faiss_gpu_count,
    knn_search,
    nearest_neighbours,
    ranking_metrics,
    ratio_margin,
)
from modsent.evaluate.runner import run_evaluation
from modsent.evaluate.config import BelebeleConfig, BitextConfig, EvaluateConfig, STSDatasetConfig
from modsent.evaluate.scores import Score, combine_directions, summarize
from modsent.evaluate.sts import evaluate_sts, paired_cosine, recombine_aligned, spearman_x100

__all__ = [
    "BelebeleConfig", "BelebeleData", "BelebeleItem", "BitextConfig", "EmbeddingCache", "Encoder",
    "EncoderOutputError", "EvaluateConfig", "EvaluationDataError", "LanguageNotFoundError", "MissingDataFileError",
    "STSDatasetConfig", "STSPairs", "Score", "SingleModelEncoder", "answer_accuracy", "bitext_accuracy",
    "combine_directions", "effective_aligned", "encode_length_sorted", "evaluate_belebele", "evaluate_bitext",
    "evaluate_sts", "faiss_gpu_count", "knn_search", "nearest_neighbours", "normalize_rows", "paired_cosine",
    "qa_strings", "ranking_metrics", "ratio_margin", "read_belebele", "read_belebele_language", "read_kardes",
    "read_kardes_files", "read_mteb_sts", "read_parallel_lines", "read_str", "read_stsb",
    "recombine_aligned", "run_evaluation", "spearman_x100", "summarize",
]
