from __future__ import annotations

import numpy as np
import pytest

from modsent.evaluate.belebele import evaluate_belebele
from modsent.evaluate.cache import EmbeddingCache, EncoderOutputError
from modsent.models.encoders import Encoder, SingleModelEncoder, encode_length_sorted
from modsent.corpus.evaluation_data import STSPairs, read_belebele
from modsent.evaluate.sts import evaluate_sts, recombine_aligned
from modsent.languages import nllb_codes

LANGS20 = nllb_codes()[:20]


def _aligned_sts(langs, n=8):
    gold = np.linspace(0, 5, n)
    return {lang: STSPairs(lang, lang, tuple(f"{lang} one {i}" for i in range(n)),
                           tuple(f"{lang} two {i}" for i in range(n)), gold, f"{lang}.jsonl") for lang in langs}


def test_a_20_language_matrix_costs_20_encodes_per_encoder_mode(tmp_path, fakes):
    fakes.write_belebele(tmp_path, LANGS20, n_passages=2, questions_per_passage=2)
    belebele = read_belebele(tmp_path, LANGS20)
    sts_pairs = recombine_aligned(_aligned_sts(LANGS20))
    assert len(sts_pairs) == 400

    cache = EmbeddingCache()
    modular, baseline = fakes.HashEncoder(), SingleModelEncoder(_Multilingual(fakes))
    for name, encoder in (("modular", modular), ("baseline", baseline)):
        scores = evaluate_belebele(belebele, name, encoder, cache)
        scores += evaluate_sts("sts_x", sts_pairs, name, encoder, cache)
        assert sum(1 for s in scores if s.task == "belebele" and s.directed) == 400
    # modular: each language once without and once with its adapter, per data set
    assert cache.encode_calls[("modular", False)] == 20 + 20
    assert cache.encode_calls[("modular", True)] == 20 + 20
    assert len(modular.calls) == 80
    # a single multilingual model has one space: one encode per language and data set
    assert cache.encode_calls[("baseline", False)] == 20 + 20
    assert cache.encode_calls[("baseline", True)] == 0


class _Multilingual:
    """A callable(texts) -> rows, as SingleModelEncoder wraps; counts its batches."""

    def __init__(self, fakes):
        self.inner = fakes.HashEncoder(shared_space=True)

    def __call__(self, texts):
        return self.inner.encode(texts, "any", False)


def test_disk_cache_serves_a_second_run_without_encoding(tmp_path, fakes):
    texts = ["b text", "a", "ccc", "a"]
    first_encoder = fakes.HashEncoder(fingerprint="weights-sha-1")
    first = EmbeddingCache(tmp_path / "cache").embed("m", first_encoder, "deu_Latn", True, "d", texts)
    assert [count for _, _, count in first_encoder.calls] == [3]  # duplicates encoded once
    np.testing.assert_array_equal(first[1], first[3])
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    assert not list((tmp_path / "cache").glob(".tmp-*"))

    second_encoder = fakes.HashEncoder(fingerprint="weights-sha-1")
    cache = EmbeddingCache(tmp_path / "cache")
    again = cache.embed("m", second_encoder, "deu_Latn", True, "d", texts)
    np.testing.assert_array_equal(again, first)
    assert second_encoder.calls == [] and cache.disk_hits[("m", True)] == 1

    other_weights = fakes.HashEncoder(fingerprint="weights-sha-2")
    EmbeddingCache(tmp_path / "cache").embed("m", other_weights, "deu_Latn", True, "d", texts)
    assert len(other_weights.calls) == 1
    no_fingerprint = fakes.HashEncoder()
    EmbeddingCache(tmp_path / "cache").embed("m", no_fingerprint, "deu_Latn", True, "d", texts)
    assert len(no_fingerprint.calls) == 1 and len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_cache_lookups_and_errors(fakes):
    cache = EmbeddingCache()
    encoder = fakes.HashEncoder()
    rows = cache.embed("m", encoder, "eng_Latn", False, "d", ["x", "y", "z"])
    np.testing.assert_array_equal(cache.embed("m", encoder, "eng_Latn", False, "d", ["z", "x"]), rows[[2, 0]])
    assert len(encoder.calls) == 1
    with pytest.raises(KeyError, match="request all of a language's texts in the first call"):
        cache.embed("m", encoder, "eng_Latn", False, "d", ["new"])
    cache.release("m")  # frees memory: the next request encodes again
    cache.embed("m", encoder, "eng_Latn", False, "d", ["new"])
    assert len(encoder.calls) == 2 and cache.encode_calls[("m", False)] == 2

    class Broken:
        def encode(self, texts, lang, aligned):
            return np.zeros((len(texts) + 1, 4))

    with pytest.raises(EncoderOutputError, match=r"'broken' returned shape \(3, 4\) for 2 texts"):
        cache.embed("broken", Broken(), "eng_Latn", False, "d", ["a", "b"])
    assert isinstance(Broken(), Encoder)


def test_length_sorted_encoding_batches_by_length_and_restores_order():
    texts = ["a" * n for n in (3, 10, 1, 7, 5, 2, 8)]
    batches = []

    def encode_batch(batch):
        batches.append([len(t) for t in batch])
        return np.array([[len(t), 1.0] for t in batch])

    rows = encode_length_sorted(encode_batch, texts, batch_size=3)
    assert batches == [[10, 8, 7], [5, 3, 2], [1]]
    np.testing.assert_array_equal(rows[:, 0], [3, 10, 1, 7, 5, 2, 8])
    batches.clear()
    encode_length_sorted(encode_batch, texts, batch_size=3, sort_by_length=False)
    assert batches == [[3, 10, 1], [7, 5, 2], [8]]


def test_single_model_encoder_wraps_a_sentence_transformer(model_cache):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from modsent.testing.tiny_models import tiny_bert_mlm

    transformer = Transformer(str(tiny_bert_mlm(model_cache)))
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension())],
                                device="cpu")
    encoder = SingleModelEncoder(model, batch_size=2, fingerprint="tiny")
    texts = ["the old man reads a book", "a", "the park", "a round box is sold by the queen in the park"]
    rows = encoder.encode(texts, lang="eng_Latn", aligned=True)
    assert rows.shape == (4, transformer.get_embedding_dimension()) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    direct = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(rows, direct, atol=1e-5)
    assert not encoder.effective_aligned("deu_Latn", True)
