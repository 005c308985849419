"""Which model each language's training and alignment start from, as the run's job graph wires it."""

from __future__ import annotations

from pathlib import Path

from modsent.config import from_dict
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.plan import plan_jobs


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
    assert Path(align.config.model) == art / "train" / "deu_Latn" / "artifacts" / "model"

    # Without training, the trimmed model itself is what alignment adapts.
    no_train = _jobs(tmp_path, ["vocab", "align"], vocab={"method": "trim"})["deu_Latn/align"]
    assert Path(no_train.config.model) == art / "vocab" / "deu_Latn" / "model"
    assert ("deu_Latn", "vocab") in no_train.deps


def test_adaptation_still_comes_first_and_focus_vocab_is_never_a_start(tmp_path):
    art = tmp_path / "run" / "artifacts"
    trimmed_then_adapted = _jobs(tmp_path, ["vocab", "adapt", "train"], vocab={"method": "trim"})["deu_Latn/train"]
    assert Path(trimmed_then_adapted.config.model) == art / "adapt" / "deu_Latn" / "artifacts" / "model"
    focus = _jobs(tmp_path, ["vocab", "train"])["deu_Latn/train"]
    assert Path(focus.config.model) == tmp_path / "model" and ("deu_Latn", "vocab") not in focus.deps


def test_single_c_trains_the_source_on_every_languages_data_for_the_modular_steps(tmp_path):
    """Single_c: cross-lingual training of the source model, steps = the modular train + align steps."""
    from modsent.corpus import write_dataset

    english = [f"sentence {i}" for i in range(64)]
    write_dataset(tmp_path / "corpus" / "en", {("eng_Latn", 1): english, ("eng_Latn", 2): english[::-1]})
    for lang in ("deu_Latn", "ell_Grek"):
        pair = tmp_path / "parallel" / "train" / f"eng_Latn-{lang}"
        pair.mkdir(parents=True)
        for code in ("eng_Latn", lang):
            (pair / f"{code}.txt").write_text("".join(f"{code} line {i}\n" for i in range(100)), encoding="utf-8")
    jobs = _jobs(tmp_path, ["train", "align", "evaluate"], languages=["eng_Latn", "deu_Latn", "ell_Grek"],
                 parallel_text=str(tmp_path / "parallel"), parallel_text_max_pairs=80, single_c={},
                 stage_languages={"train": ["eng_Latn"]},
                 train={"trainer": {"max_steps": 7, "global_batch_size": 8, "lr": 3e-5}},
                 align={"use_corpus": False, "trainer": {"epochs": 2, "global_batch_size": 16}})
    single = jobs["all/train"].config
    # eng train: 7 steps; each align: 2 epochs of 80 pairs // 16 = 10 steps.
    assert single.trainer.max_steps == 7 + 10 + 10
    assert single.train_type == "cross" and single.partial_datasets
    assert single.languages == ["eng_Latn", "deu_Latn", "ell_Grek"]
    assert Path(single.model) == tmp_path / "model" and single.corpus == str(tmp_path / "corpus")
    assert [Path(p).name for p in single.parallel] == ["eng_Latn-deu_Latn", "eng_Latn-ell_Grek"]
    assert single.max_parallel_pairs == 80
    assert (single.trainer.global_batch_size, single.trainer.lr) == (8, 3e-5)  # the train section's settings
    evaluate = jobs["all/evaluate"]
    assert evaluate.config.models["Single_c"] == str(Path(single.trainer.output_dir) / "artifacts" / "model")
    assert ("all", "train") in evaluate.deps and "Single_c" not in evaluate.external

    fixed = _jobs(tmp_path, ["train", "align"], languages=["eng_Latn", "deu_Latn"],
                  parallel_text=str(tmp_path / "parallel"), single_c={"trainer": {"max_steps": 5}},
                  align={"use_corpus": False})
    assert fixed["all/train"].config.trainer.max_steps == 5
    assert "all/train" not in _jobs(tmp_path, ["train"])


