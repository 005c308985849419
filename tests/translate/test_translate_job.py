"""The whole translate job on a local Ray: alignment, dedup, resume after faults, summaries."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from modsent.corpus import open_corpus, read_lines
from modsent.translate import NllbTranslator, run_translate
from modsent.translate.translator import FAULT_ENV

TARGETS = ["deu_Latn", "rus_Cyrl", "zho_Hans"]  # as in conftest.make_config


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def unit_files(output_dir: Path) -> list[Path]:
    return sorted((output_dir / "work" / "units").rglob("shard-*.json"))


@pytest.fixture(scope="module")
def reference(make_config, ray_local, tmp_path_factory):
    """One uninterrupted run; the other tests compare against its bytes."""
    output_dir = tmp_path_factory.mktemp("reference")
    result = run_translate(make_config(output_dir))
    return result, read_tree(output_dir / "corpus")


def test_every_line_is_the_translation_of_its_source_line(reference, corpus, make_config):
    result, _ = reference
    manifest = json.loads((result.output_dir / "manifest.json").read_text())
    config = make_config(result.output_dir)
    translator = NllbTranslator(manifest["model"]["ct2_dir"], compute_type="float32", intra_threads=1,
                                decoding=config.decoding, max_batch_size=config.compute.max_batch_size)
    datasets = open_corpus(corpus)
    assert sorted(d.name for d in datasets) == sorted(p.name for p in result.corpus_dir.iterdir())
    occurrences = 0
    for dataset in datasets:
        columns = sorted(col for _, col in dataset.columns)
        english = {col: [row[0] for row in dataset.iter_rows([("eng_Latn", col)])] for col in columns}
        out = result.corpus_dir / dataset.name
        assert sorted(p.name for p in out.iterdir()) == sorted(
            f"{lang}_{col}.txt" for lang in ["eng_Latn", *TARGETS] for col in columns)
        for col in columns:
            occurrences += len(english[col])
            assert list(read_lines(out / f"eng_Latn_{col}.txt")) == english[col]
            for lang in TARGETS:
                lines = list(read_lines(out / f"{lang}_{col}.txt"))
                assert len(lines) == len(english[col]), f"{dataset.name} {lang}_{col}"
                assert manifest["files"][f"{dataset.name}/{lang}_{col}.txt"]["lines"] == len(lines)
                assert lines == translator.translate(english[col], [lang] * len(lines))
    assert result.source_occurrences == occurrences
    assert result.unique_sentences < occurrences  # repeats and the JSONL copy of wiki rows are shared
    assert result.examples_translated == result.unique_sentences * len(TARGETS)


def test_summary_and_quality_counts_per_language(reference):
    result, _ = reference
    with open(result.output_dir / "translation_summary.csv", newline="") as handle:
        rows = {row["language"]: row for row in csv.DictReader(handle)}
    assert sorted(rows) == sorted(TARGETS)
    for row in rows.values():
        assert int(row["lines_written"]) == result.source_occurrences
        assert int(row["unique_sentences"]) == result.unique_sentences
        assert int(row["units"]) == -(-result.unique_sentences // 16)
        assert {"empty", "copy", "repetition", "length_ratio"} <= set(row)
    # A random model repeats itself: the guard must notice.
    assert sum(int(row["repetition"]) for row in rows.values()) > 0
    review = [json.loads(line) for line in (result.output_dir / "review.jsonl").read_text().splitlines()]
    assert review and all(row["issues"] and row["language"] in TARGETS for row in review)
    assert max(sum(row["language"] == lang for row in review) for lang in TARGETS) <= 5
    markdown = (result.output_dir / "translation_summary.md").read_text()
    assert markdown.count("\n") == 2 + len(TARGETS) and "| rus_Cyrl | Russian |" in markdown


def test_rerun_reuses_every_unit(make_config, reference):
    result, corpus_bytes = reference
    leftover = result.output_dir / ".tmp-corpus.k1ll3d"  # what a kill during the corpus assembly leaves
    (leftover / "quora").mkdir(parents=True)
    again = run_translate(make_config(result.output_dir))
    assert again.units_translated == 0 and again.units_reused == result.units_translated
    assert read_tree(result.output_dir / "corpus") == corpus_bytes
    assert not leftover.exists()


def test_fault_then_rerun_is_byte_identical(make_config, reference, ray_local, tmp_path, monkeypatch):
    _, corpus_bytes = reference
    output_dir = tmp_path / "out"
    monkeypatch.setenv(FAULT_ENV, f"raise:6:{tmp_path / 'fault-fired'}")
    with pytest.raises(Exception, match="injected fault"):
        run_translate(make_config(output_dir))
    assert not (output_dir / "corpus").exists() and not (output_dir / "manifest.json").exists()
    finished = unit_files(output_dir)
    total = -(-reference[0].unique_sentences // 16) * len(TARGETS)
    assert 0 < len(finished) < total
    # A unit damaged on disk after it was written is not trusted: it is translated again.
    damaged = finished[0]
    damaged.write_bytes(damaged.read_bytes()[:100])

    monkeypatch.delenv(FAULT_ENV)
    result = run_translate(make_config(output_dir))
    assert result.units_reused == len(finished) - 1
    assert result.units_translated == total - result.units_reused
    assert read_tree(output_dir / "corpus") == corpus_bytes


def test_dead_actor_is_restarted_and_its_batch_retried(make_config, reference, ray_local, tmp_path, monkeypatch):
    _, corpus_bytes = reference
    marker = tmp_path / "fault-fired"
    monkeypatch.setenv(FAULT_ENV, f"exit:2:{marker}")
    result = run_translate(make_config(tmp_path / "out"))
    assert marker.exists()  # the actor really died once
    assert result.units_reused == 0
    assert read_tree(result.corpus_dir) == corpus_bytes
