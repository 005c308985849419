"""Which model each language's training and alignment start from, as the run's job graph wires it."""

from __future__ import annotations

from pathlib import Path

from modsent.config import from_dict
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.run import plan_jobs


def _jobs(tmp_path: Path, stages: list[str], **changes) -> dict:
    data = {"run_dir": str(tmp_path / "run"), "languages": ["eng_Latn", "deu_Latn"],
            "source_model": str(tmp_path / "model"), "corpus": str(tmp_path / "corpus"), "stages": stages,
            "monolingual_text": {"eng_Latn": str(tmp_path / "en.txt"), "deu_Latn": str(tmp_path / "de.txt")},
            **changes}
    _, jobs = plan_jobs(from_dict(PipelineConfig, data, source="run.yaml"), "run.yaml")
    return {job.name: job for job in jobs}


def test_training_starts_from_the_trimmed_model_when_vocab_trims_and_nothing_adapts(tmp_path):
    art = tmp_path / "run" / "artifacts"
    jobs = _jobs(tmp_path, ["vocab", "train", "align"], vocab={"method": "trim"})
    train = jobs["deu_Latn/train"]
    assert Path(train.config.model) == art / "vocab" / "deu_Latn" / "model"
    assert ("deu_Latn", "vocab") in train.deps and "source_model" not in train.external
    assert jobs["deu_Latn/vocab"].config.method == "trim"
    align = jobs["deu_Latn/align"]
    assert Path(align.config.target) == art / "train" / "deu_Latn" / "artifacts" / "model"

    # Without training, the trimmed model itself is what alignment adapts.
    no_train = _jobs(tmp_path, ["vocab", "align"], vocab={"method": "trim"})["deu_Latn/align"]
    assert Path(no_train.config.target) == art / "vocab" / "deu_Latn" / "model"
    assert ("deu_Latn", "vocab") in no_train.deps


def test_adaptation_still_comes_first_and_focus_vocab_is_never_a_start(tmp_path):
    art = tmp_path / "run" / "artifacts"
    trimmed_then_adapted = _jobs(tmp_path, ["vocab", "adapt", "train"], vocab={"method": "trim"})["deu_Latn/train"]
    assert Path(trimmed_then_adapted.config.model) == art / "adapt" / "deu_Latn" / "artifacts" / "model"
    focus = _jobs(tmp_path, ["vocab", "train"])["deu_Latn/train"]
    assert Path(focus.config.model) == tmp_path / "model" and ("deu_Latn", "vocab") not in focus.deps