def test_a_bridge_language_adds_its_pairs_to_the_pivots_training_and_is_still_aligned(tmp_path):
    """pivot_bridge_languages: the pivot trains cross-lingually on its paraphrases plus the bridges' pairs."""
    import pytest

    from modsent.config import ConfigError

    for lang in ("deu_Latn", "ell_Grek"):
        pair = tmp_path / "parallel" / "train" / f"eng_Latn-{lang}"
        pair.mkdir(parents=True)
        for code in ("eng_Latn", lang):
            (pair / f"{code}.txt").write_text("".join(f"{code} line {i}\n" for i in range(100)), encoding="utf-8")
    common = dict(languages=["eng_Latn", "deu_Latn", "ell_Grek"], parallel_text=str(tmp_path / "parallel"),
                  parallel_text_max_pairs=80, stage_languages={"train": ["eng_Latn"]},
                  train={"trainer": {"max_steps": 7}},
                  align={"use_corpus": False, "trainer": {"epochs": 2, "global_batch_size": 16}})
    plain = _jobs(tmp_path, ["train", "align"], **common)["eng_Latn/train"]
    assert (plain.config.languages, plain.config.train_type, plain.config.parallel) == (["eng_Latn"], "mono", [])

    jobs = _jobs(tmp_path, ["train", "align"], **common, pivot_bridge_languages=["deu"], single_c={})
    pivot = jobs["eng_Latn/train"]
    assert pivot.config.languages == ["eng_Latn", "deu_Latn"] and pivot.config.train_type == "cross"
    assert pivot.config.partial_datasets and pivot.config.max_parallel_pairs == 80
    assert [Path(p).name for p in pivot.config.parallel] == ["eng_Latn-deu_Latn"]
    assert pivot.external["parallel"] == tmp_path / "parallel" / "train"
    assert pivot.config.trainer.max_steps == 7  # the train section's steps, counted into Single_c's as before
    # German keeps its own encoder and adapter, aligned to the bridged pivot.
    align = jobs["deu_Latn/align"]
    assert Path(align.config.pivot) == tmp_path / "run" / "artifacts" / "train" / "eng_Latn" / "artifacts" / "model"
    assert Path(align.config.model) == tmp_path / "model"
    assert jobs["all/train"].config.trainer.max_steps == 7 + 10 + 10  # each align: 2 epochs of 80 pairs // 16

    def refused(stages: list[str], **changes) -> str:
        with pytest.raises(ConfigError) as err:
            _jobs(tmp_path, stages, **{**common, "pivot_bridge_languages": ["deu_Latn"], **changes})
        return str(err.value)

    assert "kat_Geor not among the run's target languages (deu_Latn, ell_Grek)" in refused(
        ["train", "align"], pivot_bridge_languages=["kat_Geor"])
    assert "parallel_text is not set" in refused(["train", "align"], parallel_text=None)
    assert "the pivot is not trained" in refused(["align"])
    assert "the pivot is not trained" in refused(["train", "align"], stage_languages={"train": ["deu_Latn"]})
    assert "eng_Latn-kat_Geor does not exist" in refused(
        ["train", "align"], languages=["eng_Latn", "deu_Latn", "kat_Geor"], pivot_bridge_languages=["kat_Geor"])
    assert "pivot_bridge_languages: unknown language code 'xx_Nope'" in refused(["train"], pivot_bridge_languages=["xx_Nope"])
    # Loading the config refuses it, so `modsent plan` (which plans without building jobs) does too.
    with pytest.raises(ConfigError, match="run.yaml.*not among the run's target languages"):
        from_dict(PipelineConfig, {**common, "run_dir": "r", "source_model": "m", "corpus": "c",
                                   "pivot_bridge_languages": ["kat_Geor"]}, source="run.yaml")


def test_alignment_scores_itself_on_the_held_out_strings_the_evaluation_reads(tmp_path):
    for split in ("train", "test"):
        pair = tmp_path / "parallel" / split / "eng_Latn-deu_Latn"
        pair.mkdir(parents=True)
        for code in ("eng_Latn", "deu_Latn"):
            (pair / f"{code}.txt").write_text("".join(f"{code} line {i}\n" for i in range(50)), encoding="utf-8")
    common = {"parallel_text": str(tmp_path / "parallel"), "parallel_text_max_test_pairs": 30}
    data = _jobs(tmp_path, ["align"], **common, align={"use_corpus": False})["deu_Latn/align"].config.data
    assert Path(data.eval_parallel) == tmp_path / "parallel" / "test" / "eng_Latn-deu_Latn" and data.eval_max_rows == 30
    own = _jobs(tmp_path, ["align"], **common, align={"use_corpus": False, "data": {"eval_max_rows": 7}})
    assert own["deu_Latn/align"].config.data.eval_max_rows == 7  # the user's setting wins


def _pairs(root: Path, split: str, lang: str, english: list[str]) -> Path:
    pair = root / split / f"eng_Latn-{lang}"
    pair.mkdir(parents=True)
    (pair / "eng_Latn.txt").write_text("".join(f"{en}\n" for en in english), encoding="utf-8")
    (pair / f"{lang}.txt").write_text("".join(f"{lang} {en}\n" for en in english), encoding="utf-8")
    (pair / "projects.txt").write_text("".join(f"project {i % 3}\n" for i in range(len(english))), encoding="utf-8")
    return pair


