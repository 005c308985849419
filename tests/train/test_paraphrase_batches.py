"""Contrastive batches: one dataset per batch, round-robin, mono/cross languages, sharding, resume, errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from modsent.corpus import CorpusError, open_corpus
from modsent.testing import write_synthetic_corpus
from modsent.train.data import BatchStateError
from modsent.train.paraphrase_batches import ParaphraseBatchError, ParaphraseBatches

LANGS = ["eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "ell_Grek", "hin_Deva", "kor_Hang", "heb_Hebr"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paraphrase")
    return write_synthetic_corpus(root, LANGS[1:], {"pairs": 90, "triplets": 50, "small": 30}, seed=0,
                                  triplet_datasets=["triplets"], repeat_fraction=0.0)


def _rows_by_text(batches: ParaphraseBatches) -> dict[str, dict[tuple[str, str], int]]:
    """dataset -> (lang, anchor text) -> row number (texts are unique: repeat_fraction=0)."""
    return {d.name: {(lang, text): row for (lang, col), texts in d.columns.items() if col == 1
                     for row, text in enumerate(texts)} for d in batches.datasets}


def test_mono_batches_one_language_one_dataset_aligned_columns(corpus: Path) -> None:
    batches = ParaphraseBatches(open_corpus(corpus), LANGS[:3], batch_size=8, train_type="mono", seed=1)
    assert batches.batches_per_epoch == (90 + 50 + 30) // 8
    rows = _rows_by_text(batches)
    by_name = {d.name: d for d in batches.datasets}
    seen_langs = Counter()
    for _ in range(30):
        batch = next(batches)
        langs = {lang for column in batch.langs for lang in column}
        assert len(langs) == 1
        seen_langs.update(langs)
        assert batch.num_columns == (3 if batch.dataset == "triplets" else 2) and batch.size == 8
        columns = by_name[batch.dataset].columns
        for i in range(batch.size):
            lang = batch.langs[0][i]
            row = rows[batch.dataset][(lang, batch.texts[0][i])]
            for col in range(batch.num_columns):  # positive and negative come from the anchor's row
                assert batch.texts[col][i] == columns[(lang, col + 1)][row]
    assert set(seen_langs) == set(LANGS[:3])


def test_cross_batches_mix_up_to_six_languages_across_columns(corpus: Path) -> None:
    batches = ParaphraseBatches(open_corpus(corpus), LANGS, batch_size=8, train_type="cross", seed=2)
    rows = _rows_by_text(batches)
    by_name = {d.name: d for d in batches.datasets}
    for _ in range(20):
        batch = next(batches)
        per_batch = {lang for column in batch.langs for lang in column}
        assert 2 <= len(per_batch) <= 6
        for i in range(batch.size):
            row_langs = [batch.langs[col][i] for col in range(batch.num_columns)]
            assert len(set(row_langs)) == len(row_langs)  # >= 3 languages in the batch: all distinct
            anchor_row = rows[batch.dataset][(row_langs[0], batch.texts[0][i])]
            for col, lang in enumerate(row_langs):
                assert batch.texts[col][i] == by_name[batch.dataset].columns[(lang, col + 1)][anchor_row]
    # Two languages and triplets: anchor and positive differ, the negative repeats one of them.
    two = ParaphraseBatches(open_corpus(corpus / "triplets"), LANGS[:2], batch_size=8, train_type="cross", seed=3)
    for _ in range(5):
        batch = next(two)
        for i in range(batch.size):
            anchor, positive, negative = (batch.langs[col][i] for col in range(3))
            assert anchor != positive and negative in (anchor, positive)


def test_datasets_round_robin_and_each_pass_uses_every_row_once(corpus: Path) -> None:
    batches = ParaphraseBatches(open_corpus(corpus), ["eng_Latn"], batch_size=10, seed=4)
    names = [next(batches).dataset for _ in range(3 * 9)]
    for start in range(0, len(names), 3):
        assert sorted(names[start:start + 3]) == ["pairs", "small", "triplets"]
    assert names[:3] != names[3:6] or names[3:6] != names[6:9]  # the round order is reshuffled
    pairs = [batches.batch_at(i) for i in range(60) if batches.batch_at(i).dataset == "pairs"][:9]
    first_pass = [text for batch in pairs[:9] for text in batch.texts[0]]
    assert len(first_pass) == len(set(first_pass)) == 90
    second = ParaphraseBatches(open_corpus(corpus), ["eng_Latn"], batch_size=10, seed=5)
    assert [second.batch_at(i).texts for i in range(6)] != [batches.batch_at(i).texts for i in range(6)]


def test_ranks_split_the_global_batch_and_resume_is_exact(corpus: Path) -> None:
    def make(**kw):
        return ParaphraseBatches(open_corpus(corpus), LANGS[:4], train_type="cross", seed=6, **kw)

    whole = make(batch_size=8)
    rank0, rank1 = make(batch_size=4, rank=0, world_size=2), make(batch_size=4, rank=1, world_size=2)
    for _ in range(12):
        full, first, second = next(whole), next(rank0), next(rank1)
        assert first.dataset == second.dataset == full.dataset
        for col in range(full.num_columns):
            assert first.texts[col] + second.texts[col] == full.texts[col]
            assert first.langs[col] + second.langs[col] == full.langs[col]
    reference = [next(rank1) for _ in range(30)]  # crosses the end of an epoch (batches_per_epoch = 21)
    resumed = make(batch_size=4, rank=1, world_size=2)
    rank1_state = make(batch_size=4, rank=1, world_size=2)
    for _ in range(12):
        next(rank1_state)
    resumed.load_state_dict(rank1_state.state_dict())
    assert [next(resumed) for _ in range(30)] == reference
    with pytest.raises(BatchStateError, match="world_size"):
        make(batch_size=8).load_state_dict(rank1_state.state_dict())


def test_length_grouping_cuts_padding_and_keeps_batches_whole(corpus: Path) -> None:
    def waste(batches: ParaphraseBatches) -> float:
        padded = real = 0
        for _ in range(40):
            batch = next(batches)
            lengths = [len(text.split()) for column in batch.texts for text in column]
            padded += max(lengths) * len(lengths)
            real += sum(lengths)
        return 1 - real / padded

    def make(grouped: bool) -> ParaphraseBatches:
        return ParaphraseBatches(open_corpus(corpus), ["eng_Latn"], batch_size=10, seed=7, group_by_length=grouped,
                                 length_group_batches=8, length_fn=lambda texts, lang: [len(t.split()) for t in texts])

    grouped, ungrouped = waste(make(True)), waste(make(False))
    assert grouped < 0.6 * ungrouped, (grouped, ungrouped)
    batch = make(True).batch_at(0)
    assert batch.size == 10 and len(set(batch.texts[0])) == 10


def test_bad_inputs_are_clear_errors(corpus: Path, tmp_path: Path) -> None:
    datasets = open_corpus(corpus)
    with pytest.raises(CorpusError, match="no column 1 for language spa_Latn"):
        ParaphraseBatches(datasets, ["eng_Latn", "spa_Latn"], batch_size=4)
    with pytest.raises(ParaphraseBatchError, match="'small' .* has 30 rows, fewer than one global batch of 32"):
        ParaphraseBatches(datasets, ["eng_Latn"], batch_size=16, world_size=2)
    mixed = write_synthetic_corpus(tmp_path, ["deu_Latn"], {"mixed": 20}, triplet_datasets=["mixed"])
    (mixed / "mixed" / "deu_Latn_3.txt").unlink()
    with pytest.raises(CorpusError, match="mixes pairs and triplets.*eng_Latn but not for deu_Latn"):
        ParaphraseBatches(open_corpus(mixed), ["eng_Latn", "deu_Latn"], batch_size=4)
    as_pairs = ParaphraseBatches(open_corpus(mixed), ["eng_Latn", "deu_Latn"], batch_size=4, use_hard_negatives=False)
    assert next(as_pairs).num_columns == 2
    with pytest.raises(ParaphraseBatchError, match="needs at least two"):
        ParaphraseBatches(datasets, ["eng_Latn"], batch_size=4, train_type="cross")


def test_rows_with_a_blank_sentence_are_skipped_and_an_all_blank_dataset_refused(tmp_path: Path) -> None:
    """Before: a corpus of empty lines trained on empty strings."""
    from modsent.corpus import write_dataset

    write_dataset(tmp_path / "c" / "para", {("eng_Latn", 1): ["a b", "", "c d", "e f", " "],
                                             ("eng_Latn", 2): ["g h", "i j", "k l", "m n", "o p"]})
    batches = ParaphraseBatches(open_corpus(tmp_path / "c"), ["eng_Latn"], batch_size=3)
    assert batches.datasets[0].num_rows == 3
    texts = {text for batch in (next(batches) for _ in range(4)) for column in batch.texts for text in column}
    assert texts <= {"a b", "c d", "e f", "g h", "k l", "m n"} and "" not in texts
    write_dataset(tmp_path / "blank" / "para", {("eng_Latn", 1): [""] * 6, ("eng_Latn", 2): [""] * 5 + ["x"]})
    with pytest.raises(CorpusError, match=r"'para' \(.*blank/para\): all 6 rows have a blank sentence "
                                                   r"\(blank lines per column: eng_Latn_1.txt \(6\), eng_Latn_2.txt \(5\)\)"):
        ParaphraseBatches(open_corpus(tmp_path / "blank"), ["eng_Latn"], batch_size=2)


def test_partial_datasets_train_each_dataset_on_the_languages_it_holds(corpus: Path, tmp_path: Path) -> None:
    """Single_c's data: an English-only paraphrase corpus and plain parallel text beside a multilingual corpus."""
    from modsent.corpus import write_dataset
    from modsent.corpus.parallel import parallel_dataset

    english = [f"english sentence {i}" for i in range(40)]
    write_dataset(tmp_path / "english" / "en-only", {("eng_Latn", 1): english,
                                                      ("eng_Latn", 2): [f"{s}, said again" for s in english]})
    bitext = tmp_path / "eng_Latn-ell_Grek"
    bitext.mkdir()
    (bitext / "eng_Latn.txt").write_text("".join(f"line {i}\n" for i in range(40)), encoding="utf-8")
    (bitext / "ell_Grek.txt").write_text("".join(f"γραμμή {i}\n" for i in range(40)), encoding="utf-8")
    datasets = [*open_corpus(corpus / "pairs"), *open_corpus(tmp_path / "english"),
                parallel_dataset(bitext, "eng_Latn", "ell_Grek")]
    langs = ["eng_Latn", "deu_Latn", "ell_Grek"]
    with pytest.raises(CorpusError, match="partial_datasets: true"):
        ParaphraseBatches(datasets, langs, batch_size=8, train_type="cross")

    batches = ParaphraseBatches(datasets, langs, batch_size=8, train_type="cross", seed=4, partial_datasets=True)
    assert batches.batches_per_epoch == (90 + 40 + 40) // 8
    assert [d.langs for d in batches.datasets] == [langs, ["eng_Latn"], ["eng_Latn", "ell_Grek"]]
    seen = Counter()
    for _ in range(30):
        batch = next(batches)
        seen[batch.dataset] += 1
        batch_langs = {lang for column in batch.langs for lang in column}
        if batch.dataset == "en-only":
            assert batch_langs == {"eng_Latn"}
            assert all(p == f"{a}, said again" for a, p in zip(*batch.texts))
        elif batch.dataset.startswith("parallel:"):
            for i in range(batch.size):  # line i of one side with line i of the other, in either order
                row_langs = {batch.langs[0][i], batch.langs[1][i]}
                assert row_langs == {"eng_Latn", "ell_Grek"}
                assert batch.texts[0][i].split()[-1] == batch.texts[1][i].split()[-1]
        else:
            assert batch_langs <= set(langs) and len(batch_langs) >= 2
    assert set(seen) == {"pairs", "en-only", "parallel:eng_Latn-ell_Grek"}
    assert "partial_datasets" in batches.state_dict()
    assert "partial_datasets" not in ParaphraseBatches(datasets[:1], langs, batch_size=8).state_dict()

    with pytest.raises(ParaphraseBatchError, match="holds none of the languages.*it has eng_Latn"):
        ParaphraseBatches(open_corpus(tmp_path / "english"), ["deu_Latn", "ell_Grek"], batch_size=8,
                          train_type="cross", partial_datasets=True)
