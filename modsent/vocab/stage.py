"""``modsent vocab``: a target-language tokenizer plus its embedding matrix, by one of two methods.

``method: focus`` (the paper's) trains a new tokenizer on the language's text and initialises its
embeddings with FOCUS; MLM adaptation (``modsent adapt``) then trains them. ``method: trim`` keeps
the source tokens the text uses with their exact embeddings (:mod:`modsent.vocab.trim`): no
training needed, a fraction of the parameters, and ``model/`` is a ready sentence encoder.

Output directory (written atomically: complete or absent)::

    OUTPUT_DIR/
      tokenizer/                 AutoTokenizer.from_pretrained-loadable; source family, special tokens, template
      embeddings.safetensors     one tensor "embeddings": (len(tokenizer), hidden), the source model's dtype
      report.json                counts (focus: shared; new: FOCUS-initialised n_new_focus, random
                                 n_new_without_fasttext; trim: kept, coverage), parameter counts, inputs (timings: the log)
      model/                     trim only: the source model with the trimmed vocabulary, in the source's layout
                                 (sentence-transformers modules, prompts and pooling kept)

The MLM adaptation stage loads the source model, resizes its input embeddings to
``len(tokenizer)``, copies ``embeddings`` in and takes the special-token ids from the new tokenizer.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
import transformers
from transformers import AutoConfig, AutoModel

from modsent.config import to_dict
from modsent.dirlock import hold_directory
from modsent.io import atomic_directory, atomic_write_json, seed_everything, sha256_file
from modsent.output_checks import check_not_overwriting
from modsent.models.encoder import read_prompts
from modsent.models.files import from_pretrained, load_weights

from .errors import SourceModelError, VocabError
from .config import EMBEDDINGS_FILE, EMBEDDINGS_KEY, METHODS, MODEL_DIR, REPORT_FILE, TOKENIZER_DIR, VocabConfig
from .focus import focus_init
from .text import corpus_paths, iter_texts, require_text
from .tokenizer import check_same_family, load_tokenizer, train_tokenizer
from .trim import trim_vocabulary

__all__ = ["run", "load_input_embeddings"]

logger = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


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
        raise SourceModelError(f"{path}: missing {', '.join(missing)}; point model at a directory written by "
                               "save_pretrained (model and tokenizer)")


def _load_source_model(model_dir: str | os.PathLike, trust_remote_code: bool = False) -> Any:
    """A local ``transformers`` model in the checkpoint's own architecture class (``config.architectures``,
    e.g. ``BertForMaskedLM``) when ``transformers`` has it, so no head is dropped or pooler invented;
    else ``AutoModel``."""
    config = from_pretrained(AutoConfig.from_pretrained, model_dir, SourceModelError, trust_remote_code,
                             local_files_only=True)
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture, None) if architecture else None
    return load_weights((model_class or AutoModel).from_pretrained, model_dir, SourceModelError,
                        trust_remote_code=trust_remote_code, config=config, local_files_only=True)


def load_input_embeddings(model_dir: str | os.PathLike, trust_remote_code: bool = False) -> torch.Tensor:
    """The input embedding matrix of a local ``transformers`` model, ``(vocab, hidden)``, detached."""
    return _load_source_model(model_dir, trust_remote_code).get_input_embeddings().weight.detach().clone()


def _focus_vocabulary(config: VocabConfig, lang: str, source_tokenizer: Any, source_embeddings: torch.Tensor,
                      timings: dict[str, float]) -> tuple[Any, torch.Tensor, dict[str, Any]]:
    start = time.perf_counter()
    if config.target_tokenizer is not None:
        target_tokenizer = load_tokenizer(config.target_tokenizer, config.trust_remote_code)
        check_same_family(source_tokenizer, target_tokenizer)
    else:
        target_tokenizer = train_tokenizer(source_tokenizer, lambda: iter_texts(config.text_files, lang),
                                           config.vocab_size)
    timings["tokenizer_s"] = time.perf_counter() - start
    output_dir = Path(config.output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    # The tokenised copy of the corpus goes beside the output: same disk, often larger than /tmp.
    with tempfile.TemporaryDirectory(prefix=f".fasttext-{output_dir.name}.", dir=output_dir.parent) as workdir:
        result = focus_init(source_embeddings, source_tokenizer, target_tokenizer, iter_texts(config.text_files, lang),
                            fasttext_options=config.fasttext, seed=config.seed, workdir=workdir)
    timings.update(result.report.pop("timings"))
    return target_tokenizer, result.embeddings, result.report


def _trim_vocabulary(config: VocabConfig, lang: str, source_tokenizer: Any, source_model: Any,
                     timings: dict[str, float]) -> tuple[Any, torch.Tensor, dict[str, Any]]:
    """Trim the source vocabulary to the text's tokens; ``source_model``'s input embeddings become those rows."""
    if config.target_tokenizer is not None:
        raise VocabError("target_tokenizer is a focus setting: vocab.method 'trim' derives its tokenizer from the "
                         "source model's; unset target_tokenizer or use method: focus")
    start = time.perf_counter()
    # The model's prompts ("query: " for e5) are prepended to every text it encodes: keep their tokens too.
    prompts, _ = read_prompts(Path(config.model))
    texts = itertools.chain(prompts.values(), iter_texts(config.text_files, lang))
    result = trim_vocabulary(source_tokenizer, texts, config.vocab_size, config.min_count, config.min_vocab_size)
    rows = source_model.get_input_embeddings().weight.detach()[torch.tensor(result.source_ids)].clone()
    source_model.resize_token_embeddings(len(result.source_ids))
    with torch.no_grad():
        source_model.get_input_embeddings().weight.copy_(rows)
    timings["trim_s"] = time.perf_counter() - start
    return result.tokenizer, rows, result.report


def _write_model(source_dir: Path, target_dir: Path, model: Any, tokenizer: Any) -> None:
    """``model`` and ``tokenizer`` beside the source directory's other files.

    Everything in the source directory that is not the backbone's weights, config or tokenizer
    (sentence-transformers modules, pooling, Dense layers, prompts) is copied unchanged, so the
    model encodes like the source in every way but its vocabulary.
    """
    model.save_pretrained(target_dir)
    tokenizer.save_pretrained(target_dir)
    for path in source_dir.iterdir():
        if not (target_dir / path.name).exists() and path.name not in _WEIGHT_FILES:
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, target_dir / path.name)


def run(config: VocabConfig) -> Path:
    """Build the target vocabulary and its embeddings (``config.method``), write ``config.output_dir``.

    Returns the output directory (layout in this module's docstring).

    >>> run(VocabConfig(model=Path("models/labse"), text_files=[Path("de.txt")],
    ...                 languages=["de"], output_dir=Path("runs/vocab/deu_Latn")))  # doctest: +SKIP
    PosixPath('runs/vocab/deu_Latn')
    """
    started = time.perf_counter()
    seed_everything(config.seed)
    lang = config.language
    source_dir, output_dir = Path(config.model), Path(config.output_dir)
    if config.method not in METHODS:
        raise VocabError(f"method={config.method!r}: choose one of {', '.join(METHODS)}")
    check_not_overwriting({"output_dir": output_dir}, {"model": source_dir, "text_files": config.text_files,
                                                       "target_tokenizer": config.target_tokenizer})
    hold_directory(output_dir, "modsent vocab")
    if not config.text_files:
        raise VocabError(f"text_files is empty: give the {lang} text to build the vocabulary from")
    _check_source_model(source_dir)
    corpora = corpus_paths(config.text_files)
    if corpora and config.text != "corpus":
        raise VocabError(f"text_files: {', '.join(map(str, corpora))} is a paraphrase corpus, not monolingual text. The "
                         f"reference trains the tokenizer and FOCUS on monolingual {lang} text; give plain text files, "
                         "or set text: corpus to train on the corpus's (machine-translated) sentences")
    require_text(config.text_files, lang)
    source_tokenizer = load_tokenizer(source_dir, config.trust_remote_code)

    timings: dict[str, float] = {}
    start = time.perf_counter()
    source_model = _load_source_model(source_dir, config.trust_remote_code)
    source_shape = source_model.get_input_embeddings().weight.shape
    timings["load_source_s"] = time.perf_counter() - start
    if config.method == "focus":
        source_embeddings = source_model.get_input_embeddings().weight.detach().clone()
        source_model = None  # FOCUS needs only the embeddings: free the rest while fastText trains
        target_tokenizer, embeddings, report = _focus_vocabulary(config, lang, source_tokenizer, source_embeddings,
                                                                 timings)
    else:
        target_tokenizer, embeddings, report = _trim_vocabulary(config, lang, source_tokenizer, source_model, timings)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(output_dir) as staging:
        target_tokenizer.save_pretrained(staging / TOKENIZER_DIR)
        save_file({EMBEDDINGS_KEY: embeddings.contiguous()}, str(staging / EMBEDDINGS_FILE))
        report["embedding_params"] = {"source": source_shape.numel(), "target": embeddings.numel()}
        if source_model is not None:
            _write_model(source_dir, staging / MODEL_DIR, source_model, target_tokenizer)
            report["model_params"] = sum(p.numel() for p in source_model.parameters())
        timings["total_s"] = time.perf_counter() - started
        report.update({
            "lang": lang,
            "model": str(source_dir),
            "special_token_ids": {tok: target_tokenizer.convert_tokens_to_ids(tok)
                                  for tok in target_tokenizer.all_special_tokens},
            "embeddings_sha256": sha256_file(staging / EMBEDDINGS_FILE),
            "config": to_dict(config),
        })
        # Timings go to the log, not the report: the same inputs must give the same artifact, byte for byte.
        atomic_write_json(staging / REPORT_FILE, report)
    logger.info("vocab %s timings: %s", lang, ", ".join(f"{name}={seconds:.3f}" for name, seconds in timings.items()))
    if config.method == "trim":
        logger.info("vocab %s (trim): %d tokens (embeddings %.1fM params, source %.1fM) written to %s in %.1f s", lang,
                    report["n_target_tokens"], report["embedding_params"]["target"] / 1e6,
                    report["embedding_params"]["source"] / 1e6, output_dir, timings["total_s"])
        return output_dir
    logger.info("vocab %s: %d tokens (%d shared, %d new: %d FOCUS-initialised, %d random) written to %s in %.1f s",
                lang, report["n_target_tokens"], report["n_shared"], report["n_new"], report["n_new_focus"],
                report["n_new_without_fasttext"], output_dir, timings["total_s"])
    if report["n_new_without_fasttext"] > report["n_new_focus"]:
        logger.warning("vocab %s: %d of %d new tokens have no fastText vector (seen < fasttext.min_count=%d times) "
                       "and start random; give more monolingual text or lower fasttext.min_count", lang,
                       report["n_new_without_fasttext"], report["n_new"], config.fasttext.min_count)
    return output_dir
