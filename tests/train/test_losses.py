"""MNRL and its cached (GradCache) variant: exact values, gradients, and the 2-rank = 1-rank identity."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from modsent.models.pooling import pool
from modsent.train.losses import CachedMultipleNegativesRankingLoss, MultipleNegativesRankingLoss, bank_loss, mnrl_loss


class TinyEmbedder(torch.nn.Module):
    """Token embeddings + one self-attention layer + mean pooling; deterministic weights for a seed.

    Plain torch (no transformers import), so the 2-rank test's processes start quickly.
    """

    def __init__(self, seed: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(40, 16)
        self.layer = torch.nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, dropout=dropout,
                                                      batch_first=True)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.layer(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        return pool(hidden, attention_mask)


def _columns(rows: int, num_columns: int, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    """Random token ids with right padding of varied lengths, one dict per column."""
    gen = torch.Generator().manual_seed(seed)
    columns = []
    for _ in range(num_columns):
        lengths = torch.randint(3, 12, (rows,), generator=gen)
        ids = torch.randint(5, 40, (rows, 12), generator=gen)
        mask = (torch.arange(12)[None, :] < lengths[:, None]).long()
        columns.append({"input_ids": ids * mask, "attention_mask": mask})
    return columns


def _reference_loss(a: np.ndarray, p: np.ndarray, negs: list[np.ndarray], scale: float, symmetric: bool) -> float:
    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def cross_entropy(scores):
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -np.mean(log_probs[np.arange(len(scores)), np.arange(len(scores))])

    candidates = np.concatenate([p, *negs])
    loss = cross_entropy(scale * unit(a) @ unit(candidates).T)
    if symmetric:
        loss = (loss + cross_entropy(scale * unit(p) @ unit(a).T)) / 2
    return float(loss)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("with_negatives", [False, True])
def test_mnrl_equals_direct_computation(symmetric: bool, with_negatives: bool) -> None:
    rng = np.random.default_rng(0)
    a, p, n = (rng.normal(size=(5, 7)) for _ in range(3))
    negs = [n] if with_negatives else []
    expected = _reference_loss(a, p, negs, 20.0, symmetric)
    loss = MultipleNegativesRankingLoss(scale=20.0, symmetric=symmetric)(
        *(torch.tensor(x, dtype=torch.float64) for x in (a, p, *negs)))
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_mnrl_is_zero_for_separated_pairs_and_large_for_swapped_ones() -> None:
    anchors = torch.eye(4)
    assert mnrl_loss(anchors, anchors.clone()).item() == pytest.approx(0.0, abs=1e-6)
    # Each anchor's positive is another anchor's: the loss is scale-sized.
    assert mnrl_loss(anchors, anchors.roll(1, dims=0)).item() == pytest.approx(20.0, abs=1e-6)


def test_mnrl_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        mnrl_loss(torch.zeros(4, 8), torch.zeros(3, 8))


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.grad.detach().clone() for name, param in model.named_parameters() if param.grad is not None}


def _plain_step(model: TinyEmbedder, columns, symmetric: bool) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    embeddings = [model(**column) for column in columns]
    loss = MultipleNegativesRankingLoss(symmetric=symmetric)(*embeddings)
    loss.backward()
    return loss.item(), _grads(model)


def _cached_step(model: TinyEmbedder, columns, symmetric: bool, mini_batch: int) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = CachedMultipleNegativesRankingLoss(lambda f: model(**f), mini_batch_size=mini_batch, symmetric=symmetric)(columns)
    (loss * 0.5).backward()  # an engine scaling the loss (fp16, accumulation) scales the replayed gradients too
    return loss.item(), {k: 2 * v for k, v in _grads(model).items()}


@pytest.mark.parametrize("symmetric", [False, True])
def test_cached_mnrl_equals_plain_loss_and_gradients(symmetric: bool) -> None:
    model = TinyEmbedder()
    columns = _columns(rows=10, num_columns=3)
    plain_loss, plain_grads = _plain_step(model, columns, symmetric)
    cached_loss, cached_grads = _cached_step(model, columns, symmetric, mini_batch=3)
    assert cached_loss == pytest.approx(plain_loss, rel=1e-6)
    assert plain_grads.keys() == cached_grads.keys() and len(plain_grads) > 5
    for name, grad in plain_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_cached_mnrl_replays_dropout_masks_and_accepts_fixed_embeddings() -> None:
    model = TinyEmbedder(dropout=0.3).train()
    seen: list[torch.Tensor] = []

    def embed(features):
        out = model(**features)
        seen.append(out.detach().clone())
        return out

    anchors, positives = _columns(rows=6, num_columns=2)
    pivot = torch.randn(6, 16)  # e.g. a frozen pivot model's embeddings: used as they are
    loss = CachedMultipleNegativesRankingLoss(embed, mini_batch_size=4)([anchors, pivot])
    first_pass = list(seen)
    loss.backward()
    replayed = seen[len(first_pass):]
    assert len(first_pass) == len(replayed) == 2  # 6 rows in mini-batches of 4: two pieces, anchors only
    for before, after in zip(first_pass, replayed):
        torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        value = CachedMultipleNegativesRankingLoss(embed, mini_batch_size=4)([anchors, pivot])
    assert not value.requires_grad and torch.isfinite(value)


# ---------------------------------------------------------------------------------------- 2 ranks


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """One rank: its half of the batch, plain and cached loss, gradients averaged like DeepSpeed does."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        model = TinyEmbedder()
        columns = _columns(rows=8, num_columns=3)
        mine = [{k: v[rank * 4:(rank + 1) * 4] for k, v in column.items()} for column in columns]
        results = {}
        for name, step in (("plain", lambda: _plain_step(model, mine, True)),
                           ("cached", lambda: _cached_step(model, mine, True, 3))):
            loss, grads = step()
            for grad in grads.values():
                dist.all_reduce(grad)
                grad /= world_size
            loss_sum = torch.tensor([loss])
            dist.all_reduce(loss_sum)
            results[name] = {"loss": loss_sum.item() / world_size, "grads": {k: v.tolist() for k, v in grads.items()}}
        if rank == 0:
            with open(os.path.join(out_dir, "ranks.json"), "w") as handle:
                json.dump(results, handle)
    finally:
        dist.destroy_process_group()


