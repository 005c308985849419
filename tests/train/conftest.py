"""Fixtures for the training-core tests: the shared tiny BERT MLM, synthetic text, one 2-rank job.

The model is ``modsent.testing.tiny_bert_mlm()`` (hidden 32, 2 layers, vocab ~2k, cached); the
text is ``synthetic_sentences``, on which a few dozen MLM steps visibly lower the validation loss.
The 2-rank job (``dist_job.py`` under torchrun, then the ``modsent adapt`` CLI under torchrun to
finish the run it stopped) runs once per session; several tests assert on its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from modsent.io import atomic_write_text
from modsent.testing import synthetic_sentences, tiny_bert_mlm

DIST_JOB = Path(__file__).with_name("dist_job.py")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(words: list[str]) -> Any:
    """A word-level BertTokenizerFast: ``[PAD] [UNK] [CLS] [SEP] [MASK]`` then ``words``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL + list(words))}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


@pytest.fixture(scope="session")
def tiny_mlm(model_cache: Path) -> Path:
    """A BertForMaskedLM (hidden 32, 2 layers, tied decoder) with its WordPiece tokenizer."""
    return tiny_bert_mlm(model_cache)


@pytest.fixture(scope="session")
def tiny_vocab_dir(tmp_path_factory: pytest.TempPathFactory, tiny_mlm: Path) -> Path:
    """What `modsent vocab` writes: ``tokenizer/`` (another, word-level vocabulary) + ``embeddings.safetensors``."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    directory = tmp_path_factory.mktemp("vocab")
    words = sorted({w.strip(".,").lower() for s in synthetic_sentences(200, seed=4) for w in s.split()} - {""})
    tokenizer = build_tokenizer(words + [".", ","])
    tokenizer.save_pretrained(directory / "tokenizer")
    hidden = AutoConfig.from_pretrained(tiny_mlm).hidden_size
    embeddings = torch.randn(len(tokenizer), hidden, generator=torch.Generator().manual_seed(3))
    save_file({"embeddings": embeddings}, str(directory / "embeddings.safetensors"))
    return directory


@pytest.fixture(scope="session")
def train_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 synthetic English sentences, one per line."""
    path = tmp_path_factory.mktemp("corpus") / "train.txt"
    atomic_write_text(path, "".join(s + "\n" for s in synthetic_sentences(600, seed=1)))
    return path


def adapt_settings(model: Path, train_text: Path, output_dir: Path, **trainer: Any) -> dict[str, Any]:
    """The tests' ``adapt`` config as a YAML mapping: tiny model, 32-token blocks, fp32 on CPU, 24 steps."""
    return {
        "model": str(model),
        "train_files": [str(train_text)],
        "max_seq_length": 32,
        "valid_fraction": 0.1,
        "trainer": {
            "ds_config": "zero2", "max_steps": 24, "global_batch_size": 8, "grad_accum": 2, "lr": 3e-3,
            "warmup_steps": 4, "schedule": "warmup_linear", "max_grad_norm": 1.0, "eval_every": 8, "save_every": 8,
            "log_every": 1, "progress_bar": False, "seed": 7, **trainer,
        },
        "output_dir": str(output_dir),
    }


@pytest.fixture(scope="session")
def adapt_config(tiny_mlm: Path, train_text: Path) -> Callable[..., Any]:
    """``adapt_config(output_dir, **trainer_overrides) -> AdaptConfig`` with the tests' settings."""
    from modsent.config import from_dict
    from modsent.adapt.config import AdaptConfig

    def make(output_dir: Path, **trainer: Any) -> AdaptConfig:
        return from_dict(AdaptConfig, adapt_settings(tiny_mlm, train_text, output_dir, **trainer))

    return make


@dataclass(frozen=True)
class TwoRankRuns:
    """Outputs of the shared 2-rank job; each run directory is ``workdir / name``."""

    workdir: Path
    total_steps: int
    stop_at_step: int


@pytest.fixture(scope="session")
def two_rank_runs(tmp_path_factory: pytest.TempPathFactory, tiny_mlm: Path, train_text: Path,
                  run_torchrun: Callable[..., None]) -> TwoRankRuns:
    """Run dist_job.py on 2 ranks, then finish its stopped run with ``torchrun -m modsent.cli adapt``.

    24 steps of 2 ranks × 4 blocks × 2 accumulated micro-batches, so the ZeRO-2 runs cross an
    epoch boundary; the resumable run stops at step 10 (not a save step).
    """
    runs = TwoRankRuns(tmp_path_factory.mktemp("two_ranks"), total_steps=24, stop_at_step=10)
    config = runs.workdir / "adapt.yaml"
    # 2 ranks × micro-batches of 4 blocks × 2 accumulated = 16 per step
    config.write_text(yaml.safe_dump(adapt_settings(tiny_mlm, train_text, runs.workdir / "unused",
                                                    global_batch_size=16)))
    run_torchrun([str(DIST_JOB), str(runs.workdir), str(runs.stop_at_step)], cwd=runs.workdir)
    run_torchrun(["-m", "modsent.cli", "adapt", "--config", str(config),
              f"output_dir={runs.workdir / 'zero2_resume'}"], cwd=runs.workdir)
    return runs
