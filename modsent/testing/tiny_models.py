"""Tiny random-weight models built locally on demand and cached: nothing is downloaded.

* :func:`tiny_bert_mlm` - a ``BertForMaskedLM`` + WordPiece ``BertTokenizerFast`` trained on
  synthetic multilingual text (the source model that vocab/MLM/contrastive stages adapt).
* :func:`tiny_nllb` - an NLLB-architecture ``M2M100ForConditionalGeneration`` + BPE
  ``NllbTokenizerFast`` knowing all 202 NLLB language codes (the translator of the translate stage).
* :func:`tiny_nllb_ct2` - its CTranslate2 conversion.
* :func:`save_perturbed_encoder` - a sentence encoder on one of them with seeded noise on its
  weights: a related but different encoder (a "target language" encoder beside a pivot).

Each model lives in ``<cache>/tiny/<name>-<hash>/`` where the hash covers the build recipe and
the versions of the libraries that wrote it, so a changed recipe or library gets a fresh build.
Builds happen in a temporary directory renamed into place when complete
(:func:`modsent.io.atomic_directory`) under an exclusive file lock, so concurrent callers build
once and a crashed build never leaves a directory that looks complete.

torch, transformers, tokenizers and ctranslate2 are imported inside the builders, so importing
this module is cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from modsent.errors import ModsentError
from modsent.io import atomic_directory, atomic_write_json, cache_root, sha256_json
from modsent.testing.synthetic import SYNTHETIC_VERSION, synthetic_sentences, translate_synthetic

__all__ = ["save_tiny_modular", "tiny_bert_mlm", "tiny_nllb", "tiny_nllb_ct2", "BUILD_INFO_FILE"]

logger = logging.getLogger(__name__)

#: Bump when a builder below changes in a way the recipe fields do not capture.
_BUILDER_VERSION = 2
_WEIGHT_SEED = 0
_TEXT_SEED = 0
#: Written into every built directory: the recipe and the parameter count.
BUILD_INFO_FILE = "modsent_build.json"
_CT2_QUANTIZATIONS = (
    "float32", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16",
)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the body."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_build(cache_dir: str | os.PathLike | None, name: str, recipe: dict, build: Callable[[Path], int]) -> Path:
    """Return ``<cache>/tiny/<name>-<hash(recipe)>``, running ``build(staging_dir)`` first if absent.

    ``build`` fills the staging directory and returns the model's parameter count.
    """
    tiny_root = Path(cache_dir if cache_dir is not None else cache_root()) / "tiny"
    target = tiny_root / f"{name}-{sha256_json(recipe)[:16]}"
    if target.is_dir():  # directories appear only by atomic rename, so present means complete
        return target
    tiny_root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(tiny_root / f".{target.name}.lock"):
        if target.is_dir():  # another process finished it while this one waited
            return target
        # Holding the lock, any staging directory for this target is a killed build's leftover.
        for stale in tiny_root.glob(f".tmp-{target.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("Building %s", target)
        start = time.perf_counter()
        with atomic_directory(target) as staging:
            parameters = build(staging)
            # Only what the recipe determines: a build is byte-identical in every process and on every machine.
            atomic_write_json(staging / BUILD_INFO_FILE, {"recipe": recipe, "parameters": parameters})
        logger.info("Built %s (%d parameters) in %.1f s", target, parameters, time.perf_counter() - start)
    return target


def _library_versions(*modules: str) -> dict[str, str]:
    import importlib

    return {module: importlib.import_module(module).__version__ for module in modules}


def _training_text(langs: tuple[str, ...], sentences_per_lang: int) -> Iterator[str]:
    """Synthetic sentences in each language, the text the tokenizers are trained on."""
    english = synthetic_sentences(sentences_per_lang, seed=_TEXT_SEED)
    for lang in langs:
        yield from translate_synthetic(english, lang)


def _pick_size(sizes: dict, size: str, what: str):
    if size not in sizes:
        raise ModsentError(f"unknown {what} size {size!r}; choose one of {sorted(sizes)}")
    return sizes[size]


def _seeded_normal(shape, std: float, rng):
    """A float32 tensor of N(0, ``std``) draws from NumPy's generator ``rng``.

    torch's ``normal_``/``randn`` are not the same on every CPU: for one seed its DEFAULT and AVX2
    kernels draw different numbers (measured with torch 2.13), so weights drawn by torch differ
    between machines. NumPy's generator is scalar code, the same everywhere.
    """
    import numpy as np
    import torch

    return torch.from_numpy(rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std))


def _redraw_random_weights(model, std: float, seed: int) -> None:
    """Redraw, from NumPy, every weight ``transformers`` initialised at random as N(0, ``std``).

    Constant initialisations (LayerNorm, biases) stay, and so do all-zero rows (padding embeddings).
    """
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):  # tied weights are listed once
            if param.numel() < 2 or param.std() == 0:
                continue
            zero_rows = (param == 0).all(dim=-1) if param.dim() == 2 else None
            param.copy_(_seeded_normal(param.shape, std, rng))
            if zero_rows is not None:
                param[zero_rows] = 0.0


# Scripts the tokenizers are trained on: the tiny ones cover the languages tests use most,
# the bigger ones every script family NLLB has (one language each, plus a few Latin ones).
_TEST_LANGS = (
    "eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "ell_Grek", "arb_Arab", "hin_Deva", "zho_Hans",
    "heb_Hebr", "kor_Hang",
)
_ALL_SCRIPT_LANGS = _TEST_LANGS + (
    "spa_Latn", "tur_Latn", "vie_Latn", "pol_Latn", "ukr_Cyrl", "pes_Arab", "urd_Arab", "ben_Beng",
    "mar_Deva", "amh_Ethi", "bod_Tibt", "guj_Gujr", "hye_Armn", "jpn_Jpan", "kan_Knda", "kat_Geor",
    "khm_Khmr", "lao_Laoo", "mal_Mlym", "mya_Mymr", "ory_Orya", "pan_Guru", "sin_Sinh", "tam_Taml",
    "tel_Telu", "tha_Thai", "tzm_Tfng", "zho_Hant",
)


@dataclass(frozen=True)
class _BertSize:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_position: int
    langs: tuple[str, ...]
    sentences_per_lang: int


_BERT_SIZES = {
    "tiny": _BertSize(32, 2, 2, 64, 2000, 128, _TEST_LANGS, 1500),
    "small": _BertSize(256, 4, 4, 1024, 8000, 512, _ALL_SCRIPT_LANGS, 3000),
}


def _build_bert_mlm(spec: _BertSize, out: Path) -> int:
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    from modsent.vocab.tokenizer import train_tokenizer

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # An untrained BERT tokenizer (its normaliser, pre-tokeniser and template; only the special tokens)
    # trained the way the vocab stage trains one: the ``tokenizers`` WordPiece trainer alone numbers its
    # word-internal symbols in hash-map order, so two processes would build different vocabularies.
    # Keep accents: stripping them would delete the vowel signs of Indic scripts.
    untrained = BertTokenizerFast(vocab={token: i for i, token in enumerate(special)}, do_lower_case=True,
                                  strip_accents=False, model_max_length=spec.max_position)
    tokenizer = train_tokenizer(untrained, lambda: _training_text(spec.langs, spec.sentences_per_lang),
                                spec.vocab_size)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=spec.intermediate,
        max_position_embeddings=spec.max_position,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG as it was
        model = BertForMaskedLM(config)
    _redraw_random_weights(model, config.initializer_range, _WEIGHT_SEED)
    model.save_pretrained(out)  # safetensors
    tokenizer.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def tiny_bert_mlm(cache_dir: str | os.PathLike | None = None, size: str = "tiny") -> Path:
    """Directory of a random-init (seeded) ``BertForMaskedLM`` with a WordPiece tokenizer.

    The tokenizer is trained on synthetic text in several scripts (Latin, Cyrillic, Greek,
    Arabic, Devanagari, Han, Hebrew, Hangul; "small" covers every NLLB script). Sizes:
    ``"tiny"`` (hidden 32, 2 layers, 2 heads, vocab ~2k, 128 positions, ~0.1M parameters) and
    ``"small"`` (hidden 256, 4 layers, 4 heads, vocab ~8k, 512 positions, ~5M parameters).

    >>> from transformers import AutoModelForMaskedLM, AutoTokenizer  # doctest: +SKIP
    >>> path = tiny_bert_mlm()
    >>> model, tok = AutoModelForMaskedLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    """
    spec = _pick_size(_BERT_SIZES, size, "BERT")
    recipe = {
        "builder": "bert-mlm",
        "builder_version": _BUILDER_VERSION,
        "synthetic_version": SYNTHETIC_VERSION,
        "seeds": [_WEIGHT_SEED, _TEXT_SEED],
        "spec": asdict(spec),
        "versions": _library_versions("torch", "transformers", "tokenizers"),
    }
    return _cached_build(cache_dir, f"bert-mlm-{size}", recipe, lambda out: _build_bert_mlm(spec, out))


def save_perturbed_encoder(base: str | os.PathLike, out: str | os.PathLike, seed: int | None,
                           max_seq_length: int, noise: float = 0.02) -> Path:
    """Save ``base`` as a :class:`~modsent.models.SentenceEncoder` in ``out``, every backbone weight
    plus seeded Gaussian noise (std ``noise``); ``seed=None`` saves it unchanged. Returns ``out``."""
    import numpy as np
    import torch

    from modsent.models.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(base, max_seq_length=max_seq_length)
    if seed is not None:
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for param in encoder.backbone.parameters():
                param.add_(_seeded_normal(param.shape, noise, rng))
    return encoder.save(out)


def save_random_adapter(encoder_dir: str | os.PathLike, out: str | os.PathLike, seed: int,
                        scale: float = 0.1) -> Path:
    """A cross-lingual adapter for the encoder in ``encoder_dir`` with seeded N(0, ``scale``) weights
    (an untrained adapter adds exactly 0), saved to ``out``; returns ``out``."""
    import numpy as np
    import torch

    from modsent.models.adapter import ParallelAdapter
    from modsent.models.encoder import SentenceEncoder

    adapter = ParallelAdapter.for_model(SentenceEncoder.from_pretrained(encoder_dir))
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for param in adapter.parameters():
            param.copy_(_seeded_normal(param.shape, scale, rng))
    return adapter.save(out, base_path=encoder_dir)


def save_tiny_modular(root: str | os.PathLike, base: str | os.PathLike, seeds: dict[str, int | None],
                      pivot: str = "eng_Latn", adapter_scale: float = 0.1) -> Path:
    """A modular model directory under ``root``: per language in ``seeds`` a perturbed copy of ``base``
    (:func:`save_perturbed_encoder` with that seed) and, except for ``pivot``, a seeded random
    cross-lingual adapter (weights ~ N(0, ``adapter_scale``)). Returns ``root``."""
    from modsent.models.modular import write_modular_manifest

    root = Path(root)
    modules: dict[str, tuple[Path, Path | None]] = {}
    for index, (lang, seed) in enumerate(sorted(seeds.items())):
        encoder = save_perturbed_encoder(base, root / "encoders" / lang, seed, 32)
        adapter_dir = None
        if lang != pivot:
            adapter_dir = save_random_adapter(encoder, root / "adapters" / lang, 1000 + index, adapter_scale)
        modules[lang] = (encoder, adapter_dir)
    write_modular_manifest(root, pivot, modules)
    return root


@dataclass(frozen=True)
class _NllbSize:
    d_model: int
    layers: int  # encoder and decoder each
    heads: int
    ffn: int
    bpe_vocab_size: int  # before the 202 language codes and <mask> are added
    max_position: int
    langs: tuple[str, ...]
    sentences_per_lang: int
    # With the usual 0.02 the sqrt(d_model)-scaled token embeddings drown the cross-attention
    # signal and every source sentence gets the same output. Larger values make outputs depend on
    # the source, but too large saturates attention so that rounding differences flip greedy
    # choices. Measured on 64 synthetic sentences (distinct outputs / CT2 float32 equal / int8
    # equal): tiny 0.3 -> 45/64/42, 0.5 -> 63/64/9; medium 0.1 -> 27/64/49, 0.2 -> 58/63/3.
    init_std: float


_NLLB_SIZES = {
    "tiny": _NllbSize(64, 2, 4, 128, 2000, 256, _TEST_LANGS, 1500, init_std=0.3),
    "medium": _NllbSize(512, 6, 8, 2048, 8000, 256, _ALL_SCRIPT_LANGS, 3000, init_std=0.1),
}


def _build_nllb(spec: _NllbSize, out: Path) -> int:
    import json

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, M2M100Config, M2M100ForConditionalGeneration, NllbTokenizerFast
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    # NLLB's fairseq order: <s> <pad> </s> <unk> are ids 0-3.
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=spec.bpe_vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False
    )
    bpe.train_from_iterator(_training_text(spec.langs, spec.sentences_per_lang), trainer)
    trained = json.loads(bpe.to_str())["model"]
    tokenizer = NllbTokenizerFast(
        vocab=trained["vocab"],
        merges=[tuple(merge) for merge in trained["merges"]],  # must be tuples, not "a b" strings
        additional_special_tokens=list(FAIRSEQ_LANGUAGE_CODES),
        src_lang="eng_Latn",
        tgt_lang="deu_Latn",
        model_max_length=spec.max_position,
    )
    special_ids = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2}
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=spec.d_model,
        encoder_layers=spec.layers,
        decoder_layers=spec.layers,
        encoder_attention_heads=spec.heads,
        decoder_attention_heads=spec.heads,
        encoder_ffn_dim=spec.ffn,
        decoder_ffn_dim=spec.ffn,
        max_position_embeddings=spec.max_position,
        scale_embedding=True,
        activation_function="relu",
        tokenizer_class="NllbTokenizer",
        init_std=spec.init_std,
        **special_ids,
    )
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG as it was
        model = M2M100ForConditionalGeneration(config)
    _redraw_random_weights(model, spec.init_std, _WEIGHT_SEED)
    # Zero the (tied) embeddings of special tokens other than </s>: their logit is then 0, below
    # the best ordinary token's, so outputs never consist of language codes or <mask> alone.
    never_generated = sorted(set(tokenizer.all_special_ids) - {tokenizer.eos_token_id})
    with torch.no_grad():
        model.get_input_embeddings().weight[never_generated] = 0.0
    model.generation_config = GenerationConfig(**special_ids, max_length=spec.max_position)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def _nllb_recipe(spec: _NllbSize) -> dict:
    return {
        "builder": "nllb",
        "builder_version": _BUILDER_VERSION,
        "synthetic_version": SYNTHETIC_VERSION,
        "seeds": [_WEIGHT_SEED, _TEXT_SEED],
        "spec": asdict(spec),
        "versions": _library_versions("torch", "transformers", "tokenizers"),
    }


def tiny_nllb(cache_dir: str | os.PathLike | None = None, size: str = "tiny") -> Path:
    """Directory of a random-init (seeded) NLLB-architecture translation model and its tokenizer.

    Loads with ``AutoModelForSeq2SeqLM`` / ``AutoTokenizer``; the tokenizer is an
    ``NllbTokenizerFast`` over a BPE vocabulary trained on synthetic multilingual text, with all
    202 NLLB language codes as special tokens. Output is deterministic nonsense. Sizes:
    ``"tiny"`` (d_model 64, 2+2 layers, ~0.3M parameters) and ``"medium"`` (d_model 512, 6+6
    layers, ~48M parameters; big enough for CTranslate2 speed-ups to show in benchmarks).

    >>> from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # doctest: +SKIP
    >>> path = tiny_nllb()
    >>> tok = AutoTokenizer.from_pretrained(path, src_lang="eng_Latn")
    >>> out = AutoModelForSeq2SeqLM.from_pretrained(path).generate(
    ...     **tok(["The old man reads a book."], return_tensors="pt"),
    ...     forced_bos_token_id=tok.convert_tokens_to_ids("deu_Latn"), max_new_tokens=16)
    """
    spec = _pick_size(_NLLB_SIZES, size, "NLLB")
    recipe = _nllb_recipe(spec)
    return _cached_build(cache_dir, f"nllb-{size}", recipe, lambda out: _build_nllb(spec, out))


def _convert_to_ct2(source: Path, quantization: str, out: Path) -> int:
    import json

    import ctranslate2

    # Ship the tokenizer with the converted model so one directory serves the translate stage.
    tokenizer_files = sorted(p.name for p in source.iterdir() if p.name.startswith(("tokenizer", "special_tokens")))
    converter = ctranslate2.converters.TransformersConverter(str(source), copy_files=tokenizer_files)
    converter.convert(str(out), quantization=quantization, force=True)  # ``out`` exists already
    return json.loads((source / BUILD_INFO_FILE).read_text(encoding="utf-8"))["parameters"]


def tiny_nllb_ct2(
    cache_dir: str | os.PathLike | None = None, size: str = "tiny", quantization: str = "float32"
) -> Path:
    """Directory of :func:`tiny_nllb`'s model converted to CTranslate2 with ``quantization``.

    Loadable by ``ctranslate2.Translator(path)``; the tokenizer files are copied alongside, so
    ``AutoTokenizer.from_pretrained(path)`` works on the same directory. Cached per quantization.

    >>> import ctranslate2  # doctest: +SKIP
    >>> translator = ctranslate2.Translator(str(tiny_nllb_ct2(quantization="int8")))
    """
    if quantization not in _CT2_QUANTIZATIONS:
        raise ModsentError(f"unknown CTranslate2 quantization {quantization!r}; choose one of {_CT2_QUANTIZATIONS}")
    source = tiny_nllb(cache_dir, size)
    recipe = {
        "builder": "nllb-ct2",
        "builder_version": _BUILDER_VERSION,
        "source": source.name,  # its name carries the source recipe's hash
        "quantization": quantization,
        "versions": _library_versions("ctranslate2", "transformers"),
    }
    return _cached_build(
        cache_dir, f"nllb-{size}-ct2-{quantization}", recipe, lambda out: _convert_to_ct2(source, quantization, out)
    )