def test_two_ranks_of_batch_b_equal_one_rank_of_batch_2b(tmp_path) -> None:
    mp.spawn(_rank_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    results = json.loads((tmp_path / "ranks.json").read_text())
    model = TinyEmbedder()
    loss, grads = _plain_step(model, _columns(rows=8, num_columns=3), True)
    for name in ("plain", "cached"):
        assert results[name]["loss"] == pytest.approx(loss, rel=1e-5), name
        assert results[name]["grads"].keys() == grads.keys()
        for key, grad in grads.items():
            torch.testing.assert_close(torch.tensor(results[name]["grads"][key]), grad, rtol=1e-4, atol=1e-5,
                                       msg=f"{name} {key}")


def test_bank_loss_equals_direct_computation_and_never_counts_the_positive_as_its_own_negative() -> None:
    rng = np.random.default_rng(3)
    p = rng.normal(size=(4, 6))
    q = p + 0.1 * rng.normal(size=(4, 6))  # each query close to its positive
    bank = rng.normal(size=(9, 6))
    bank[5], bank[2] = p[0], p[3]  # the bank holds the positives of queries 0 and 3
    rows = np.array([5, -1, -1, 2])

    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    expected = []
    for i in range(4):
        negatives = [j for j in range(9) if j != rows[i]]
        scores = 20.0 * np.concatenate([[unit(q[i]) @ unit(p[i])], unit(bank[negatives]) @ unit(q[i])])
        expected.append(np.log(np.exp(scores - scores.max()).sum()) + scores.max() - scores[0])
    loss = bank_loss(*(torch.tensor(x, dtype=torch.float64) for x in (q, p, bank)), torch.tensor(rows), scale=20.0)
    assert loss.item() == pytest.approx(float(np.mean(expected)), rel=1e-10)
    # Unmasked, queries 0 and 3 would meet their own positives as negatives: about log 2 more for each.
    unmasked = bank_loss(*(torch.tensor(x, dtype=torch.float64) for x in (q, p, bank)), torch.full((4,), -1), scale=20.0)
    assert unmasked.item() - loss.item() == pytest.approx(2 * np.log(2) / 4, abs=0.02)


def test_bank_loss_gradient_reaches_the_queries_only_and_rejects_mismatched_shapes() -> None:
    q = torch.randn(3, 5, requires_grad=True)
    p, bank = torch.randn(3, 5), torch.randn(7, 5)
    bank_loss(q, p, bank, torch.tensor([-1, 0, 6]), scale=20.0).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="do not fit"):
        bank_loss(q, p, torch.randn(7, 4), torch.tensor([-1, 0, 6]), scale=20.0)
