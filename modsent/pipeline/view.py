"""The operator's view of ``modsent run``: one row per running job and an overall bar.

The rows come from what the jobs already write, never from their logs: a training job's
``metrics/metrics.jsonl`` (step, total steps, loss; rank 0 writes it) and, for the other stages,
the progress file each job writes through :func:`modsent.progress.report_progress`. On a terminal
the view redraws in place (rich's ``Live``); otherwise it prints plain lines, the running jobs and
the overall count every ``interval_s`` seconds, so a log file or CI output shows progress too.
Job start/finish events print as one line each, above the live rows.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modsent.progress import format_duration, read_progress

__all__ = ["JobProgress", "RunView", "training_progress", "file_progress", "format_duration", "plain_lines"]

TAIL_BYTES = 64 << 10  # enough of metrics.jsonl for the last records of a long run


@dataclass
class JobProgress:
    """Where one running job stands; ``None`` fields are not known (yet)."""

    name: str
    stage: str
    lang: str
    elapsed_s: float
    done: int | None = None
    total: int | None = None
    unit: str = "steps"
    loss: float | None = None
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.done is not None and self.total else 0.0


def _tail_records(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    lines = data.splitlines()[1:] if size > TAIL_BYTES else data.splitlines()  # the first may be cut
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line being appended right now
    return records


def training_progress(metrics_dir: Path, since: float) -> dict[str, Any]:
    """Step, total, loss and ETA of a training job from its ``metrics.jsonl`` (records after ``since``)."""
    records = [r for r in _tail_records(Path(metrics_dir) / "metrics.jsonl")
               if r.get("split") == "train" and r.get("time_unix", 0) >= since]
    if not records:
        return {}
    last = records[-1]
    out = {"done": int(last["step"]), "total": last.get("total_steps"), "loss": _number(last.get("loss"))}
    if out["total"] is not None:
        remaining = out["total"] - out["done"]
        first = records[0]
        if last["time_unix"] > first["time_unix"] and last["step"] > first["step"]:
            rate = (last["step"] - first["step"]) / (last["time_unix"] - first["time_unix"])
            out["eta_s"] = remaining / rate
        elif _number(last.get("step_time_s")) is not None:
            out["eta_s"] = remaining * float(last["step_time_s"])
    return out


def file_progress(path: Path, started: float, now: float) -> dict[str, Any]:
    """Done, total and ETA from a job's progress file (ETA from the average rate since the job started)."""
    record = read_progress(path)
    if not record or record.get("time_unix", 0) < started:
        return {}
    out = {"done": int(record["done"]), "total": int(record["total"]), "unit": str(record.get("unit", "items"))}
    if 0 < out["done"] < out["total"]:
        out["eta_s"] = (out["total"] - out["done"]) * (now - started) / out["done"]
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _count(job: JobProgress) -> str:
    if job.done is None:
        return "in progress"  # no count (yet): vocab reports none; training until its first log
    return f"{job.done}/{job.total if job.total is not None else '?'} {job.unit}"


def plain_lines(jobs: list[JobProgress], finished: int, total: int, elapsed_s: float) -> list[str]:
    """The non-terminal rendering: one line per running job, then the overall line."""
    stamp = f"[{elapsed_s:7.1f}s]"
    lines = []
    for job in jobs:
        loss = f" loss {job.loss:.4f}" if job.loss is not None else ""
        lines.append(f"{stamp} running {job.name}: {_count(job)}{loss}, elapsed {format_duration(job.elapsed_s)}, "
                     f"ETA {format_duration(job.eta_s)}")
    lines.append(f"{stamp} overall: {finished}/{total} jobs finished, {len(jobs)} running, "
                 f"{_overall_fraction(jobs, finished, total):.0%}")
    return lines


def _overall_fraction(jobs: list[JobProgress], finished: int, total: int) -> float:
    return (finished + sum(job.fraction for job in jobs)) / total if total else 1.0


@dataclass
class _Running:
    stage: str
    lang: str
    started: float
    metrics_dir: Path | None
    progress_file: Path | None


class RunView:
    """Collects job events and renders the running jobs (see the module doc). Use as a context manager."""

    def __init__(self, total_jobs: int, stream: IO[str] | None = None, tty: bool | None = None,
                 interval_s: float = 30.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.total_jobs, self.interval_s = total_jobs, interval_s
        self.started = time.time()
        self.finished = 0
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None

    # ------------------------------------------------------------ events
    def job_started(self, name: str, stage: str, lang: str, metrics_dir: Path | None = None,
                    progress_file: Path | None = None) -> None:
        with self._lock:
            self._running[name] = _Running(stage, lang, time.time(), metrics_dir, progress_file)

    def job_ended(self, name: str) -> None:
        """A job finished, failed or was skipped."""
        with self._lock:
            self._running.pop(name, None)
            self.finished += 1

    def event(self, line: str) -> None:
        """Print one event line (above the live rows on a terminal)."""
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.stream, flush=True)

    # ------------------------------------------------------------ state
    def snapshot(self, now: float | None = None) -> list[JobProgress]:
        now = time.time() if now is None else now
        with self._lock:
            running = dict(self._running)
        jobs = []
        for name, job in sorted(running.items()):
            row = JobProgress(name, job.stage, job.lang, now - job.started)
            found: dict[str, Any] = {}
            if job.metrics_dir is not None:
                found = training_progress(job.metrics_dir, job.started)
            if not found and job.progress_file is not None:
                found = file_progress(job.progress_file, job.started, now)
            for key, value in found.items():
                setattr(row, key, value)
            jobs.append(row)
        return jobs

    # ------------------------------------------------------------ rendering
    def _renderable(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        jobs = self.snapshot()
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("job", "stage", "language", "progress", "", "loss", "elapsed", "ETA"):
            table.add_column(column, justify="right" if column in ("loss", "elapsed", "ETA") else "left")
        for job in jobs:
            bar = ProgressBar(total=1.0, completed=job.fraction, width=20) if job.total else ""
            table.add_row(job.name, job.stage, job.lang, _count(job), bar,
                          f"{job.loss:.4f}" if job.loss is not None else "-", format_duration(job.elapsed_s),
                          format_duration(job.eta_s))
        fraction = _overall_fraction(jobs, self.finished, self.total_jobs)
        overall = Table.grid(padding=(0, 1))
        overall.add_row("overall", ProgressBar(total=1.0, completed=fraction, width=40),
                        f"{self.finished}/{self.total_jobs} jobs finished, {len(jobs)} running, "
                        f"elapsed {format_duration(time.time() - self.started)}")
        return Group(table, overall)

    def _print_plain(self) -> None:
        lines = plain_lines(self.snapshot(), self.finished, self.total_jobs, time.time() - self.started)
        print("\n".join(lines), file=self.stream, flush=True)

    def _plain_loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._print_plain()

    def __enter__(self) -> "RunView":
        if self.tty:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(get_renderable=self._renderable, console=Console(file=self.stream),
                              refresh_per_second=2, transient=True)
            self._live.start()
        else:
            self._thread = threading.Thread(target=self._plain_loop, name="modsent-run-view", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
