"""MNRL over batches far larger than memory, GradCache-style (Gao et al. 2021).

The loss of a batch of ``N`` pairs needs all ``N`` embeddings at once, but not all ``N``
activations: (1) embed the columns mini-batch by mini-batch without building a graph; (2)
compute the loss on those embeddings and its gradient with respect to each embedding; (3) when
the caller back-propagates the returned loss, re-embed each mini-batch with a graph (the same
dropout masks: the random state of step 1 is replayed) and back-propagate the cached gradients
into the model. Peak activation memory is one mini-batch; the loss and the parameter gradients
equal those of :class:`~modsent.train.losses.mnrl.MultipleNegativesRankingLoss` on the full batch,
on one rank or several (embeddings are gathered across ranks as there).

Step 3 runs inside the caller's ``loss.backward()``, so parameters receive one gradient per
mini-batch within a single backward pass: fine for plain PyTorch and DeepSpeed ZeRO-0/1; ZeRO-2/3
reduce gradients from per-parameter hooks and reject a second gradient in one pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from modsent.train.losses.mnrl import DEFAULT_SCALE, mnrl_loss

__all__ = ["CachedMultipleNegativesRankingLoss"]

Features = Mapping[str, torch.Tensor]
Column = Features | torch.Tensor  # token features to embed, or fixed embeddings (e.g. a frozen pivot's)


@dataclass
class _RandomState:
    """The generator states a forward pass draws dropout masks from, to replay it exactly."""

    cpu: torch.Tensor
    cuda: tuple[torch.device, torch.Tensor] | None

    @classmethod
    def capture(cls, device: torch.device) -> "_RandomState":
        cuda = (device, torch.cuda.get_rng_state(device)) if device.type == "cuda" else None
        return cls(torch.get_rng_state(), cuda)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        devices = [self.cuda[0]] if self.cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda:
                torch.cuda.set_rng_state(self.cuda[1], self.cuda[0])
            yield


def _rows(column: Features) -> int:
    return next(iter(column.values())).shape[0]


def _slice(column: Features, start: int, stop: int) -> dict[str, torch.Tensor]:
    piece = {key: value[start:stop] for key, value in column.items()}
    mask = piece.get("attention_mask")
    if mask is not None and mask.dim() == 2 and mask.shape[0]:
        # Right padding: drop the columns that are padding in every row of this mini-batch.
        longest = int(mask.sum(dim=1).max())
        piece = {key: value[:, :longest] if value.dim() == 2 else value for key, value in piece.items()}
    return piece


class CachedMultipleNegativesRankingLoss(nn.Module):
    """``loss([anchor_features, positive_features, *negative_features])`` with ``embed`` run per mini-batch.

    ``embed(features) -> (rows, dim)`` is the model's forward (e.g. a
    :class:`~modsent.models.SentenceEncoder` called as ``encoder(**features)``). A column may
    also be a tensor of fixed embeddings (used as is, no gradient). Call ``.backward()`` (or the
    engine's backward) on the result as usual. Under ``torch.no_grad()`` it just returns the loss.

    >>> loss_fn = CachedMultipleNegativesRankingLoss(lambda f: encoder(**f), mini_batch_size=32)  # doctest: +SKIP
    >>> loss = loss_fn([encoder.tokenize(anchors), encoder.tokenize(positives)])  # doctest: +SKIP
    >>> loss.backward()  # doctest: +SKIP
    """

    def __init__(self, embed: Callable[[Features], torch.Tensor], mini_batch_size: int = 32,
                 scale: float = DEFAULT_SCALE, symmetric: bool = False, across_ranks: bool = True) -> None:
        super().__init__()
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
        self.embed = embed
        self.mini_batch_size = int(mini_batch_size)
        self.scale, self.symmetric, self.across_ranks = float(scale), bool(symmetric), bool(across_ranks)

    def _loss(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        return mnrl_loss(embeddings[0], embeddings[1], embeddings[2:], scale=self.scale, symmetric=self.symmetric,
                         across_ranks=self.across_ranks)

    def forward(self, columns: Sequence[Column]) -> torch.Tensor:
        if len(columns) < 2:
            raise ValueError(f"need at least anchors and positives, got {len(columns)} column(s)")
        embeddings: list[torch.Tensor] = []
        replays: list[list[tuple[dict[str, torch.Tensor], _RandomState]] | None] = []
        for column in columns:
            if isinstance(column, torch.Tensor):
                embeddings.append(column.detach())
                replays.append(None)
                continue
            pieces, chunks = [], []
            for start in range(0, _rows(column), self.mini_batch_size):
                piece = _slice(column, start, start + self.mini_batch_size)
                state = _RandomState.capture(next(iter(piece.values())).device)
                with torch.no_grad():
                    chunks.append(self.embed(piece))
                pieces.append((piece, state))
            embeddings.append(torch.cat(chunks))
            replays.append(pieces)
        if not torch.is_grad_enabled():
            return self._loss(embeddings)
        leaves = [e.requires_grad_() if r is not None else e for e, r in zip(embeddings, replays)]
        loss = self._loss(leaves)
        trained = [(leaf, pieces) for leaf, pieces in zip(leaves, replays) if pieces is not None]
        grads = torch.autograd.grad(loss, [leaf for leaf, _ in trained]) if trained else ()
        handle = loss.detach().requires_grad_()
        handle.register_hook(partial(self._replay_backward, [p for _, p in trained], grads))
        return handle.clone()  # a tensor with a grad_fn, as engines (DeepSpeed) require of a loss

    def _replay_backward(self, replays: Sequence[Sequence[tuple[dict[str, torch.Tensor], _RandomState]]],
                         grads: Sequence[torch.Tensor], grad_output: torch.Tensor) -> None:
        """Re-embed each mini-batch with a graph and push its cached gradient (× the incoming one) into the model."""
        for pieces, grad in zip(replays, grads):
            for (piece, state), piece_grad in zip(pieces, grad.split(self.mini_batch_size)):
                with state.replay(), torch.enable_grad():
                    embeddings = self.embed(piece)
                torch.autograd.backward(embeddings, piece_grad.to(embeddings.dtype) * grad_output)

    def extra_repr(self) -> str:
        return (f"mini_batch_size={self.mini_batch_size}, scale={self.scale}, symmetric={self.symmetric}, "
                f"across_ranks={self.across_ranks}")
