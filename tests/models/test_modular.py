"""ModularEncoder: routing by language, input order for mixed lists, adapters on/off, LRU, mismatch, export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from modsent.models.adapter import AdapterMismatchError, ParallelAdapter
from modsent.models.encoder import SentenceEncoder
from modsent.models.modular import ModularEncoder, ModularModelError, write_modular_manifest
from modsent.testing import (save_perturbed_encoder, save_random_adapter, synthetic_sentences, tiny_bert_mlm,
                             translate_synthetic)

TEXTS = synthetic_sentences(6, seed=2)
GERMAN = translate_synthetic(TEXTS, "deu_Latn")
FRENCH = translate_synthetic(TEXTS, "fra_Latn")


@dataclass(frozen=True)
class ModularFixture:
    root: Path
    encoders: dict[str, Path]
    adapters: dict[str, Path]




@pytest.fixture(scope="module")
def modular(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> ModularFixture:
    root = tmp_path_factory.mktemp("modular")
    base = tiny_bert_mlm(model_cache)
    encoders = {"eng_Latn": save_perturbed_encoder(base, root / "encoders" / "eng_Latn", None, 32),
                "deu_Latn": save_perturbed_encoder(base, root / "encoders" / "deu_Latn", 1, 32),
                "fra_Latn": save_perturbed_encoder(base, root / "encoders" / "fra_Latn", 2, 32)}
    adapters = {"deu_Latn": save_random_adapter(encoders["deu_Latn"], root / "adapters" / "deu_Latn", 3),
                "fra_Latn": save_random_adapter(encoders["fra_Latn"], root / "adapters" / "fra_Latn", 4)}
    write_modular_manifest(root, "en", {"en": (encoders["eng_Latn"], None),
                                        "de": (encoders["deu_Latn"], adapters["deu_Latn"]),
                                        "fra_Latn": (encoders["fra_Latn"], adapters["fra_Latn"])})
    return ModularFixture(root, encoders, adapters)


def _reference(fixture: ModularFixture, lang: str, texts: list[str], aligned: bool) -> np.ndarray:
    """What the language's encoder (with its adapter when aligned) gives on its own."""
    encoder = SentenceEncoder.from_pretrained(fixture.encoders[lang])
    if aligned and lang in fixture.adapters:
        ParallelAdapter.load(fixture.adapters[lang]).attach(encoder)
    return encoder.encode(texts)


def test_manifest_stores_relative_paths_and_resolves_codes(modular):
    import json

    manifest = json.loads((modular.root / "modular.json").read_text())
    assert manifest["pivot"] == "eng_Latn"
    assert manifest["languages"]["deu_Latn"] == {"encoder": "encoders/deu_Latn", "adapter": "adapters/deu_Latn"}
    assert manifest["languages"]["eng_Latn"]["adapter"] is None
    model = ModularEncoder(modular.root)
    assert model.languages == ["deu_Latn", "eng_Latn", "fra_Latn"] and model.loaded_languages == []


