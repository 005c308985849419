"""Paraphrase corpora: formats, streaming readers, writers, validation."""

from modsent.corpus.formats import (
    ColumnKey,
    CorpusError,
    MisalignedCorpusError,
    ParaphraseDataset,
    column_name,
    count_lines,
    open_corpus,
    open_dataset,
    read_lines,
    write_dataset,
)
from modsent.corpus.validate import Issue, ValidationReport, corpus_stats, validate_corpus

__all__ = [
    "ColumnKey", "CorpusError", "MisalignedCorpusError", "ParaphraseDataset", "column_name", "count_lines", "open_corpus",
    "open_dataset", "read_lines", "write_dataset", "Issue", "ValidationReport", "corpus_stats", "validate_corpus",
]
