from __future__ import annotations

import collections
import re
import unicodedata

import pytest

from modsent.errors import ModsentError
from modsent.languages import nllb_codes
from modsent.testing import synthetic
from modsent.testing.synthetic import (
    synthetic_paraphrase_rows,
    synthetic_sentences,
    translate_synthetic,
    write_parallel_text,
    write_synthetic_corpus,
)

# Expected Unicode character-name prefixes for the letters of each NLLB script suffix.
SCRIPT_NAMES = {
    "Latn": ("LATIN",), "Cyrl": ("CYRILLIC",), "Grek": ("GREEK",), "Arab": ("ARABIC",),
    "Hebr": ("HEBREW",), "Armn": ("ARMENIAN",), "Geor": ("GEORGIAN",), "Tfng": ("TIFINAGH",),
    "Deva": ("DEVANAGARI",), "Beng": ("BENGALI",), "Gujr": ("GUJARATI",), "Guru": ("GURMUKHI",),
    "Orya": ("ORIYA",), "Knda": ("KANNADA",), "Mlym": ("MALAYALAM",), "Taml": ("TAMIL",),
    "Telu": ("TELUGU",), "Sinh": ("SINHALA",), "Tibt": ("TIBETAN",), "Mymr": ("MYANMAR",),
    "Khmr": ("KHMER",), "Laoo": ("LAO",), "Thai": ("THAI",), "Ethi": ("ETHIOPIC",),
    "Hang": ("HANGUL",), "Hans": ("CJK UNIFIED",), "Hant": ("CJK UNIFIED",),
    "Jpan": ("HIRAGANA", "CJK UNIFIED"),
}


def canonical_content(sentence: str) -> collections.Counter:
    """Bag of concept ids of a sentence's content words: synonyms and verb forms collapse."""
    text = " " + re.sub(r"[.,]", "", sentence.lower()) + " "
    bag: collections.Counter = collections.Counter()
    # Place and time phrases first (longest first), so "by the river" is not read word by word.
    phrases = [
        (phrase, f"{kind}{i}")
        for kind, table in (("place", synthetic.PLACES), ("time", synthetic.TIMES))
        for i, concept in enumerate(table)
        for phrase in concept
    ]
    for phrase, concept_id in sorted(phrases, key=lambda p: -len(p[0])):
        while f" {phrase} " in text:
            text = text.replace(f" {phrase} ", " ", 1)
            bag[concept_id] += 1
    words = {}
    for kind, table in (("p", synthetic.PEOPLE), ("t", synthetic.THINGS), ("pa", synthetic.PERSON_ADJECTIVES),
                        ("ta", synthetic.THING_ADJECTIVES)):
        for i, concept in enumerate(table):
            words.update({w: f"{kind}{i}" for w in concept})
    for i, verb in enumerate(synthetic.VERBS):
        words.update({w: f"v{i}" for forms in verb.forms for w in forms})
    for word in text.split():
        if word not in ("the", "a", "an", "is", "by"):
            bag[words[word]] += 1
    return bag


def test_sentences_are_deterministic_distinct_and_varied():
    first = synthetic_sentences(3000, seed=7)
    assert first == synthetic_sentences(3000, seed=7)
    assert first != synthetic_sentences(3000, seed=8)
    assert len(set(first)) == 3000
    assert all(s[0].isupper() and s.endswith(".") and "\n" not in s for s in first)
    vocabulary = {w for s in first for w in re.findall(r"[a-z]+", s.lower())}
    assert len(vocabulary) > 400  # "a few hundred distinct words"
    assert synthetic_sentences(0) == []
    with pytest.raises(ModsentError, match="non-negative"):
        synthetic_sentences(-1)


def test_positives_keep_the_meaning_and_negatives_change_one_thing():
    rows = synthetic_paraphrase_rows(400, seed=3, triplets=True)
    assert rows == synthetic_paraphrase_rows(400, seed=3, triplets=True)
    assert len(rows) == 400 and all(len(r) == 3 for r in rows)
    assert len({r[0] for r in rows}) == 400
    swaps = 0
    for anchor, positive, negative in rows:
        assert anchor != positive and negative not in (anchor, positive)
        assert canonical_content(anchor) == canonical_content(positive), (anchor, positive)
        difference = canonical_content(anchor) - canonical_content(negative)
        if not difference:  # subject and object swapped: same words, different roles
            swaps += 1
            continue
        assert sum(difference.values()) == 1, (anchor, negative)  # exactly one content word replaced
    assert 0 < swaps < 200
    # Paraphrases vary the surface: synonyms, voice, fronting.
    assert sum(a.split()[0] != p.split()[0] for a, p, _ in rows) > 150
    assert sum(" by the " in p for _, p, _ in rows) > 50


def test_repeat_fraction_repeats_earlier_sentences_across_columns():
    unique = synthetic_paraphrase_rows(500, seed=1)
    assert len({s for row in unique for s in row}) == 1000
    rows = synthetic_paraphrase_rows(500, seed=1, repeat_fraction=0.3)
    seen: set[str] = set()
    repeats = 0
    for anchor, positive in rows:
        repeats += anchor in seen
        assert canonical_content(anchor) == canonical_content(positive)
        seen.update((anchor, positive))
    assert 100 < repeats < 200
    with pytest.raises(ModsentError, match="repeat_fraction"):
        synthetic_paraphrase_rows(5, repeat_fraction=1.5)


