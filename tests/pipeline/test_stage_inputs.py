"""Which data each stage of a run reads: monolingual text for vocab/adapt, both sources for align (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modsent.config import ConfigError, from_dict
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.plan import PipelineError, plan_jobs


def _config(tmp_path: Path, **changes) -> PipelineConfig:
    data = {"run_dir": str(tmp_path / "run"), "languages": ["eng_Latn", "deu_Latn"],
            "source_model": str(tmp_path / "model"), "corpus": str(tmp_path / "corpus"),
            "stages": ["translate", "vocab", "adapt", "train", "align"],
            "translate": {"model": {"path": str(tmp_path / "nllb")}}, **changes}
    return from_dict(PipelineConfig, data, source="run.yaml")


def _job(tmp_path: Path, name: str, **changes):
    _, jobs = plan_jobs(_config(tmp_path, **changes), "run.yaml")
    return {job.name: job for job in jobs}[name]


def test_vocab_and_adapt_refuse_the_translated_corpus_unless_opted_in(tmp_path):
    with pytest.raises(PipelineError, match=r"run.yaml: vocab for eng_Latn needs monolingual text.*"
                                            r"monolingual_text.eng_Latn: /path/to/eng_Latn.txt.*vocab.text: corpus"):
        plan_jobs(_config(tmp_path), "run.yaml")
    with pytest.raises(PipelineError, match=r"adapt for eng_Latn needs monolingual text.*adapt.text: corpus"):
        plan_jobs(_config(tmp_path, vocab={"text": "corpus"}), "run.yaml")
    with pytest.raises(ConfigError, match="vocab.text must be one of monolingual, corpus"):
        _config(tmp_path, vocab={"text": "translated"})

    opted_in = {"vocab": {"text": "corpus", "vocab_size": 300}, "adapt": {"text": "corpus"}}
    vocab = _job(tmp_path, "deu_Latn/vocab", **opted_in)
    assert vocab.config.text_files == [tmp_path / "run" / "artifacts" / "text" / "deu_Latn.txt"]
    assert vocab.config.vocab_size == 300 and vocab.config.text == "corpus"  # a field of the vocab stage too
    assert ("all", "translate") in vocab.deps and vocab.prepare is not None

    # Monolingual text needs no opt-in and no translation; a language without any still fails.
    given = {"eng_Latn": str(tmp_path / "en.txt"), "deu_Latn": str(tmp_path / "de.txt")}
    adapt = _job(tmp_path, "deu_Latn/adapt", monolingual_text=given)
    assert adapt.config.train_files == [str(tmp_path / "de.txt")]
    assert ("all", "translate") not in adapt.deps and adapt.prepare is None
    with pytest.raises(PipelineError, match="vocab for deu_Latn needs monolingual text"):
        plan_jobs(_config(tmp_path, monolingual_text={"eng_Latn": given["eng_Latn"]}), "run.yaml")


def test_align_combines_the_corpus_with_parallel_text(tmp_path):
    parallel = tmp_path / "bitext"
    (parallel / "test" / "eng_Latn-deu_Latn").mkdir(parents=True)
    changes = {"parallel_text": str(parallel), "stages": ["align"]}
    both = _job(tmp_path, "deu_Latn/align", **changes).config.data
    assert both.paraphrase == [str(tmp_path / "corpus")]
    assert both.parallel == [str(parallel / "train" / "eng_Latn-deu_Latn")]
    assert both.eval_parallel == str(parallel / "test" / "eng_Latn-deu_Latn")
    # use_corpus is a real key: true is accepted, false aligns on the parallel text alone.
    assert _job(tmp_path, "deu_Latn/align", align={"use_corpus": True}, **changes).config.data.paraphrase
    alone = _job(tmp_path, "deu_Latn/align", align={"use_corpus": False, "max_seq_length": 64}, **changes).config
    assert alone.data.paraphrase == [] and alone.data.parallel and alone.max_seq_length == 64
    with pytest.raises(PipelineError, match="align for deu_Latn has no data"):
        plan_jobs(_config(tmp_path, stages=["align"], align={"use_corpus": False}), "run.yaml")
    with pytest.raises(ConfigError, match="align.use_corpus must be true or false"):
        _config(tmp_path, align={"use_corpus": "yes"})
