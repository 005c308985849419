"""NllbTranslator against transformers generate, model preparation and conversion cache."""

from __future__ import annotations

import json
import shutil

import pytest

from modsent.testing.synthetic import synthetic_sentences
from modsent.translate import DecodingConfig, ModelError, NllbTranslator, prepare_model, resolve_device
from modsent.translate.model import check_compute_type

LANGS = ["deu_Latn", "fra_Latn", "rus_Cyrl", "zho_Hans"]


@pytest.fixture(scope="module")
def float32_model(lively_nllb, ct2_cache):
    return prepare_model(lively_nllb, "float32", ct2_cache)


# The two engines' float32 logits differ by up to ~0.02 on this random model (measured 0.022, logits of
# magnitude ~35, different summation orders): a step whose top-2 margin is below that may go either
# way on another CPU. A choice within TIE_TOLERANCE of the best logit counts as greedy.
TIE_TOLERANCE = 0.1


def test_ct2_float32_greedy_is_transformers_greedy(lively_nllb, float32_model):
    """Every token CTranslate2 float32 greedy emits is transformers' argmax at that step (teacher-forced on
    CTranslate2's own path, up to TIE_TOLERANCE for near-ties), it stops where transformers would, its text
    is transformers' decoding of those tokens, and ``generate`` itself agrees token for token on almost
    every sentence (a near-tie resolved differently changes the rest of one sentence, not many)."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    sentences = synthetic_sentences(48, seed=3)
    targets = [LANGS[i % len(LANGS)] for i in range(len(sentences))]
    decoding = DecodingConfig(beam_size=1, max_decoding_length=30)
    # One call mixes all four target languages; CTranslate2 re-batches by length (max 8 examples).
    translator = NllbTranslator(float32_model.ct2_dir, compute_type="float32", intra_threads=1, decoding=decoding,
                                max_batch_size=8)
    ours_tokens = translator.generate_tokens(sentences, targets)
    ours = translator.translate(sentences, targets)

    tokenizer = AutoTokenizer.from_pretrained(lively_nllb, src_lang="eng_Latn")
    model = AutoModelForSeq2SeqLM.from_pretrained(lively_nllb).eval()
    eos = tokenizer.eos_token_id
    for sentence, target, tokens in zip(sentences, targets, ours_tokens):
        assert tokens[0] == target
        ids = tokenizer.convert_tokens_to_ids(tokens)
        finished = len(tokens) < decoding.max_decoding_length  # else cut by the length limit, no </s> chosen
        with torch.no_grad():
            logits = model(**tokenizer(sentence, return_tensors="pt"),
                           decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id, *ids]])).logits[0]
        chosen = ids[1:] + ([eos] if finished else [])  # logits[j] predicts token j + 1 of [start, *ids]
        steps = logits[1:1 + len(chosen)]
        gap = steps.max(-1).values - steps[torch.arange(len(chosen)), torch.tensor(chosen)]
        assert gap.max().item() <= TIE_TOLERANCE, (sentence, target, tokens, gap.tolist())
    assert ours == tokenizer.batch_decode([tokenizer.convert_tokens_to_ids(t) for t in ours_tokens],
                                          skip_special_tokens=True)
    assert len(set(ours)) > len(ours) // 2  # the lively model really depends on its input

    same = 0
    for lang in LANGS:
        index = [i for i, target in enumerate(targets) if target == lang]
        inputs = tokenizer([sentences[i] for i in index], return_tensors="pt", padding=True)
        with torch.no_grad():
            generated = model.generate(**inputs, forced_bos_token_id=tokenizer.convert_tokens_to_ids(lang),
                                       num_beams=1, do_sample=False, max_length=decoding.max_decoding_length + 1)
        for i, row in zip(index, generated.tolist()):
            row = row[1:]  # without the decoder start token
            same += tokenizer.convert_ids_to_tokens(row[:row.index(eos)] if eos in row else row) == ours_tokens[i]
    assert same >= 0.85 * len(sentences), f"only {same} of {len(sentences)} sentences decode identically"


def test_blank_sentences_skip_the_model_and_languages_mix_in_one_batch(float32_model):
    translator = NllbTranslator(float32_model.ct2_dir, compute_type="float32", intra_threads=1,
                                decoding=DecodingConfig(max_decoding_length=16))
    sentence = "The old man reads a book in the park."
    mixed = translator.translate(["", sentence, "   ", sentence], ["deu_Latn", "deu_Latn", "rus_Cyrl", "rus_Cyrl"])
    assert mixed[0] == "" and mixed[2] == ""
    # Compared with the same two examples in one batch of the same shape: another batch shape may decide
    # a near-tie in the logits differently on some CPU.
    assert [mixed[1], mixed[3]] == translator.translate([sentence, sentence], ["deu_Latn", "rus_Cyrl"])
    assert mixed[1] != mixed[3]
    with pytest.raises(ValueError, match="2 sentences but 1 target"):
        translator.translate(["a", "b"], ["deu_Latn"])


def test_conversion_is_cached_per_quantization_and_self_contained(lively_nllb, ct2_cache, float32_model):
    again = prepare_model(lively_nllb, "float32", ct2_cache)
    assert again == float32_model and again.converted
    stamp = (again.ct2_dir / "model.bin").stat().st_mtime_ns
    int8 = prepare_model(lively_nllb, "int8", ct2_cache)
    assert int8.ct2_dir != float32_model.ct2_dir and int8.sha256 != float32_model.sha256
    assert (again.ct2_dir / "model.bin").stat().st_mtime_ns == stamp  # not converted twice
    assert not list(ct2_cache.glob(".tmp-*"))  # built under a temporary name, renamed when complete
    # The converted directory carries its tokenizer: it is a valid CTranslate2 model input on its own.
    direct = prepare_model(int8.ct2_dir, "int8", ct2_cache)
    assert not direct.converted and direct.tokenizer_dir == int8.ct2_dir
    out = NllbTranslator(direct.ct2_dir, compute_type="int8", intra_threads=1,
                         decoding=DecodingConfig(max_decoding_length=8)).translate(["A cat sleeps."], ["deu_Latn"])
    assert len(out) == 1 and isinstance(out[0], str)


def test_model_errors_name_the_directory(tmp_path, lively_nllb, ct2_cache):
    with pytest.raises(ModelError, match=f"{tmp_path / 'missing'} does not exist"):
        prepare_model(tmp_path / "missing", "int8", ct2_cache)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no model.bin.*no config.json"):
        prepare_model(tmp_path / "empty", "int8", ct2_cache)
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="model_type 'bert' is not an NLLB"):
        prepare_model(bert, "int8", ct2_cache)
    bare = tmp_path / "bare-ct2"
    shutil.copytree(prepare_model(lively_nllb, "float32", ct2_cache).ct2_dir, bare,
                    ignore=shutil.ignore_patterns("tokenizer*", "special_tokens*", "sentencepiece*"))
    with pytest.raises(ModelError, match="no tokenizer files"):
        prepare_model(bare, "float32", ct2_cache)


def test_device_check_rejects_what_the_machine_cannot_run():
    import ctranslate2

    assert resolve_device("cpu") == "cpu"
    check_compute_type("cpu", "int8")
    with pytest.raises(ModelError, match="float16 is not supported on cpu"):
        check_compute_type("cpu", "float16")
    if ctranslate2.get_cuda_device_count() == 0:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ModelError, match="no CUDA device"):
            resolve_device("cuda")
    else:
        assert resolve_device("auto") == "cuda"


@pytest.mark.parametrize("legacy", [False, True])
def test_actor_tokenization_without_transformers_equals_the_nllb_tokenizer(float32_model, tmp_path, legacy):
    """NllbTokens (tokenizers only, what the actors use) encodes and decodes exactly as NllbTokenizerFast,
    with truncation and with the legacy token order a tokenizer_config.json may ask for."""
    from transformers import AutoTokenizer

    from modsent.translate import NllbTokens

    tokenizer_dir = shutil.copytree(float32_model.tokenizer_dir, tmp_path / "tok",
                                    ignore=shutil.ignore_patterns("model.bin"))
    config_path = tokenizer_dir / "tokenizer_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "legacy_behaviour": legacy}))
    sentences = synthetic_sentences(40, seed=5) + ["Ünïcödé — “quotes” and 3.5 %", "x " * 40]
    hf = AutoTokenizer.from_pretrained(tokenizer_dir, src_lang="rus_Cyrl")
    ours = NllbTokens(tokenizer_dir, "rus_Cyrl", max_input_length=12)
    expected = [hf.convert_ids_to_tokens(ids) for ids in hf(sentences, truncation=True, max_length=12)["input_ids"]]
    encoded = ours.encode(sentences)
    assert encoded == expected
    assert (encoded[0][-1] == "rus_Cyrl") == legacy and max(len(row) for row in encoded) == 12
    pieces = [hf.convert_ids_to_tokens(hf(s, add_special_tokens=False)["input_ids"]) for s in sentences]
    targets = [["deu_Latn", *row, "</s>"] for row in pieces]
    assert ours.decode(targets) == hf.batch_decode([hf.convert_tokens_to_ids(row) for row in targets],
                                                   skip_special_tokens=True)


def test_actor_tokenizer_errors_name_the_file(tmp_path):
    from modsent.translate import NllbTokens

    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelError, match=f"{tmp_path / 'tokenizer.json'}: cannot read the tokenizer"):
        NllbTokens(tmp_path, "eng_Latn", max_input_length=16)


def test_a_sentencepiece_only_tokenizer_gets_a_tokenizer_json_once(float32_model, tmp_path):
    """A CTranslate2 directory whose tokenizer is only ``sentencepiece.bpe.model`` (older NLLB exports):
    prepare_model converts it once into the cache, and the actors' tokens equal NllbTokenizer's."""
    import io

    import sentencepiece
    from transformers import AutoTokenizer

    from modsent.languages import nllb_codes
    from modsent.translate import NllbTokens

    model_dir = tmp_path / "ct2"
    model_dir.mkdir()
    for name in ("model.bin", "config.json"):
        shutil.copy(float32_model.ct2_dir / name, model_dir / name)
    sentences = synthetic_sentences(300, seed=1)
    spm_model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=spm_model, vocab_size=200,
                                             model_type="bpe", bos_id=0, pad_id=1, eos_id=2, unk_id=3,
                                             minloglevel=2)
    (model_dir / "sentencepiece.bpe.model").write_bytes(spm_model.getvalue())
    (model_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "NllbTokenizer", "src_lang": "eng_Latn", "additional_special_tokens": nllb_codes()}))

    prepared = prepare_model(model_dir, "float32", tmp_path / "cache")
    assert prepared.ct2_dir == model_dir and prepared.tokenizer_dir.parent == tmp_path / "cache" / "tokenizers"
    stamp = (prepared.tokenizer_dir / "tokenizer.json").stat().st_mtime_ns
    assert prepare_model(model_dir, "float32", tmp_path / "cache").tokenizer_dir == prepared.tokenizer_dir
    assert (prepared.tokenizer_dir / "tokenizer.json").stat().st_mtime_ns == stamp  # converted once

    hf = AutoTokenizer.from_pretrained(model_dir, src_lang="deu_Latn")
    expected = [hf.convert_ids_to_tokens(ids) for ids in hf(sentences[:20])["input_ids"]]
    assert NllbTokens(prepared.tokenizer_dir, "deu_Latn", max_input_length=1024).encode(sentences[:20]) == expected
    assert expected[0][0] == "deu_Latn" and "<unk>" not in expected[0]
