"""The NLLB model named by hub id (``facebook/nllb-200-distilled-600M``) converts from the Hugging Face cache.

The cache is seeded in the hub's layout from the tiny local NLLB checkpoint, offline: nothing is downloaded.
"""

from __future__ import annotations

import shutil

import pytest

from modsent.testing import tiny_nllb
from modsent.translate.model import ModelError, prepare_model

COMMIT = "00112233445566778899aabbccddeeff00112233"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_hub_id_converts_once_to_the_model_a_local_path_gives(tmp_path, hub_cache, model_cache):
    repo = hub_cache / "models--modsent-test--tiny-nllb"
    shutil.copytree(tiny_nllb(model_cache), repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    ct2_cache = tmp_path / "ct2"
    by_path = prepare_model(tiny_nllb(model_cache), "int8", ct2_cache)
    by_id = prepare_model("modsent-test/tiny-nllb", "int8", ct2_cache)
    by_revision = prepare_model(f"modsent-test/tiny-nllb@{COMMIT}", "int8", ct2_cache)
    tokenizer_by_id = prepare_model(by_path.ct2_dir, "int8", ct2_cache, tokenizer="modsent-test/tiny-nllb")
    assert by_id.converted and by_id.sha256 == by_path.sha256
    assert by_id.ct2_dir.name.startswith("modsent-test--tiny-nllb-")  # named after the repo, not the commit
    assert (by_id.ct2_dir / "model.bin").read_bytes() == (by_path.ct2_dir / "model.bin").read_bytes()
    assert by_revision.ct2_dir == by_id.ct2_dir  # the same conversion, reused
    assert tokenizer_by_id.tokenizer_dir == repo / "snapshots" / COMMIT and not tokenizer_by_id.converted
    assert by_id.source == repo / "snapshots" / COMMIT


def test_an_uncached_translation_model_is_one_line_saying_how_to_fetch_it(tmp_path, hub_cache):
    with pytest.raises(ModelError) as missing:
        prepare_model("facebook/nllb-200-distilled-600M", "int8", tmp_path / "ct2")
    assert "hf download facebook/nllb-200-distilled-600M" in str(missing.value)
    assert "\n" not in str(missing.value)
