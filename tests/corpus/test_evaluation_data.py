from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modsent.corpus.evaluation_data import (
    EvaluationDataError,
    LanguageNotFoundError,
    MissingDataFileError,
    read_belebele,
    read_parallel_lines,
)
from modsent.corpus.sts_data import read_kardes, read_kardes_files, read_mteb_sts, read_str, read_stsb
from modsent.languages import resolve

# ------------------------------------------------------------------------------------------ STS-B

STSB_ROWS = (
    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA girl is styling her hair.\tA girl is brushing her hair.\n"
    # bare quotes inside a sentence: must not start a quoted CSV field
    'main-news\theadlines\t2013\t0002\t1.200\tHe said "no" to the "deal\tThey signed the deal.\n'
    # train/dev rows can carry source-id fields after sentence2
    "main-forums\tdeft-forum\t2014\t0003\t3.400\tIt is late.\tIt's getting late.\tsrc1\tsrc2\n"
)


def test_stsb_reads_tab_fields_with_bare_quotes_and_extra_columns(tmp_path):
    path = tmp_path / "sts-test.csv"
    path.write_text(STSB_ROWS, encoding="utf-8")
    pairs = read_stsb(path, "eng_Latn")
    assert pairs.sentences1 == ("A girl is styling her hair.", 'He said "no" to the "deal', "It is late.")
    assert pairs.sentences2[2] == "It's getting late."
    np.testing.assert_array_equal(pairs.scores, [5.0, 1.2, 3.4])
    assert (pairs.lang1, pairs.lang2) == ("eng_Latn", "eng_Latn")


def test_stsb_malformed_row_names_file_row_and_columns(tmp_path):
    path = tmp_path / "sts-dev.csv"
    path.write_text(STSB_ROWS + "main-captions\tMSRvid\t2012\t0004\tonly five fields\n", encoding="utf-8")
    with pytest.raises(EvaluationDataError, match=r"sts-dev\.csv, row 4: expected at least 7 .*got 5.*sentence1"):
        read_stsb(path)
    path.write_text(STSB_ROWS.replace("1.200", "n/a"), encoding="utf-8")
    with pytest.raises(EvaluationDataError, match=r"row 2: column 'score' holds 'n/a'"):
        read_stsb(path)


def test_stsb_reads_the_real_benchmark_files():
    from modsent.corpus.sts_data import shipped_stsb_dir

    try:
        directory = shipped_stsb_dir()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    # pair counts of the published splits; quote-aware CSV parsing would merge rows and miss them
    for name, count in (("sts-train.csv", 5749), ("sts-dev.csv", 1500), ("sts-test.csv", 1379)):
        pairs = read_stsb(directory / name)
        assert len(pairs) == count
        assert pairs.scores.min() == 0.0 and pairs.scores.max() == 5.0
    assert pairs.sentences1[0] == "A girl is styling her hair."


def test_missing_files_raise_file_not_found_with_the_path(tmp_path):
    missing = tmp_path / "nope" / "sts-test.csv"
    for reader in (lambda p: read_stsb(p), lambda p: read_str(p, "amh_Ethi"), lambda p: read_mteb_sts(p, "en-de"),
                   lambda p: read_kardes(p, "kaz_Cyrl"), lambda p: read_parallel_lines({"eng_Latn": p})):
        with pytest.raises(MissingDataFileError, match="nope") as info:
            reader(missing)
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------ MTEB STS17 / STS22

STS17_RECORDS = [
    {"sentence1": "A man is playing a guitar.", "sentence2": "Ein Mann spielt Gitarre.", "score": 4.8, "lang": "en-de"},
    {"sentence1": "A dog runs.", "sentence2": "Eine Katze schläft.", "score": 0.4, "lang": "en-de"},
    {"sentence1": "Un hombre canta.", "sentence2": "Un hombre está cantando.", "score": 4.5, "lang": "es"},
    {"sentence1": "Dos niños.", "sentence2": "Un perro.", "score": 0.0, "lang": "es"},
]


def test_mteb_jsonl_groups_by_lang_column_and_normalizes_codes(tmp_path, fakes):
    path = fakes.write_jsonl(tmp_path / "sts17.jsonl", STS17_RECORDS)
    pairs = read_mteb_sts(path)
    assert list(pairs) == [("en", "de"), ("es", "es")]
    assert pairs[("en", "de")].sentences2 == ("Ein Mann spielt Gitarre.", "Eine Katze schläft.")
    np.testing.assert_array_equal(pairs[("es", "es")].scores, [4.5, 0.0])

    normalized = read_mteb_sts(path, normalize=lambda code: resolve(code).code, languages=["eng_Latn", "deu_Latn"])
    assert list(normalized) == [("eng_Latn", "deu_Latn")]  # the Spanish pair is filtered out


