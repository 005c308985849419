from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from modsent.config import ConfigError, config_hash, dump_config, load_config, load_yaml, to_dict


@dataclass
class Optim:
    lr: float = 2e-5
    schedule: Literal["constant", "warmup_linear"] = "constant"


@dataclass
class Stage:
    model: Path
    langs: list[str] = field(default_factory=lambda: ["eng_Latn"])
    batch_size: int = 32
    resume: Optional[str] = None
    optim: Optim = field(default_factory=Optim)
    extra: dict[str, int] = field(default_factory=dict)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stage.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides(tmp_path):
    path = write(tmp_path, "model: m\nlangs: [deu_Latn, fra_Latn]\noptim:\n  lr: 1e-4\n")
    cfg = load_config(Stage, path, ["batch_size=64", "optim.schedule=warmup_linear", "extra.a=3"])
    assert cfg.model == Path("m")
    assert cfg.langs == ["deu_Latn", "fra_Latn"]
    assert cfg.optim.lr == pytest.approx(1e-4)  # YAML 1.1 reads 1e-4 as a string
    assert cfg.optim.schedule == "warmup_linear"
    assert cfg.batch_size == 64 and cfg.extra == {"a": 3}


@dataclass
class Recipe:
    optim: Optim = field(default_factory=lambda: Optim(lr=1e-3, schedule="warmup_linear"))


def test_partial_nested_section_keeps_the_fields_own_defaults():
    cfg = load_config(Recipe, None, ["optim.schedule=constant"])
    assert cfg.optim.lr == pytest.approx(1e-3) and cfg.optim.schedule == "constant"


def test_comma_list_override():
    cfg = load_config(Stage, None, ["model=m", "langs=deu_Latn,fra_Latn"])
    assert cfg.langs == ["deu_Latn", "fra_Latn"]


def test_unknown_key_names_file_and_suggests(tmp_path):
    path = write(tmp_path, "model: m\nbatch_sise: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(Stage, path)
    assert "batch_sise" in str(err.value) and str(path) in str(err.value) and "batch_size" in str(err.value)


def test_unknown_nested_key(tmp_path):
    with pytest.raises(ConfigError, match=r"optim\.lrr.*did you mean 'lr'"):
        load_config(Stage, write(tmp_path, "model: m\noptim: {lrr: 1}\n"))


def test_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match=r"'batch_size' in .*stage.yaml: expected an integer, got 'many'"):
        load_config(Stage, write(tmp_path, "model: m\nbatch_size: many\n"))
    with pytest.raises(ConfigError, match=r"optim.schedule.*not one of"):
        load_config(Stage, None, ["model=m", "optim.schedule=cosine"])


def test_missing_required(tmp_path):
    with pytest.raises(ConfigError, match=r"missing required key 'model' in .*stage.yaml"):
        load_config(Stage, write(tmp_path, "batch_size: 3\n"))


def test_bad_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"stage.yaml line 2"):
        load_config(Stage, write(tmp_path, "model: m\nlangs: a: b\nbatch_size: 3\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Stage, tmp_path / "nope.yaml")


def test_dump_roundtrip_and_hash(tmp_path):
    cfg = load_config(Stage, None, ["model=m", "optim.lr=0.5"])
    dump_config(cfg, tmp_path / "out.yaml", header="modsent x --config out.yaml")
    text = (tmp_path / "out.yaml").read_text()
    assert text.startswith("# modsent x --config out.yaml\n")
    again = load_config(Stage, tmp_path / "out.yaml")
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)
    assert config_hash(load_config(Stage, None, ["model=m", "optim.lr=0.25"])) != config_hash(cfg)
    assert to_dict(cfg)["model"] == "m"


@dataclass
class Steps:
    lr: float = 1e-4
    epochs: float = 1.0
    max_steps: Optional[int] = None


@pytest.mark.parametrize("override,message", [
    ("lr=.nan", r"'lr' in command-line overrides: nan is not a finite number"),
    ("epochs=.inf", r"'epochs' in command-line overrides: inf is not a finite number"),
    ("lr=-.inf", r"'lr' in command-line overrides: -inf is not a finite number"),
    ("max_steps=3.5", r"'max_steps' in command-line overrides: expected an integer, got 3.5 "
                      r"\(a whole number, without a decimal point\) \(or null\)"),
])
def test_non_finite_numbers_and_fractional_integers_are_refused(override, message):
    """Before: lr=.nan and epochs=.inf were accepted; max_steps: 3.5 said "is not a valid Optional"."""
    with pytest.raises(ConfigError, match=message):
        load_config(Steps, None, [override])
    assert load_config(Steps, None, ["lr=1e-3", "max_steps=7"]) == Steps(lr=1e-3, max_steps=7)


def test_a_config_that_is_not_utf8_names_file_and_line(tmp_path):
    """Before: a UnicodeDecodeError traceback."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model: m\nlangs: [deu_Latn]\n# café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{path} line 3: not UTF-8 text \(byte 0xe9\); save the config as UTF-8"):
        load_config(Stage, path)


@pytest.mark.parametrize("text, line, first", [
    ("model: m\nbatch_size: 8\nbatch_size: 64\n", 3, 2),
    ("model: m\noptim:\n  lr: 1e-4\n  schedule: constant\n  lr: 1e-3\n", 5, 3),  # nested mappings too
])
def test_a_key_given_twice_is_refused_with_both_line_numbers(tmp_path, text, line, first):
    # PyYAML keeps the last value without a word: the user would train with a learning rate they did not read.
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"stage\.yaml line {line}: key '\w+' is given twice \(first on line "
                       rf"{first}\); delete one of the two"):
        load_config(Stage, path)


def test_a_yaml_merge_may_override_the_keys_it_brings_in(tmp_path):
    path = write(tmp_path, "base: &b\n  lr: 0.1\n  schedule: constant\noptim:\n  <<: *b\n  lr: 0.5\n")
    assert load_yaml(path)["optim"] == {"lr": 0.5, "schedule": "constant"}


def test_an_override_given_twice_takes_the_last_value():
    assert load_config(Stage, overrides=["model=m", "batch_size=8", "batch_size=64"]).batch_size == 64
