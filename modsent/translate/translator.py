"""One CTranslate2 NLLB translator, and the Ray Data actor that wraps it (or an Apertium translator).

:class:`NllbTranslator` tokenizes with the model's own tokenizer (source language token first,
``</s>`` last, as ``transformers`` does), gives every example its own target-language prefix so
one batch may mix languages, and decodes like ``tokenizer.batch_decode(..., skip_special_tokens=True)``.
It reads ``tokenizer.json`` with ``tokenizers`` alone (:class:`NllbTokens`): an actor that imported
``transformers`` (and with it torch) spent 3 s starting on a quiet 2-core machine, 10–18 s on a busy one.

:class:`TranslateActor` is the callable class handed to ``Dataset.map_batches``: each batch is
rows of unique source sentences with the target languages still to do for them; it returns one
row per (sentence, language), with the Ray node id of the actor that translated it (the job
records in each unit which nodes translated it).

Fault injection (tests only): the job passes the driver's ``MODSENT_TRANSLATE_FAULT`` environment
variable to the actors. ``MODE:K:MARKER`` makes the actor that handles its K-th batch fail once,
if the file ``MARKER`` does not exist yet (it is created first, so the fault fires once per job
even across actor restarts): ``raise`` raises an exception (the job stops; a rerun resumes),
``exit`` kills the actor process (Ray restarts it and retries the batch).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from modsent.translate.apertium import ApertiumTranslator
from modsent.translate.config import DecodingConfig
from modsent.translate.model import ModelError, check_compute_type, resolve_device

__all__ = ["NllbTokens", "NllbTranslator", "TranslateActor", "actor_translator_kwargs", "make_translator", "FAULT_ENV",
           "InjectedFault", "parse_fault"]

FAULT_ENV = "MODSENT_TRANSLATE_FAULT"


class InjectedFault(RuntimeError):
    """Raised by the test-only fault hook (see the module docstring)."""


class NllbTokens:
    """NLLB's tokenization as ``transformers``' ``NllbTokenizerFast`` does it, from ``tokenizer.json`` alone.

    Source side: ``[source_lang, pieces…, </s>]`` (``[pieces…, </s>, source_lang]`` for a tokenizer
    saved with ``legacy_behaviour``), pieces truncated so the whole fits ``max_input_length``.
    Target side: token strings back to text, special tokens skipped.

    >>> tokens = NllbTokens("nllb-ct2", "eng_Latn", max_input_length=1024)  # doctest: +SKIP
    >>> tokens.encode(["Hello world."])  # doctest: +SKIP
    [['eng_Latn', '▁Hello', '▁world', '.', '</s>']]
    """

    def __init__(self, tokenizer_dir: str | os.PathLike, source_language: str, max_input_length: int) -> None:
        from tokenizers import Tokenizer

        path = Path(tokenizer_dir) / "tokenizer.json"
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for unreadable files
            raise ModelError(f"{path}: cannot read the tokenizer ({err}); prepare the model with "
                             "modsent.translate.prepare_model, which writes it") from None
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        config_path = Path(tokenizer_dir) / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        self.legacy = bool(config.get("legacy_behaviour", False))
        self.source_language = source_language
        self.max_pieces = max_input_length - 2  # room for the language token and </s>

    def encode(self, sentences: Sequence[str]) -> list[list[str]]:
        rows = []
        for encoding in self.tokenizer.encode_batch(list(sentences), add_special_tokens=False):
            pieces = encoding.tokens[:self.max_pieces]
            rows.append(pieces + ["</s>", self.source_language] if self.legacy else [self.source_language, *pieces, "</s>"])
        return rows

    def decode(self, tokens: Sequence[Sequence[str]]) -> list[str]:
        to_id = self.tokenizer.token_to_id
        return self.tokenizer.decode_batch([[to_id(token) for token in row] for row in tokens], skip_special_tokens=True)


class NllbTranslator:
    """Translate sentences from ``source_language`` into per-sentence target languages.

    >>> t = NllbTranslator("nllb-ct2", device="cpu", compute_type="int8")  # doctest: +SKIP
    >>> t.translate(["Hello.", "Hello."], ["deu_Latn", "fra_Latn"])  # doctest: +SKIP
    ['Hallo.', 'Bonjour.']
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        tokenizer_dir: str | os.PathLike | None = None,
        *,
        source_language: str = "eng_Latn",
        device: str = "cpu",
        device_index: Sequence[int] = (0,),
        compute_type: str = "default",
        inter_threads: int = 1,
        intra_threads: int = 0,
        decoding: DecodingConfig | None = None,
        max_batch_size: int = 64,
        batch_type: str = "examples",
    ) -> None:
        import ctranslate2

        self.decoding = decoding or DecodingConfig()
        self.tokens = NllbTokens(tokenizer_dir or model_dir, source_language, self.decoding.max_input_length)
        self.translator = ctranslate2.Translator(
            str(model_dir), device=device, device_index=list(device_index), compute_type=compute_type,
            inter_threads=inter_threads, intra_threads=intra_threads)
        self.max_batch_size = max_batch_size
        self.batch_type = batch_type

    def tokenize(self, sentences: Sequence[str]) -> list[list[str]]:
        """Source tokens: ``[source_lang, pieces…, </s>]``, truncated to ``max_input_length``."""
        return self.tokens.encode(sentences)

    def generate_tokens(self, sentences: Sequence[str], targets: Sequence[str]) -> list[list[str]]:
        """Target tokens (language token first) of ``sentences[i]`` translated into ``targets[i]``."""
        if len(sentences) != len(targets):
            raise ValueError(f"{len(sentences)} sentences but {len(targets)} target languages")
        if not sentences:
            return []
        results = self.translator.translate_batch(
            self.tokenize(sentences), target_prefix=[[target] for target in targets],
            max_batch_size=self.max_batch_size, batch_type=self.batch_type, return_scores=False,
            **asdict(self.decoding))
        return [result.hypotheses[0] for result in results]

    def detokenize(self, tokens: Sequence[Sequence[str]]) -> list[str]:
        """Text of target tokens, as ``tokenizer.batch_decode(ids, skip_special_tokens=True)``."""
        return self.tokens.decode(tokens)

    def translate(self, sentences: Sequence[str], targets: Sequence[str]) -> list[str]:
        """Translate ``sentences[i]`` into ``targets[i]``; blank sentences give ``""`` without the model."""
        if len(sentences) != len(targets):
            raise ValueError(f"{len(sentences)} sentences but {len(targets)} target languages")
        outputs = [""] * len(sentences)
        todo = [i for i, sentence in enumerate(sentences) if sentence.strip()]
        texts = self.detokenize(self.generate_tokens([sentences[i] for i in todo], [targets[i] for i in todo]))
        for i, text in zip(todo, texts):
            outputs[i] = text
        return outputs


