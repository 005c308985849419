"""A training job redone because its inputs changed starts afresh; an interrupted one keeps its checkpoints;
a finished one drops them."""

from pathlib import Path
from types import SimpleNamespace

from modsent.pipeline.execute import drop_finished_checkpoints, drop_stale_training_state
from modsent.pipeline.plan import StageJob


def _job(output: Path, stage: str = "adapt") -> StageJob:
    config = SimpleNamespace(trainer=SimpleNamespace(output_dir=str(output))) if stage != "vocab" else SimpleNamespace()
    return StageJob("deu_Latn", stage, config, output / "artifacts" / "model")


def test_stale_checkpoints_and_metrics_are_dropped_and_nothing_else(tmp_path):
    out = tmp_path / "artifacts" / "adapt" / "deu_Latn"
    for sub in ("checkpoints/step-00000012", "metrics", "artifacts/model"):
        (out / sub).mkdir(parents=True)
    (out / "config.yaml").write_text("x: 1\n")
    drop_stale_training_state(_job(out))
    assert sorted(p.name for p in out.iterdir()) == ["artifacts", "config.yaml"]
    drop_stale_training_state(_job(out))  # nothing left to drop
    vocab = tmp_path / "artifacts" / "vocab" / "deu_Latn"
    (vocab / "tokenizer").mkdir(parents=True)
    drop_stale_training_state(_job(vocab, "vocab"))  # not a training stage: untouched
    assert (vocab / "tokenizer").is_dir()


def test_a_finished_training_job_keeps_its_artifact_and_metrics_not_its_checkpoints(tmp_path):
    out = tmp_path / "artifacts" / "align" / "deu_Latn"
    for sub in ("checkpoints/step-00000008", "metrics", "artifacts/adapter"):
        (out / sub).mkdir(parents=True)
    drop_finished_checkpoints(_job(out, "align"))
    assert sorted(p.name for p in out.iterdir()) == ["artifacts", "metrics"]
    vocab = tmp_path / "artifacts" / "vocab" / "deu_Latn"
    (vocab / "model").mkdir(parents=True)
    drop_finished_checkpoints(_job(vocab, "vocab"))
    assert (vocab / "model").is_dir()
