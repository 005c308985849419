"""Fixtures for the translate stage: one local Ray, a lively tiny NLLB, a small paraphrase corpus.

``tiny_nllb`` as built is deterministic nonsense *and constant*: at init_std 0.02 every input
decodes to the same string, so equality and byte-identity tests would pass vacuously. The
"lively" variant re-initialises the same architecture and tokenizer with init_std 1.0: outputs
then depend on the sentence and the target language and stop at varying lengths.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from modsent.corpus import open_dataset, write_dataset
from modsent.testing.synthetic import write_synthetic_corpus
from modsent.testing.tiny_models import tiny_nllb
from modsent.translate import ComputeConfig, DecodingConfig, ModelConfig, QualityConfig, RayConfig, TranslateConfig

TARGETS = ["deu_Latn", "rus_Cyrl", "zho_Hans"]  # test_translate_job.py repeats this list


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One local Ray for every test that needs it (init and shutdown cost seconds each)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=256 << 20, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=str(tmp_path_factory.mktemp("ray")), log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def lively_nllb(tmp_path_factory, model_cache) -> Path:
    """A transformers NLLB checkpoint (tiny_nllb's architecture and tokenizer, init_std 1.0)."""
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    source = tiny_nllb(model_cache)
    config = AutoConfig.from_pretrained(source)
    config.init_std = 1.0
    out = tmp_path_factory.mktemp("lively-nllb")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        AutoModelForSeq2SeqLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def ct2_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ct2-cache")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Two seed-layout datasets (one with hard negatives) with repeated sentences, and one JSONL."""
    root = tmp_path_factory.mktemp("corpus")
    write_synthetic_corpus(root, [], {"quora": 40, "wiki": 24}, triplet_datasets=["wiki"], repeat_fraction=0.3)
    wiki = open_dataset(root / "wiki")
    rows = list(wiki.iter_rows([("eng_Latn", 1), ("eng_Latn", 2)]))[:10]
    # The JSONL rows repeat wiki's sentences: dedup across datasets and formats.
    write_dataset(root / "pairs.jsonl", {("eng_Latn", 1): [r[1] for r in rows], ("eng_Latn", 2): [r[0] for r in rows]},
                  fmt="jsonl")
    return root


@pytest.fixture(scope="session")
def make_config(corpus, lively_nllb, ct2_cache):
    """Build a TranslateConfig for the test corpus; keyword arguments replace fields."""

    def build(output_dir: Path, **changes) -> TranslateConfig:
        config = TranslateConfig(
            corpora=[corpus], languages=list(TARGETS), output_dir=output_dir,
            model=ModelConfig(path=lively_nllb, quantization="float32", cache_dir=ct2_cache),
            shard_size=16,
            decoding=DecodingConfig(max_decoding_length=24),
            # One sentence per CTranslate2 batch: float32 logits change by ~1e-3 with the batch's
            # composition (padding, GEMM shapes), enough to flip a near-tie on some CPU; the reruns
            # that must equal the reference byte for byte batch differently from it.
            compute=ComputeConfig(device="cpu", num_actors=1, examples_per_task=48, max_batch_size=1),
            ray=RayConfig(progress_bars=False),
            quality=QualityConfig(write_review=True, max_review_rows_per_language=5),
        )
        return replace(config, **changes)

    return build