def parse_fault(spec: str | None) -> tuple[str, int, Path] | None:
    """``"raise:3:/tmp/marker"`` → ``("raise", 3, Path("/tmp/marker"))``; empty → None."""
    if not spec:
        return None
    mode, _, rest = spec.partition(":")
    count, _, marker = rest.partition(":")
    if mode not in ("raise", "exit") or not count.isdigit() or int(count) < 1 or not marker:
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected MODE:K:MARKER with MODE raise or exit, K >= 1")
    return mode, int(count), Path(marker)


def actor_translator_kwargs(translator_kwargs: dict) -> dict:
    """The driver's translator arguments made concrete in the actor's own process.

    ``device: auto`` becomes ``cuda`` when this process sees a GPU (one Ray gave it), else ``cpu``;
    on CUDA, ``device_index: null`` becomes every GPU Ray gave the actor (numbered from 0).
    """
    kwargs = dict(translator_kwargs, device=resolve_device(translator_kwargs["device"]))
    if kwargs["device"] == "cuda" and kwargs.get("device_index") is None:
        import ray

        kwargs["device_index"] = list(range(len(ray.get_gpu_ids()))) or [0]
    kwargs["device_index"] = kwargs.get("device_index") or [0]
    return kwargs


def make_translator(translator_kwargs: dict) -> NllbTranslator | ApertiumTranslator:
    """The translator of one actor: Apertium for ``backend: apertium``, else CTranslate2 NLLB on the actor's device."""
    if translator_kwargs.get("backend") == "apertium":
        return ApertiumTranslator(translator_kwargs["modes"])
    kwargs = actor_translator_kwargs(translator_kwargs)
    check_compute_type(kwargs["device"], kwargs["compute_type"])
    return NllbTranslator(**kwargs)


class TranslateActor:
    """``map_batches`` UDF: rows ``shard, pos, text, target_set`` → rows ``shard, pos, language, translation, node``.

    ``target_set`` indexes ``target_sets``: the languages still to translate that sentence into
    (a few distinct sets per job, so rows carry a small integer instead of 200 codes).
    """

    def __init__(self, translator_kwargs: dict, target_sets: list[list[str]], fault: str | None = None) -> None:
        self.translator = make_translator(translator_kwargs)
        self.target_sets = target_sets
        self.fault = parse_fault(fault)
        self.batches = 0
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()

    def _maybe_fail(self) -> None:
        self.batches += 1
        if self.fault is None or self.batches != self.fault[1]:
            return
        mode, _, marker = self.fault
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        if mode == "exit":
            os._exit(1)
        raise InjectedFault(f"injected fault on batch {self.batches} ({FAULT_ENV})")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._maybe_fail()
        shards, positions, sentences, languages = [], [], [], []
        for shard, pos, text, target_set in zip(batch["shard"], batch["pos"], batch["text"], batch["target_set"]):
            for language in self.target_sets[target_set]:
                shards.append(shard)
                positions.append(pos)
                sentences.append(str(text))
                languages.append(language)
        translations = self.translator.translate(sentences, languages)
        return {
            "shard": np.asarray(shards, dtype=np.int64),
            "pos": np.asarray(positions, dtype=np.int64),
            "language": np.asarray(languages, dtype=object),
            "translation": np.asarray(translations, dtype=object),
            "node": np.full(len(translations), self.node_id, dtype=object),
        }
