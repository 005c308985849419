"""``modsent evaluate``: turn the config's model paths into encoders (:func:`modsent.models.encoders.load_encoder`)
and evaluate them side by side (:func:`modsent.evaluate.runner.run_evaluation`)."""

from __future__ import annotations

from typing import Any

from modsent.dirlock import hold_directory
from modsent.errors import ModsentError
from modsent.evaluate.config import EvaluateConfig
from modsent.evaluate.runner import run_evaluation
from modsent.models.encoders import ModularModelEncoder, UnalignedView, load_encoder
from modsent.output_checks import check_not_overwriting

__all__ = ["run"]


def run(config: EvaluateConfig) -> dict[str, Any]:
    """Load every model named in ``config.models`` and evaluate them side by side."""
    if not config.models:
        raise ModsentError("evaluate: `models` is empty; name at least one model (name: path)")
    check_not_overwriting({"output_dir": config.output_dir}, {
        **{f"models.{name}": path for name, path in config.models.items()},
        **{f"sts {sts.name}": sts.files.values() for sts in config.sts},
        "belebele.directory": config.belebele.directory,
        **{f"bitext {bitext.name}": bitext.files.values() for bitext in config.bitext}})
    hold_directory(config.output_dir, "modsent evaluate")
    encoders = {name: load_encoder(path, config.batch_size, config.max_seq_length, config.max_batch_tokens,
                                   config.trust_remote_code)
                for name, path in config.models.items()}
    if config.compare_unaligned:
        for name, encoder in list(encoders.items()):
            # A model without any adapter (a step before alignment) is its own unaligned view.
            if isinstance(encoder, ModularModelEncoder) and any(
                    module.adapter is not None for module in encoder.model.modules.values()):
                encoders[f"{name}-unaligned"] = UnalignedView(encoder)
    return run_evaluation(config, encoders)