def test_a_language_short_of_held_out_pairs_gets_in_domain_test_pairs_no_job_reads(tmp_path):
    """parallel_text_min_test_pairs: the last training pairs become in-domain test pairs, kept from every job."""
    import pytest

    from modsent.config import ConfigError
    from modsent.corpus import write_dataset

    write_dataset(tmp_path / "corpus" / "en", {("eng_Latn", 1): ["a", "b"], ("eng_Latn", 2): ["b", "a"]})
    parallel = tmp_path / "parallel"
    _pairs(parallel, "train", "deu_Latn", [f"de train {i}" for i in range(90)])
    _pairs(parallel, "test", "deu_Latn", [f"de test {i}" for i in range(50)])  # enough held-out pairs
    greek = _pairs(parallel, "train", "ell_Grek", [f"el train {i}" for i in range(90)])  # no held-out project
    jobs = _jobs(tmp_path, ["vocab", "train", "align", "evaluate"], languages=["eng_Latn", "deu_Latn", "ell_Grek"],
                 monolingual_text={}, parallel_text=str(parallel), parallel_text_min_test_pairs=40, single_c={},
                 stage_languages={"train": ["eng_Latn"], "vocab": ["deu_Latn", "ell_Grek"]},
                 vocab={"method": "trim", "text": "parallel"}, train={"trainer": {"max_steps": 7}},
                 align={"use_corpus": False, "trainer": {"epochs": 2, "global_batch_size": 16}})
    run = tmp_path / "run" / "artifacts" / "parallel"
    # Greek: 30 pairs (a third of 90, short of 40) set aside; German reads parallel_text as it is.
    assert jobs["ell_Grek/vocab"].config.text_files == [run / "train" / "eng_Latn-ell_Grek" / "ell_Grek.txt"]
    assert jobs["ell_Grek/vocab"].config.text == "monolingual"  # plain lines to the vocab stage
    assert jobs["deu_Latn/vocab"].config.text_files == [parallel / "train" / "eng_Latn-deu_Latn" / "deu_Latn.txt"]
    assert jobs["ell_Grek/align"].config.data.parallel == [str(run / "train" / "eng_Latn-ell_Grek")]
    single = jobs["all/train"].config
    assert single.parallel == [str(parallel / "train" / "eng_Latn-deu_Latn"), str(run / "train" / "eng_Latn-ell_Grek")]
    assert single.trainer.max_steps == 7 + 2 * (90 // 16) + 2 * (60 // 16)  # Greek's steps on its 60 training pairs
    bitext = {b.name: b.files for b in jobs["all/evaluate"].config.bitext}
    assert set(bitext) == {"heldout-deu_Latn", "indomain-ell_Grek"}
    assert Path(bitext["indomain-ell_Grek"]["ell_Grek"]) == run / "in-domain" / "eng_Latn-ell_Grek" / "ell_Grek.txt"
    assert not (tmp_path / "run").exists()  # planning writes nothing

    for name in ("ell_Grek/vocab", "ell_Grek/align", "all/train"):
        jobs[name].prepare()
    jobs["all/evaluate"].prepare()
    for name in ("eng_Latn.txt", "ell_Grek.txt", "projects.txt"):
        source = (greek / name).read_text(encoding="utf-8")
        trained = (run / "train" / "eng_Latn-ell_Grek" / name).read_text(encoding="utf-8")
        tested = (run / "in-domain" / "eng_Latn-ell_Grek" / name).read_text(encoding="utf-8")
        assert trained + tested == source and trained.count("\n") == 60 and tested.count("\n") == 30
    greek_tested = (run / "in-domain" / "eng_Latn-ell_Grek" / "ell_Grek.txt").read_text(encoding="utf-8")
    assert "el train 89" in greek_tested and "el train 59" not in greek_tested

    with pytest.raises(ConfigError, match="parallel_text_min_test_pairs read parallel_text"):
        _jobs(tmp_path, ["vocab"], parallel_text_min_test_pairs=40)


def test_the_language_matrix_takes_the_most_languages_sharing_enough_held_out_strings(tmp_path):
    parallel = tmp_path / "parallel"
    shared = [f"shared {i}" for i in range(120)]
    for lang in ("deu_Latn", "ell_Grek"):
        _pairs(parallel, "train", lang, ["x"])
        _pairs(parallel, "test", lang, shared + [f"{lang} own {i}" for i in range(30)])
    _pairs(parallel, "train", "kat_Geor", ["x"])
    _pairs(parallel, "test", "kat_Geor", shared[:10] + [f"kat own {i}" for i in range(20)])
    languages = ["eng_Latn", "deu_Latn", "ell_Grek", "kat_Geor"]
    jobs = _jobs(tmp_path, ["evaluate"], languages=languages, parallel_text=str(parallel))
    matrix = {b.name: b.files for b in jobs["all/evaluate"].config.bitext}["heldout-all"]
    assert set(matrix) == {"eng_Latn", "deu_Latn", "ell_Grek"}  # Georgian shares 10 of the 120
    jobs["all/evaluate"].prepare()
    assert Path(matrix["ell_Grek"]).read_text(encoding="utf-8").splitlines()[:2] == ["ell_Grek shared 0",
                                                                                   "ell_Grek shared 1"]
    assert len(Path(matrix["eng_Latn"]).read_text(encoding="utf-8").splitlines()) == 120
