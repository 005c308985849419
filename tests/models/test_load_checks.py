"""Model files that disagree with themselves are refused at load with one line, not hours later or with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from modsent.cli import main as cli_main
from modsent.models.dense import DenseModuleError
from modsent.models.encoder import EncoderLoadError, SentenceEncoder
from modsent.testing import tiny_bert_mlm
from modsent.testing.hostile_models import dense_model, long_sequence_model, mismatched_model, pickled_model

TINY_POSITIONS = 128


def test_a_checkpoint_with_more_layers_than_its_config_is_refused(tmp_path: Path) -> None:
    model = mismatched_model(tmp_path / "model", num_hidden_layers=1)
    with pytest.raises(EncoderLoadError, match=r"holds 16 weight\(s\) config.json has no place for "
                                               r"\(bert\.encoder\.layer\.1\..*num_hidden_layers") as err:
        SentenceEncoder.from_pretrained(model)
    assert str(model) in str(err.value)


def test_a_masked_lm_checkpoint_still_loads_as_an_encoder_without_its_head() -> None:
    # The MLM head's weights (cls.predictions.*) have no place in the encoder either: they are not refused.
    assert SentenceEncoder.from_pretrained(tiny_bert_mlm()).embedding_dim == 32


def test_a_config_hidden_size_that_disagrees_with_the_weights_is_one_clear_error(tmp_path: Path) -> None:
    model = mismatched_model(tmp_path / "model", hidden_size=64)
    with pytest.raises(EncoderLoadError, match=r"do not have the shape config.json gives \(e\.g\. .*: \(32,\) stored, "
                                               r"\(64,\) from config.json\); use the config.json saved"):
        SentenceEncoder.from_pretrained(model)


@pytest.mark.parametrize("damage, message", [
    ("truncated", r"2_Dense/model.safetensors: the Dense weights are damaged or incomplete"),
    ("shape", r"2_Dense: the Dense weights .*\(16, 16\).* do not match its config.json \(in_features 32"),
])
def test_a_damaged_dense_module_is_one_clear_error(tmp_path: Path, damage: str, message: str) -> None:
    assert SentenceEncoder.from_pretrained(dense_model(tmp_path / "intact")).embedding_dim == 16
    with pytest.raises(DenseModuleError, match=message):
        SentenceEncoder.from_pretrained(dense_model(tmp_path / "model", damage))


def test_sentence_bert_config_beyond_the_position_table_is_refused_naming_both_numbers(tmp_path: Path,
                                                                                        capsys) -> None:
    model = long_sequence_model(tmp_path / "model", 512)
    text = tmp_path / "in.txt"
    text.write_text("Ein Satz.\n", encoding="utf-8")
    assert cli_main(["encode", "--model", str(model), "--input", str(text), "--output", str(tmp_path / "e.npy")]) == 2
    assert (f"{model / 'sentence_bert_config.json'}: max_seq_length 512 is beyond the model's position table of "
            f"{TINY_POSITIONS} tokens") in capsys.readouterr().err
    assert not (tmp_path / "e.npy").exists()


def test_a_training_length_beyond_the_position_table_is_refused_and_evaluation_caps_it() -> None:
    # train and align load their encoder with the config's max_seq_length
    with pytest.raises(EncoderLoadError, match=f"max_seq_length 1000 is beyond the model's position table of "
                                               f"{TINY_POSITIONS} tokens.*at most {TINY_POSITIONS}"):
        SentenceEncoder.from_pretrained(tiny_bert_mlm(), max_seq_length=1000)
    encoder = SentenceEncoder.from_pretrained(tiny_bert_mlm(), max_seq_length=TINY_POSITIONS)
    assert encoder.set_max_seq_length(1000) == TINY_POSITIONS  # evaluation reads every model as far as it goes


def test_train_refuses_a_length_beyond_the_position_table_before_training(tmp_path: Path, capsys) -> None:
    from modsent.testing import write_synthetic_corpus

    corpus = write_synthetic_corpus(tmp_path / "corpus", ["eng_Latn"], {"para": 8}, seed=0)
    status = cli_main(["train", f"model={tiny_bert_mlm()}", f"corpus={corpus}", "languages=[eng_Latn]",
                       "max_seq_length=1000", f"output_dir={tmp_path / 'out'}", "trainer.max_steps=1",
                       "trainer.global_batch_size=4", "trainer.ds_config=zero0"])
    assert status == 2
    assert f"max_seq_length 1000 is beyond the model's position table of {TINY_POSITIONS}" in capsys.readouterr().err


def test_a_pickled_checkpoint_is_refused_without_advice_to_unpickle_it(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    model = pickled_model(tmp_path / "model", marker)
    with pytest.raises(EncoderLoadError, match="refused to load this pickled checkpoint.*posix.system.*safetensors") \
            as err:
        SentenceEncoder.from_pretrained(model)
    assert "weights_only" not in str(err.value)
    assert not marker.exists()
