"""No command runs code from a model directory unless the user opts in, whatever is piped to stdin.

A directory whose ``config.json`` has ``auto_map`` and a ``model_type`` transformers does not know
makes transformers ask ``[y/N]`` on stdin when ``trust_remote_code`` is not passed: a ``y`` piped
into any command used to import the directory's ``configuration_*.py`` / ``modeling_*.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import yaml

from modsent.models.encoder import EncoderLoadError, SentenceEncoder
from modsent.testing import tiny_bert_mlm, write_synthetic_corpus
from modsent.testing.hostile_models import remote_code_model
from modsent.testing.ranks import child_environment

REPO = Path(__file__).resolve().parents[2]


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = child_environment(PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                                               if p), **env)
    return subprocess.run([sys.executable, "-m", "modsent.cli", *args], cwd=cwd, env=environment, input="y\n" * 20,
                          capture_output=True, text=True, timeout=300)


def _text(root: Path) -> Path:
    path = root / "text.txt"
    path.write_text("Ein Satz.\nNoch ein Satz.\n", encoding="utf-8")
    return path


def _corpus(root: Path) -> Path:
    return write_synthetic_corpus(root / "corpus", ["eng_Latn", "deu_Latn"], {"para": 8}, seed=0)


def _config(root: Path, config: dict) -> str:
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


#: Each command pointed at the model directory ``m`` (scratch directory ``r``): it must fail at load.
COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "encode": lambda m, r: ["encode", "--model", str(m), "--input", str(_text(r)), "--output", str(r / "e.npy")],
    "mine": lambda m, r: ["mine", "--model", str(m), "--src", str(_text(r)), "--src-lang", "eng_Latn",
                          "--tgt", str(_text(r)), "--tgt-lang", "deu_Latn", "--output", str(r / "mined")],
    "train": lambda m, r: ["train", f"model={m}", f"corpus={_corpus(r)}", "languages=[deu_Latn]",
                           f"output_dir={r / 'train'}", "trainer.max_steps=1", "trainer.global_batch_size=4",
                           "trainer.ds_config=zero0"],
    "align": lambda m, r: ["align", f"pivot={tiny_bert_mlm()}", f"model={m}", "languages=[deu_Latn]",
                           f"output_dir={r / 'align'}", f"data.paraphrase=[{_corpus(r)}]", "trainer.max_steps=1",
                           "trainer.global_batch_size=4", "trainer.ds_config=zero0"],
    "evaluate": lambda m, r: ["evaluate", "--config", _config(r, {
        "models": {"m": str(m)}, "output_dir": str(r / "eval"),
        "bitext": [{"name": "b", "files": {"eng_Latn": str(_text(r)), "deu_Latn": str(_text(r))}}]})],
    "vocab": lambda m, r: ["vocab", f"model={m}", f"text_files=[{_text(r)}]", "languages=[deu_Latn]",
                           f"output_dir={r / 'vocab'}"],
    "adapt": lambda m, r: ["adapt", f"model={m}", f"train_files=[{_text(r)}]", f"output_dir={r / 'adapt'}",
                           "trainer.max_steps=1", "trainer.ds_config=zero0"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_runs_a_model_directorys_code_with_y_piped_to_stdin(command: str, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    model = remote_code_model(tmp_path / "model", marker)
    done = _cli(COMMANDS[command](model, tmp_path), tmp_path, HF_HOME=str(tmp_path / "hf"))
    output = done.stdout + done.stderr
    assert not marker.exists(), f"{command} ran the model directory's code:\n{output[-3000:]}"
    assert done.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    assert f"{model / 'config.json'}: the model directory asks to run its own Python code" in output
    assert "trust_remote_code: true" in output


def test_a_tokenizer_that_ships_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    model = remote_code_model(tmp_path / "model", marker, where="tokenizer")
    with pytest.raises(EncoderLoadError, match="tokenizer_config.json: the model directory asks to run its own"):
        SentenceEncoder.from_pretrained(model)
    assert not marker.exists()


def test_the_user_can_opt_in_to_a_model_directorys_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    model = remote_code_model(tmp_path / "model", marker)
    # The directory's code is a stub that only writes the marker, so the command fails after importing it.
    _cli(COMMANDS["encode"](model, tmp_path) + ["--trust-remote-code"], tmp_path, HF_HOME=str(tmp_path / "hf"))
    assert marker.read_text(encoding="utf-8") == "configuration_evil ran\n"