def test_mixed_language_list_is_routed_and_returned_in_input_order(modular):
    model = ModularEncoder(modular.root, max_loaded=3)
    texts = [GERMAN[0], TEXTS[1], FRENCH[2], GERMAN[3], TEXTS[4], FRENCH[5]]
    langs = ["deu_Latn", "eng_Latn", "fr", "de", "eng", "fra_Latn"]
    got = model.encode(texts, lang=langs)
    assert got.shape == (6, 32) and got.dtype == np.float32
    german = _reference(modular, "deu_Latn", [GERMAN[0], GERMAN[3]], aligned=True)
    english = _reference(modular, "eng_Latn", [TEXTS[1], TEXTS[4]], aligned=True)
    french = _reference(modular, "fra_Latn", [FRENCH[2], FRENCH[5]], aligned=True)
    expected = np.stack([german[0], english[0], french[0], german[1], english[1], french[1]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Routing matters: the same German text through the French encoder gives something else.
    assert not np.allclose(model.encode([GERMAN[0]], lang="fra_Latn"), got[:1], atol=1e-3)


def test_aligned_switches_the_adapter_on_and_off(modular):
    model = ModularEncoder(modular.root)
    aligned = model.encode(GERMAN, lang="deu_Latn")
    monolingual = model.encode(GERMAN, lang="deu_Latn", aligned=False)
    np.testing.assert_allclose(aligned, _reference(modular, "deu_Latn", GERMAN, aligned=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(monolingual, _reference(modular, "deu_Latn", GERMAN, aligned=False), rtol=1e-5, atol=1e-6)
    assert not np.allclose(aligned, monolingual, atol=1e-3)
    # The pivot has no adapter: both modes give its own embeddings.
    np.testing.assert_array_equal(model.encode(TEXTS, lang="eng_Latn"), model.encode(TEXTS, lang="eng_Latn", aligned=False))


def test_lru_bound_keeps_at_most_max_loaded_encoders(modular):
    model = ModularEncoder(modular.root, max_loaded=1)
    first = model.encode([GERMAN[0], FRENCH[0], TEXTS[0]], lang=["deu_Latn", "fra_Latn", "eng_Latn"])
    assert model.loaded_languages == ["eng_Latn"]
    model.encode([GERMAN[0]], lang="deu_Latn")
    assert model.loaded_languages == ["deu_Latn"]
    two = ModularEncoder(modular.root, max_loaded=2)
    again = two.encode([GERMAN[0], FRENCH[0], TEXTS[0]], lang=["deu_Latn", "fra_Latn", "eng_Latn"])
    assert two.loaded_languages == ["fra_Latn", "eng_Latn"]
    np.testing.assert_array_equal(first, again)


def test_clear_errors_for_unknown_language_missing_adapter_and_wrong_base(modular, tmp_path):
    model = ModularEncoder(modular.root)
    with pytest.raises(ModularModelError, match="no encoder for rus_Cyrl; it serves deu_Latn, eng_Latn, fra_Latn"):
        model.encode(["x"], lang="rus_Cyrl")
    with pytest.raises(ModularModelError, match="2 languages for 1 texts"):
        model.encode(["x"], lang=["deu_Latn", "eng_Latn"])
    write_modular_manifest(tmp_path, "eng_Latn", {"eng_Latn": (modular.encoders["eng_Latn"], None),
                                                  "deu_Latn": (modular.encoders["deu_Latn"], None),
                                                  "fra_Latn": (modular.encoders["fra_Latn"], modular.adapters["deu_Latn"])})
    swapped = ModularEncoder(tmp_path)
    with pytest.raises(ModularModelError, match="deu_Latn has no cross-lingual adapter"):
        swapped.encode(["x"], lang="deu_Latn")
    assert swapped.encode(["x"], lang="deu_Latn", aligned=False).shape == (1, 32)
    with pytest.raises(AdapterMismatchError, match="trained on the encoder .*deu_Latn"):
        swapped.encode(["x"], lang="fra_Latn")
    with pytest.raises(ModularModelError, match="no modular.json"):
        ModularEncoder(tmp_path / "nothing")


def test_exported_language_loads_in_sentence_transformers_with_the_aligned_embeddings(modular, tmp_path):
    from sentence_transformers import SentenceTransformer

    model = ModularEncoder(modular.root)
    exported = model.export_sentence_transformer("deu_Latn", tmp_path / "deu_st")
    assert (exported / "adapter" / "adapter.safetensors").is_file()
    # sentence-transformers >= 6 imports module classes from outside its own package only with this flag.
    st_model = SentenceTransformer(str(exported), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(st_model.encode(GERMAN, convert_to_numpy=True), model.encode(GERMAN, lang="deu_Latn"),
                               rtol=1e-5, atol=1e-5)
    # Saving the loaded model again keeps the adapter.
    st_model.save(str(tmp_path / "resaved"))
    again = SentenceTransformer(str(tmp_path / "resaved"), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(again.encode(GERMAN), model.encode(GERMAN, lang="deu_Latn"), rtol=1e-5, atol=1e-5)
    # The pivot has no adapter: a plain sentence-transformers model.
    pivot = SentenceTransformer(str(model.export_sentence_transformer("en", tmp_path / "eng_st")), device="cpu")
    np.testing.assert_allclose(pivot.encode(TEXTS), model.encode(TEXTS, lang="eng_Latn"), rtol=1e-5, atol=1e-5)


def test_cli_encode_routes_a_file_through_the_modular_model(modular, tmp_path):
    from modsent import cli

    (tmp_path / "de.txt").write_text("".join(line + "\n" for line in GERMAN), encoding="utf-8")
    model = ModularEncoder(modular.root)
    base = ["encode", "--model", str(modular.root), "--input", str(tmp_path / "de.txt")]
    assert cli.main([*base, "--output", str(tmp_path / "aligned.npy"), "--lang", "de"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "aligned.npy"), model.encode(GERMAN, lang="deu_Latn"), rtol=1e-5,
                               atol=1e-6)
    assert cli.main([*base, "--output", str(tmp_path / "mono.npy"), "--lang", "de", "--monolingual"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "mono.npy"), model.encode(GERMAN, lang="deu_Latn", aligned=False),
                               rtol=1e-5, atol=1e-6)
    assert cli.main([*base, "--output", str(tmp_path / "x.npy")]) == 2  # no --lang: a clear one-line error
    assert not (tmp_path / "x.npy").exists()


def test_an_empty_file_encodes_to_zero_rows_of_the_models_width(modular, tmp_path):
    """Before: a (0, 0) array; and `--output` naming a directory failed after encoding, with a traceback."""
    from modsent import cli

    (tmp_path / "empty.txt").write_text("")
    base = ["encode", "--model", str(modular.root), "--input", str(tmp_path / "empty.txt"), "--lang", "de"]
    assert cli.main([*base, "--output", str(tmp_path / "empty.npy")]) == 0
    width = ModularEncoder(modular.root).encode(GERMAN[:1], lang="deu_Latn").shape[1]
    assert np.load(tmp_path / "empty.npy").shape == (0, width) == ModularEncoder(modular.root).encode([], "eng_Latn").shape
    assert cli.main([*base, "--output", str(tmp_path)]) == 2
