"""The full recipe's steps as models of their own, for ``evaluate.step_ablations``: what each step adds.

For every target language the paper's recipe is vocabulary (new tokenizer + FOCUS) → masked-LM
adaptation → monolingual contrastive training → alignment. With ``evaluate.step_ablations: true`` the
evaluation also scores a modular model made of each language's model after

- ``vocab``: the source model with the new vocabulary and its FOCUS embeddings, untrained
  (:func:`modsent.adapt.stage.load_mlm_model`, saved once under the run's artifacts);
- ``mlm``: the MLM-adapted model;

both with the run's own pivot, and without adapters (their languages are compared across languages in
their own spaces, as the modular model's ``-unaligned`` view is). ``compare_unaligned`` adds the third step
(monolingual training, adapters off) and the modular model itself is the fourth. A language that skips a
step keeps the model it had before it (a target without ``vocab`` keeps the source model).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from modsent.io import atomic_directory
from modsent.pipeline.layout import ALL

if TYPE_CHECKING:
    from modsent.pipeline.plan import Planner

__all__ = ["step_models", "STEP_NAMES"]

STEP_NAMES = {"vocab": "modular-vocab-only", "mlm": "modular-mlm"}  # the evaluation's model names


def step_models(planner: Planner, writes: list[Callable[[], None]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The step models' names and directories (written by what this adds to ``writes``) and the jobs they need."""
    run, pivot = planner.run, planner.pivot
    pivot_encoder, deps = planner.encoder_of(pivot)
    focus = planner.cfg.vocab.get("method", "focus") == "focus"
    vocab_only: dict[str, Path] = {}
    mlm: dict[str, Path] = {}
    for lang in planner.targets:
        before = planner.source_model(lang)
        if planner.enabled("vocab", lang) and focus:
            vocab_only[lang] = before = run.vocab_only_model(lang)
            writes.append(functools.partial(_write_vocab_only, planner.source_model(lang), run.artifact("vocab", lang),
                                            before, run.job_log(ALL, "evaluate")))
            deps.append((lang, "vocab"))
        elif planner.enabled("vocab", lang):
            before = run.trimmed_model(lang)
            deps.append((lang, "vocab"))
        vocab_only.setdefault(lang, before)
        if planner.enabled("adapt", lang):
            before = run.artifact("adapt", lang)
            deps.append((lang, "adapt"))
        mlm[lang] = before
    models = {}
    for step, encoders in (("vocab", vocab_only), ("mlm", mlm)):
        root = run.step_model(step)
        layout = {pivot: (pivot_encoder, None), **{lang: (encoder, None) for lang, encoder in encoders.items()}}
        writes.append(functools.partial(_write_manifest, root, pivot, layout, run.root))
        models[STEP_NAMES[step]] = str(root)
    return models, deps


def _write_manifest(root: Path, pivot: str, layout: dict, within: Path) -> None:
    from modsent.models.modular import write_modular_manifest  # torch: not at planning

    write_modular_manifest(root, pivot, layout, within)


def _write_vocab_only(source: Path, vocab_dir: Path, out: Path, log: Path) -> None:
    """The source model with the vocabulary's tokenizer and FOCUS embeddings, saved as a model directory.

    In a process of its own, its output appended to ``log``: loading a model brings torch, DeepSpeed and
    their messages, which belong in a job's log, not on the orchestrator's terminal.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        done = subprocess.run([sys.executable, "-m", "modsent.pipeline.steps", str(source), str(vocab_dir), str(out)],
                              stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"writing the vocabulary-only model {out} failed (exit {done.returncode}); see {log}")


def _save_vocab_only(source: Path, vocab_dir: Path, out: Path) -> None:
    from modsent.adapt.stage import load_mlm_model

    model, tokenizer = load_mlm_model(source, vocab_dir)
    with atomic_directory(out) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)


if __name__ == "__main__":
    _save_vocab_only(*(Path(arg) for arg in sys.argv[1:4]))
