"""The config of ``modsent vocab`` and the layout of its output directory (see :mod:`modsent.vocab.stage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Optional

from modsent.languages import single_language
from modsent.models.files import VOCAB_EMBEDDINGS_FILE, VOCAB_EMBEDDINGS_KEY, VOCAB_TOKENIZER_DIR
from modsent.vocab.focus import FastTextOptions
from modsent.vocab.tokenizer import DEFAULT_VOCAB_SIZE

__all__ = ["VocabConfig", "artifact", "TOKENIZER_DIR", "EMBEDDINGS_FILE", "EMBEDDINGS_KEY", "REPORT_FILE", "MODEL_DIR", "METHODS"]

TOKENIZER_DIR = VOCAB_TOKENIZER_DIR
EMBEDDINGS_FILE = VOCAB_EMBEDDINGS_FILE
EMBEDDINGS_KEY = VOCAB_EMBEDDINGS_KEY
REPORT_FILE = "report.json"
MODEL_DIR = "model"
METHODS = ("focus", "trim")


@dataclass
class VocabConfig:
    """Config of ``modsent vocab`` (YAML keys = field names; ``fasttext.dim=100`` on the command line)."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"source_model": "model", "lang": "languages"}

    model: Path  # directory with config.json, weights and the fast tokenizer of the multilingual model
    text_files: list[Path]  # target-language monolingual text: plain text files, a sentence or paragraph a line
    languages: list[str]  # the target language (one); any code modsent.languages resolves (deu_Latn, de, deu)
    output_dir: Path
    method: Literal["focus", "trim"] = "focus"  # focus: new tokenizer + FOCUS (the paper's); trim: keep the source tokens the text uses
    # "monolingual" (the reference): text_files are monolingual text. "corpus" also accepts paraphrase
    # corpora (their lang columns, usually machine-translated: little text, many random embeddings).
    text: Literal["monolingual", "corpus"] = "monolingual"
    vocab_size: int = DEFAULT_VOCAB_SIZE  # focus: the new tokenizer's size; trim: at most this many tokens
    min_count: int = 1  # trim: keep a text token from this many uses on
    # trim, Unigram sources: fill a small text's vocabulary up to this size with the source's most probable pieces
    # in the text's scripts (words the text never used keep the source's segmentation)
    min_vocab_size: Optional[int] = None
    target_tokenizer: Optional[Path] = None  # focus: reuse this tokenizer directory instead of training one
    fasttext: FastTextOptions = field(default_factory=FastTextOptions)
    seed: int = 42
    trust_remote_code: bool = False  # run Python a model directory ships (auto_map): only for a directory you trust

    def __post_init__(self) -> None:
        self.language = single_language(self.languages, "vocab")


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent vocab`` writes into ``output_dir``: the directory itself (layout: :mod:`modsent.vocab.stage`)."""
    return Path(output_dir)
