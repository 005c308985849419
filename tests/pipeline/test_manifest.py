import hashlib
import os
import re
from pathlib import Path

import pytest

from modsent.cli import main
from modsent.io import atomic_directory
from modsent.pipeline.manifest import Manifest, ManifestError


def test_entry_valid_only_with_same_inputs_and_untouched_artifact(tmp_path):
    manifest = Manifest(tmp_path)
    art = tmp_path / "artifacts" / "train" / "deu_Latn"
    art.mkdir(parents=True)
    (art / "model.safetensors").write_bytes(b"w" * 10)
    manifest.mark_running("deu_Latn", "train", "cfg1", {"adapt": "h1"})
    assert not manifest.is_valid("deu_Latn", "train", "cfg1", {"adapt": "h1"})  # running is not done
    entry = manifest.mark_done("deu_Latn", "train", art)
    assert entry.artifact == "artifacts/train/deu_Latn" and entry.attempts == 1

    reloaded = Manifest(tmp_path)
    assert reloaded.is_valid("deu_Latn", "train", "cfg1", {"adapt": "h1"})
    assert not reloaded.is_valid("deu_Latn", "train", "cfg2", {"adapt": "h1"})
    assert not reloaded.is_valid("deu_Latn", "train", "cfg1", {"adapt": "h2"})
    (art / "model.safetensors").write_bytes(b"w" * 5)  # truncated by hand
    assert not reloaded.is_valid("deu_Latn", "train", "cfg1", {"adapt": "h1"})


