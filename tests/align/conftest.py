"""Fixtures for the alignment tests: tiny pivot and target encoders, synthetic paraphrase and parallel data.

``align_data``: both encoders come from the shared tiny random BERT
(:func:`modsent.testing.tiny_bert_mlm`: hidden 32, 2 layers, WordPiece over several synthetic
languages); the target is a seeded perturbation of it, i.e. another base encoder. Good for the
mechanics (cache, frozen base, export), but random weights carry no meaning a small adapter could
map across languages.

``learnable_align``: for the test that alignment *raises* retrieval accuracy the target must
already encode meaning that differs from the pivot's space by a systematic distortion, as real
language encoders do. So the pivot is a random word-level BERT over the synthetic English
vocabulary, and the target starts as the same network with a word-level ``deu_Latn`` vocabulary
whose token ``i`` is the synthetic translation of English token ``i`` — then every weight is
perturbed (a fixed distortion the adapter must undo). Before alignment, held-out target→English
retrieval is near chance; after ~50 steps it is far above.

Data: :mod:`modsent.testing.synthetic` English and its ``deu_Latn`` cipher.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

LANG = "deu_Latn"
MAX_LEN = 32
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class AlignFixture:
    pivot: Path
    target: Path
    paraphrase: Path  # corpus root: a pair dataset and a triplet dataset
    parallel: Path  # eng_Latn.txt + deu_Latn.txt, line-aligned
    heldout: Path  # held-out parallel pairs for retrieval


def _write_data(root: Path, pairs: int, triplets: int, parallel: int) -> None:
    from modsent.testing import write_parallel_text, write_synthetic_corpus

    write_synthetic_corpus(root / "paraphrase", [LANG], {"pairs": pairs, "triplets": triplets}, seed=3,
                           triplet_datasets=["triplets"])
    write_parallel_text(root / "parallel", LANG, parallel, seed=4)
    write_parallel_text(root / "heldout", LANG, 64, seed=9)


def _fixture(root: Path) -> AlignFixture:
    return AlignFixture(root / "pivot", root / "target", root / "paraphrase", root / "parallel", root / "heldout")


@pytest.fixture(scope="session")
def align_data(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> AlignFixture:
    from modsent.testing import save_perturbed_encoder, tiny_bert_mlm

    root = tmp_path_factory.mktemp("align")
    base = tiny_bert_mlm(model_cache)
    save_perturbed_encoder(base, root / "pivot", None, MAX_LEN)
    save_perturbed_encoder(base, root / "target", 11, MAX_LEN)
    _write_data(root, pairs=96, triplets=64, parallel=160)
    return _fixture(root)


def _word_tokenizer(words: list[str]) -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = {word: i for i, word in enumerate(SPECIAL + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


@pytest.fixture(scope="session")
def learnable_align(tmp_path_factory: pytest.TempPathFactory) -> AlignFixture:
    import torch
    from transformers import BertConfig, BertModel

    from modsent.models.encoder import SentenceEncoder
    from modsent.testing import synthetic_sentences, translate_synthetic

    root = tmp_path_factory.mktemp("learnable_align")
    english = sorted({w for s in synthetic_sentences(4000, seed=123) for w in re.findall(r"\w+|[^\w\s]", s.lower())})
    target_words = [translate_synthetic([word], LANG)[0].lower() for word in english]
    assert len(set(target_words)) == len(english)  # the synthetic cipher is one-to-one
    english_tokenizer, target_tokenizer = _word_tokenizer(english), _word_tokenizer(target_words)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(english_tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, pad_token_id=0)
    pivot = BertModel(config).eval()
    SentenceEncoder(pivot, english_tokenizer, max_seq_length=MAX_LEN).save(root / "pivot")
    target = copy.deepcopy(pivot)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in target.named_parameters():
            if "LayerNorm" not in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    SentenceEncoder(target, target_tokenizer, max_seq_length=MAX_LEN).save(root / "target")
    _write_data(root, pairs=256, triplets=128, parallel=256)
    return _fixture(root)


def _align_settings(fixture: AlignFixture, output: Path, **overrides: Any) -> dict[str, Any]:
    """The tests' ``align`` config as a YAML mapping (fp32 on CPU, ZeRO-0, batches of 16)."""
    trainer = {"ds_config": "zero0", "global_batch_size": 16, "max_steps": 12, "lr": 1e-3, "log_every": 1,
               "eval_every": 0, "save_every": 0, "eval_at_start": False, "progress_bar": False, "seed": 5,
               **overrides.pop("trainer", {})}
    return {"pivot": str(fixture.pivot), "model": str(fixture.target), "languages": [LANG], "output_dir": str(output),
            "max_seq_length": MAX_LEN,
            "data": {"paraphrase": [str(fixture.paraphrase)], "parallel": [str(fixture.parallel)],
                     **overrides.pop("data", {})},
            "trainer": trainer, **overrides}


@pytest.fixture
def align_settings() -> Callable[..., dict[str, Any]]:
    """``align_settings(fixture, output, **overrides) -> dict``: the tests' config as a YAML mapping.

    Overrides replace top-level keys; ``trainer=`` and ``data=`` mappings update those sections.
    """
    return _align_settings
