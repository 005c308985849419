"""``modsent align``: only the adapter trains, the pivot cache changes nothing but speed, alignment works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from modsent import cli
from modsent.align.stage import (
    AlignConfig,
    AlignDataError,
    _datasets,
    build_align_job,
    corpus_bank_texts,
    encode_pivot,
    fill_pivot_cache,
    run as run_align,
)
from modsent.config import ConfigError, from_dict
from modsent.corpus import CorpusError
from modsent.corpus.parallel import parallel_dataset
from modsent.models.adapter import ParallelAdapter, count_parameters
from modsent.train import Trainer, init_distributed, read_metrics
from modsent.train.losses import bank_loss

REPO = Path(__file__).resolve().parents[2]
LANG = "deu_Latn"


@pytest.fixture
def config(align_settings):
    """``config(fixture, output, **overrides) -> AlignConfig``."""
    return lambda fixture, output, **overrides: from_dict(AlignConfig, align_settings(fixture, output, **overrides))


def _losses(run: Path) -> list[float]:
    return [record["loss"] for record in read_metrics(run / "metrics", "train")]


def _adapter_tensors(run: Path) -> dict[str, torch.Tensor]:
    return ParallelAdapter.load(run / "artifacts" / "adapter").state_dict()


def _overrides(settings: dict, prefix: str = "") -> list[str]:
    """A nested settings mapping as ``key.sub=value`` command-line overrides."""
    out = []
    for key, value in settings.items():
        if isinstance(value, dict):
            out += _overrides(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def test_cached_pivot_embeddings_equal_recomputed_ones_bit_for_bit(align_data, config, tmp_path):
    info = init_distributed()
    cached = build_align_job(config(align_data, tmp_path / "a", pivot_cache=str(tmp_path / "cache")), info)
    plain = build_align_job(config(align_data, tmp_path / "b"), info)
    fill_pivot_cache(cached, 0, 3, "eng_Latn")
    assert torch.equal(next(iter(cached.task.model.adapter.parameters())), next(iter(plain.task.model.adapter.parameters())))
    pivot = plain.load_pivot()
    for _ in range(3):
        with_cache, without = next(cached.batches), next(plain.batches)
        assert torch.equal(with_cache["target_input_ids"], without["target_input_ids"])
        with torch.no_grad():
            recomputed = pivot(without["pivot_input_ids"], without["pivot_attention_mask"])
        assert torch.equal(with_cache["pivot_embeddings"], recomputed)
        assert torch.equal(cached.task.compute_loss(cached.task.model, with_cache),
                           plain.task.compute_loss(plain.task.model, without))


def test_cached_and_recomputed_pivot_training_give_the_same_losses_and_adapter(align_data, align_settings, config,
                                                                               tmp_path):
    """Both runs through the CLI with configs/align.yaml (which turns the cache on) and test overrides."""
    def align(output: Path, cache: str | None) -> None:
        settings = align_settings(align_data, output, trainer={"max_steps": 6}, pivot_cache=cache)
        assert cli.main(["align", "--config", str(REPO / "configs" / "align.yaml"), *_overrides(settings)]) == 0

    align(tmp_path / "cached", str(tmp_path / "cache"))
    align(tmp_path / "plain", None)
    assert len(_losses(tmp_path / "cached")) == 6
    assert _losses(tmp_path / "cached") == _losses(tmp_path / "plain")
    cached_adapter, plain_adapter = _adapter_tensors(tmp_path / "cached"), _adapter_tensors(tmp_path / "plain")
    assert all(torch.equal(cached_adapter[k], plain_adapter[k]) for k in plain_adapter)
    # The cache is built once: a second run (another language would do the same) encodes nothing.
    segments = sorted(p.name for p in (tmp_path / "cache" / "segments").iterdir())
    align(tmp_path / "again", str(tmp_path / "cache"))
    assert sorted(p.name for p in (tmp_path / "cache" / "segments").iterdir()) == segments
    assert _losses(tmp_path / "again") == _losses(tmp_path / "plain")


def test_training_moves_only_the_adapter(align_data, config, tmp_path):
    cfg = config(align_data, tmp_path / "run", trainer={"max_steps": 4, "save_every": 2})
    info = init_distributed()
    job = build_align_job(cfg, info)
    base_before = {k: v.clone() for k, v in job.target.state_dict().items()}
    adapter = job.task.model.adapter
    adapter_before = {k: v.clone() for k, v in adapter.state_dict().items()}
    trainer = Trainer(job.task, cfg.trainer, info)
    optimised = {id(p) for group in trainer.engine.optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in adapter.parameters()}
    assert all(not p.requires_grad for p in job.target.parameters())
    result = trainer.fit()

    base_after = job.target.state_dict()
    assert base_after.keys() == base_before.keys()
    assert all(torch.equal(base_after[k], base_before[k]) for k in base_before), "a base weight changed"
    changed = {k: not torch.equal(v, adapter_before[k]) for k, v in adapter.state_dict().items()}
    assert all(changed.values()), f"adapter tensors that did not move: {[k for k, c in changed.items() if not c]}"

    exported = ParallelAdapter.load(result.export_dir, base_path=cfg.model)
    assert all(torch.equal(exported.state_dict()[k], v) for k, v in adapter.state_dict().items())
    adapter_config = ParallelAdapter.read_config(result.export_dir)
    assert adapter_config["metadata"]["lang"] == LANG and (
        Path(result.export_dir, adapter_config["base"]["path"]).resolve() == Path(cfg.model).resolve())
    # Checkpoints hold the adapter and its optimizer state, not the frozen encoder.
    checkpoint_bytes = sum(f.stat().st_size for f in result.checkpoint.rglob("*") if f.is_file())
    assert checkpoint_bytes < (Path(cfg.model) / "model.safetensors").stat().st_size
    assert count_parameters(adapter) / count_parameters(job.target) < 0.1


def test_alignment_raises_heldout_target_to_english_retrieval(learnable_align, config, tmp_path):
    cfg = config(learnable_align, tmp_path / "run", data={"eval_parallel": str(learnable_align.heldout)},
                  trainer={"max_steps": 80, "eval_at_start": True, "eval_every": 20, "lr": 2e-3})
    run_align(cfg)
    evals = read_metrics(tmp_path / "run" / "metrics", "eval")
    before, after = evals[0], evals[-1]
    assert (before["step"], after["step"]) == (0, 80)
    assert before["t2p_accuracy"] < 0.2  # 64 held-out pairs: chance is 1/64
    assert after["t2p_accuracy"] >= 0.4 and after["t2p_accuracy"] - before["t2p_accuracy"] >= 0.3
    assert after["p2t_accuracy"] >= 0.4


def test_bad_data_and_config_give_clear_errors(align_data, config, tmp_path):
    (tmp_path / "bitext").mkdir()
    (tmp_path / "bitext" / "eng_Latn.txt").write_text("a\n")
    with pytest.raises(CorpusError, match="no deu_Latn.txt"):
        parallel_dataset(tmp_path / "bitext", "eng_Latn", LANG)
    (tmp_path / "bitext" / "deu.txt").write_text("b\n")  # any spelling of the code works
    assert parallel_dataset(tmp_path / "bitext", "eng_Latn", LANG).columns[(LANG, 2)] == "deu.txt"
    with pytest.raises(ConfigError, match="languages and pivot_lang are both eng_Latn"):
        config(align_data, tmp_path / "x", languages=["en"])
    with pytest.raises(ConfigError, match="key 'trainer.output_dir' .*was renamed to 'output_dir'"):
        config(align_data, tmp_path / "x", trainer={"output_dir": str(tmp_path / "elsewhere")})
    with pytest.raises(ConfigError, match="key 'target' .*was renamed to 'model'"):
        config(align_data, tmp_path / "x", target=str(tmp_path / "elsewhere"))
    with pytest.raises(AlignDataError, match="no training data"):
        build_align_job(config(align_data, tmp_path / "x", data={"paraphrase": [], "parallel": []}), init_distributed())


@pytest.mark.slow
def test_two_ranks_share_the_cache_build_and_match_recomputing(align_data, align_settings, run_torchrun, tmp_path):
    """torchrun, 2 ranks: each rank encodes its own share into its own segment; cached == recomputed."""
    settings = align_settings(align_data, tmp_path / "unused", trainer={"max_steps": 4, "global_batch_size": 16})
    (tmp_path / "align.yaml").write_text(yaml.safe_dump(settings))
    run_torchrun([str(Path(__file__).with_name("dist_align.py")), str(tmp_path)], cwd=tmp_path, timeout=600)
    added = json.loads((tmp_path / "added.json").read_text())
    assert len(added) == 2 and all(n > 0 for n in added)  # both ranks encoded their share
    assert len(list((tmp_path / "cache" / "segments").iterdir())) == 2
    assert len(_losses(tmp_path / "cached")) == 4
    assert _losses(tmp_path / "cached") == _losses(tmp_path / "plain")
    cached_adapter, plain_adapter = _adapter_tensors(tmp_path / "cached"), _adapter_tensors(tmp_path / "plain")
    assert all(torch.equal(cached_adapter[k], plain_adapter[k]) for k in plain_adapter)


def test_paraphrase_and_parallel_data_combine_with_the_reference_pairing(align_data, config, tmp_path):
    """Both sources feed the batches; every row pairs English with the target, direction random per row, seeded."""
    from modsent.testing.synthetic import translate_synthetic

    def rows(seed: int, batches: int = 12) -> list[tuple[str, tuple[str, str], tuple[str, str]]]:
        job = build_align_job(config(align_data, tmp_path / f"run{seed}", trainer={"seed": seed}), init_distributed())
        out = []
        for index in range(batches):
            batch = job.batches.batch_at(index)
            out += [(batch.dataset, (batch.texts[0][r], batch.texts[1][r]), (batch.langs[0][r], batch.langs[1][r]))
                    for r in range(batch.size)]
        return out

    first = rows(seed=5)
    assert {dataset for dataset, _, _ in first} == {"pairs", "triplets", "parallel:parallel"}  # both sources
    directions = [langs for _, _, langs in first]
    assert set(directions) == {("eng_Latn", LANG), (LANG, "eng_Latn")}  # one side each, both directions occur
    assert 0.3 < directions.count(("eng_Latn", LANG)) / len(directions) < 0.7
    english = (align_data.parallel / "eng_Latn.txt").read_text(encoding="utf-8").splitlines()
    translation = dict(zip(english, translate_synthetic(english, LANG)))
    for dataset, texts, langs in first:
        if dataset.startswith("parallel:"):  # a parallel row is a line and its translation
            en, target = texts if langs[0] == "eng_Latn" else texts[::-1]
            assert translation[en] == target
    assert rows(seed=5) == first  # seeded: the same directions again
    assert [langs for _, _, langs in rows(seed=6)] != directions


def test_the_bank_reads_parallel_lines_past_the_pair_cap_and_the_cache_fill_stores_them(align_data, config, tmp_path):
    """Capped at 20 pairs, the run trains on those; its bank also holds later lines' English, cached once for all."""
    def job_for(name: str):
        return build_align_job(config(align_data, tmp_path / name, corpus_negatives=100_000,
                                      pivot_cache=str(tmp_path / "cache"),
                                      data={"paraphrase": [], "max_parallel_pairs": 20}), init_distributed())

    job = job_for("first")
    english = (align_data.parallel / "eng_Latn.txt").read_text(encoding="utf-8").splitlines()
    trained = {text for index in range(job.batches.batches_per_epoch) for column in job.batches.batch_at(index).texts
               for text in column}
    assert trained & set(english) and trained & set(english) <= set(english[:20])  # training rows: the first 20 only
    assert job.bank is not None and job.bank.texts == list(dict.fromkeys(english))  # the bank: all 160 lines
    added = fill_pivot_cache(job, 0, job.batches.batches_per_epoch, "eng_Latn")
    assert added == len(job.bank.texts) and job.cache.missing(job.bank.texts) == []
    expected = encode_pivot(job.load_pivot(), job.bank.texts, 64)
    assert torch.allclose(job.bank.embeddings, torch.from_numpy(expected), atol=1e-6)  # from the cache, as encoded
    later = job_for("later")
    assert fill_pivot_cache(later, 0, later.batches.batches_per_epoch, "eng_Latn") == 0  # a later language only reads


