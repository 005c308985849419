import pytest

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
