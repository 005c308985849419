"""Bad input fails before any output exists, with one message that says what and where."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import pytest
import yaml

from modsent.cli import main
from modsent.config import ConfigError, load_config, to_dict
from modsent.corpus import CorpusError, MisalignedCorpusError
from modsent.languages import UnknownLanguageError
from modsent.translate import ModelConfig, ModelError, TranslateConfig, run_translate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broken_corpus(corpus, tmp_path) -> Path:
    copy = tmp_path / "corpus"
    shutil.copytree(corpus, copy)
    return copy


def assert_nothing_written(output_dir: Path) -> None:
    assert not output_dir.exists(), sorted(p.name for p in output_dir.rglob("*"))


def test_unknown_language(make_config, tmp_path):
    with pytest.raises(UnknownLanguageError, match="unknown language code 'xx_Qqqq'"):
        run_translate(make_config(tmp_path / "out", languages=["deu_Latn", "xx_Qqqq"]))
    assert_nothing_written(tmp_path / "out")


def test_missing_model_directory(make_config, tmp_path, ct2_cache):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match=f"model directory {missing} does not exist"):
        run_translate(make_config(tmp_path / "out", model=ModelConfig(path=missing, cache_dir=ct2_cache)))
    assert_nothing_written(tmp_path / "out")


def test_misaligned_corpus(make_config, broken_corpus, tmp_path):
    positives = broken_corpus / "wiki" / "eng_Latn_2.txt"
    positives.write_text("".join(positives.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(MisalignedCorpusError, match="eng_Latn_2.txt ended after 23 lines"):
        run_translate(make_config(tmp_path / "out", corpora=[broken_corpus]))
    assert_nothing_written(tmp_path / "out")


def test_invalid_utf8(make_config, broken_corpus, tmp_path):
    anchors = broken_corpus / "quora" / "eng_Latn_1.txt"
    lines = anchors.read_bytes().splitlines(keepends=True)
    lines[2] = b"caf\xe9 au lait\n"  # Latin-1, not UTF-8
    anchors.write_bytes(b"".join(lines))
    with pytest.raises(CorpusError, match=r"eng_Latn_1.txt:3: invalid UTF-8"):
        run_translate(make_config(tmp_path / "out", corpora=[broken_corpus]))
    assert_nothing_written(tmp_path / "out")


def test_source_as_only_target(make_config, tmp_path):
    with pytest.raises(ConfigError, match="no target language left besides the source eng_Latn"):
        run_translate(make_config(tmp_path / "out", languages=["en"]))
    assert_nothing_written(tmp_path / "out")


def test_language_the_tokenizer_lacks_is_named(lively_nllb):
    from modsent.translate.model import check_language_tokens, load_tokenizer

    tokenizer = load_tokenizer(lively_nllb, "eng_Latn")
    check_language_tokens(tokenizer, ["deu_Latn", "zho_Hant"], lively_nllb)
    with pytest.raises(ModelError, match="no language token for xyz_Test"):
        check_language_tokens(tokenizer, ["deu_Latn", "xyz_Test"], lively_nllb)


def test_example_config_loads_and_cli_reports_one_line(tmp_path, capsys, make_config):
    first_line = (REPO / "configs" / "translate.yaml").read_text().splitlines()[0]
    assert first_line.startswith("#") and "modsent translate --config configs/translate.yaml" in first_line
    example = load_config(TranslateConfig, REPO / "configs" / "translate.yaml")
    assert example.compute.cpus_per_actor == 0.5
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(to_dict(make_config(tmp_path / "out"))))
    assert main(["translate", "--config", str(config_path), "languages=[deu_Latn,xx_Qqqq]"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown language code 'xx_Qqqq'" in err
    assert_nothing_written(tmp_path / "out")


def test_ray_job_entry_point_reports_bad_input(tmp_path, capsys, make_config):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(to_dict(make_config(tmp_path / "out"))))
    entry = runpy.run_path(str(REPO / "ray_jobs" / "translate_paraphrases.py"))
    assert entry["main"](["--config", str(config_path), "model.path=/no/such/model"]) == 2
    assert "model directory /no/such/model does not exist" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "out")


@pytest.fixture(scope="module")
def float32_ct2(lively_nllb, ct2_cache):
    from modsent.translate import prepare_model

    return prepare_model(lively_nllb, "float32", ct2_cache)


@pytest.mark.parametrize("damage", ["truncated", "extended"])
def test_a_damaged_ctranslate2_model_is_refused_in_the_driver(float32_ct2, tmp_path, damage):
    """Before: every Ray actor died loading it (a 262-line ActorDiedError)."""
    from modsent.translate import prepare_model

    model = shutil.copytree(float32_ct2.ct2_dir, tmp_path / "ct2")
    weights = model / "model.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[:len(data) * 2 // 3] if damage == "truncated" else data + b"\0" * 16)
    with pytest.raises(ModelError, match=rf"{weights}: damaged or incomplete CTranslate2 model \("
                                         r"(variable .* needs \d+ bytes|16 bytes follow the last variable)"):
        prepare_model(model, "float32", tmp_path / "cache")


def test_length_limits_beyond_the_models_positions_are_lowered_to_them(float32_ct2, caplog):
    """Before: a 10k-character line with max_input_length 1024 > the model's 256 positions crashed the actors."""
    from modsent.translate import DecodingConfig, NllbTranslator
    from modsent.translate.model import fit_decoding

    assert float32_ct2.max_positions == (256, 256)  # the tiny NLLB's max_position_embeddings
    fitted = fit_decoding(DecodingConfig(max_input_length=1024, max_decoding_length=300), float32_ct2)
    assert (fitted.max_input_length, fitted.max_decoding_length) == (256, 256)
    assert "decoding.max_input_length 1024 is more than the model's 256 positions" in caplog.text
    assert fit_decoding(DecodingConfig(max_input_length=64), float32_ct2).max_input_length == 64
    translator = NllbTranslator(float32_ct2.ct2_dir, compute_type="float32", intra_threads=1,
                                decoding=fit_decoding(DecodingConfig(max_decoding_length=8), float32_ct2))
    (long_line,) = translator.translate(["word " * 2000], ["deu_Latn"])
    assert long_line


def test_a_file_as_model_path_says_it_is_a_file(float32_ct2, tmp_path):
    from modsent.translate import prepare_model

    with pytest.raises(ModelError, match=rf"model.path {float32_ct2.ct2_dir / 'model.bin'} is a file, not a model "
                                         "directory"):
        prepare_model(float32_ct2.ct2_dir / "model.bin", "float32", tmp_path / "cache")


def test_an_unwritable_output_directory_fails_before_any_translation(make_config, unwritable_dir):
    """Before: it failed only after translating everything, with a PermissionError traceback."""
    from modsent.output_checks import OutputError

    with pytest.raises(OutputError, match=rf"{unwritable_dir}: the translate output directory is not writable"):
        run_translate(make_config(unwritable_dir))
