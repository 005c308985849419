"""Language identification (py3langid, shipped in its wheel) and ModularEncoder routing by it (lang=None)."""

from __future__ import annotations

import numpy as np
import pytest

from modsent.models.langid import identification_accuracy, identifier_labels, identify_languages
from modsent.models.modular import ModularEncoder, ModularModelError
from modsent.testing import save_tiny_modular, tiny_bert_mlm
from modsent.testing.sentences import JAPANESE_SENTENCE, LANGUAGE_ID_SENTENCES

TEXTS, JAPANESE = LANGUAGE_ID_SENTENCES, JAPANESE_SENTENCE


def test_identifier_maps_labels_to_registry_codes():
    assert identify_languages([TEXTS["deu_Latn"][0], TEXTS["rus_Cyrl"][0], JAPANESE]) == ["deu_Latn", "rus_Cyrl",
                                                                                           "jpn_Jpan"]
    labels = identifier_labels()
    assert {"eng_Latn", "deu_Latn", "rus_Cyrl", "jpn_Jpan", "arb_Arab", "hin_Deva"} <= set(labels)
    assert identification_accuracy({"de": TEXTS["deu_Latn"], "ru": TEXTS["rus_Cyrl"]}) == {"deu_Latn": 1.0,
                                                                                           "rus_Cyrl": 1.0}


@pytest.fixture(scope="module")
def modular(tmp_path_factory, model_cache):
    return save_tiny_modular(tmp_path_factory.mktemp("modular-langid"), tiny_bert_mlm(model_cache),
                             {"eng_Latn": None, "deu_Latn": 1, "rus_Cyrl": 2})


def test_lang_none_routes_each_text_to_its_languages_encoder(modular):
    model = ModularEncoder(modular, max_loaded=3)
    mixed = [TEXTS["rus_Cyrl"][0], TEXTS["eng_Latn"][0], TEXTS["deu_Latn"][0], TEXTS["deu_Latn"][1],
             TEXTS["eng_Latn"][1], TEXTS["rus_Cyrl"][1]]
    langs = ["rus_Cyrl", "eng_Latn", "deu_Latn", "deu_Latn", "eng_Latn", "rus_Cyrl"]
    assert model.identify(mixed) == langs
    routed = model.encode(mixed, lang=None)
    np.testing.assert_array_equal(routed, model.encode(mixed, lang=langs))
    # Each row is its own language's encoder (+ adapter), and no other language's.
    for row, (text, lang) in enumerate(zip(mixed, langs)):
        own = model.encode([text], lang=lang)[0]
        np.testing.assert_allclose(routed[row], own, rtol=1e-5, atol=1e-6)
        for other in {"eng_Latn", "deu_Latn", "rus_Cyrl"} - {lang}:
            assert not np.allclose(routed[row], model.encode([text], lang=other)[0], atol=1e-4)


def test_lang_none_refuses_a_language_the_model_lacks_naming_it(modular):
    model = ModularEncoder(modular)
    with pytest.raises(ModularModelError, match=r"no encoder for 1 text\(s\) in jpn_Jpan .*it serves deu_Latn, "
                                                r"eng_Latn, rus_Cyrl"):
        model.encode([TEXTS["eng_Latn"][0], JAPANESE], lang=None)
