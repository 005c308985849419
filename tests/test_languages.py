import pytest
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

from modsent.languages import UnknownLanguageError, all_languages, named_list, nllb_codes, resolve, resolve_many


def test_registry_matches_transformers_nllb_codes():
    assert nllb_codes() == list(FAIRSEQ_LANGUAGE_CODES)
    assert len(nllb_codes()) == 202


@pytest.mark.parametrize("lang", all_languages(), ids=lambda lang: lang.code)
def test_every_entry_resolves_by_its_codes(lang):
    assert resolve(lang.code) is lang
    assert resolve(lang.code.lower()) is lang
    assert lang.script == lang.code.split("_")[1] and lang.iso639_3 == lang.code.split("_")[0]
    assert lang.name
    # A bare ISO code resolves to this entry or to its language's default script.
    assert resolve(lang.iso639_3).iso639_3 == lang.iso639_3
    if lang.iso639_1:
        assert resolve(lang.iso639_1).iso639_3 == lang.iso639_3


@pytest.mark.parametrize("code,expected", [
    ("de", "deu_Latn"), ("deu", "deu_Latn"), ("deu_Latn", "deu_Latn"), ("DE", "deu_Latn"), ("de-DE", "deu_Latn"),
    ("zh", "zho_Hans"), ("zh-Hant", "zho_Hant"), ("pt_BR", "por_Latn"), ("ar", "arb_Arab"), ("ara", "arb_Arab"),
    ("fa", "pes_Arab"), ("no", "nob_Latn"), ("sw", "swh_Latn"), ("ks", "kas_Arab"),
    # gettext / Django locale spellings of Chinese: the region implies the script
    ("zh_CN", "zho_Hans"), ("zh_Hans", "zho_Hans"), ("zh-hans", "zho_Hans"), ("zh_TW", "zho_Hant"),
    ("zh-HK", "zho_Hant"), ("zh_Hant", "zho_Hant"),
])
def test_resolution(code, expected):
    assert resolve(code).code == expected


def test_unknown_code_suggests():
    with pytest.raises(UnknownLanguageError, match=r"unknown language code 'deu_Lat'; closest: deu_Latn"):
        resolve("deu_Lat")
    with pytest.raises(UnknownLanguageError, match="closest"):
        resolve("xx")


def test_script_not_in_nllb():
    with pytest.raises(UnknownLanguageError, match="no Latn script for Serbian; available: srp_Cyrl"):
        resolve("sr-Latn")


def test_resolve_many_rejects_duplicates_and_expands_lists():
    assert [lang.code for lang in resolve_many(["de", "fr"])] == ["deu_Latn", "fra_Latn"]
    with pytest.raises(UnknownLanguageError, match="listed twice"):
        resolve_many(["de", "deu_Latn"])
    assert len(resolve_many(["@all"])) == 202
    assert resolve_many(["@paper22"])[0].code == "eng_Latn" and len(named_list("paper22")) == 23
    with pytest.raises(UnknownLanguageError, match="did you mean 'paper22'"):
        named_list("paper2")
    with pytest.raises(UnknownLanguageError, match="'seed22' was renamed to 'paper22'"):
        resolve_many(["@seed22"])


@pytest.mark.parametrize("code,expected", [
    ("zh-TW", "zho_Hant"), ("zh-HK", "zho_Hant"), ("zh_MO", "zho_Hant"), ("zh-CN", "zho_Hans"), ("zh-SG", "zho_Hans"),
    ("az-IR", "azb_Arab"), ("az-AZ", "azj_Latn"), ("pa-IN", "pan_Guru"), ("sr-RS", "srp_Cyrl"),
    ("zh-Hans-TW", "zho_Hans"),  # an explicit script wins over the region's usual one
])
def test_regions_that_change_the_script(code, expected):
    """Before: zh-TW and zh-HK resolved to zho_Hans, az-IR to azj_Latn (the region was ignored)."""
    assert resolve(code).code == expected


@pytest.mark.parametrize("code,message", [
    ("sr-ME", r"'sr-ME': Serbian in region ME is written in Latin script \(srp_Latn\), which NLLB does not cover; "
              r"available: srp_Cyrl"),
    ("pa-PK", r"Panjabi in region PK is written in Arabic script \(pnb_Arab\).*available: pan_Guru"),
    ("uz-AF", r"Northern Uzbek in region AF is written in Arabic script \(uzs_Arab\).*available: uzn_Latn"),
    ("kk-CN", r"Kazakh in region CN is written in Arabic script \(kaz_Arab\)"),
    ("mn-CN", r"in Mongolian script \(mvf_Mong\)"),
    ("yue-CN", r"Yue Chinese in region CN is written in Simplified Han script \(yue_Hans\)"),
])
def test_regions_whose_script_nllb_lacks_are_refused(code, message):
    with pytest.raises(UnknownLanguageError, match=message):
        resolve(code)
