"""The whole pipeline, English + 3 languages, with tiny local models, on CPU.

Translation runs through Ray (tiny NLLB → CTranslate2), vocab/adapt/train/align as 2-rank
torchrun jobs, two languages at once, then the evaluation. One uninterrupted run is the reference;
a second run does nothing; deleting one adapter redoes only that job; a run killed mid-way and
resumed ends with the same reports.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from modsent.config import ConfigError, from_dict
from modsent.errors import ModsentError
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.manifest import Manifest
from modsent.pipeline.execute import run_pipeline
from modsent.pipeline.plan import PipelineError
from modsent.testing.synthetic import write_parallel_text, write_synthetic_corpus
from modsent.testing.tiny_models import tiny_bert_mlm, tiny_nllb

LANGS = ["eng_Latn", "deu_Latn", "rus_Cyrl", "zho_Hans"]
TRAIN = {"ds_config": "zero2", "global_batch_size": 8, "max_steps": 2, "save_every": 0, "eval_every": 0,
         "eval_at_start": False, "progress_bar": False, "schedule": "constant"}


def pipeline_dict(root: Path, model_cache: Path) -> dict:
    corpus = write_synthetic_corpus(root / "corpus", ["eng_Latn"], {"para": 48, "nli": 32}, seed=0,
                                    triplet_datasets=("nli",))
    bitext = {}
    for lang in LANGS[1:]:
        pair = write_parallel_text(root / "bitext" / lang, lang, 40, seed=7)
        bitext[lang] = pair
    return {
        "run_dir": str(root / "run"),
        "languages": LANGS,
        "source_model": str(tiny_bert_mlm(model_cache)),
        "corpus": str(corpus),
        "translate": {"model": {"path": str(tiny_nllb(model_cache)), "quantization": "float32"},
                      "decoding": {"max_decoding_length": 16}, "shard_size": 64,
                      "ray": {"num_cpus": 2, "progress_bars": False, "temp_dir": str(root / "ray")}},
        # No monolingual text in this test: vocab and adapt opt into the translated corpus.
        "vocab": {"text": "corpus", "vocab_size": 400,
                  "fasttext": {"dim": 8, "epochs": 1, "min_count": 1, "threads": 1}},
        "adapt": {"text": "corpus", "max_seq_length": 32, "valid_fraction": 0.25, "trainer": TRAIN},
        "train": {"max_seq_length": 32, "trainer": TRAIN},
        "align": {"max_seq_length": 32, "trainer": TRAIN},
        "evaluate": {"step_ablations": True, "bitext": [{"name": f"synthetic-{lang}",
                                 "files": {"eng_Latn": str(bitext[lang] / "eng_Latn.txt"),
                                           lang: str(bitext[lang] / f"{lang}.txt")}} for lang in LANGS[1:]]},
        "resources": {"ranks_per_job": 2, "parallel_jobs": 2, "retries": 0},
    }


def finished(run_dir: Path) -> dict[str, float]:
    return {k: e.finished for k, e in Manifest(run_dir).entries.items()}


def report_json(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "reports" / "results.json").read_text())["scores"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, model_cache):
    root = tmp_path_factory.mktemp("pipeline")
    data = pipeline_dict(root, model_cache)
    cfg = from_dict(PipelineConfig, data)
    terminal = io.StringIO()
    with contextlib.redirect_stdout(terminal), contextlib.redirect_stderr(terminal):
        results = run_pipeline(cfg)
    return root, data, cfg, results, terminal.getvalue()


def test_whole_pipeline_runs_every_stage(reference_run):
    root, data, cfg, results, _ = reference_run
    assert {name: r.status for name, r in results.items() if r.status != "done"} == {}
    manifest = Manifest(cfg.run_dir)
    for lang in LANGS:
        for stage in ("vocab", "adapt", "train"):
            assert manifest.get(lang, stage).status == "done"
    for lang in LANGS[1:]:
        assert manifest.get(lang, "translate").status == "done"
        assert manifest.get(lang, "align").status == "done"
        lines = (Path(cfg.run_dir) / "artifacts" / "translate" / "corpus" / "para" / f"{lang}_1.txt").read_text().splitlines()
        assert len(lines) == 48
    assert (Path(cfg.run_dir) / "model" / "modular.json").exists()
    scores = report_json(Path(cfg.run_dir))
    assert scores  # the evaluation wrote its machine-readable results
    # Every step of the recipe as a model of its own: the vocabulary alone (FOCUS, untrained), then + MLM.
    run_dir = Path(cfg.run_dir)
    assert {"modular-vocab-only", "modular-mlm", "modular"} <= {row["encoder"] for row in scores}
    steps = {step: json.loads((run_dir / "steps" / step / "modular.json").read_text())["languages"]
             for step in ("vocab", "mlm")}
    for lang in LANGS[1:]:
        assert steps["vocab"][lang] == {"encoder": f"../../artifacts/vocab-only/{lang}", "adapter": None}
        assert steps["mlm"][lang] == {"encoder": f"../../artifacts/adapt/{lang}/artifacts/model", "adapter": None}
        vocab_only = run_dir / "artifacts" / "vocab-only" / lang
        new_vocab = json.loads((run_dir / "artifacts" / "vocab" / lang / "tokenizer" / "tokenizer.json").read_text())
        assert json.loads((vocab_only / "tokenizer.json").read_text())["model"] == new_vocab["model"]
    assert steps["vocab"]["eng_Latn"]["encoder"] == steps["mlm"]["eng_Latn"]["encoder"]  # the run's own pivot
    summary = (Path(cfg.run_dir) / "summary.md").read_text()
    for lang in LANGS:  # per language: how many new tokens got FOCUS and how many a random start
        report = json.loads((Path(cfg.run_dir) / "artifacts" / "vocab" / lang / "report.json").read_text())
        assert report["n_new_focus"] + report["n_new_without_fasttext"] == report["n_new"] > 0
        assert (f"| {lang} | corpus (vocab.text: corpus) | {report['n_target_tokens']} | {report['n_shared']} | "
                f"{report['n_new']} | {report['n_new_focus']} | {report['n_new_without_fasttext']} |") in summary


def test_second_run_does_nothing(reference_run):
    root, data, cfg, _, _ = reference_run
    before = finished(cfg.run_dir)
    start = time.time()
    results = run_pipeline(cfg)
    assert all(r.status == "done" for r in results.values())
    assert finished(cfg.run_dir) == before
    assert time.time() - start < 60


def test_deleting_one_adapter_redoes_only_that(reference_run):
    root, data, cfg, _, _ = reference_run
    before = finished(cfg.run_dir)
    reports = report_json(Path(cfg.run_dir))
    shutil.rmtree(Path(cfg.run_dir) / "artifacts" / "align" / "rus_Cyrl")
    run_pipeline(cfg)
    after = finished(cfg.run_dir)
    changed = sorted(k for k in after if after[k] != before.get(k))
    # The adapter is retrained bit-identically, so the evaluation that reads it stays valid.
    assert changed == ["rus_Cyrl/align"]
    assert report_json(Path(cfg.run_dir)) == reports


def test_killed_run_resumes_to_the_same_results(reference_run, tmp_path):
    """Kill the orchestrator and its jobs during the alignment stage, rerun, compare with the reference."""
    root, data, cfg, _, _ = reference_run
    run_dir = tmp_path / "run"
    shutil.copytree(cfg.run_dir, run_dir, symlinks=True)
    for stale in (run_dir / "artifacts" / "align", run_dir / "reports", run_dir / "model"):
        shutil.rmtree(stale)
    data = dict(data, run_dir=str(run_dir))
    config_path = tmp_path / "pipeline.yaml"
    config_path.write_text(yaml.safe_dump(data))
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "modsent.cli", "run", str(config_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = started + 600
    while time.time() < deadline and proc.poll() is None:
        entries = json.loads((run_dir / "manifest.json").read_text())["entries"]
        aligned = [k for k, v in entries.items() if k.endswith("/align") and v["status"] == "done"
                   and v["finished"] > started]
        if any(v["status"] == "running" for v in entries.values()) and aligned:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the orchestrator and every job it started
    proc.wait()
    entries = json.loads((run_dir / "manifest.json").read_text())["entries"]
    assert any(v["status"] == "running" for v in entries.values()), "the kill came too late to interrupt anything"
    results = run_pipeline(from_dict(PipelineConfig, data))
    assert all(r.status == "done" for r in results.values())
    assert {k: e.finished for k, e in Manifest(run_dir).entries.items() if k.endswith(("/train", "/adapt"))} == {
        k: v for k, v in finished(cfg.run_dir).items() if k.endswith(("/train", "/adapt"))}  # not redone
    assert report_json(run_dir) == report_json(Path(cfg.run_dir))


def test_bad_input_fails_before_any_work(reference_run, tmp_path):
    root, data, _, _, _ = reference_run
    with pytest.raises(ConfigError, match="listed twice"):
        run_pipeline(from_dict(PipelineConfig, dict(data, run_dir=str(tmp_path / "a"),
                                                    languages=["eng_Latn", "de", "deu_Latn"])))
    with pytest.raises(PipelineError, match="needs the output of .*train"):
        run_pipeline(from_dict(PipelineConfig, dict(data, run_dir=str(tmp_path / "b"))), stages=["align"])
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node1 slots=1\n")
    with pytest.raises(ModsentError, match="needs 2 devices but only 1"):
        run_pipeline(from_dict(PipelineConfig, dict(data, run_dir=str(tmp_path / "c"),
                                                    resources={"hostfile": str(hostfile), "ranks_per_job": 2})))
    assert not (tmp_path / "a" / "manifest.json").exists() and not (tmp_path / "b" / "manifest.json").exists()
    assert not (tmp_path / "c" / "manifest.json").exists()



def test_the_terminal_shows_jobs_and_results_while_third_party_chatter_stays_in_job_logs(reference_run):
    root, data, cfg, results, terminal = reference_run
    for noise in ("Loading weights", "builder.cc", "FutureWarning", "Writing model shards", "Ray"):
        assert noise not in terminal, noise
    assert "start   deu_Latn/train" in terminal and "done    all/evaluate" in terminal
    logs = Path(cfg.run_dir) / "logs"
    assert "Loading weights" in (logs / "deu_Latn-adapt.log").read_text()  # where it went instead
    assert "Writing model shards" in (logs / "all-evaluate.log").read_text()  # the vocabulary-only models' too
    assert "FutureWarning" not in (logs / "deu_Latn-adapt.log").read_text()  # and DeepSpeed's deprecation: nowhere
    progress = json.loads((logs / "all-evaluate.progress.json").read_text())
    # 3 models (modular and the steps vocab-only and + MLM) x 3 bitext sets
    assert progress["done"] == progress["total"] == 9 and progress["unit"] == "evaluations"
    assert progress["encodes"] > 0
    train = [json.loads(line) for line in (Path(cfg.run_dir) / "artifacts" / "train" / "deu_Latn" / "metrics"
                                           / "metrics.jsonl").read_text().splitlines()]
    assert [r["total_steps"] for r in train if r["split"] == "train"][-1] == 2
