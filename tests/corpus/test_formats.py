import json

import pytest

from modsent.corpus import CorpusError, MisalignedCorpusError, open_corpus, open_dataset, write_dataset

ROWS = [("a cat sleeps", "the cat is sleeping"), ("dogs bark", "a dog is barking"), ("x" * 10_000, "long line")]


def data(langs=("eng_Latn", "deu_Latn")):
    return {(lang, col): [f"{lang}:{row[col - 1]}" for row in ROWS] for lang in langs for col in (1, 2)}


@pytest.mark.parametrize("fmt,name", [("seed", "ds"), ("jsonl", "ds.jsonl"), ("parquet", "ds.parquet")])
def test_roundtrip_every_format(tmp_path, fmt, name):
    dataset = write_dataset(tmp_path / name, data(), fmt=fmt)
    assert dataset.format == fmt and dataset.languages == ["deu_Latn", "eng_Latn"]
    assert not dataset.has_negatives and dataset.num_rows() == 3
    rows = list(dataset.iter_rows([("deu_Latn", 2), ("eng_Latn", 1)]))
    assert rows[1] == ("deu_Latn:a dog is barking", "eng_Latn:dogs bark")
    assert len(rows[2][1]) == len("eng_Latn:") + 10_000


def test_seed_layout_with_iso_codes_and_no_trailing_newline(tmp_path):
    ds = tmp_path / "sentence-compression"
    ds.mkdir()
    (ds / "eng_1.txt").write_text("one\ntwo\n" + "y" * 10_000)  # no trailing newline
    (ds / "eng_2.txt").write_text("uno\ndos\ntres\n")
    (ds / "deu_1.txt").write_text("eins\nzwei\ndrei\n")
    (ds / "deu_2.txt").write_text("1\n2\n3\n")
    (ds / "deu_3.txt").write_text("a\nb\nc\n")
    (ds / "eng_3.txt").write_text("a\nb\nc\n")
    (ds / "README").write_text("ignored")
    dataset = open_dataset(ds)
    assert dataset.languages == ["deu_Latn", "eng_Latn"] and dataset.has_negatives
    rows = list(dataset.iter_rows([("eng_Latn", 1), ("eng_Latn", 2), ("eng_Latn", 3)]))
    assert rows[2] == ("y" * 10_000, "tres", "c")
    assert dataset.num_rows() == 3


def test_misaligned_files_name_files_and_counts(tmp_path):
    write_dataset(tmp_path / "ds", data())
    with open(tmp_path / "ds" / "deu_Latn_2.txt", "a") as handle:
        handle.write("extra\n")
    dataset = open_dataset(tmp_path / "ds")
    with pytest.raises(MisalignedCorpusError, match=r"deu_Latn_1.txt ended after 3 lines.*deu_Latn_2.txt"):
        list(dataset.iter_rows([("deu_Latn", 1), ("deu_Latn", 2)]))


def test_invalid_utf8_names_file_and_line(tmp_path):
    write_dataset(tmp_path / "ds", data())
    path = tmp_path / "ds" / "eng_Latn_1.txt"
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"caf\xe9"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorpusError, match=r"eng_Latn_1.txt:2: invalid UTF-8"):
        list(open_dataset(tmp_path / "ds").iter_rows([("eng_Latn", 1)]))


def test_missing_language_and_unknown_code(tmp_path):
    dataset = write_dataset(tmp_path / "ds", data())
    with pytest.raises(CorpusError, match=r"no column 1 for language fra_Latn.*deu_Latn, eng_Latn"):
        list(dataset.iter_rows([("fra_Latn", 1)]))
    (tmp_path / "ds" / "xq_1.txt").write_text("?\n")
    with pytest.raises(CorpusError, match=r"xq_1.txt: unknown language code 'xq'"):
        open_dataset(tmp_path / "ds")


def test_jsonl_errors_have_line_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"eng_Latn_1": "a", "eng_Latn_2": "b"}) + "\n{broken\n")
    with pytest.raises(CorpusError, match=r"d.jsonl:2: not valid JSON"):
        list(open_dataset(path).iter_rows([("eng_Latn", 1)]))


def test_open_corpus_lists_datasets(tmp_path):
    write_dataset(tmp_path / "c" / "b", data())
    write_dataset(tmp_path / "c" / "a.jsonl", data(), fmt="jsonl")
    assert [d.name for d in open_corpus(tmp_path / "c")] == ["a", "b"]
    assert [d.name for d in open_corpus(tmp_path / "c" / "b")] == ["b"]
    with pytest.raises(CorpusError, match="does not exist"):
        open_corpus(tmp_path / "nothing")


def test_writer_keeps_one_sentence_per_line(tmp_path):
    ds = write_dataset(tmp_path / "ds", {("en", 1): ["two\nlines"], ("en", 2): ["ok"]})
    assert list(ds.iter_rows([("eng_Latn", 1)])) == [("two lines",)]
    with pytest.raises(MisalignedCorpusError):
        write_dataset(tmp_path / "bad", {("en", 1): ["a", "b"], ("en", 2): ["a"]})
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_bom_is_stripped_and_nul_bytes_refused_with_file_and_line(tmp_path):
    """Before: the BOM stayed in the first sentence and NUL bytes passed through."""
    from modsent.corpus import read_lines

    path = tmp_path / "eng_Latn_1.txt"
    path.write_bytes("\ufeffFirst line.\nSecond \ufeff line.\n".encode())
    assert list(read_lines(path)) == ["First line.", "Second \ufeff line."]  # only a BOM opening the file goes
    path.write_bytes(b"ok\nbad\x00line\n")
    with pytest.raises(CorpusError, match=rf"{path}:2: NUL byte at character 4 .* re-encode it as UTF-8"):
        list(read_lines(path))
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes('{"eng_Latn_1": "a", "eng_Latn_2": "b"}\n'.encode("utf-16-le"))
    with pytest.raises(CorpusError, match=rf"{utf16}:1: NUL byte"):
        open_dataset(utf16)
    bom_jsonl = tmp_path / "bom.jsonl"
    bom_jsonl.write_bytes('\ufeff{"eng_Latn_1": "a", "eng_Latn_2": "b"}\n'.encode())
    assert list(open_dataset(bom_jsonl).iter_rows([("eng_Latn", 1), ("eng_Latn", 2)])) == [("a", "b")]
