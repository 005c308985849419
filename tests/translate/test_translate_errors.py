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
