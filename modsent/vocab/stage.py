"""``modsent vocab``: a target-language tokenizer plus its FOCUS-initialised embedding matrix.

Output directory (written atomically: complete or absent)::

    OUTPUT_DIR/
      tokenizer/                 AutoTokenizer.from_pretrained-loadable; source family, special tokens, template
      embeddings.safetensors     one tensor "embeddings": (len(tokenizer), hidden), the source model's dtype
      report.json                counts (shared, new, new without fastText vector), timings, inputs

The MLM adaptation stage loads the source model, resizes its input embeddings to
``len(tokenizer)``, copies ``embeddings`` in and takes the special-token ids from the new tokenizer.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import save_file
import transformers
from transformers import AutoConfig, AutoModel

from modsent.config import to_dict
from modsent.dirlock import hold_directory
from modsent.io import atomic_directory, atomic_write_json, seed_everything, sha256_file
from modsent.languages import resolve

from .errors import SourceModelError, VocabError
from .focus import FastTextOptions, focus_init
from .text import iter_texts, require_text
from .tokenizer import DEFAULT_VOCAB_SIZE, check_same_family, load_tokenizer, train_tokenizer

__all__ = ["VocabConfig", "run_vocab", "load_input_embeddings", "TOKENIZER_DIR", "EMBEDDINGS_FILE",
           "EMBEDDINGS_KEY", "REPORT_FILE"]

logger = logging.getLogger(__name__)

TOKENIZER_DIR = "tokenizer"
EMBEDDINGS_FILE = "embeddings.safetensors"
EMBEDDINGS_KEY = "embeddings"
REPORT_FILE = "report.json"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class VocabConfig:
    """Config of ``modsent vocab`` (YAML keys = field names; ``fasttext.dim=100`` on the command line)."""

    source_model: Path  # directory with config.json, weights and the fast tokenizer of the multilingual model
    text_files: list[Path]  # target-language text: plain text files (a line each) or paraphrase corpora
    lang: str  # target language; any code modsent.languages resolves (deu_Latn, de, deu)
    output_dir: Path
    vocab_size: int = DEFAULT_VOCAB_SIZE
    target_tokenizer: Optional[Path] = None  # reuse this tokenizer directory instead of training one
    fasttext: FastTextOptions = field(default_factory=FastTextOptions)
    seed: int = 42


def _check_source_model(path: Path) -> None:
    if not path.is_dir():
        raise SourceModelError(f"{path}: source model directory does not exist")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES[::2]))
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        missing.append("tokenizer.json")
    if missing:
        raise SourceModelError(f"{path}: missing {', '.join(missing)}; point source_model at a directory written by "
                               "save_pretrained (model and tokenizer)")


def load_input_embeddings(model_dir: str | os.PathLike) -> torch.Tensor:
    """The input embedding matrix of a local ``transformers`` model, ``(vocab, hidden)``, detached.

    The checkpoint's own architecture class (``config.architectures``, e.g. ``BertForMaskedLM``) is
    used when ``transformers`` has it, so no head is dropped or pooler invented; else ``AutoModel``.
    """
    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture, None) if architecture else None
    model = (model_class or AutoModel).from_pretrained(model_dir, config=config, local_files_only=True)
    return model.get_input_embeddings().weight.detach().clone()


def run_vocab(config: VocabConfig) -> Path:
    """Train (or load) the target tokenizer, FOCUS-initialise its embeddings, write ``config.output_dir``.

    Returns the output directory (layout in this module's docstring).

    >>> run_vocab(VocabConfig(source_model=Path("models/labse"), text_files=[Path("de.txt")],
    ...                       lang="de", output_dir=Path("runs/vocab/deu_Latn")))  # doctest: +SKIP
    PosixPath('runs/vocab/deu_Latn')
    """
    started = time.perf_counter()
    seed_everything(config.seed)
    lang = resolve(config.lang).code
    source_dir, output_dir = Path(config.source_model), Path(config.output_dir)
    hold_directory(output_dir, "modsent vocab")
    if not config.text_files:
        raise VocabError(f"text_files is empty: give the {lang} text to train the tokenizer and fastText on")
    _check_source_model(source_dir)
    require_text(config.text_files, lang)
    source_tokenizer = load_tokenizer(source_dir)

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if config.target_tokenizer is not None:
        target_tokenizer = load_tokenizer(config.target_tokenizer)
        check_same_family(source_tokenizer, target_tokenizer)
    else:
        target_tokenizer = train_tokenizer(source_tokenizer, iter_texts(config.text_files, lang), config.vocab_size)
    timings["tokenizer_s"] = time.perf_counter() - start

    start = time.perf_counter()
    source_embeddings = load_input_embeddings(source_dir)
    timings["load_source_s"] = time.perf_counter() - start

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # The tokenised copy of the corpus goes beside the output: same disk, often larger than /tmp.
    with tempfile.TemporaryDirectory(prefix=f".fasttext-{output_dir.name}.", dir=output_dir.parent) as workdir:
        result = focus_init(source_embeddings, source_tokenizer, target_tokenizer, iter_texts(config.text_files, lang),
                            fasttext_options=config.fasttext, seed=config.seed, workdir=workdir)

    with atomic_directory(output_dir) as staging:
        target_tokenizer.save_pretrained(staging / TOKENIZER_DIR)
        save_file({EMBEDDINGS_KEY: result.embeddings.contiguous()}, str(staging / EMBEDDINGS_FILE))
        timings.update(result.report.pop("timings"))
        timings["total_s"] = time.perf_counter() - started
        report = {
            **result.report,
            "lang": lang,
            "source_model": str(source_dir),
            "special_token_ids": {tok: target_tokenizer.convert_tokens_to_ids(tok)
                                  for tok in target_tokenizer.all_special_tokens},
            "embeddings_sha256": sha256_file(staging / EMBEDDINGS_FILE),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "config": to_dict(config),
        }
        atomic_write_json(staging / REPORT_FILE, report)
    logger.info("vocab %s: %d tokens (%d shared, %d new) written to %s in %.1f s", lang, report["n_target_tokens"],
                report["n_shared"], report["n_new"], output_dir, timings["total_s"])
    return output_dir
