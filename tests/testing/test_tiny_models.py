from __future__ import annotations

import json
import logging
import threading

import pytest

from modsent.errors import ModsentError
from modsent.io import sha256_json
from modsent.testing import synthetic_sentences, translate_synthetic
from modsent.testing.tiny_models import (
    BUILD_INFO_FILE,
    _cached_build,
    tiny_bert_mlm,
    tiny_nllb,
    tiny_nllb_ct2,
)

# Fresh caches (not the shared model_cache fixture): these tests are about building.


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="module")
def bert_dir(cache):
    return tiny_bert_mlm(cache)


@pytest.fixture(scope="module")
def nllb_dir(cache):
    return tiny_nllb(cache)


def test_tiny_bert_loads_with_transformers_and_knows_several_scripts(bert_dir, cache):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    assert bert_dir.parent == cache / "tiny" and bert_dir.name.startswith("bert-mlm-tiny-")
    assert (bert_dir / "model.safetensors").is_file() and not list(bert_dir.glob("*.bin"))
    model = AutoModelForMaskedLM.from_pretrained(bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(bert_dir)
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert (config.intermediate_size, config.max_position_embeddings) == (64, 128)
    assert 1800 <= len(tokenizer) <= 2000 and config.vocab_size == len(tokenizer)
    assert tokenizer.mask_token == "[MASK]" and tokenizer.pad_token_id == 0
    english = synthetic_sentences(20, seed=11)
    for lang in ("eng_Latn", "deu_Latn", "rus_Cyrl", "ell_Grek", "arb_Arab", "hin_Deva", "zho_Hans"):
        ids = tokenizer(translate_synthetic(english, lang))["input_ids"]
        tokens = [i for row in ids for i in row[1:-1]]
        assert tokens.count(tokenizer.unk_token_id) / len(tokens) < 0.01, lang
    batch = tokenizer(english[:4], return_tensors="pt", padding=True)
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss
    assert torch.isfinite(loss) and loss > 5  # random weights: about ln(vocab) = 7.6
    info = json.loads((bert_dir / BUILD_INFO_FILE).read_text())
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["recipe"]["spec"]["hidden"] == 32


def test_tiny_nllb_has_nllb_tokens_and_architecture(nllb_dir):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    tokenizer = AutoTokenizer.from_pretrained(nllb_dir, src_lang="rus_Cyrl")
    assert type(tokenizer).__name__.startswith("NllbTokenizer")
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    code_ids = tokenizer.convert_tokens_to_ids(list(FAIRSEQ_LANGUAGE_CODES))
    assert len(set(code_ids)) == 202 and tokenizer.unk_token_id not in code_ids
    (text,) = translate_synthetic(["The old man reads a book."], "rus_Cyrl")
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("rus_Cyrl") and ids[-1] == 2
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    model = AutoModelForSeq2SeqLM.from_pretrained(nllb_dir)
    config = model.config
    assert type(model).__name__ == "M2M100ForConditionalGeneration"
    assert config.scale_embedding and config.activation_function == "relu"
    assert config.decoder_start_token_id == 2 and config.tokenizer_class == "NllbTokenizer"
    assert config.vocab_size == len(tokenizer)
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 1_000_000


def test_ct2_float32_greedy_equals_transformers_generate(nllb_dir, cache):
    import ctranslate2
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    ct2_dir = tiny_nllb_ct2(cache)
    assert ct2_dir.parent == nllb_dir.parent and (ct2_dir / "model.bin").is_file()
    tokenizer = AutoTokenizer.from_pretrained(ct2_dir, src_lang="eng_Latn")  # tokenizer shipped alongside
    model = AutoModelForSeq2SeqLM.from_pretrained(nllb_dir).eval()
    sentences = synthetic_sentences(20, seed=5)
    target = "deu_Latn"
    max_new = 24
    batch = tokenizer(sentences, return_tensors="pt", padding=True)
    with torch.no_grad():
        generated = model.generate(
            **batch,
            forced_bos_token_id=tokenizer.convert_tokens_to_ids(target),
            num_beams=1,
            do_sample=False,
            max_new_tokens=max_new,
        )
    expected = [[t for t in tokenizer.convert_ids_to_tokens(row) if t not in ("<pad>", "</s>")] for row in generated]
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    source = [tokenizer.convert_ids_to_tokens(tokenizer(s)["input_ids"]) for s in sentences]
    results = translator.translate_batch(
        source, target_prefix=[[target]] * len(source), beam_size=1, max_decoding_length=max_new
    )
    got = [r.hypotheses[0] for r in results]
    assert got == expected
    texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
    assert all(t.strip() for t in texts)  # never only special tokens
    assert len(set(texts)) >= 5  # the output depends on the input


def test_ct2_quantizations_are_cached_separately(cache):
    import ctranslate2

    int8_dir = tiny_nllb_ct2(cache, quantization="int8")
    assert int8_dir != tiny_nllb_ct2(cache) and "int8" in int8_dir.name
    translator = ctranslate2.Translator(str(int8_dir), device="cpu", compute_type="int8")
    (result,) = translator.translate_batch([["eng_Latn", "\u2581The", "</s>"]], target_prefix=[["fra_Latn"]],
                                           max_decoding_length=5)
    assert result.hypotheses[0][0] == "fra_Latn" and len(result.hypotheses[0]) == 5


def test_cache_hit_does_not_rebuild(bert_dir, nllb_dir, cache, caplog):
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (bert_dir, bert_dir / "model.safetensors",
                                                                   nllb_dir, nllb_dir / "model.safetensors")}
    with caplog.at_level(logging.INFO, logger="modsent.testing.tiny_models"):
        assert tiny_bert_mlm(cache) == bert_dir
        assert tiny_nllb(cache) == nllb_dir
    assert not [r for r in caplog.records if r.getMessage().startswith("Building")]
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in before} == before


