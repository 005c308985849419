"""``modsent encode`` on a large file: progress in a log, and nothing left behind by a killed run (issue 28).

Before: an encode of a large file ran for minutes printing nothing, and one killed while writing
left its hidden ``.tmp-OUT.*`` file beside the output for good.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from modsent import progress
from modsent.cli import main
from modsent.testing import save_tiny_modular, synthetic_sentences, tiny_bert_mlm

TEXTS = synthetic_sentences(6, seed=5)


@pytest.fixture(scope="module")
def models(tmp_path_factory, model_cache) -> dict[str, tuple[Path, list[str]]]:
    """A plain encoder and a modular model, each with the encode options it needs."""
    base = tiny_bert_mlm(model_cache)
    modular = save_tiny_modular(tmp_path_factory.mktemp("modular"), base, {"eng_Latn": None, "deu_Latn": 3})
    return {"plain": (base, []), "modular": (modular, ["--lang", "deu_Latn"])}


@pytest.mark.parametrize("kind", ["plain", "modular"])
def test_encode_off_a_terminal_logs_its_progress(models, kind, tmp_path, monkeypatch, capsys):
    model, options = models[kind]
    text = tmp_path / "in.txt"
    text.write_text("".join(f"{line}\n" for line in TEXTS), encoding="utf-8")
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0, raising=False)  # a line per batch instead of every 30 s
    assert main(["encode", "--model", str(model), "--input", str(text), "--output", str(tmp_path / "e.npy"),
                 "--batch-size", "2", *options]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("encode: ")]
    counts = [re.match(r"encode: (\d+)/6 texts \(\d+%\), elapsed \d+s, ETA \S+$", line) for line in lines]
    assert all(counts), lines
    assert [int(m.group(1)) for m in counts] == [2, 4, 6, 6]  # a line per batch of 2, and the last


def test_a_killed_encode_leaves_nothing_once_a_rerun_succeeds(models, tmp_path):
    model, _ = models["plain"]
    text = tmp_path / "in.txt"
    text.write_text("".join(f"{line}\n" for line in TEXTS), encoding="utf-8")
    killed = tmp_path / ".tmp-e.npy.k1ll3d00"  # what `kill -9` while writing e.npy leaves
    killed.write_bytes(b"\x93NUMPY" + b"\0" * 4096)
    neighbour = tmp_path / ".tmp-e.npy.v2.abcd1234"  # another encode writing e.npy.v2 right now
    neighbour.write_bytes(b"")
    assert main(["encode", "--model", str(model), "--input", str(text), "--output", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape[0] == len(TEXTS)
    assert sorted(p.name for p in tmp_path.glob(".tmp-*")) == [neighbour.name]
