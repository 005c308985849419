"""``precision: bf16_mixed`` aligns as well as fp32: bf16 autocast, float32 weights (frozen target included), fp32 pivot."""

from __future__ import annotations

from pathlib import Path

import torch

from modsent.align.stage import AlignConfig, build_align_job
from modsent.config import from_dict
from modsent.testing import write_parallel_text
from modsent.train import Trainer, init_distributed, read_metrics

STEPS, HELD_OUT = 150, 1000  # 1000 held-out pairs: one point is 10 sentences, not noise


def _align(learnable_align, align_settings, output: Path, held_out: Path, precision: str) -> tuple[Trainer, dict]:
    cfg = from_dict(AlignConfig, align_settings(
        learnable_align, output, data={"eval_parallel": str(held_out), "eval_max_rows": HELD_OUT},
        trainer={"max_steps": STEPS, "lr": 1e-3, "precision": precision}))
    info = init_distributed()
    job = build_align_job(cfg, info)
    trainer = Trainer(job.task, cfg.trainer, info)
    trainer.fit()
    (final,) = [r for r in read_metrics(output / "metrics", "eval") if r["step"] == STEPS]
    return trainer, final


def test_bf16_mixed_alignment_reaches_the_fp32_retrieval(learnable_align, align_settings, tmp_path: Path) -> None:
    held_out = write_parallel_text(tmp_path / "held_out", "deu_Latn", HELD_OUT, seed=77)
    _, fp32 = _align(learnable_align, align_settings, tmp_path / "fp32", held_out, "fp32")
    trainer, mixed = _align(learnable_align, align_settings, tmp_path / "bf16_mixed", held_out, "bf16_mixed")
    assert trainer.ds_config["bf16"]["enabled"] is False  # no DeepSpeed cast: every weight stays float32 ...
    assert {p.dtype for p in trainer.engine.module.parameters()} == {torch.float32}
    seen = []  # ... while the forward's matmuls run in bf16
    query = trainer.task.model.target.backbone.encoder.layer[0].attention.self.query
    hook = query.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    features = trainer.task.model.target.tokenize(["ein test"])
    with trainer.autocast():
        trainer.engine(features["input_ids"], features["attention_mask"])
    hook.remove()
    assert seen == [torch.bfloat16]
    assert fp32["t2p_accuracy"] > 0.2  # chance is 0.1%: the run learns, and both precisions land within one point
    for metric in ("t2p_accuracy", "p2t_accuracy"):
        assert abs(mixed[metric] - fp32[metric]) <= 0.01, (metric, mixed, fp32)
