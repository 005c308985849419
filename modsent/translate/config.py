"""The translate stage's config: what to translate, with which model, how, and where the output goes.

Loaded with :func:`modsent.config.load_config` from YAML (see ``configs/translate.yaml``) plus
``key.sub=value`` overrides. Only :class:`DecodingConfig`, the model and its quantization change
the translations; everything else changes speed and placement, so a rerun with other compute
settings reuses finished work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from modsent.io import cache_root
from modsent.raycluster import RayConfig

__all__ = [
    "artifact", "ModelConfig", "DecodingConfig", "ComputeConfig", "RayConfig", "QualityConfig", "TranslateConfig",
    "default_model_cache",
]

Quantization = Literal["int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32"]


def default_model_cache() -> Path:
    """Where converted CTranslate2 models are cached: ``$MODSENT_CACHE/ct2`` (default ``~/.cache/modsent/ct2``)."""
    return cache_root() / "ct2"


@dataclass
class ModelConfig:
    """The NLLB model: a CTranslate2 directory (``model.bin``) or a ``transformers`` checkpoint directory,
    either local or named by hub id (``facebook/nllb-200-distilled-600M``, read from the Hugging Face cache).

    A ``transformers`` checkpoint is converted once per (content hash, quantization) into
    ``cache_dir``. The tokenizer is read from ``tokenizer`` when given, else from the model
    directory (conversion copies it beside ``model.bin``).
    """

    path: Path
    # Storage and compute type. CPUs support int8, int8_float32, int16, float32; GPUs also the
    # float16/bfloat16 variants (int8_float16 or float16 is the usual CUDA choice).
    quantization: Quantization = "int8"
    cache_dir: Optional[Path] = None
    tokenizer: Optional[Path] = None


@dataclass
class DecodingConfig:
    """Options that change the translations (part of every unit's fingerprint).

    Defaults follow the reference: greedy search; ``max_decoding_length`` 128 new tokens plus the
    target-language token matches ``generate(max_length=130)`` counting the decoder start token.
    """

    beam_size: int = 1
    max_decoding_length: int = 129
    max_input_length: int = 1024
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"decoding.beam_size must be >= 1, got {self.beam_size}")
        if self.max_decoding_length < 2:
            raise ValueError(f"decoding.max_decoding_length must be >= 2 (language token + 1), got {self.max_decoding_length}")
        if self.max_input_length < 3:
            raise ValueError(f"decoding.max_input_length must be >= 3 (language token, a token, </s>), got {self.max_input_length}")


@dataclass
class ComputeConfig:
    """Where and how fast: device, threads, batching, actors.

    None of it changes the translations, except where two candidate tokens' logits nearly tie: the
    batch's composition moves float32 logits by ~1e-3, which may decide such a tie either way.
    """

    device: Literal["auto", "cpu", "cuda"] = "auto"
    # GPUs the translator of one actor uses, numbered as the actor sees them (Ray renumbers the
    # GPUs it assigns from 0). None: every GPU Ray gave the actor.
    device_index: Optional[list[int]] = None
    num_actors: int = 1
    # Ray resources per actor. On a 2-core machine 0.5 leaves room for Ray Data's own tasks
    # (two actors asking 1 CPU each on num_cpus=2 starve them and hang).
    cpus_per_actor: float = 0.5
    gpus_per_actor: float = 1.0  # used only when the actors get GPUs (cuda, or auto on a cluster with GPUs)
    inter_threads: int = 1
    intra_threads: int = 1  # 0: CTranslate2's default (all cores); on GPUs threads barely matter
    batch_type: Literal["examples", "tokens"] = "examples"
    max_batch_size: int = 64  # examples or tokens per CTranslate2 batch
    # Source-sentence × target-language examples handed to an actor at once (one Ray task).
    # An actor that dies is restarted and its batch retried: Ray Data's default for actor pools.
    examples_per_task: int = 2048

    def __post_init__(self) -> None:
        for name in ("num_actors", "inter_threads", "max_batch_size", "examples_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"compute.{name} must be >= 1, got {getattr(self, name)}")
        if self.intra_threads < 0:
            raise ValueError(f"compute.intra_threads must be >= 0, got {self.intra_threads}")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor <= 0:
            raise ValueError("compute.cpus_per_actor and compute.gpus_per_actor must be > 0")


@dataclass
class QualityConfig:
    """Checks on every translated sentence, counted per language in the summary."""

    write_review: bool = False  # write flagged (language, source, translation) rows to review.jsonl
    max_review_rows_per_language: int = 200
    # Runaway repetition: a chunk of 2..30 characters repeated this many times in a row.
    max_repeats: int = 4
    # Extreme length: character-length ratio (translation / source) more than this factor away
    # from the language's median ratio (scripts differ, so the median is the reference).
    length_ratio_factor: float = 3.0
    min_source_chars: int = 10  # shorter sources are not judged on length ratio or copying


Backend = Literal["ctranslate2", "apertium"]


@dataclass
class TranslateConfig:
    """Translate the English side of paraphrase corpora into ``languages``.

    ``backend``: ``ctranslate2`` (NLLB, every language; needs ``model``) or ``apertium`` (rule-based MT
    from English into the languages of ``modsent/data/apertium.tsv``, Debian packages; no model, no
    decoding options): both run in the same Ray Data job, with the same units, resume and outputs.

    ``corpora``: corpus directories, dataset directories (reference layout), ``.jsonl`` or ``.parquet``
    files (see :mod:`modsent.corpus`); every dataset needs the source language's columns.
    ``languages``: registry codes or named lists (``@paper22``, ``@all``); the source is skipped.
    Output under ``output_dir``: ``corpus/<dataset>/<lang>_{1,2[,3]}.txt`` (reference layout, source
    language copied through), ``manifest.json``, ``translation_summary.{csv,md}``,
    ``review.jsonl`` (optional) and ``work/`` (finished units, kept so reruns resume).
    """

    corpora: list[Path]
    languages: list[str]
    output_dir: Path
    model: Optional[ModelConfig] = None
    backend: Backend = "ctranslate2"
    source_language: str = "eng_Latn"
    shard_size: int = 2048  # unique source sentences per work unit (one unit per language and shard)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)

    def __post_init__(self) -> None:
        if not self.corpora:
            raise ValueError("corpora is empty: give at least one corpus path")
        if not self.languages:
            raise ValueError("languages is empty: give target language codes (e.g. [deu_Latn, fra_Latn] or [@paper22])")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.backend == "ctranslate2" and self.model is None:
            raise ValueError("model.path is required with backend ctranslate2 (an NLLB model: a CTranslate2 or "
                             "transformers directory, or a hub id such as facebook/nllb-200-distilled-600M)")
        if self.backend == "apertium":
            if self.model is not None:
                raise ValueError("model: backend apertium uses no model (its modes come from the Debian packages); "
                                 "drop model, or set backend: ctranslate2")
            if self.compute.device == "cuda":
                raise ValueError("compute.device cuda: Apertium runs on CPUs only; set compute.device: cpu (or auto)")
            self.apertium_modes()  # a language without an installed mode fails here, at planning

    def apertium_modes(self) -> dict[str, str]:
        """The Apertium mode of every target language (backend apertium); fails naming the package to install."""
        from modsent.languages import resolve, resolve_many
        from modsent.translate.apertium import check_modes

        source = resolve(self.source_language).code
        return check_modes([lang.code for lang in resolve_many(self.languages) if lang.code != source], source)


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent translate`` assembles under ``output_dir``: the translated corpus (manifest and review beside it)."""
    return Path(output_dir) / "corpus"
