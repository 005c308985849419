"""Pooling of token embeddings: padding never counts."""

from __future__ import annotations

import pytest
import torch

from modsent.models.pooling import PoolingError, pool

HIDDEN = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]],
                       [[5.0, 6.0], [-7.0, 8.0], [9.0, -10.0]]])
MASK = torch.tensor([[1, 1, 0], [1, 1, 1]])


@pytest.mark.parametrize("mode, expected", [
    ("mean", [[2.0, 1.0], [7 / 3, 4 / 3]]),
    ("cls", [[1.0, -2.0], [5.0, 6.0]]),
    ("max", [[3.0, 4.0], [9.0, 8.0]]),
])
def test_pooling_ignores_padding(mode: str, expected: list) -> None:
    torch.testing.assert_close(pool(HIDDEN, MASK, mode), torch.tensor(expected))


def test_unknown_pooling_mode_is_a_clear_error() -> None:
    with pytest.raises(PoolingError, match="use one of mean, cls, max"):
        pool(HIDDEN, MASK, "weightedmean")
