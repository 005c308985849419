"""`modsent evaluate` loads every encoder at the evaluation length (512, capped by positions), not its training length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from modsent.models.encoders import load_encoder
from modsent.evaluate.config import BitextConfig, EvaluateConfig
from modsent.models.encoder import SentenceEncoder
from modsent.models.modular import write_modular_manifest
from modsent.testing import save_perturbed_encoder, synthetic_sentences, tiny_bert_mlm

TINY_POSITIONS = 128  # tiny_bert_mlm's position table


@pytest.fixture(scope="module")
def trained_at_64(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    """A sentence encoder saved with max_seq_length 64, as `modsent train` writes one by default."""
    out = tmp_path_factory.mktemp("eval_length") / "encoder"
    return save_perturbed_encoder(tiny_bert_mlm(cache_dir=model_cache), out, seed=None, max_seq_length=64)


def _passage(encoder: SentenceEncoder) -> str:
    passage = " ".join(synthetic_sentences(40, seed=5))
    tokens = len(encoder.tokenizer(passage)["input_ids"])
    assert tokens > 300, tokens
    return passage


def _embedding_at(path: Path, length: int, text: str) -> np.ndarray:
    return SentenceEncoder.from_pretrained(path, max_seq_length=length).encode([text], normalize=True)


def test_a_64_token_encoder_reads_a_300_token_passage_beyond_64_tokens(trained_at_64: Path, tmp_path: Path) -> None:
    saved = SentenceEncoder.from_pretrained(trained_at_64)
    assert saved.max_seq_length == 64
    passage = _passage(saved)
    at_64, at_positions = (_embedding_at(trained_at_64, n, passage) for n in (64, TINY_POSITIONS))
    assert not np.allclose(at_64, at_positions, atol=1e-4)  # the tokens past 64 change the embedding

    assert EvaluateConfig().max_seq_length == 512
    single = load_encoder(trained_at_64)  # the evaluator's default: 512, capped by the 128 positions
    np.testing.assert_allclose(single.encode([passage], "eng_Latn", aligned=False), at_positions, atol=1e-5)

    write_modular_manifest(tmp_path / "modular", "eng_Latn", {"eng_Latn": (trained_at_64, None),
                                                              "deu_Latn": (trained_at_64, None)})
    modular = load_encoder(tmp_path / "modular")
    for lang in ("eng_Latn", "deu_Latn"):
        np.testing.assert_allclose(modular.encode([passage], lang, aligned=False), at_positions, atol=1e-5)

    at_training_length = load_encoder(trained_at_64, max_seq_length=64)
    np.testing.assert_allclose(at_training_length.encode([passage], "eng_Latn", aligned=False), at_64, atol=1e-5)
    assert at_training_length.fingerprint != single.fingerprint  # the embedding cache keeps the two apart


def test_evaluation_length_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="max_seq_length"):
        EvaluateConfig(max_seq_length=1)


def test_views_of_one_modular_model_share_the_pivot_embeddings_on_disk_and_a_new_adapter_is_reencoded(
        tmp_path: Path, model_cache: Path) -> None:
    """compare_unaligned encodes the pivot's texts once; rewriting an adapter in place is never a stale hit."""
    from modsent.evaluate.stage import run as run_evaluate
    from modsent.testing import save_random_adapter, save_tiny_modular

    model = save_tiny_modular(tmp_path / "modular", tiny_bert_mlm(cache_dir=model_cache),
                              {"eng_Latn": None, "deu_Latn": 1})
    english, german = synthetic_sentences(12, seed=1), synthetic_sentences(12, seed=2)
    for lang, lines in (("eng_Latn", english), ("deu_Latn", german)):
        (tmp_path / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def evaluate(output: str) -> dict:
        config = EvaluateConfig(models={"modular": str(model)}, output_dir=tmp_path / output, tasks=["bitext"],
                                languages=["eng_Latn", "deu_Latn"], compare_unaligned=True,
                                cache_dir=tmp_path / "embeddings", heatmaps=False,
                                bitext=[BitextConfig(name="b", files={lang: str(tmp_path / f"{lang}.txt")
                                                                      for lang in ("eng_Latn", "deu_Latn")})])
        return run_evaluate(config)

    first = evaluate("first")
    # English through the pivot is one space for both views: the unaligned view reads it from disk.
    assert first["encode_calls"] == {"modular/aligned=False": 1, "modular/aligned=True": 1,
                                     "modular-unaligned/aligned=False": 1}
    assert first["disk_hits"] == {"modular-unaligned/aligned=False": 1}
    cached_before = {path: np.load(path) for path in (tmp_path / "embeddings").glob("*.npy")}
    save_random_adapter(model / "encoders" / "deu_Latn", model / "adapters" / "deu_Latn", seed=77, scale=0.1)
    second = evaluate("second")
    assert second["encode_calls"] == {"modular/aligned=True": 1}  # the rewritten adapter's German, only
    # ...stored as a new set, and not a copy of any set the old adapter (or no adapter) produced. (P@1 on
    # 12 sentences of a random model can come out equal by chance, so the scores are no evidence.)
    added = [np.load(path) for path in (tmp_path / "embeddings").glob("*.npy") if path not in cached_before]
    assert len(added) == 1 and added[0].shape == (12, 32)
    assert all(np.abs(added[0] - old).max() > 1e-3 for old in cached_before.values() if old.shape == added[0].shape)


@pytest.mark.parametrize("problem", ["missing", "misaligned"])
def test_bad_evaluation_data_is_one_line_naming_the_file_not_a_traceback(problem, tmp_path, model_cache, capsys):
    from modsent.cli import main

    english = tmp_path / "eng.txt"
    english.write_text("One sentence.\nAnother one.\n", encoding="utf-8")
    german = tmp_path / "deu.txt"
    if problem == "misaligned":
        german.write_text("Ein Satz.\n", encoding="utf-8")
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "models": {"m": str(tiny_bert_mlm(cache_dir=model_cache))}, "output_dir": str(tmp_path / "out"),
        "bitext": [{"name": "b", "files": {"eng_Latn": str(english), "deu_Latn": str(german)}}]}), encoding="utf-8")
    assert main(["evaluate", "--config", str(config)]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("modsent evaluate: error: ") and "deu.txt" in message


def test_a_modular_model_without_adapters_is_compared_across_languages_in_its_own_spaces_and_has_no_unaligned_copy(
        tmp_path: Path, model_cache: Path) -> None:
    """A step before alignment (evaluate.step_ablations): its targets have no adapter, so no "-unaligned" view."""
    from modsent.evaluate.stage import run as run_evaluate
    from modsent.testing import save_tiny_modular

    from modsent.models.modular import write_modular_manifest

    model = save_tiny_modular(tmp_path / "modular", tiny_bert_mlm(cache_dir=model_cache),
                              {"eng_Latn": None, "deu_Latn": 1})
    write_modular_manifest(model, "eng_Latn", {lang: (model / "encoders" / lang, None) for lang in ("eng_Latn", "deu_Latn")})
    for lang, seed in (("eng_Latn", 1), ("deu_Latn", 2)):
        (tmp_path / f"{lang}.txt").write_text("\n".join(synthetic_sentences(12, seed=seed)) + "\n", encoding="utf-8")
    result = run_evaluate(EvaluateConfig(
        models={"steps": str(model)}, output_dir=tmp_path / "out", tasks=["bitext"], compare_unaligned=True,
        languages=["eng_Latn", "deu_Latn"], heatmaps=False,
        bitext=[BitextConfig(name="b", files={lang: str(tmp_path / f"{lang}.txt") for lang in ("eng_Latn", "deu_Latn")})]))
    assert result["encode_calls"] == {"steps/aligned=False": 2}  # both languages in their own spaces, nothing else
