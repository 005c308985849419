from __future__ import annotations

import csv
import functools
import json
import math

import matplotlib.image
import numpy as np
import pytest
import yaml

from modsent.config import ConfigError, load_config
from modsent.models.encoders import SingleModelEncoder
from modsent.evaluate.report import HEATMAP_DPI, heatmap_size_inches, plot_heatmap, write_reports
from modsent.evaluate.runner import run_evaluation
from modsent.evaluate.config import EvaluateConfig
from modsent.evaluate.scores import Score, summarize


def _read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_heatmap_png_has_the_pixel_size_of_its_matrix_shape(tmp_path):
    matrix = np.arange(15, dtype=float).reshape(3, 5)
    matrix[1, 2] = np.nan
    path = plot_heatmap(matrix, ["a", "b", "c"], list("vwxyz"), "demo", tmp_path / "h.png")
    image = matplotlib.image.imread(path)
    width, height = heatmap_size_inches(3, 5)
    assert image.shape == (round(height * HEATMAP_DPI), round(width * HEATMAP_DPI), 4)
    taller = matplotlib.image.imread(plot_heatmap(np.zeros((6, 5)), list("abcdef"), list("vwxyz"), "t",
                                                  tmp_path / "t.png"))
    assert taller.shape[0] > image.shape[0] and taller.shape[1] == image.shape[1]
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(ValueError, match=r"matrix \(3, 5\) does not match 2 × 5 labels"):
        plot_heatmap(matrix, ["a", "b"], list("vwxyz"), "demo", tmp_path / "bad.png")


def _scores():
    langs = ["eng_Latn", "deu_Latn", "kin_Latn"]
    scores = []
    for encoder, shift in (("labse", 0.0), ("modular", 5.0)):
        for i, a in enumerate(langs):
            for j, b in enumerate(langs):
                scores.append(Score("belebele", "belebele", "accuracy", encoder, a, b, 50.0 + 10 * i + j + shift, True))
        for i, a in enumerate(langs):
            for j, b in enumerate(langs[i:], start=i):
                value = 50.0 + shift + (10 * i + j + 10 * j + i) / 2
                scores.append(Score("belebele", "belebele", "accuracy", encoder, a, b, value, False))
    return scores


def test_reports_write_tables_heatmaps_and_deltas(tmp_path):
    scores = _scores()
    levels = {"eng_Latn": "high", "deu_Latn": "high", "kin_Latn": "low"}
    files = write_reports(scores, tmp_path, levels, baseline="labse")
    names = {str(p.relative_to(tmp_path)) for p in files}
    assert {"belebele/belebele.accuracy.csv", "belebele/belebele.accuracy.directed.csv", "belebele.md",
            "belebele/heatmaps/belebele.accuracy.labse.png", "belebele/heatmaps/belebele.accuracy.modular.csv",
            "deltas.csv", "deltas.md"} <= names

    table = _read_csv(tmp_path / "belebele" / "belebele.accuracy.csv")
    assert table[0] == ["pair", "labse", "modular"]
    rows = {row[0]: row[1:] for row in table[1:]}
    assert rows["eng_Latn"] == ["50.00", "55.00"]
    assert rows["deu_Latn-kin_Latn"] == ["66.50", "71.50"]  # (62 + 71) / 2
    # averages: monolingual = (50 + 61 + 72) / 3; high|low cross pairs: eng-kin (61) and deu-kin (66.5)
    assert rows["avg:monolingual"] == ["61.00", "66.00"]
    assert rows["avg:level:high|low"] == ["63.75", "68.75"]
    assert rows["avg:level:high"] == ["55.50", "60.50"]

    matrix = _read_csv(tmp_path / "belebele" / "heatmaps" / "belebele.accuracy.labse.csv")
    assert len(matrix) == 4 and all(len(row) == 4 for row in matrix)  # header + 3×3
    assert matrix[2][1:] == ["60.00", "61.00", "62.00"]

    deltas = _read_csv(tmp_path / "deltas.csv")
    assert deltas[0][-3:] == ["value", "delta", "better"]
    by_pair = {row[3]: row for row in deltas[1:]}
    assert by_pair["eng_Latn-deu_Latn"][4:] == ["modular", "55.50", "60.50", "5.00", "yes"]
    assert "avg:cross_lingual" in by_pair
    assert "| pair | labse | modular |" in (tmp_path / "belebele.md").read_text(encoding="utf-8")


