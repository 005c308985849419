"""The operator's view of `modsent run`: job status read from metrics and progress files, rendered."""

import io
import json
import time

import pytest
from rich.console import Console

from modsent import progress
from modsent.pipeline.view import JobProgress, RunView, file_progress, format_duration, plain_lines, training_progress


def _write_metrics(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "metrics.jsonl", "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def _train(step, when, loss, total=100):
    return {"split": "train", "step": step, "time_unix": when, "loss": loss, "total_steps": total, "step_time_s": 0.4}


def test_training_progress_reads_step_total_loss_and_eta_from_metrics(tmp_path):
    _write_metrics(tmp_path, [
        _train(50, 900.0, 9.0),  # an earlier, interrupted attempt: not this job's rate
        _train(10, 1000.0, 3.0), {"split": "eval", "step": 10, "time_unix": 1001.0, "loss": 2.9},
        _train(30, 1010.0, 1.5),
    ])
    assert training_progress(tmp_path, since=950.0) == {"done": 30, "total": 100, "loss": 1.5, "eta_s": 35.0}
    # One record: the ETA comes from its step time.
    assert training_progress(tmp_path, since=1005.0)["eta_s"] == pytest.approx(70 * 0.4)
    assert training_progress(tmp_path / "none", since=0.0) == {}
    with open(tmp_path / "metrics.jsonl", "a") as handle:
        handle.write('{"split": "train", "ste')  # a record being appended right now
    assert training_progress(tmp_path, since=950.0)["done"] == 30


def test_progress_file_written_by_a_job_and_read_by_the_view(tmp_path, monkeypatch):
    path = tmp_path / "logs" / "all-evaluate.progress.json"
    monkeypatch.setattr(progress, "_last_write", {"time": 0.0})
    progress.report_progress(3, 12, "evaluations")  # no MODSENT_PROGRESS_FILE: nothing written
    assert not path.exists()
    monkeypatch.setenv(progress.PROGRESS_ENV, str(path))
    started = time.time() - 30
    progress.report_progress(3, 12, "evaluations", encodes=7)
    progress.report_progress(4, 12, "evaluations")  # within a second of the last write: skipped
    assert progress.read_progress(path)["done"] == 3
    status = file_progress(path, started, now=started + 30)
    assert status == {"done": 3, "total": 12, "unit": "evaluations", "eta_s": pytest.approx(90.0, abs=1)}
    progress.report_progress(12, 12, "evaluations")  # the last one is always written
    assert file_progress(path, started, now=time.time())["done"] == 12
    assert file_progress(path, time.time() + 60, now=time.time()) == {}  # a file from an earlier attempt


def test_plain_lines():
    jobs = [JobProgress("deu_Latn/train", "train", "deu_Latn", 75.0, 30, 100, "steps", 1.23456, 35.0),
            JobProgress("all/translate", "translate", "all", 3725.0, None, None)]
    assert plain_lines(jobs, finished=2, total=8, elapsed_s=80.0) == [
        "[   80.0s] running deu_Latn/train: 30/100 steps loss 1.2346, elapsed 1m15s, ETA 35s",
        "[   80.0s] running all/translate: in progress, elapsed 1h02m, ETA -",
        "[   80.0s] overall: 2/8 jobs finished, 2 running, 29%",
    ]
    assert format_duration(59.6) == "1m00s"


def test_view_without_a_terminal_prints_events_and_periodic_lines(tmp_path):
    stream = io.StringIO()
    metrics = tmp_path / "train" / "metrics"
    with RunView(total_jobs=3, stream=stream, tty=False, interval_s=0.05) as view:
        view.job_started("deu_Latn/train", "train", "deu_Latn", metrics_dir=metrics)
        view.event("[    0.0s] start   deu_Latn/train")
        _write_metrics(metrics, [_train(10, time.time(), 2.0), _train(20, time.time() + 1, 1.5)])
        deadline = time.time() + 10
        while "20/100 steps" not in stream.getvalue() and time.time() < deadline:
            time.sleep(0.05)
        view.job_ended("deu_Latn/train")
    out = stream.getvalue()
    assert "start   deu_Latn/train" in out
    assert "running deu_Latn/train: 20/100 steps loss 1.5000" in out
    assert "overall: 0/3 jobs finished, 1 running, 7%" in out  # 0 + 0.2 of 3 jobs
    assert "\x1b[" not in out  # no terminal control codes in a log file


def test_view_on_a_terminal_renders_a_row_per_job_and_an_overall_bar(tmp_path):
    view = RunView(total_jobs=2, stream=io.StringIO(), tty=True)
    _write_metrics(tmp_path, [_train(10, time.time() + 1, 2.0), _train(40, time.time() + 2, 0.75)])
    view.job_started("deu_Latn/align", "align", "deu_Latn", metrics_dir=tmp_path)
    screen = Console(file=io.StringIO(), width=140, color_system=None)
    screen.print(view._renderable())
    text = screen.file.getvalue()
    row = next(line for line in text.splitlines() if "deu_Latn/align" in line)
    assert "align" in row and "40/100 steps" in row and "0.7500" in row
    assert "0/2 jobs finished, 1 running" in text
