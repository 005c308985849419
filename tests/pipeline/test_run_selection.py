"""``modsent run`` selections (--stages, --languages, --from-stage) and input checks, before any work."""

from __future__ import annotations

import pytest

from modsent.cli import main
from modsent.config import from_dict
from modsent.errors import ModsentError
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.checks import select_languages, select_stages
from modsent.pipeline.execute import run_pipeline
from modsent.pipeline.plan import PipelineError
from modsent.testing.synthetic import write_synthetic_corpus
from modsent.testing.tiny_models import tiny_bert_mlm


@pytest.fixture(scope="module")
def setup(tmp_path_factory, model_cache):
    root = tmp_path_factory.mktemp("selection")
    corpus = write_synthetic_corpus(root / "corpus", ["eng_Latn", "deu_Latn"], {"para": 40})
    return {"source_model": str(tiny_bert_mlm(model_cache)), "corpus": str(corpus),
            "languages": ["eng_Latn", "deu_Latn"], "stages": ["vocab", "adapt", "train", "align"],
            "vocab": {"text": "corpus"}, "adapt": {"text": "corpus"}}


def test_a_misspelt_stage_or_a_language_outside_the_run_names_the_closest_valid_one():
    """Before: `--stages trian` and `--languages fra` ran nothing and exited 0."""
    assert select_stages(["train", "align"], "--stages") == ["train", "align"]
    with pytest.raises(PipelineError, match=r"--stages trian: no such stage; did you mean 'train'\? \(stages: translate"):
        select_stages(["train", "trian"], "--stages")
    with pytest.raises(PipelineError, match=r"--from-stage evaluation: no such stage; did you mean 'evaluate'\?"):
        select_stages(["evaluation"], "--from-stage")
    run = ["eng_Latn", "deu_Latn", "rus_Cyrl"]
    assert select_languages(["de", "rus_Cyrl"], run) == ["deu_Latn", "rus_Cyrl"]
    with pytest.raises(ModsentError, match=r"'deu_Latm': NLLB has no Latm script for German; available: deu_Latn"):
        select_languages(["deu_Latm"], run)  # not in the registry: the registry's own message
    with pytest.raises(PipelineError, match=r"--languages ukr: this run has no ukr_Cyrl \(Ukrainian\); "
                                            r"did you mean 'rus_Cyrl'\? \(the run's languages: eng_Latn, deu_Latn, rus_Cyrl\)"):
        select_languages(["ukr"], run)


def test_run_refuses_bad_selections_and_leaves_no_run_directory(setup, tmp_path, capsys):
    """Before: a run that failed its checks left a skeleton (logs/, metrics/, artifacts/) that looked like a run."""
    cfg = from_dict(PipelineConfig, dict(setup, run_dir=str(tmp_path / "a")))
    with pytest.raises(PipelineError, match="did you mean 'train'"):
        run_pipeline(cfg, stages=["trian"])
    with pytest.raises(PipelineError, match="this run has no fra_Latn"):
        run_pipeline(cfg, languages=["fr"])
    with pytest.raises(PipelineError, match="needs the output of .*train"):
        run_pipeline(cfg, stages=["align"])
    assert not (tmp_path / "a").exists()
    config = tmp_path / "pipeline.yaml"
    config.write_text("".join(f"{key}: {value}\n" for key, value in dict(setup, run_dir=str(tmp_path / "b")).items()))
    assert main(["run", str(config), "--stages", "trian"]) == 2
    assert "did you mean 'train'" in capsys.readouterr().err and not (tmp_path / "b").exists()
