import pytest

from modsent.cli import main
from modsent.corpus import CorpusError, corpus_stats, open_corpus, validate_corpus, write_dataset
from modsent.train.paraphrase_batches import ParaphraseBatches
from modsent.translate.source import load_source


def make_corpus(root):
    write_dataset(root / "para", {("eng_Latn", 1): ["a", "b", "b"], ("eng_Latn", 2): ["c", "d", "e"],
                                  ("deu_Latn", 1): ["A", "B", "B"], ("deu_Latn", 2): ["C", "D", "E"]})
    write_dataset(root / "nli.jsonl", {("eng_Latn", 1): ["x"], ("eng_Latn", 2): ["y"], ("eng_Latn", 3): ["z"]},
                  fmt="jsonl")
    return root


def test_good_corpus_stats(tmp_path):
    root = tmp_path / "c"
    write_dataset(root / "para", {("eng_Latn", 1): ["a", "b", "b"], ("eng_Latn", 2): ["c", "d", "e"]})
    assert validate_corpus(root).ok
    (row,) = corpus_stats(root)
    assert row["rows"] == 3 and row["unique_sentences"] == 5 and row["columns"] == 2


def test_broken_corpus_reports_every_problem(tmp_path):
    root = make_corpus(tmp_path / "c")
    (root / "para" / "deu_Latn_2.txt").write_text("C\nD\nE\nF\n")  # one line too many
    (root / "para" / "eng_Latn_1.txt").write_bytes(b"a\n\xff\xfe\nb\n")
    (root / "para" / "eng_Latn_3.txt").write_text("n\nm\no\n")  # deu_Latn has no column 3
    report = validate_corpus(root)
    kinds = sorted(issue.kind for issue in report.issues)
    assert kinds == ["invalid_utf8", "misaligned", "missing_column", "missing_language"], report.format()
    text = report.format()
    assert "deu_Latn_2.txt: expected 3 lines" in text and "got 4" in text
    assert "eng_Latn_1.txt:2: invalid UTF-8" in text
    assert "lacks deu_Latn" in text
    assert "mixes pairs and triplets: hard negatives (column 3) exist for eng_Latn but not for deu_Latn" in text


def test_cli_validate_exit_codes(tmp_path, capsys):
    root = tmp_path / "c"
    write_dataset(root / "para", {("eng_Latn", 1): ["a"], ("eng_Latn", 2): ["b"]})
    assert main(["corpus", "validate", str(root)]) == 0
    assert "OK" in capsys.readouterr().out
    (root / "para" / "eng_Latn_2.txt").write_text("b\nc\n")
    assert main(["corpus", "validate", str(root)]) == 1
    assert "misaligned" in capsys.readouterr().out


def test_a_dataset_without_rows_is_not_ok(tmp_path):
    """Before: a 0-line corpus validated as "OK" (and translate wrote an empty corpus from it)."""
    root = tmp_path / "c"
    (root / "para").mkdir(parents=True)
    for name in ("eng_Latn_1.txt", "eng_Latn_2.txt"):
        (root / "para" / name).write_text("")
    report = validate_corpus(root)
    assert [issue.kind for issue in report.issues] == ["no_rows"], report.format()
    assert "every file of dataset 'para' is empty" in report.format()
    assert main(["corpus", "validate", str(root)]) != 0


def test_nul_bytes_are_reported_and_a_bom_is_not_a_problem(tmp_path):
    root = tmp_path / "c"
    write_dataset(root / "para", {("eng_Latn", 1): ["a", "b"], ("eng_Latn", 2): ["c", "d"]})
    (root / "para" / "eng_Latn_1.txt").write_bytes("\ufeffa\nb\n".encode())
    assert validate_corpus(root).ok
    (root / "para" / "eng_Latn_2.txt").write_bytes(b"c\nd\x00\n")
    (issue,) = validate_corpus(root).issues
    assert issue.kind == "nul_byte" and issue.where == f"{root / 'para' / 'eng_Latn_2.txt'}:2"


# Corpora `train` refuses. `corpus validate` passed the first (a sentence without its paraphrase) and
# translate translated it, hours before train refused it; the messages differed for the others.
REFUSED_BY_TRAIN = {
    "a language without its paraphrase column": {("eng_Latn", 1): ["a", "b"]},
    "hard negatives for one language only": {("eng_Latn", 1): ["a"], ("eng_Latn", 2): ["b"], ("eng_Latn", 3): ["c"],
                                             ("deu_Latn", 1): ["A"], ("deu_Latn", 2): ["B"]},
    "a blank sentence in every row": {("eng_Latn", 1): ["", "c"], ("eng_Latn", 2): ["b", " "]},
}


@pytest.mark.parametrize("case", list(REFUSED_BY_TRAIN))
def test_corpus_validate_refuses_what_train_refuses_with_the_same_message(tmp_path, case):
    write_dataset(tmp_path / "c" / "para", REFUSED_BY_TRAIN[case])
    datasets = open_corpus(tmp_path / "c")
    with pytest.raises(CorpusError) as refused:
        ParaphraseBatches(datasets, datasets[0].languages, batch_size=1)
    report = validate_corpus(tmp_path / "c")
    assert [issue.message for issue in report.issues] == [str(refused.value)], report.format()


def test_translate_refuses_a_corpus_train_would_refuse_before_translating(tmp_path):
    write_dataset(tmp_path / "c" / "para", REFUSED_BY_TRAIN["a language without its paraphrase column"])
    with pytest.raises(CorpusError) as refused:
        load_source([tmp_path / "c"], "eng_Latn")
    assert [issue.message for issue in validate_corpus(tmp_path / "c").issues] == [str(refused.value)]


def test_rows_train_skips_are_warnings_that_name_the_row(tmp_path, capsys):
    """Train skips a row with a blank sentence and trains on the rest; `corpus validate` failed such a corpus
    (translate writes a blank source line through as blank lines in every language)."""
    write_dataset(tmp_path / "c" / "para", {("eng_Latn", 1): ["a", " ", "c"], ("eng_Latn", 2): ["d", "e", "f"]})
    assert ParaphraseBatches(open_corpus(tmp_path / "c"), ["eng_Latn"], batch_size=1).datasets[0].num_rows == 2
    report = validate_corpus(tmp_path / "c")
    assert report.ok and [str(w) for w in report.warnings] == [
        f"blank_row: {tmp_path / 'c' / 'para'}:2: blank sentence in eng_Latn_1.txt; training skips this row"]
    assert main(["corpus", "validate", str(tmp_path / "c")]) == 0
    assert "OK, 1 warning(s)" in capsys.readouterr().out
