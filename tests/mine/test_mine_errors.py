"""Bad input to `modsent mine` fails before any Ray or output, with one line naming the file or language."""

from __future__ import annotations

import contextlib
import errno
import re
from pathlib import Path

import numpy as np
import pytest

import modsent.mine.stage as job
import modsent.raycluster
from modsent.cli import main
from modsent.models.modular import write_modular_manifest
from modsent.testing import save_perturbed_encoder, tiny_bert_mlm


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, model_cache) -> Path:
    return save_perturbed_encoder(tiny_bert_mlm(model_cache), tmp_path_factory.mktemp("enc") / "encoder", None, 32)


def _mine(capsys, model: Path, src: Path, tgt: Path, out: Path, *extra: str) -> str:
    argv = ["mine", "--model", str(model), "--src", str(src), "--tgt", str(tgt), "--output", str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    return err


def test_empty_input_names_the_file(tmp_path, encoder_dir, capsys):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("A sentence.\n", encoding="utf-8")
    err = _mine(capsys, encoder_dir, tmp_path / "empty.txt", tmp_path / "tgt.txt", tmp_path / "out")
    assert f"src: no sentences in {tmp_path / 'empty.txt'} (empty input)" in err


def test_invalid_utf8_names_file_and_line(tmp_path, encoder_dir, capsys):
    (tmp_path / "src.txt").write_text("Fine.\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"ok line\nbad \xff\xfe line\n")
    err = _mine(capsys, encoder_dir, tmp_path / "src.txt", tmp_path / "bad.txt", tmp_path / "out")
    assert f"{tmp_path / 'bad.txt'}:2: invalid UTF-8" in err and err.startswith("modsent mine: error: tgt:")


def test_a_language_the_modular_model_lacks_is_named(tmp_path, encoder_dir, capsys):
    write_modular_manifest(tmp_path / "modular", "eng_Latn", {"eng_Latn": (encoder_dir, None)})
    (tmp_path / "src.txt").write_text("Ein Satz.\n", encoding="utf-8")
    err = _mine(capsys, tmp_path / "modular", tmp_path / "src.txt", tmp_path / "src.txt", tmp_path / "out",
                "--src-lang", "jpn_Jpan", "--tgt-lang", "eng_Latn")
    assert "has no encoder for jpn_Jpan" in err and "it serves eng_Latn" in err


def test_a_directory_that_is_not_an_encoder_is_named(tmp_path, capsys):
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "weights.bin").write_bytes(b"\0")
    (tmp_path / "src.txt").write_text("A sentence.\n", encoding="utf-8")
    err = _mine(capsys, tmp_path / "notamodel", tmp_path / "src.txt", tmp_path / "src.txt", tmp_path / "out")
    assert f"{tmp_path / 'notamodel'} is not a sentence encoder" in err


def test_bad_jsonl_and_missing_parquet_column(tmp_path, encoder_dir, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('{"text": "ok"}\n{"other": 1}\n', encoding="utf-8")
    (tmp_path / "b.parquet").write_bytes(b"")
    pq.write_table(pa.table({"sentence": ["x"]}), tmp_path / "b.parquet")
    err = _mine(capsys, encoder_dir, tmp_path / "a.jsonl", tmp_path / "b.parquet", tmp_path / "out")
    assert f"{tmp_path / 'a.jsonl'}:2: expected a JSON string or an object with a string 'text'" in err
    (tmp_path / "a.jsonl").write_text('"a bare string"\n', encoding="utf-8")
    err = _mine(capsys, encoder_dir, tmp_path / "a.jsonl", tmp_path / "b.parquet", tmp_path / "out")
    assert f"{tmp_path / 'b.parquet'}: no column 'text' (columns: sentence)" in err


def test_auto_language_skips_or_falls_back_for_languages_the_model_lacks(tmp_path, encoder_dir):
    from modsent.mine.inputs import read_side
    from modsent.mine.stage import MineModelError, assign_languages

    model = tmp_path / "modular"
    write_modular_manifest(model, "eng_Latn", {"eng_Latn": (encoder_dir, None)})
    english = "The children are playing football in the park after school."
    (tmp_path / "src.txt").write_text("\n".join([
        english, "Die Kinder spielen nach der Schule im Park Fußball.", english,
        "子供たちは放課後に公園でサッカーをしています。",
        "Please save your changes before closing the window."]) + "\n",
        encoding="utf-8")
    sentences = read_side([tmp_path / "src.txt"], "src")
    keep, langs, report = assign_languages(sentences, "src", "auto", model, ["eng_Latn"], False, True)
    assert keep.tolist() == [True, False, False, True] and langs == ["eng_Latn", "eng_Latn"]
    assert (report.lines, report.unique, report.embedded) == (5, 4, 2)
    assert report.skipped == {"deu_Latn": 1, "jpn_Jpan": 1} and report.fallback == {}
    keep, langs, report = assign_languages(sentences, "src", "auto", model, ["eng_Latn"], True, True)
    assert keep.all() and langs == ["eng_Latn", "deu_Latn", "jpn_Jpan", "eng_Latn"]
    assert report.fallback == {"deu_Latn": 1, "jpn_Jpan": 1} and report.skipped == {}
    # A single encoder takes every language: a configured language is only recorded.
    keep, langs, report = assign_languages(sentences, "src", "de", encoder_dir, None, False, True)
    assert keep.all() and langs == ["deu_Latn"] * 4 and report.languages == {"deu_Latn": 4}
    german_only = read_side([tmp_path / "src.txt"], "src").subset(np.array([False, True, False, False]))
    with pytest.raises(MineModelError, match=r"src: no sentence is in a language .* serves \(eng_Latn\)"):
        assign_languages(german_only, "src", "auto", model, ["eng_Latn"], False, True)


def test_example_configs_load_and_name_their_launch_command():
    from modsent.config import load_config
    from modsent.mine import MineConfig
    from modsent.mine.config import BuccConfig

    configs = Path(__file__).resolve().parents[2] / "configs"
    mine = load_config(MineConfig, configs / "mine.yaml")
    assert (mine.score.k, mine.score.mode, mine.index.factory) == (4, "max", "IVF{nlist},SQ8")
    assert (configs / "mine.yaml").read_text().startswith("# modsent mine --config configs/mine.yaml")
    bucc = load_config(BuccConfig, configs / "mine_eval.yaml")
    assert bucc.distractor_ratio >= 20 and set(bucc.models) == {"modular", "e5-small"}
    assert (configs / "mine_eval.yaml").read_text().startswith("# modsent mine-eval --config configs/mine_eval.yaml")


def test_mine_flags_set_config_keys_and_overrides_come_last(capsys):
    configs = Path(__file__).resolve().parents[2] / "configs"
    assert main(["mine", "-c", str(configs / "mine.yaml"), "--model", "pypi:e5-small", "--src", "a.txt", "b.jsonl",
                 "--src-lang", "auto", "--print-config", "score.mode=intersection"]) == 0
    import yaml

    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["model"], printed["src"], printed["src_lang"]) == ("pypi:e5-small", ["a.txt", "b.jsonl"], "auto")
    assert printed["tgt"] == ["data/mono/en/*.parquet"] and printed["score"]["mode"] == "intersection"


def test_a_full_disk_while_mining_is_one_line_naming_device_and_file(tmp_path, encoder_dir, capsys, monkeypatch):
    """Before: ENOSPC while a shard was written reached the user as a traceback."""
    (tmp_path / "src.txt").write_text("A sentence.\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("Ein Satz.\n", encoding="utf-8")
    shard = tmp_path / "out" / "embeddings" / "src" / "00000.npy"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(shard))

    monkeypatch.setattr(modsent.raycluster, "ray_session", lambda *args, **kwargs: contextlib.nullcontext())
    monkeypatch.setattr(job, "embed_pending", disk_full)
    argv = ["mine", "--model", str(encoder_dir), "--src", str(tmp_path / "src.txt"), "--src-lang", "eng_Latn",
            "--tgt", str(tmp_path / "tgt.txt"), "--tgt-lang", "deu_Latn", "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"modsent mine: error: no space left on /\S* while writing {re.escape(str(shard))}; "
                        r"nothing was kept; free space there or choose another output, then rerun", err), err


def test_an_output_that_is_a_file_is_one_line(tmp_path, encoder_dir, capsys):
    """Before: `mine --output FILE` failed with a traceback (NotADirectoryError) after reading the inputs."""
    (tmp_path / "src.txt").write_text("A sentence.\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("Ein Satz.\n", encoding="utf-8")
    (tmp_path / "out").write_text("not a directory\n", encoding="utf-8")
    argv = ["mine", "--model", str(encoder_dir), "--src", str(tmp_path / "src.txt"), "--src-lang", "eng_Latn",
            "--tgt", str(tmp_path / "tgt.txt"), "--tgt-lang", "deu_Latn", "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"modsent mine: error: {tmp_path / 'out'}: the mine output directory (--output) cannot be created, "
                   f"{tmp_path / 'out'} is a file; choose another path")