def test_summary_treats_lower_is_better_and_nan():
    scores = [Score("sts", "d", "spearman", "m", "a", "a", math.nan, False),
              Score("sts", "d", "spearman", "m", "b", "b", 40.0, False)]
    (row,) = summarize(scores)
    assert row["monolingual"] == 40.0 and math.isnan(row["cross_lingual"])


# ------------------------------------------------------------------------------- end to end


def _write_inputs(root, fakes):
    langs = ["eng_Latn", "deu_Latn", "kin_Latn"]
    rng = np.random.default_rng(0)
    fakes.write_jsonl(root / "sts17.jsonl", [
        {"sentence1": f"en sentence {i}", "sentence2": f"de Satz {i}", "score": float(rng.uniform(0, 5)), "lang": "en-de"}
        for i in range(10)] + [
        {"sentence1": f"en a {i}", "sentence2": f"en b {i}", "score": float(rng.uniform(0, 5)), "lang": "en-en"}
        for i in range(10)])
    gold = rng.uniform(0, 5, 10).round(2)
    for lang in ("ces", "fra"):  # aligned translations of one set, as the extended STS17 has them
        fakes.write_jsonl(root / f"sts17x.{lang}.jsonl", [
            {"sentence1": f"{lang} first {i}", "sentence2": f"{lang} second {i}", "score": float(gold[i])}
            for i in range(10)])
    (root / "kin.csv").write_text("PairID,Text,Score\n" + "".join(
        f'kin-{i},"umurongo {i}\nundi murongo {i}",{rng.uniform(0, 1):.2f}\n' for i in range(10)), encoding="utf-8")
    fakes.write_belebele(root / "belebele", langs, n_passages=4, questions_per_passage=2)
    for lang in langs:
        # the same strings in every "language": a shared-space encoder retrieves each exactly
        (root / f"{lang}.devtest").write_text("".join(f"line {i}\n" for i in range(12)), encoding="utf-8")
    return {
        "output_dir": str(root / "out"),
        "languages": ["eng_Latn", "deu_Latn", "kin_Latn", "ces_Latn", "fra_Latn"],
        "baseline": "baseline",
        "models": {"modular": "runs/align", "baseline": "labse"},
        "resource_levels": {"eng": "high", "deu": "high", "kin": "low", "ces": "high", "fra": "high"},
        "sts": [
            {"name": "sts17", "format": "mteb", "files": {"*": str(root / "sts17.jsonl")}},
            {"name": "sts17", "format": "mteb", "recombine": True, "pairs": ["cs-fr", "fr-cs", "cs"],
             "files": {"cs": str(root / "sts17x.ces.jsonl"), "fr": str(root / "sts17x.fra.jsonl")}},
            {"name": "str24", "format": "str", "files": {"kin": str(root / "kin.csv")}},
        ],
        "belebele": {"directory": str(root / "belebele"), "languages": langs, "retrieval_ks": [1]},
        "retrieval_scoring": ["margin"],  # fewer metrics, fewer heatmaps: the test stays fast
        "bitext": [{"name": "flores", "files": {lang: str(root / f"{lang}.devtest") for lang in langs}}],
    }


