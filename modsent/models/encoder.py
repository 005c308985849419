"""The sentence encoder every stage shares: a ``transformers`` encoder + pooling, saved as a sentence-transformers model.

:class:`SentenceEncoder` wraps any ``AutoModel`` encoder (BERT, XLM-R, the vocab stage's models)
or the encoder half of an NLLB/M2M100 model (SONAR-style). It tokenises (per language when the
tokenizer needs ``src_lang``, as NLLB's does), pools token embeddings into sentence embeddings
and encodes texts to NumPy. :meth:`SentenceEncoder.save` writes the sentence-transformers layout
(``modules.json``, ``sentence_bert_config.json``, ``1_Pooling/config.json``, ``model.safetensors``,
tokenizer files) in the long-standing format every sentence-transformers version reads, so
``SentenceTransformer(path)`` returns the same embeddings; :meth:`SentenceEncoder.from_pretrained`
reads such a directory back, or any plain ``transformers`` directory (mean pooling).

Modules: Transformer → Pooling (mean, CLS or max) → optional ``Dense`` (LaBSE's 768→768 tanh
layer, :class:`~modsent.models.dense.DenseHead`, trained with the rest) → optional Normalize.
The default prompt of ``config_sentence_transformers.json`` (``prompts`` +
``default_prompt_name``, e.g. e5's ``"query: "``) is put before every text this encoder
tokenises — training, alignment, evaluation and ``encode`` alike — as ``SentenceTransformer.encode`` does.

>>> encoder = SentenceEncoder.from_pretrained("runs/train/artifacts/model")  # doctest: +SKIP
>>> encoder.encode(["Ein Satz.", "Noch einer."], lang="deu_Latn").shape  # doctest: +SKIP
(2, 768)
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from modsent.errors import ModsentError, first_line
from modsent.io import atomic_directory, atomic_write_json
from modsent.models.batching import Features, length_batches, pad_token_ids
from modsent.models.dense import DenseHead
from modsent.models.files import from_pretrained, load_weights, require_model_dir, require_vocabulary
from modsent.models.pooling import POOLING_MODES, check_pooling_mode, pool

__all__ = [
    "read_prompts",
    "EncoderLoadError",
    "LanguageRequiredError",
    "SentenceEncoder",
    "position_limit",
    "fit_max_seq_length",
]

logger = logging.getLogger(__name__)


#: Names sentence-transformers has read for these modules since version 2 (6.x maps them to its
#: new classes), so the saved directory loads in old and new releases alike.
_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"
_ST_DENSE = "sentence_transformers.models.Dense"
_ST_TYPE_SUFFIXES = {"Transformer": "transformer", "Pooling": "pooling", "Dense": "dense", "Normalize": "normalize"}
_MODULE_ORDER = ("transformer", "pooling", "dense", "normalize")
_DENSE_DIR = "2_Dense"
_LEGACY_POOLING_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
                        "max": "pooling_mode_max_tokens"}
_OTHER_LEGACY_POOLING_KEYS = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                              "pooling_mode_lasttoken")
# Weights a checkpoint may lack without harm: BERT's pooler is never used (we pool ourselves) and
# is absent from masked-LM checkpoints; sinusoidal position tables are computed, not stored.
_IGNORABLE_MISSING = ("pooler.", "embed_positions")


class EncoderLoadError(ModsentError):
    """A model directory is missing, incomplete, or holds modules this encoder cannot run."""


class LanguageRequiredError(ModsentError):
    """The tokenizer needs a source language per text (NLLB/M2M100) and none or an unknown one was given."""


def _is_m2m100(config: Any) -> bool:
    # NLLB checkpoints use the M2M100 architecture (model_type "m2m_100").
    return getattr(config, "model_type", None) == "m2m_100"


def _load_backbone(path: Path, trust_remote_code: bool = False) -> nn.Module:
    """Load the encoder network from a ``transformers`` directory, in float32 for training."""
    from transformers import AutoConfig, AutoModel

    try:
        config = from_pretrained(AutoConfig.from_pretrained, path, EncoderLoadError, trust_remote_code)
    except EncoderLoadError:
        raise
    except (OSError, ValueError) as err:
        raise EncoderLoadError(f"{path}: not a transformers model directory ({first_line(err)})") from None
    load = dict(error=EncoderLoadError, may_lack=_IGNORABLE_MISSING, trust_remote_code=trust_remote_code,
                dtype=torch.float32)
    if not _is_m2m100(config):
        return load_weights(AutoModel.from_pretrained, path, **load)
    from transformers.models.m2m_100.modeling_m2m_100 import M2M100Encoder, M2M100Model

    if "M2M100Encoder" in (config.architectures or ()):
        return load_weights(M2M100Encoder.from_pretrained, path, **load)
    # A full translation model: load it and keep its encoder (M2M100Encoder.from_pretrained
    # would not map the `model.encoder.` prefix and silently start from random weights).
    backbone = load_weights(M2M100Model.from_pretrained, path, **load).get_encoder()
    backbone.config.architectures = ["M2M100Encoder"]
    return backbone


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise EncoderLoadError(f"{path}: cannot read it as JSON ({err})") from None


def _module_kind(entry: Mapping[str, Any], modules_json: Path) -> str:
    kind = _ST_TYPE_SUFFIXES.get(str(entry.get("type", "")).rsplit(".", 1)[-1])
    if kind is None:
        raise EncoderLoadError(
            f"{modules_json}: module {entry.get('type')!r} is not supported (only Transformer, Pooling, Dense "
            "and Normalize); re-export the model without it")
    return kind


def _pooling_from_config(config: Mapping[str, Any], source: Path) -> str:
    """The pooling mode of a ``1_Pooling/config.json`` in the legacy (boolean keys) or 6.x format."""
    if "pooling_mode" in config:
        modes = config["pooling_mode"]
        modes = [modes] if isinstance(modes, str) else list(modes)
    else:
        modes = [mode for mode, key in _LEGACY_POOLING_KEYS.items() if config.get(key)]
        modes += [key for key in _OTHER_LEGACY_POOLING_KEYS if config.get(key)]
    if len(modes) != 1 or modes[0] not in POOLING_MODES:
        raise EncoderLoadError(f"{source}: pooling {modes} is not supported; use exactly one of {', '.join(POOLING_MODES)}")
    return modes[0]


def read_prompts(root: Path) -> tuple[dict[str, str], str | None]:
    """``prompts`` and ``default_prompt_name`` of ``config_sentence_transformers.json`` (none when absent)."""
    path = root / "config_sentence_transformers.json"
    if not path.is_file():
        return {}, None
    config = _read_json(path)
    prompts, default = config.get("prompts") or {}, config.get("default_prompt_name")
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise EncoderLoadError(f"{path}: 'prompts' must map prompt names to strings, got {prompts!r}")
    if default is not None and default not in prompts:
        raise EncoderLoadError(f"{path}: default_prompt_name {default!r} is not one of the prompts {sorted(prompts)}")
    return dict(prompts), default


def _read_sentence_transformers_layout(root: Path) -> dict[str, Any]:
    """Read ``modules.json`` and module configs: transformer dir, pooling, Dense, normalisation, max length, prompts."""
    modules_json = root / "modules.json"
    entries = sorted(_read_json(modules_json), key=lambda e: e.get("idx", 0))
    kinds = [_module_kind(entry, modules_json) for entry in entries]
    if kinds != [kind for kind in _MODULE_ORDER if kind in kinds] or kinds[:1] != ["transformer"] or (
            "dense" in kinds and "pooling" not in kinds):
        raise EncoderLoadError(f"{modules_json}: modules {kinds} are not Transformer → Pooling → [Dense] → "
                               "[Normalize], each at most once; re-export the model in that layout")
    prompts, default_prompt_name = read_prompts(root)
    layout: dict[str, Any] = {"transformer_dir": root / entries[0].get("path", ""), "pooling": "mean",
                              "normalize": "normalize" in kinds, "max_seq_length": None, "dense": None,
                              "prompts": prompts, "default_prompt_name": default_prompt_name}
    for entry, kind in zip(entries, kinds):
        if kind == "pooling":
            config_path = root / entry["path"] / "config.json"
            config = _read_json(config_path)
            layout["pooling"] = _pooling_from_config(config, config_path)
            if default_prompt_name and prompts[default_prompt_name] and not config.get("include_prompt", True):
                raise EncoderLoadError(f"{config_path}: include_prompt false (pooling that skips the prompt's "
                                       "tokens) is not supported")
        elif kind == "dense":
            layout["dense"] = DenseHead.load(root / entry["path"])
    sbert_config = layout["transformer_dir"] / "sentence_bert_config.json"
    if sbert_config.is_file():
        layout["max_seq_length"] = _read_json(sbert_config).get("max_seq_length")
    return layout


class SentenceEncoder(nn.Module):
    """A ``transformers`` encoder plus pooling: texts (or token ids) in, one embedding per text out.

    ``backbone`` is the encoder network (returns ``last_hidden_state``), ``tokenizer`` a
    ``transformers`` tokenizer; ``pooling`` is ``mean``, ``cls`` or ``max``; texts are truncated
    to ``max_seq_length`` tokens; ``dense`` (optional) transforms the pooled embedding;
    ``normalize`` L2-normalises every embedding (saved as a sentence-transformers ``Normalize``
    module). ``prompts`` / ``default_prompt_name`` are sentence-transformers' prompt settings:
    the default prompt is prefixed to every text (:attr:`prompt`). Wrapping modules (the
    alignment stage's adapter) reach the network as ``encoder.backbone``.
    """

    def __init__(self, backbone: nn.Module, tokenizer: Any, pooling: str = "mean", max_seq_length: int = 64,
                 normalize: bool = False, dense: DenseHead | None = None, prompts: Mapping[str, str] | None = None,
                 default_prompt_name: str | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooling = check_pooling_mode(pooling)
        self.max_seq_length = fit_max_seq_length(max_seq_length, backbone.config)
        self.normalize = bool(normalize)
        self.dense = dense
        self.prompts = dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise EncoderLoadError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts "
                                   f"{sorted(self.prompts)}")
        self.default_prompt_name = default_prompt_name
        hidden = self._hidden_size()
        if dense is not None and dense.in_features != hidden:
            raise EncoderLoadError(
                f"the Dense module takes {dense.in_features} features but the encoder gives {hidden}")
        if self.tokenizer.pad_token_id is None:
            raise EncoderLoadError("the tokenizer has no padding token; set tokenizer.pad_token before building the encoder")

    # ------------------------------------------------------------------ loading and saving

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, pooling: str | None = None, max_seq_length: int | None = None,
                        normalize: bool | None = None, trust_remote_code: bool = False) -> "SentenceEncoder":
        """Load a sentence-transformers directory (written by :meth:`save` or by sentence-transformers)
        or a plain ``transformers`` directory (mean pooling, the tokenizer's length limit).

        Explicit arguments override what the directory says. An NLLB/M2M100 translation model
        directory yields its encoder half. A directory that ships Python code (``auto_map``) is
        refused unless ``trust_remote_code`` (the stage config's ``trust_remote_code: true``).
        """
        from transformers import AutoTokenizer

        root = require_model_dir(path, EncoderLoadError)
        if (root / "modules.json").is_file():
            layout = _read_sentence_transformers_layout(root)
        else:
            layout = {"transformer_dir": root, "pooling": "mean", "normalize": False, "max_seq_length": None,
                      "dense": None, "prompts": {}, "default_prompt_name": None}
        model_dir: Path = layout["transformer_dir"]
        backbone = _load_backbone(model_dir, trust_remote_code)
        try:
            tokenizer = from_pretrained(AutoTokenizer.from_pretrained, model_dir, EncoderLoadError, trust_remote_code)
        except (OSError, ValueError, TypeError) as err:
            raise EncoderLoadError(f"{model_dir}: no usable tokenizer ({err}); save the tokenizer beside the model") from None
        require_vocabulary(tokenizer, model_dir, EncoderLoadError)
        if max_seq_length:
            length = fit_max_seq_length(max_seq_length, backbone.config, model_dir)
        elif layout["max_seq_length"]:
            length = fit_max_seq_length(layout["max_seq_length"], backbone.config,
                                        model_dir / "sentence_bert_config.json")
        else:
            length = _length_limit(tokenizer, backbone.config)
        encoder = cls(backbone, tokenizer, pooling=pooling or layout["pooling"], max_seq_length=length,
                      normalize=layout["normalize"] if normalize is None else normalize, dense=layout["dense"],
                      prompts=layout["prompts"], default_prompt_name=layout["default_prompt_name"])
        logger.info("loaded %s from %s: %s pooling%s, max_seq_length %d%s%s", type(backbone).__name__, root,
                    encoder.pooling, ", Dense" if encoder.dense is not None else "", encoder.max_seq_length,
                    ", normalized" if encoder.normalize else "",
                    f", prompt {encoder.prompt!r}" if encoder.prompt else "")
        return encoder

    def save(self, path: str | os.PathLike) -> Path:
        """Write the sentence-transformers layout to ``path`` atomically (complete or absent) and return it.

        Call it on one rank only. ``SentenceTransformer(path)`` then loads the same model.
        """
        with atomic_directory(path) as staging:
            self.write(staging)
        return Path(path)

    def write(self, directory: str | os.PathLike, state_dict: Mapping[str, torch.Tensor] | None = None) -> None:
        """Write the sentence-transformers files into the existing ``directory`` (see :meth:`save`).

        ``state_dict`` (this module's keys, ``backbone.…``, ``dense.…``) replaces the live weights,
        e.g. the full weights a DeepSpeed engine gathers from its partitions.
        """
        import transformers

        directory = Path(directory)
        weights = dense_weights = None
        if state_dict is not None:
            weights = _with_prefix(state_dict, "backbone.")
            dense_weights = _with_prefix(state_dict, "dense.")
        self.backbone.save_pretrained(directory, state_dict=weights, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        atomic_write_json(directory / "sentence_bert_config.json",
                          {"max_seq_length": self.max_seq_length, "do_lower_case": False})
        pooling_config = {"word_embedding_dimension": self.embedding_dim,
                          **{key: self.pooling == mode for mode, key in _LEGACY_POOLING_KEYS.items()},
                          **{key: False for key in _OTHER_LEGACY_POOLING_KEYS}, "include_prompt": True}
        atomic_write_json(directory / "1_Pooling" / "config.json", pooling_config)
        modules = [{"idx": 0, "name": "0", "path": "", "type": _ST_TRANSFORMER},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_POOLING}]
        if self.dense is not None:
            self.dense.write(directory / _DENSE_DIR, dense_weights)
            modules.append({"idx": 2, "name": "2", "path": _DENSE_DIR, "type": _ST_DENSE})
        if self.normalize:
            index = len(modules)
            (directory / f"{index}_Normalize").mkdir(exist_ok=True)
            modules.append({"idx": index, "name": str(index), "path": f"{index}_Normalize", "type": _ST_NORMALIZE})
        atomic_write_json(directory / "modules.json", modules)
        atomic_write_json(directory / "config_sentence_transformers.json", {
            "__version__": {"sentence_transformers": _installed_version("sentence-transformers"),
                            "transformers": transformers.__version__, "pytorch": torch.__version__},
            "prompts": self.prompts, "default_prompt_name": self.default_prompt_name, "similarity_fn_name": "cosine",
        })

    def set_max_seq_length(self, requested: int) -> int:
        """Truncate texts at ``requested`` tokens from now on (capped by the position table); returns the length set.

        Evaluation uses it: an encoder trained on 64-token pairs still reads 512-token passages.
        """
        self.max_seq_length = fit_max_seq_length(requested, self.backbone.config, cap=True)
        return self.max_seq_length

    # ------------------------------------------------------------------ tokenising

    @property
    def needs_lang(self) -> bool:
        """True when every text needs its language to be tokenised (NLLB/M2M100 tokenizers)."""
        return hasattr(self.tokenizer, "src_lang")

    @property
    def prompt(self) -> str:
        """The text put before every input: the default prompt, or "" when the model names none."""
        return self.prompts[self.default_prompt_name] if self.default_prompt_name else ""

    def _hidden_size(self) -> int:
        config = self.backbone.config
        return int(getattr(config, "hidden_size", None) or config.d_model)

    @property
    def embedding_dim(self) -> int:
        return self.dense.out_features if self.dense is not None else self._hidden_size()

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def token_ids(self, texts: Sequence[str], langs: str | Sequence[str] | None = None) -> list[list[int]]:
        """Token ids of each text (special tokens added, truncated to ``max_seq_length``), unpadded.

        ``langs`` is one code for all texts or one per text; it is required when
        :attr:`needs_lang` (texts are then tokenised in one call per language) and ignored otherwise.
        """
        texts = [self.prompt + text for text in texts] if self.prompt else list(texts)
        if not self.needs_lang:
            return self._call_tokenizer(texts)
        if langs is None:
            raise LanguageRequiredError(
                "this model's tokenizer needs the language of every text (it is an NLLB/M2M100 tokenizer); "
                "pass lang= (e.g. deu_Latn)")
        per_text = [langs] * len(texts) if isinstance(langs, str) else list(langs)
        if len(per_text) != len(texts):
            raise ValueError(f"got {len(per_text)} languages for {len(texts)} texts")
        ids: list[list[int]] = [[] for _ in texts]
        for lang in dict.fromkeys(per_text):
            rows = [i for i, code in enumerate(per_text) if code == lang]
            self._set_source_language(lang)
            for row, row_ids in zip(rows, self._call_tokenizer([texts[i] for i in rows])):
                ids[row] = row_ids
        return ids

    def _call_tokenizer(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, truncation=True, max_length=self.max_seq_length, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]

    def _set_source_language(self, lang: str) -> None:
        if self.tokenizer.src_lang == lang:
            return
        if self.tokenizer.convert_tokens_to_ids(lang) == self.tokenizer.unk_token_id:
            raise LanguageRequiredError(f"language {lang!r} is not a language token of this model's tokenizer")
        self.tokenizer.src_lang = lang

    def tokenize(self, texts: Sequence[str], langs: str | Sequence[str] | None = None) -> Features:
        """Tokenise and right-pad ``texts`` into ``input_ids`` / ``attention_mask`` tensors (see :meth:`token_ids`)."""
        return pad_token_ids(self.token_ids(texts, langs), self.tokenizer.pad_token_id)

    # ------------------------------------------------------------------ embedding

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings ``(n, dim)`` of padded token ids ``(n, seq)``."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        embeddings = pool(hidden, attention_mask, self.pooling)
        if self.dense is not None:
            embeddings = self.dense(embeddings)
        return nn.functional.normalize(embeddings, dim=-1) if self.normalize else embeddings

    @torch.no_grad()
    def encode(self, texts: Sequence[str], lang: str | Sequence[str] | None = None, batch_size: int = 32,
               normalize: bool = False, max_tokens: int | None = None,
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` in eval mode into a float32 array ``(len(texts), dim)``, in input order.

        Texts are batched longest-first by token count (little padding), at most ``batch_size`` per
        batch and, when set, ``max_tokens`` padded tokens (:func:`length_batches`); ``normalize``
        L2-normalises the rows. ``on_batch(rows)`` is called after each batch (a progress display).
        """
        texts = list(texts)
        ids = self.token_ids(texts, lang)
        was_training = self.training
        self.eval()
        device = self.device
        out = np.zeros((len(texts), self.embedding_dim), dtype=np.float32)
        try:
            for rows in length_batches([len(row_ids) for row_ids in ids], batch_size, max_tokens):
                features = pad_token_ids([ids[i] for i in rows], self.tokenizer.pad_token_id)
                embeddings = self(**{k: v.to(device) for k, v in features.items()}).float()
                if normalize:
                    embeddings = nn.functional.normalize(embeddings, dim=-1)
                out[rows] = embeddings.cpu().numpy()
                if on_batch is not None:
                    on_batch(len(rows))
        finally:
            self.train(was_training)
        return out


_ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")


def _with_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` under ``prefix``, with the prefix cut off."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


def position_limit(config: Any) -> int | None:
    """How many tokens the model's position table holds (None when the config does not say)."""
    positions = getattr(config, "max_position_embeddings", None)
    if positions and getattr(config, "model_type", None) in _ROBERTA_LIKE:
        positions -= (config.pad_token_id or 0) + 1  # RoBERTa position ids start after the padding index
    return positions if isinstance(positions, int) and positions > 1 else None


def fit_max_seq_length(requested: int, config: Any, source: str | os.PathLike | None = None, cap: bool = False) -> int:
    """``requested`` checked against the model's position table: the one rule every stage uses.

    Beyond the table the first long batch would crash (an index error, perhaps hours in), so the
    length is refused at load naming both numbers (and ``source``, the file or model it came from),
    or capped with ``cap`` (evaluation reads every model at one length, each as far as its table goes).
    """
    where = f"{source}: " if source else ""
    if requested < 2:
        raise EncoderLoadError(f"{where}max_seq_length must be >= 2 (room for the special tokens), got {requested}")
    limit = position_limit(config)
    if limit is None or requested <= limit:
        return int(requested)
    if cap:
        return limit
    raise EncoderLoadError(f"{where}max_seq_length {requested} is beyond the model's position table of {limit} "
                           "tokens (max_position_embeddings in its config.json); set max_seq_length to at most "
                           f"{limit}")


def _length_limit(tokenizer: Any, config: Any) -> int:
    """The longest input the model takes when nothing else says: the tokenizer's limit, capped by positions."""
    positions = position_limit(config)
    usable = [v for v in (getattr(tokenizer, "model_max_length", None), positions)
              if isinstance(v, int) and 1 < v < 1_000_000]
    return min(usable) if usable else 512