def test_mteb_parquet_with_lang1_lang2_and_gzip_jsonl_with_given_pair(tmp_path):
    table = pa.table({"sentence1": ["a b", "c d"], "sentence2": ["x y", "z w"], "score": [1.0, 3.5],
                      "lang1": ["de", "de"], "lang2": ["fr", "fr"]})
    pq.write_table(table, tmp_path / "sts22.parquet")
    pairs = read_mteb_sts(tmp_path / "sts22.parquet")
    assert list(pairs) == [("de", "fr")] and pairs[("de", "fr")].sentences1 == ("a b", "c d")

    plain = [{k: v for k, v in r.items() if k != "lang"} for r in STS17_RECORDS[:2]]
    with gzip.open(tmp_path / "test.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in plain)
    pairs = read_mteb_sts(tmp_path / "test.jsonl.gz", lang_pair="en-de")
    assert list(pairs) == [("en", "de")] and len(pairs[("en", "de")]) == 2
    with pytest.raises(EvaluationDataError, match=r"row 1: has no 'lang'.*give the language pair"):
        read_mteb_sts(tmp_path / "test.jsonl.gz")


def test_mteb_absent_language_and_malformed_rows(tmp_path, fakes):
    path = fakes.write_jsonl(tmp_path / "sts17.jsonl", STS17_RECORDS)
    with pytest.raises(LanguageNotFoundError, match=r"language\(s\) ko not in the file \(present: de, en, es\)"):
        read_mteb_sts(path, languages=["en", "ko"])
    with pytest.raises(LanguageNotFoundError, match=r"pair ar-ar not in the file \(present: en-de, es-es\)"):
        read_mteb_sts(path, lang_pair="ar-ar")

    bad = fakes.write_jsonl(tmp_path / "bad.jsonl", STS17_RECORDS[:2] + [{"sentence1": "x", "score": 1.0, "lang": "es"}])
    with pytest.raises(EvaluationDataError, match=r"bad\.jsonl, row 3: lacks key\(s\) sentence2"):
        read_mteb_sts(bad)
    bad.write_text(bad.read_text().replace('"score": 0.4', '"score": "high"'), encoding="utf-8")
    with pytest.raises(EvaluationDataError, match=r"row 2: column 'score' holds 'high'"):
        read_mteb_sts(bad)
    bad.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{not json\n', encoding="utf-8")
    with pytest.raises(EvaluationDataError, match=r"row 2: not valid JSON"):
        read_mteb_sts(bad, lang_pair="en")


# ------------------------------------------------------------------------------- SemEval-2024 STR


def _write_csv(path, rows, header):
    import csv

    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_str_splits_text_at_newline_or_tab_and_strips_wrapping_quotes(tmp_path):
    path = _write_csv(tmp_path / "mar_test_with_labels.csv", [
        ["hau_test_00001", "Sentence one here.\nSentence two here.", "0.2"],
        ["eng_test_00002", "Tab first.\tTab second.", "0.75"],
        # Marathi's layout: each sentence wrapped in literal quotes, so the CSV field is """a""\n""b"""
        ["MAR-test-00003", '"मी सिक्किमला भेट दिली."\n"मी सिक्कीमला गेलो होतो."', "0.79"],
        ["x-4", "Windows line end.\r\nSecond, with a comma.", "1.0"],
    ], ["PairID", "Text", "Score"])
    assert '"""' in path.read_text(encoding="utf-8")  # the fixture really has the doubled quotes
    pairs = read_str(path, "mar_Deva")
    assert pairs.sentences1 == ("Sentence one here.", "Tab first.", "मी सिक्किमला भेट दिली.", "Windows line end.")
    assert pairs.sentences2 == ("Sentence two here.", "Tab second.", "मी सिक्कीमला गेलो होतो.",
                                "Second, with a comma.")
    np.testing.assert_allclose(pairs.scores, [0.2, 0.75, 0.79, 1.0])


def test_str_errors_name_the_row(tmp_path):
    header = ["PairID", "Text", "Score"]
    path = _write_csv(tmp_path / "a.csv", [["p1", "one\ntwo", "0.5"], ["p2", "no separator", "0.1"]], header)
    with pytest.raises(EvaluationDataError, match=r"a\.csv, row 2: 'Text' of pair 'p2' does not split"):
        read_str(path, "amh_Ethi")
    path = _write_csv(tmp_path / "b.csv", [["p1", "one\ntwo", ""]], header)
    with pytest.raises(EvaluationDataError, match=r"row 1: no gold 'Score' \(use the \*_with_labels.csv file\)"):
        read_str(path, "amh_Ethi")
    path = _write_csv(tmp_path / "c.csv", [["p1", "one\ntwo", "0.5"]], ["PairID", "Sentences", "Score"])
    with pytest.raises(EvaluationDataError, match=r"header lacks Text.*expected columns: PairID, Text, Score"):
        read_str(path, "amh_Ethi")


# -------------------------------------------------------------------------------------- Kardeş-NLU

KARDES_HEADER = ["", "sentence1", "sentence2", "score", "s1_translation", "s2_translation"]
KARDES_ROWS = [
    ["5", "A woman is cutting onions.", "A woman is cutting tofu.", "1.8", "Әйел пияздарды кесіп жатыр.",
     "Әйел тофу кесіп жатыр."],
    ["17", "A man is singing and playing a guitar.", "A man is playing a guitar.", "3.6",
     "Ер адам ән айтып, гитарада ойнап жатыр.", "Ер адам гитарада ойнап жатыр."],
]


def test_kardes_returns_english_and_translation_sets(tmp_path):
    path = _write_csv(tmp_path / "sts.test.kk.csv", KARDES_ROWS, KARDES_HEADER)
    sets = read_kardes(path, "kaz_Cyrl")
    assert list(sets) == ["eng_Latn", "kaz_Cyrl"]
    assert sets["kaz_Cyrl"].sentences1[1] == "Ер адам ән айтып, гитарада ойнап жатыр."
    assert sets["eng_Latn"].sentences2[0] == "A woman is cutting tofu."
    np.testing.assert_array_equal(sets["eng_Latn"].scores, sets["kaz_Cyrl"].scores)


def test_kardes_files_must_share_the_english_split(tmp_path):
    kk = _write_csv(tmp_path / "sts.test.kk.csv", KARDES_ROWS, KARDES_HEADER)
    other = [row[:] for row in KARDES_ROWS]
    other[0][3] = "2.0"
    ky = _write_csv(tmp_path / "sts.dev.ky.csv", other, KARDES_HEADER)
    with pytest.raises(EvaluationDataError, match=r"sts\.dev\.ky\.csv: its English pairs or scores differ"):
        read_kardes_files({"kaz_Cyrl": kk, "kir_Cyrl": ky})
    bad = _write_csv(tmp_path / "sts.test.uz.csv", [KARDES_ROWS[0], KARDES_ROWS[1][:5]], KARDES_HEADER)
    with pytest.raises(EvaluationDataError, match=r"uz\.csv, row 2: has 6 header fields"):
        read_kardes(bad, "uzn_Latn")


# -------------------------------------------------------------------------------------- Belebele


def test_belebele_aligns_languages_by_link_and_question_number(tmp_path, fakes):
    fakes.write_belebele(tmp_path, ["eng_Latn"])
    shuffled = fakes.belebele_records("deu_Latn")[::-1]  # same questions, another order
    fakes.write_jsonl(tmp_path / "deu_Latn.jsonl", shuffled)
    data = read_belebele(tmp_path, ["eng_Latn", "deu_Latn"])
    assert data.languages == ("eng_Latn", "deu_Latn") and len(data) == 6
    for eng, deu in zip(data.items["eng_Latn"], data.items["deu_Latn"]):
        assert eng.key == deu.key and eng.answer == deu.answer
        assert deu.passage.startswith("[deu_Latn]")
    expected = [int(r["correct_answer_num"]) - 1 for r in fakes.belebele_records("eng_Latn")]
    np.testing.assert_array_equal(data.answers, expected)


def test_belebele_errors(tmp_path, fakes):
    fakes.write_belebele(tmp_path, ["eng_Latn", "deu_Latn"])
    with pytest.raises(LanguageNotFoundError, match=r"no Belebele file for language kin_Latn.*eng_Latn\.jsonl"):
        read_belebele(tmp_path, ["eng_Latn", "kin_Latn"])
    with pytest.raises(MissingDataFileError, match="Belebele directory not found"):
        read_belebele(tmp_path / "missing", ["eng_Latn"])

    records = fakes.belebele_records("fra_Latn")
    records[0]["correct_answer_num"] = "4" if records[0]["correct_answer_num"] != "4" else "3"
    fakes.write_jsonl(tmp_path / "fra_Latn.jsonl", records)
    with pytest.raises(EvaluationDataError, match=r"fra_Latn\.jsonl: 1 answers differ from eng_Latn"):
        read_belebele(tmp_path, ["eng_Latn", "fra_Latn"])

    records = fakes.belebele_records("spa_Latn")
    records[2]["correct_answer_num"] = "5"
    fakes.write_jsonl(tmp_path / "spa_Latn.jsonl", records)
    with pytest.raises(EvaluationDataError, match=r"spa_Latn\.jsonl, row 3: correct_answer_num must be 1-4"):
        read_belebele(tmp_path, ["spa_Latn"])

    records = fakes.belebele_records("por_Latn")
    records[1]["flores_passage"] += " (edited)"
    fakes.write_jsonl(tmp_path / "por_Latn.jsonl", records)
    with pytest.raises(EvaluationDataError, match=r"por_Latn\.jsonl, row 2: link .* has two different passages"):
        read_belebele(tmp_path, ["por_Latn"])

    fakes.write_jsonl(tmp_path / "ita_Latn.jsonl", fakes.belebele_records("ita_Latn")[:-1])
    with pytest.raises(EvaluationDataError, match=r"questions differ from eng_Latn: 1 missing"):
        read_belebele(tmp_path, ["eng_Latn", "ita_Latn"])


# ---------------------------------------------------------------------------------------- bitext


def test_parallel_lines_must_align(tmp_path):
    (tmp_path / "eng_Latn.devtest").write_text("Hello world.\nSecond line.\n", encoding="utf-8")
    (tmp_path / "deu_Latn.devtest").write_text("Hallo Welt.\r\nZweite Zeile.", encoding="utf-8")
    (tmp_path / "fra_Latn.devtest").write_text("Bonjour.\n", encoding="utf-8")
    (tmp_path / "ita_Latn.devtest").write_text("Ciao.\n\nRiga.\n", encoding="utf-8")
    texts = read_parallel_lines({"eng_Latn": tmp_path / "eng_Latn.devtest", "deu_Latn": tmp_path / "deu_Latn.devtest"})
    assert texts == {"eng_Latn": ["Hello world.", "Second line."], "deu_Latn": ["Hallo Welt.", "Zweite Zeile."]}
    with pytest.raises(EvaluationDataError, match=r"fra_Latn\.devtest: has 1 lines but .*eng_Latn\.devtest has 2"):
        read_parallel_lines({"eng_Latn": tmp_path / "eng_Latn.devtest", "fra_Latn": tmp_path / "fra_Latn.devtest"})
    with pytest.raises(EvaluationDataError, match=r"ita_Latn\.devtest, row 2: empty line"):
        read_parallel_lines({"ita_Latn": tmp_path / "ita_Latn.devtest"})


# Known words in Uyghur Cyrillic and Arabic script (the pairs umsc's own UCS→UAS tests check).
UYGHUR_WORDS = [("китаб", "كىتاب"), ("вәтән", "ۋەتەن"), ("шинҗаң", "شىنجاڭ"), ("өрдәк", "ئۆردەك"),
                ("мәс'ул", "مەسئۇل"), ("өзбекистанға", "ئۆزبېكىستانغا")]


@pytest.mark.parametrize("cyrillic,arabic", UYGHUR_WORDS)
def test_uyghur_cyrillic_to_arabic_known_words(cyrillic, arabic):
    from modsent.corpus.sts_data import uyghur_cyrillic_to_arabic

    assert uyghur_cyrillic_to_arabic(cyrillic) == arabic
    assert uyghur_cyrillic_to_arabic(arabic) == arabic  # Arabic script passes through


def test_kardes_uyghur_is_scored_in_arabic_script(tmp_path):
    rows = [["5", "A woman is cutting onions.", "A woman is cutting tofu.", "1.8", "Бу китаб.", "Вәтән, шинҗаң!"],
            ["17", "A man is singing.", "A man sings.", "3.6", "өрдәк", "мәс'ул"]]
    sets = read_kardes(_write_csv(tmp_path / "sts.test.ug.csv", rows, KARDES_HEADER), resolve("ug").code)
    assert sets["uig_Arab"].sentences1 == ("بۇ كىتاب.", "ئۆردەك")
    assert sets["uig_Arab"].sentences2 == ("ۋەتەن، شىنجاڭ!", "مەسئۇل")
    assert sets["eng_Latn"].sentences1[0] == "A woman is cutting onions."  # English untouched
    kazakh = read_kardes(_write_csv(tmp_path / "sts.test.kk.csv", rows, KARDES_HEADER), "kaz_Cyrl")
    assert kazakh["kaz_Cyrl"].sentences1 == ("Бу китаб.", "өрдәк")  # other Cyrillic languages stay as written


def test_str_uyghur_is_transliterated(tmp_path):
    path = tmp_path / "uig_test_with_labels.csv"
    path.write_text('PairID,Text,Score\nUIG-1,"китаб\nвәтән",0.5\n', encoding="utf-8")
    pairs = read_str(path, "uig_Arab")
    assert (pairs.sentences1, pairs.sentences2) == (("كىتاب",), ("ۋەتەن",))