def test_run_evaluation_from_a_yaml_config(tmp_path, fakes):
    raw = _write_inputs(tmp_path, fakes)
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(EvaluateConfig, tmp_path / "eval.yaml", overrides=["margin_k=2"])
    assert config.active_tasks() == ["sts", "belebele", "belebele_retrieval", "bitext"]

    modular = fakes.HashEncoder()
    baseline = SingleModelEncoder(lambda texts: fakes.HashEncoder(shared_space=True).encode(texts, "", False))
    results = run_evaluation(config, {"modular": modular, "baseline": baseline})

    on_disk = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps({key: results[key] for key in ("scores", "summary", "files")}))
    combined = {(s["task"], s["dataset"], s["encoder"], s["lang1"], s["lang2"]) for s in results["scores"]
                if not s["directed"] and s["metric"] in ("spearman", "accuracy", "p_at_1_margin")}
    for encoder in ("modular", "baseline"):
        assert {key[3:] for key in combined if key[:3] == ("sts", "sts17", encoder)} == {
            ("eng_Latn", "deu_Latn"), ("eng_Latn", "eng_Latn"), ("ces_Latn", "fra_Latn"), ("ces_Latn", "ces_Latn")}
        assert {key[3:] for key in combined if key[:3] == ("sts", "str24", encoder)} == {("kin_Latn", "kin_Latn")}
        assert len({key for key in combined if key[:3] == ("belebele", "belebele", encoder)}) == 6
        assert len({key for key in combined if key[:3] == ("bitext", "flores", encoder)}) == 3
    # with a shared space, the baseline finds every translation
    assert all(s["value"] == 100.0 for s in results["scores"]
               if s["task"] == "bitext" and s["encoder"] == "baseline" and s["metric"].startswith("p_at_1"))
    assert "baseline/aligned=True" not in results["encode_calls"]
    assert results["encode_calls"]["modular/aligned=True"] == 4 + 3 + 3  # sts17 (eng deu ces fra), belebele, flores
    levels = {key for row in results["summary"] for key in row if key.startswith("level:")}
    assert {"level:high", "level:high|low"} <= levels
    assert (tmp_path / "out" / "deltas.md").is_file()
    assert (tmp_path / "out" / "bitext" / "heatmaps" / "flores.p_at_1_margin.modular.png").is_file()
    assert set(results["files"]) >= {"sts.md", "belebele.md", "bitext.md", "belebele_retrieval.md"}


def test_runner_config_errors(tmp_path, fakes):
    raw = _write_inputs(tmp_path, fakes)
    encoders = {"baseline": fakes.HashEncoder(), "modular": fakes.HashEncoder()}
    with pytest.raises(ConfigError, match="margin_k must be >= 1"):
        load_config(EvaluateConfig, overrides=["margin_k=0"])
    with pytest.raises(ValueError, match=r"task\(s\) bitext listed but no data configured"):
        run_evaluation(EvaluateConfig(tasks=["bitext"], output_dir=tmp_path / "o"), encoders)
    config = load_config(EvaluateConfig, overrides=[f"{k}={json.dumps(v)}" for k, v in raw.items()])
    with pytest.raises(ValueError, match=r"baseline 'labse' is not one of the encoders"):
        run_evaluation(load_config(EvaluateConfig, overrides=[f"output_dir={tmp_path}", "baseline=labse"]), encoders)
    config.sts[1].pairs = ["cs-de"]
    with pytest.raises(ValueError, match=r"pair\(s\) cs-de not in its files"):
        run_evaluation(config, encoders)
    config.sts[1].pairs = ["en-de"]
    config.sts[1].files = {"*": tmp_path / "sts17.jsonl"}
    with pytest.raises(ValueError, match=r"pair eng_Latn-deu_Latn comes from both"):
        run_evaluation(config, encoders)


def test_language_matrix_keeps_one_order_on_both_axes():
    from modsent.evaluate.scores import Score, score_matrix

    scores = [Score("bitext", "d", "p_at_1", "m", a, b, v, True)
              for a, b, v in (("eng", "deu", 1.0), ("deu", "eng", 2.0), ("deu", "rus", 3.0), ("rus", "eng", 4.0),
                              ("eng", "rus", 5.0), ("rus", "deu", 6.0))]
    rows, cols, matrix = score_matrix(scores, "m")
    assert rows == cols == ["eng", "deu", "rus"]
    assert all(matrix[i, i] != matrix[i, i] for i in range(3))  # NaN diagonal
    assert matrix[rows.index("deu"), cols.index("rus")] == 3.0


def _score(encoder, task, dataset, metric, lang1, lang2, value, directed=False):
    """One row of results.json's scores."""
    return {"encoder": encoder, "task": task, "dataset": dataset, "metric": metric, "lang1": lang1,
            "lang2": lang2, "value": value, "directed": directed}


