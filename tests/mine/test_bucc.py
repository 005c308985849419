"""BUCC-style evaluation: pools hide gold pairs among >= 20x distractors; best-threshold F1 is exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modsent.mine.score import MinedPairs
from modsent.mine.bucc import BuccError, best_f1, build_pools, run_bucc
from modsent.mine.config import BuccConfig
from modsent.testing import save_perturbed_encoder, synthetic_sentences, tiny_bert_mlm, translate_synthetic


def _write_parallel(root: Path, lang: str, split: str, english: list[str], foreign: list[str]) -> None:
    directory = root / split / f"eng_Latn-{lang}"
    directory.mkdir(parents=True)
    (directory / "eng_Latn.txt").write_text("\n".join(english) + "\n", encoding="utf-8")
    (directory / f"{lang}.txt").write_text("\n".join(foreign) + "\n", encoding="utf-8")


@pytest.fixture
def corpus(tmp_path) -> Path:
    english = synthetic_sentences(900, seed=11)
    german = translate_synthetic(english, "deu_Latn")
    _write_parallel(tmp_path, "deu_Latn", "test", english[:50], german[:50])
    _write_parallel(tmp_path, "deu_Latn", "train", english[50:] + english[:3], german[50:] + german[:3])
    return tmp_path


def test_pools_hide_gold_pairs_among_20x_distractors(corpus, tmp_path):
    config = BuccConfig(data=str(corpus), languages=["de"], models={"m": "x"}, output_dir=tmp_path, max_gold=20)
    pools = build_pools(corpus, "de", config)
    english = synthetic_sentences(900, seed=11)
    translation = dict(zip(translate_synthetic(english, "deu_Latn"), english))
    assert len(pools.gold) == 20 and len(pools.source) == len(pools.target) == 20 * 21
    assert len(set(pools.source)) == len(pools.source) and len(set(pools.target)) == len(pools.target)
    assert all(translation[pools.source[s]] == pools.target[t] for s, t in pools.gold)
    in_target = set(pools.target)
    hidden = {pools.source[s] for s, _ in pools.gold}
    # No distractor has its translation in the other pool; the gold ones come from the test split.
    assert all(translation[s] not in in_target for s in pools.source if s not in hidden)
    assert {translation[s] for s in hidden} <= set(english[:50])
    assert build_pools(corpus, "de", config).source == pools.source  # seeded

    with pytest.raises(BuccError, match="need 2000 others"):
        build_pools(corpus, "de", BuccConfig(data=str(corpus), languages=["de"], models={"m": "x"},
                                             output_dir=tmp_path, min_gold=50))


def test_best_f1_equals_a_sweep_over_every_threshold():
    rng = np.random.default_rng(0)
    scores = np.sort(rng.random(200).astype(np.float32))[::-1].copy()
    pairs = MinedPairs(rng.integers(0, 30, 200), rng.integers(0, 30, 200), scores)
    gold = {(int(s), int(t)) for s, t in zip(pairs.source[::3], pairs.target[::3])} | {(99, 99)}
    got = best_f1(pairs, gold)
    best = 0.0
    for threshold in scores:
        correct = sum((int(s), int(t)) in gold for s, t, v in zip(pairs.source, pairs.target, scores) if v >= threshold)
        if correct:
            p, r = correct / int((scores >= threshold).sum()), correct / len(gold)
            best = max(best, 2 * p * r / (p + r) * 100)
    assert got["f1"] == pytest.approx(best)


def test_run_bucc_writes_the_table_and_finds_copied_pairs(tmp_path, model_cache):
    """A 'translation' that is the English sentence itself is found by any encoder: F1 near 100."""
    english = synthetic_sentences(500, seed=12)
    _write_parallel(tmp_path / "data", "deu_Latn", "test", english[:12], english[:12])
    _write_parallel(tmp_path / "data", "deu_Latn", "train", english[12:], english[12:])
    encoder = save_perturbed_encoder(tiny_bert_mlm(model_cache), tmp_path / "enc", None, 32)
    rows = run_bucc(BuccConfig(data=str(tmp_path / "data"), languages=["deu_Latn"], models={"tiny": str(encoder)},
                               output_dir=tmp_path / "out", max_gold=10))
    assert [(r["model"], r["language"], r["gold"], r["source_pool"]) for r in rows] == [("tiny", "deu_Latn", 10, 210)]
    assert rows[0]["f1"] >= 80.0
    assert (tmp_path / "out" / "bucc_f1.csv").read_text().splitlines()[0].startswith("model,language,script,gold")
    assert "| tiny | deu_Latn | Latn |" in (tmp_path / "out" / "bucc_f1.md").read_text()
    assert (tmp_path / "out" / "langid_accuracy.md").is_file()