def test_every_nllb_code_translates_into_its_script():
    english = synthetic_sentences(3, seed=0)
    for code in nllb_codes():
        translated = translate_synthetic(english, code)
        assert translated == translate_synthetic(english, code)
        if code == "eng_Latn":
            assert translated == english
            continue
        assert len(translated) == 3 and all(translated)
        letters = [ch for s in translated for ch in s if unicodedata.category(ch).startswith(("L", "M"))]
        prefixes = SCRIPT_NAMES[code.split("_")[1]]
        wrong = {ch for ch in letters if not unicodedata.name(ch).startswith(prefixes)}
        assert not wrong, (code, translated, wrong)


def words_of(text: str) -> list[str]:
    """Space-separated words with punctuation (any script's) removed."""
    return "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text).split()


def test_translation_is_word_level_consistent_and_one_to_one():
    english = synthetic_sentences(200, seed=2)
    articles = ("the", "a", "an")
    for lang in ("deu_Latn", "rus_Cyrl", "arb_Arab", "hin_Deva", "kor_Hang"):
        lexicon = {w: translate_synthetic([w], lang)[0].lower() for w in synthetic.VOCABULARY}
        content = {w: t for w, t in lexicon.items() if w not in articles}
        assert len(set(content.values())) == len(content) and all(content.values())  # one-to-one
        for source, target in zip(english, translate_synthetic(english, lang)):
            expected = collections.Counter(lexicon[w] for w in re.findall(r"[a-z]+", source.lower()))
            got = collections.Counter(words_of(target.lower()))
            # The same pseudo-words (word order may change); only articles may be dropped.
            assert not got - expected, (source, target)
            assert all(w in {lexicon[a] for a in articles} for w in expected - got), (source, target)
    # Same script, different languages.
    assert translate_synthetic(english, "deu_Latn") != translate_synthetic(english, "fra_Latn")
    # Words outside the grammar and unknown scripts still translate deterministically.
    outside = translate_synthetic(["The robot sings 3 songs!"], "xyz_Qaaa")
    assert outside == translate_synthetic(["The robot sings 3 songs!"], "xyz_Qaaa") and "3" in outside[0]
    with pytest.raises(ModsentError, match="not a language code"):
        translate_synthetic(["The man reads."], "german")


def test_han_text_has_no_spaces_and_uses_its_full_stop():
    (text,) = translate_synthetic(["In the park, the old man reads a book."], "zho_Hans")
    assert " " not in text and text.endswith("\u3002")


def read_lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def test_corpus_files_are_aligned_complete_and_deterministic(tmp_path):
    langs = ["deu_Latn", "rus_Cyrl", "zho_Hans"]
    datasets = {"quora": 60, "nli": 40}
    root = write_synthetic_corpus(tmp_path / "a", langs, datasets, seed=5, triplet_datasets=["nli"],
                                  repeat_fraction=0.2)
    assert root == tmp_path / "a"
    expected = {f"{lang}_{i}.txt" for lang in ["eng_Latn", *langs] for i in (1, 2)}
    assert {p.name for p in (root / "quora").iterdir()} == expected
    assert {p.name for p in (root / "nli").iterdir()} == expected | {f"{lang}_3.txt" for lang in ["eng_Latn", *langs]}
    for name, n in datasets.items():
        columns = 3 if name == "nli" else 2
        for i in range(1, columns + 1):
            english = read_lines(root / name / f"eng_Latn_{i}.txt")
            assert len(english) == n and all(english)
            for lang in langs:
                assert read_lines(root / name / f"{lang}_{i}.txt") == translate_synthetic(english, lang)
    anchors = read_lines(root / "quora" / "eng_Latn_1.txt")
    positives = read_lines(root / "quora" / "eng_Latn_2.txt")
    assert len(set(anchors + positives)) < 120  # some repeated sentences
    assert read_lines(root / "quora" / "eng_Latn_1.txt") != read_lines(root / "nli" / "eng_Latn_1.txt")[:60]
    again = write_synthetic_corpus(tmp_path / "b", langs, datasets, seed=5, triplet_datasets=["nli"],
                                   repeat_fraction=0.2)
    for path in root.rglob("*.txt"):
        assert (again / path.relative_to(root)).read_bytes() == path.read_bytes()
    assert not list(root.rglob(".tmp-*"))


def test_corpus_rejects_bad_arguments(tmp_path):
    with pytest.raises(ModsentError, match="triplet_datasets"):
        write_synthetic_corpus(tmp_path, ["deu_Latn"], {"quora": 5}, triplet_datasets=["nli"])
    with pytest.raises(ModsentError, match="not a language code"):
        write_synthetic_corpus(tmp_path, ["de"], {"quora": 5})
    with pytest.raises(TypeError, match="list of codes"):
        write_synthetic_corpus(tmp_path, "deu_Latn", {"quora": 5})


def test_parallel_text_is_line_aligned(tmp_path):
    root = write_parallel_text(tmp_path, "ell_Grek", 30, seed=4)
    english = read_lines(root / "eng_Latn.txt")
    assert english == synthetic_sentences(30, seed=4)
    assert read_lines(root / "ell_Grek.txt") == translate_synthetic(english, "ell_Grek")