def test_builds_are_seeded(nllb_dir, tmp_path):
    from safetensors.torch import load_file

    rebuilt = tiny_nllb(tmp_path)
    assert rebuilt.name == nllb_dir.name
    first, second = load_file(nllb_dir / "model.safetensors"), load_file(rebuilt / "model.safetensors")
    assert first.keys() == second.keys() and all((first[k] == second[k]).all() for k in first)
    assert (rebuilt / "tokenizer.json").read_bytes() == (nllb_dir / "tokenizer.json").read_bytes()


def test_concurrent_callers_build_once(tmp_path, caplog):
    results = []

    def build(out):
        (out / "weights").write_text("w")
        return 1

    def call():
        results.append(_cached_build(tmp_path, "thing", {"x": 1}, build))

    with caplog.at_level(logging.INFO, logger="modsent.testing.tiny_models"):
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(set(results)) == 1 and len(results) == 4
    assert sum(r.getMessage().startswith("Building") for r in caplog.records) == 1
    assert sorted(p.name for p in results[0].iterdir()) == [BUILD_INFO_FILE, "weights"]


def test_failed_or_killed_build_leaves_no_complete_looking_entry(tmp_path):
    def crash(out):
        (out / "half_written").write_text("x")
        raise RuntimeError("build died")

    with pytest.raises(RuntimeError, match="build died"):
        _cached_build(tmp_path, "thing", {"x": 1}, crash)
    tiny = tmp_path / "tiny"
    assert [p.name for p in tiny.iterdir() if not p.name.endswith(".lock")] == []
    # A hard kill skips that cleanup and leaves its staging directory; the next build removes it.
    name = f"thing-{sha256_json({'x': 1})[:16]}"
    leftover = tiny / f".tmp-{name}.killed"
    leftover.mkdir()
    (leftover / "partial").write_text("x")
    path = _cached_build(tmp_path, "thing", {"x": 1}, lambda out: 1)
    assert path.name == name and not leftover.exists()
    assert sorted(p.name for p in path.iterdir()) == [BUILD_INFO_FILE]


def test_unknown_size_or_quantization_is_a_clear_error(tmp_path):
    with pytest.raises(ModsentError, match="unknown BERT size 'huge'"):
        tiny_bert_mlm(tmp_path, size="huge")
    with pytest.raises(ModsentError, match="unknown NLLB size"):
        tiny_nllb(tmp_path, size="small")
    with pytest.raises(ModsentError, match="quantization 'int3'"):
        tiny_nllb_ct2(tmp_path, quantization="int3")
    assert not (tmp_path / "tiny").exists()
