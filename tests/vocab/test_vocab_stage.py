"""``run_vocab`` end to end: output layout, loadable tokenizer, usable embeddings, input errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertForMaskedLM

from modsent.config import ConfigError, load_config
from modsent.vocab import (
    EMBEDDINGS_FILE,
    EMBEDDINGS_KEY,
    REPORT_FILE,
    TOKENIZER_DIR,
    EmptyTextError,
    FastTextOptions,
    SourceModelError,
    TokenizerFamilyError,
    VocabError,
    VocabConfig,
    run_vocab,
)

SMALL_FASTTEXT = FastTextOptions(dim=16, epochs=2, min_count=3, threads=1)


def _config(source, texts, out, **changes) -> VocabConfig:
    return VocabConfig(model=source, text_files=list(texts), languages=["de"], output_dir=out, vocab_size=300,
                       fasttext=SMALL_FASTTEXT, **changes)


def test_run_vocab_writes_tokenizer_embeddings_and_report(source_model_dir, source_embeddings, source_tokenizer,
                                                          target_text_file, tmp_path, caplog):
    with caplog.at_level("INFO", logger="modsent.vocab.stage"):
        out = run_vocab(_config(source_model_dir, [target_text_file], tmp_path / "vocab" / "deu_Latn"))
    # No temp dirs left behind (the writer's lock file beside the output is not one).
    assert sorted(p.name for p in (tmp_path / "vocab").iterdir()) == [".deu_Latn.modsent-lock", "deu_Latn"]
    assert sorted(p.name for p in out.iterdir()) == sorted([TOKENIZER_DIR, EMBEDDINGS_FILE, REPORT_FILE])

    tokenizer = AutoTokenizer.from_pretrained(out / TOKENIZER_DIR)
    assert tokenizer.all_special_tokens == source_tokenizer.all_special_tokens
    embeddings = load_file(out / EMBEDDINGS_FILE)[EMBEDDINGS_KEY]
    assert embeddings.shape == (len(tokenizer), source_embeddings.shape[1])
    assert torch.equal(embeddings[tokenizer.cls_token_id], source_embeddings[source_tokenizer.cls_token_id])

    report = json.loads((out / REPORT_FILE).read_text())
    assert report["lang"] == "deu_Latn" and report["n_target_tokens"] == len(tokenizer)
    assert report["n_shared"] + report["n_new"] == len(tokenizer)
    assert report["n_new_without_fasttext"] >= 1
    assert report["n_new_focus"] + report["n_new_without_fasttext"] == report["n_new"]
    assert (f"{report['n_new']} new: {report['n_new_focus']} FOCUS-initialised, "
            f"{report['n_new_without_fasttext']} random") in caplog.text
    assert report["special_token_ids"]["[PAD]"] == tokenizer.pad_token_id
    assert report["config"]["fasttext"]["dim"] == 16
    assert "timings" not in report  # they differ from run to run; the artifact must not
    assert all(f"{name}=" in caplog.text for name in ("tokenizer_s", "fasttext_s", "combine_s", "total_s"))

    # What the MLM stage does with it: swap the embeddings in and run the model on target text.
    model = BertForMaskedLM.from_pretrained(source_model_dir)
    model.resize_token_embeddings(len(tokenizer))
    model.get_input_embeddings().weight.data.copy_(embeddings)
    batch = tokenizer(["Ein kurzer Satz."], return_tensors="pt")
    assert model(**batch).logits.shape[-1] == len(tokenizer)


def test_run_vocab_reuses_a_given_target_tokenizer(source_model_dir, target_tokenizer, target_text_file, tmp_path):
    target_tokenizer.save_pretrained(tmp_path / "given")
    out = run_vocab(_config(source_model_dir, [target_text_file], tmp_path / "out", target_tokenizer=tmp_path / "given"))
    assert AutoTokenizer.from_pretrained(out / TOKENIZER_DIR).get_vocab() == target_tokenizer.get_vocab()


def test_target_tokenizer_of_another_family_is_refused(source_model_dir, unigram_tokenizer_dir, target_text_file,
                                                       tmp_path):
    config = _config(source_model_dir, [target_text_file], tmp_path / "out", target_tokenizer=unigram_tokenizer_dir)
    with pytest.raises(TokenizerFamilyError, match="target tokenizer is Unigram"):
        run_vocab(config)
    assert not (tmp_path / "out").exists()


def test_empty_text_file_is_named(source_model_dir, target_text_file, tmp_path):
    blank = tmp_path / "blank.deu.txt"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(EmptyTextError, match="blank.deu.txt"):
        run_vocab(_config(source_model_dir, [target_text_file, blank], tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("remove, message", [
    ("config.json", "missing config.json"),
    ("model.safetensors", "missing model.safetensors or pytorch_model.bin"),
    ("tokenizer.json", "missing tokenizer.json"),
])
def test_missing_source_model_files_are_named(source_model_dir, target_text_file, tmp_path, remove, message):
    broken = tmp_path / "broken_model"
    shutil.copytree(source_model_dir, broken)
    for name in (remove, "tokenizer_config.json") if remove == "tokenizer.json" else (remove,):
        (broken / name).unlink()
    with pytest.raises(SourceModelError, match=message):
        run_vocab(_config(broken, [target_text_file], tmp_path / "out"))


def test_missing_source_model_dir_is_named(target_text_file, tmp_path):
    with pytest.raises(SourceModelError, match="nowhere: source model directory does not exist"):
        run_vocab(_config(tmp_path / "nowhere", [target_text_file], tmp_path / "out"))


def test_config_loads_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "vocab.yaml"
    path.write_text("model: models/labse\ntext_files: [de_1.txt, de_2.txt]\nlanguages: [de]\n"
                    "output_dir: runs/vocab/deu_Latn\n", encoding="utf-8")
    config = load_config(VocabConfig, path, overrides=["fasttext.dim=50", "vocab_size=32000"])
    assert config.fasttext == FastTextOptions(dim=50, epochs=3, min_count=10, threads=None)
    assert config.vocab_size == 32000 and len(config.text_files) == 2 and config.language == "deu_Latn"
    with pytest.raises(ConfigError):
        load_config(VocabConfig, path, overrides=["fasttext.dimension=50"])
    with pytest.raises(ConfigError, match="one language at a time; give exactly one"):
        load_config(VocabConfig, path, overrides=["languages=[de,fr]"])


def test_the_keys_of_an_earlier_release_are_refused_with_their_new_names(tmp_path):
    path = tmp_path / "vocab.yaml"
    path.write_text("source_model: models/labse\ntext_files: [de.txt]\nlang: deu_Latn\noutput_dir: o\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"key 'source_model' in .*vocab.yaml was renamed to 'model'"):
        load_config(VocabConfig, path)


def test_a_paraphrase_corpus_is_refused_as_text_unless_opted_in(source_model_dir, target_text_file, tmp_path):
    corpus = tmp_path / "corpus" / "translated"
    corpus.mkdir(parents=True)
    lines = target_text_file.read_text(encoding="utf-8").splitlines()
    half = len(lines) // 2
    (corpus / "deu_Latn_1.txt").write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
    (corpus / "deu_Latn_2.txt").write_text("\n".join(lines[half:2 * half]) + "\n", encoding="utf-8")
    with pytest.raises(VocabError, match=r"corpus is a paraphrase corpus, not monolingual text.*set text: corpus"):
        run_vocab(_config(source_model_dir, [tmp_path / "corpus"], tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()
    out = run_vocab(_config(source_model_dir, [tmp_path / "corpus"], tmp_path / "out", text="corpus"))
    assert json.loads((out / REPORT_FILE).read_text())["config"]["text"] == "corpus"