def test_corpus_negatives_add_the_bank_loss_of_each_target_text_against_the_training_english(align_data, config,
                                                                                            tmp_path):
    """The bank is the data's first N distinct English sentences; each target text meets its partner and the bank."""
    info = init_distributed()
    cfg = config(align_data, tmp_path / "bank", corpus_negatives=100_000)
    with_bank, plain = build_align_job(cfg, info), build_align_job(config(align_data, tmp_path / "plain"), info)
    english = corpus_bank_texts(_datasets(cfg), "eng_Latn", 100_000)
    assert len(english) == len(set(english)) > 64
    assert corpus_bank_texts(_datasets(cfg), "eng_Latn", 5) == english[:5]
    bank = torch.from_numpy(encode_pivot(plain.load_pivot(), english, 64))
    seen_queries = 0
    for index in range(4):
        batch, reference = with_bank.batches.batch_at(index), plain.batches.batch_at(index)
        collated, plain_collated = with_bank.batches.collate(batch), plain.batches.collate(reference)
        split_texts = [text for column in batch.texts for text in column]
        targets = [split_texts[slot] for slot in collated["target_slots"].tolist()]
        for position, partner_slot, row in zip(collated["bank_queries"].tolist(), collated["bank_partner_slots"].tolist(),
                                               collated["bank_rows"].tolist()):
            partner = split_texts[partner_slot]
            assert english[row] == partner  # the partner's own bank row, masked as a negative
            column, line = divmod(partner_slot, batch.size)
            assert batch.langs[column][line] == "eng_Latn" and batch.texts[1 - column][line] == targets[position]
        seen_queries += len(collated["bank_queries"])
        torch.manual_seed(index)  # the target's dropout: the same masks in both forward passes
        with torch.no_grad():
            loss = with_bank.task.compute_loss(with_bank.task.model, collated)
            torch.manual_seed(index)
            in_batch = plain.task.compute_loss(plain.task.model, plain_collated)
            torch.manual_seed(index)
            target_embeddings = plain.task.model(collated["target_input_ids"], collated["target_attention_mask"])
            pivot = plain.load_pivot()(plain_collated["pivot_input_ids"], plain_collated["pivot_attention_mask"])
        slots = torch.zeros(len(split_texts), target_embeddings.shape[1])
        slots[collated["target_slots"]], slots[collated["pivot_slots"]] = target_embeddings, pivot
        expected = in_batch + bank_loss(target_embeddings[collated["bank_queries"]], slots[collated["bank_partner_slots"]],
                                        bank, collated["bank_rows"], cfg.scale)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert seen_queries >= 4 * 8