def test_failed_entry_keeps_error_and_corrupt_manifest_is_refused(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.mark_running("fra_Latn", "align", "c", {})
    manifest.mark_failed("fra_Latn", "align", "RuntimeError: boom")
    assert Manifest(tmp_path).get("fra_Latn", "align").error == "RuntimeError: boom"
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable manifest"):
        Manifest(tmp_path)


def test_status_of_a_translate_output_says_what_it_is_and_a_read_only_run_still_shows(tmp_path):
    """Before: `status` on a translation output said "manifest version None"; on a read-only run it crashed."""
    import json

    from modsent.pipeline.status import write_status

    translated = tmp_path / "translated"
    translated.mkdir()
    (translated / "manifest.json").write_text(json.dumps({"languages": ["deu_Latn"], "files": {}}))
    with pytest.raises(ManifestError, match=r"not the manifest of a `modsent run` directory \(it lists translated "
                                            r"files: the output of `modsent translate`\)"):
        write_status(translated)
    run = tmp_path / "run"
    manifest = Manifest(run)
    manifest.get("deu_Latn", "train").status = "done"
    run.mkdir()
    manifest.save()
    (run / "status.md").mkdir()  # status.md cannot be written (as in a read-only copy of a run)
    (run / "status.md" / "keep").write_text("")
    text = write_status(run)
    assert "| deu_Latn | - | - | - | done | - | - |" in text
def _flip_byte_keeping_size_and_mtime(path, offset):
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _safetensors_artifact(directory):
    import torch
    from safetensors.torch import save_file

    with atomic_directory(directory) as staging:
        save_file({"weight": torch.arange(64, dtype=torch.float32)}, staging / "model.safetensors")
        (staging / "config.json").write_text('{"hidden_size": 64}\n')


def test_artifacts_are_fingerprinted_file_by_file_with_a_relative_run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    art = Path("run") / "artifacts" / "train" / "deu_Latn" / "model"
    _safetensors_artifact(art)
    manifest = Manifest("run")
    manifest.mark_running("deu_Latn", "train", "cfg", {})
    entry = manifest.mark_done("deu_Latn", "train", art)
    assert entry.artifact == "artifacts/train/deu_Latn/model"
    assert entry.artifact_fingerprint is not None
    size, _, digest = entry.artifact_files["model.safetensors"]
    assert size == (art / "model.safetensors").stat().st_size
    assert digest == hashlib.sha256((art / "model.safetensors").read_bytes()).hexdigest()
    assert set(entry.artifact_files) == {"model.safetensors", "config.json"}
    assert Manifest(tmp_path / "run").is_valid("deu_Latn", "train", "cfg", {})  # the same run, named absolutely


def test_cheap_check_on_use_and_full_verify(tmp_path, capsys):
    art = tmp_path / "artifacts" / "train" / "deu_Latn" / "model"
    _safetensors_artifact(art)
    manifest = Manifest(tmp_path)
    manifest.mark_running("deu_Latn", "train", "cfg", {})
    manifest.mark_done("deu_Latn", "train", art)
    weights = art / "model.safetensors"

    os.utime(weights)  # touched, same bytes: re-hashed on use and still valid
    assert Manifest(tmp_path).is_valid("deu_Latn", "train", "cfg", {}) and Manifest(tmp_path).verify() == []
    assert main(["status", str(tmp_path), "--verify"]) == 0

    _flip_byte_keeping_size_and_mtime(weights, offset=weights.stat().st_size - 3)
    # Using the entry looks at sizes and mtimes only; --verify reads every byte and names the file.
    assert Manifest(tmp_path).is_valid("deu_Latn", "train", "cfg", {})
    assert Manifest(tmp_path).verify() == [
        "deu_Latn/train: artifacts/train/deu_Latn/model/model.safetensors: content changed "
        "(SHA-256 differs from the one recorded)"]
    capsys.readouterr()
    assert main(["status", str(tmp_path), "--verify"]) == 1
    err = capsys.readouterr().err
    assert "modsent status: deu_Latn/train: artifacts/train/deu_Latn/model/model.safetensors: content changed" in err

    weights.write_bytes(weights.read_bytes() + b"\0")  # grown (and a new mtime): refused on use
    assert not Manifest(tmp_path).is_valid("deu_Latn", "train", "cfg", {})
    (art / "extra.bin").write_bytes(b"x")
    (art / "config.json").unlink()
    problems = Manifest(tmp_path).verify()
    assert any("model.safetensors: size" in p for p in problems)
    assert any("config.json: missing" in p for p in problems)
    assert any("extra.bin: not part of the recorded artifact" in p for p in problems)


@pytest.mark.parametrize("text, problem", [
    ("[]", "'entries' must be an object of entries"),
    ('{"version": 1, "entries": []}', "'entries' must be an object of entries"),
    ('{"version": 1, "entries": {"deu_Latn/train": 5}}', "entry 'deu_Latn/train' is not an object"),
    ('{"version": 1, "entries": {"deu_Latn/train": {"language": "deu_Latn", "stage": "train", "status": "done", '
     '"artifact": "artifacts/train", "artifact_fingerprint": "f", "artifact_files": "model.safetensors"}}}',
     "entry 'deu_Latn/train': artifact_files is a str"),
    ('{"version": 1, "entries": {"deu_Latn/train": {"language": "deu_Latn", "stage": "train", "status": "done", '
     '"artifact": "artifacts/train", "artifact_fingerprint": "f", "artifact_files": {"w": [1, 2]}}}}',
     r"entry 'deu_Latn/train': artifact_files\['w'\] is not \[size, mtime_ns, sha256\]"),
    ('{"version": 1, "entries": {"deu_Latn/train": {"language": "deu_Latn", "stage": "train", "status": "done", '
     '"artifact": "../other-run/artifacts/train"}}}',
     "entry 'deu_Latn/train': its artifact ../other-run/artifacts/train is not a path inside the run directory"),
])
def test_verify_of_a_manifest_of_another_shape_is_one_line_naming_it(tmp_path, capsys, text, problem):
    """Before: valid JSON of the wrong shape made `status --verify` end in a traceback."""
    (tmp_path / "manifest.json").write_text(text)
    assert main(["status", str(tmp_path), "--verify"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"modsent status: error: {re.escape(str(tmp_path / 'manifest.json'))}: not a manifest "
                        rf"modsent wrote \({problem}\); move it away to start the run afresh\n", err), err
