"""The run directory of ``modsent run``: every path a run writes, named in this one place.

::

    RUN_DIR/
      config.yaml  manifest.json  summary.md  status.md  status.png
      configs/<lang>/<stage>.yaml        each job's stage config, headed by its command
      logs/<lang>-<stage>.log            each job's output (.progress.json, .env beside it)
      artifacts/translate/corpus         the translated paraphrase corpus
      artifacts/text/<lang>.txt          a language's corpus sentences (vocab/adapt text when opted in)
      artifacts/vocab/<lang>/            tokenizer, embeddings (and model/ when trimmed)
      artifacts/{adapt,train}/<lang>/artifacts/model
      artifacts/train/Single_c/artifacts/model
      artifacts/align/<lang>/artifacts/adapter
      artifacts/pivot_cache/  artifacts/embeddings/  artifacts/heldout/<lang>/  artifacts/heldout-all/
      artifacts/parallel/{train,in-domain}/eng_Latn-<lang>/   training pairs less in-domain test pairs
      model/modular.json                 the modular model: every language's encoder and adapter
      reports/                           the evaluation's tables, heatmaps and results.json

What a stage writes inside its own output directory is the stage's to say (``STAGE.config.artifact``).
Every path is under the run directory, so a run directory can be copied or moved.
"""

from __future__ import annotations

from pathlib import Path

from modsent.io import RunDir

__all__ = ["RunLayout", "ALL", "SINGLE_C"]

ALL = "all"  # the "language" of jobs that cover every language (translate, Single_c's training, evaluate)
SINGLE_C = "Single_c"  # the paper's name for the multilingual baseline trained on every language


class RunLayout(RunDir):
    """The paths of one run directory (``root``); :class:`~modsent.io.RunDir` gives config, logs, artifacts."""

    def output_dir(self, stage: str, lang: str) -> Path:
        """Where the ``stage`` job of ``lang`` writes (translate: one job for every language)."""
        return self.artifacts / stage if stage == "translate" else self.artifacts / stage / lang

    def artifact(self, stage: str, lang: str) -> Path:
        """What that job produces, as its stage names it (what later jobs read and the manifest hashes)."""
        import importlib

        config = importlib.import_module(f"modsent.{stage}.config")
        return config.artifact(self.output_dir(stage, lang))

    def corpus(self) -> Path:
        return self.artifact("translate", ALL)

    def text_file(self, lang: str) -> Path:
        return self.artifacts / "text" / f"{lang}.txt"

    def trimmed_model(self, lang: str) -> Path:
        from modsent.vocab.config import MODEL_DIR

        return self.output_dir("vocab", lang) / MODEL_DIR

    def pivot_cache(self) -> Path:
        return self.artifacts / "pivot_cache"

    def embeddings(self) -> Path:
        return self.artifacts / "embeddings"

    def held_out(self, lang: str) -> Path:
        """The held-out test strings of ``lang`` cut to the evaluated number of pairs."""
        return self.artifacts / "heldout" / lang

    def translated_sts(self) -> Path:
        """``evaluate.translated_sts``'s set in every language: ``<lang>.jsonl`` (sentence1, sentence2, score)."""
        return self.artifacts / "translated-sts"

    def step_model(self, step: str) -> Path:
        """The modular model of the recipe's steps up to ``step`` (``evaluate.step_ablations``): its ``modular.json``."""
        return self.root / "steps" / step

    def vocab_only_model(self, lang: str) -> Path:
        """The source model with ``lang``'s new vocabulary and FOCUS embeddings, before any training."""
        return self.artifacts / "vocab-only" / lang

    def parallel_split(self, split: str, pivot: str, lang: str) -> Path:
        """``lang``'s training pairs less its in-domain test pairs (``split`` train), or those (``in-domain``)."""
        return self.artifacts / "parallel" / split / f"{pivot}-{lang}"

    def held_out_all(self) -> Path:
        """The held-out strings every language has, line-aligned across all of them."""
        return self.artifacts / "heldout-all"

    def modular_model(self) -> Path:
        return self.root / "model"

    def reports(self) -> Path:
        return self.root / "reports"

    def results(self) -> Path:
        return self.reports() / "results.json"

    def summary(self) -> Path:
        return self.root / "summary.md"

    def job_config(self, lang: str, stage: str) -> Path:
        return self.root / "configs" / lang / f"{stage}.yaml"

    def job_log(self, lang: str, stage: str, suffix: str = ".log") -> Path:
        """A job's log (``suffix`` ``.progress.json``: its live progress; ``.env``: its remote environment)."""
        return self.logs / f"{lang}-{stage}{suffix}"
