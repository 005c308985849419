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


def test_status_of_a_translate_output_says_what_it_is_and_a_read_only_run_still_shows(tmp_path):
    """Before: `status` on a translation output said "manifest version None"; on a read-only run it crashed."""
    import json

    from modsent.pipeline.run import write_status

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