def test_system_table_has_a_row_per_encoder_and_a_column_per_language_into_the_pivot():
    from modsent.evaluate.report import system_table

    score = functools.partial(_score, directed=True)  # bitext rows are directed; STS rows pass False

    scores = []
    for encoder, base in (("e5-small", 80.0), ("modular", 90.0)):
        for lang, offset in (("deu_Latn", 0.0), ("ell_Grek", -10.0)):
            scores += [score(encoder, "bitext", f"heldout-{lang}", "p_at_1_cosine", lang, "eng_Latn", base + offset),
                       score(encoder, "bitext", f"heldout-{lang}", "p_at_1_cosine", "eng_Latn", lang, 1.0),
                       score(encoder, "bitext", f"heldout-{lang}", "p_at_1_margin", lang, "eng_Latn", 2.0)]
        # A set of three languages is the matrix, not a column: left out.
        scores.append(score(encoder, "bitext", "heldout-all", "p_at_1_cosine", "deu_Latn", "eng_Latn", 3.0))
        scores.append(score(encoder, "bitext", "heldout-all", "p_at_1_cosine", "ell_Grek", "eng_Latn", 3.0))
        scores.append(score(encoder, "sts", "stsb-test", "spearman", "eng_Latn", "eng_Latn", base - 5, directed=False))
    scores.append(score("modular-unaligned", "bitext", "heldout-deu_Latn", "p_at_1_cosine", "deu_Latn", "eng_Latn", 5.0))
    table = system_table({"scores": scores}, "eng_Latn").splitlines()
    assert table[0] == "| system | deu_Latn → eng | ell_Grek → eng | mean P@1 | stsb-test (eng) |"
    assert table[2] == "| e5-small | 80.0 | 70.0 | 75.0 | 75.0 |"
    assert table[3] == "| modular | 90.0 | 80.0 | 85.0 | 85.0 |"
    assert table[4] == "| modular-unaligned | 5.0 |  |  |  |"  # a missing figure leaves the mean out too
    assert system_table({"scores": scores[2:3]}, "eng_Latn") == ""


def test_language_tables_show_each_target_alone_against_english_and_retrieving_both_ways_then_the_mean():
    from modsent.evaluate.report import language_tables

    scores = []
    for encoder, base in (("e5-small", 60.0), ("modular", 70.0)):
        for lang, offset in (("spa_Latn", 0.0), ("epo_Latn", 10.0)):
            scores += [_score(encoder, "sts", "sts-test-mt", "spearman", lang, lang, base + offset),
                       _score(encoder, "sts", "sts-test-mt", "spearman", "eng_Latn", lang, base + offset + 1),
                       _score(encoder, "bitext", f"heldout-{lang}", "p_at_1_cosine", lang, "eng_Latn", base + 2, True),
                       _score(encoder, "bitext", f"heldout-{lang}", "p_at_1_cosine", "eng_Latn", lang, base + 3, True)]
        scores += [_score(encoder, "sts", "stsb-test", "spearman", "eng_Latn", "eng_Latn", base - 1),
                   _score(encoder, "sts", "sts-test-mt", "spearman", "spa_Latn", "epo_Latn", 0.0),  # target pairs: left out
                   # A set of three languages is the matrix, not a language's own pairs: left out.
                   _score(encoder, "bitext", "heldout-all", "p_at_1_cosine", "spa_Latn", "eng_Latn", 0.0, True),
                   _score(encoder, "bitext", "heldout-all", "p_at_1_cosine", "epo_Latn", "eng_Latn", 0.0, True)]
    text = language_tables({"scores": scores}, "eng_Latn")
    sections = text.split("### ")[1:]
    assert [section.splitlines()[0] for section in sections] == ["epo_Latn", "spa_Latn",
                                                                  "mean over epo_Latn, spa_Latn"]
    spanish = sections[1].splitlines()
    assert spanish[2] == ("| system | sts-test-mt (spa) | sts-test-mt (eng-spa) | P@1 spa → eng | P@1 eng → spa "
                          "| stsb-test (eng) |")
    assert spanish[4] == "| e5-small | 60.0 | 61.0 | 62.0 | 63.0 | 59.0 |"
    mean = sections[2].splitlines()
    assert mean[2].startswith("| system | sts-test-mt (X) | sts-test-mt (eng-X) |")
    assert mean[5] == "| modular | 75.0 | 76.0 | 72.0 | 73.0 | 69.0 |"
    target_pairs = [row for row in scores if row["lang2"] == "epo_Latn" and row["lang1"] == "spa_Latn"]
    assert target_pairs and language_tables({"scores": target_pairs}, "eng_Latn") == ""
