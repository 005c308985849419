"""Progress of a job, as a small JSON file the operator's view reads (``modsent run``'s live rows).

Stages that are not step-based training (translate, evaluate) call :func:`report_progress` as work
gets done; it writes ``{"done", "total", "unit", "time_unix"}`` atomically to the file named in
``$MODSENT_PROGRESS_FILE`` (set by ``modsent run`` for each job, beside the job's log) and does
nothing when that variable is unset. Training stages need no call: the view reads their
``metrics.jsonl``. Writes are throttled, so calling it per batch costs nothing.

Commands a user runs directly (``modsent encode``, ``modsent export``) show their progress with
:class:`Progress`: a bar on a terminal, a plain line every :data:`LOG_INTERVAL_S` seconds when
stderr is a log, and the same progress file under ``modsent run``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

from modsent.io import atomic_write_text
from modsent.output_checks import human_bytes

__all__ = ["PROGRESS_ENV", "LOG_INTERVAL_S", "Progress", "format_duration", "report_progress", "read_progress"]

PROGRESS_ENV = "MODSENT_PROGRESS_FILE"
MIN_INTERVAL_S = 1.0
LOG_INTERVAL_S = 30.0  # off a terminal, a progress line this often (as `modsent run`'s plain view)
_last_write = {"time": 0.0}


def report_progress(done: int, total: int, unit: str, **extra: Any) -> None:
    """Record that ``done`` of ``total`` ``unit`` are finished (at most once a second, and always at the end)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    now = time.time()
    if done < total and now - _last_write["time"] < MIN_INTERVAL_S:
        return
    _last_write["time"] = now
    record = {"done": done, "total": total, "unit": unit, "time_unix": round(now, 3), **extra}
    atomic_write_text(path, json.dumps(record) + "\n")


def read_progress(path: str | os.PathLike) -> dict[str, Any] | None:
    """The last record :func:`report_progress` wrote to ``path``, or None when there is none (yet)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Progress of one long command towards ``total`` ``unit`` (``"B"``: bytes, shown as MiB/GiB).

    On a terminal (``stream``, default stderr) a tqdm bar; otherwise a plain line every
    :data:`LOG_INTERVAL_S` seconds and a last one when any was printed, so a log shows that the
    command is alive and how far it got; always :func:`report_progress`. A context manager.
    """

    def __init__(self, total: int, desc: str, unit: str, stream: IO[str] | None = None) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = LOG_INTERVAL_S
        self.started = self.last_line = time.monotonic()
        self.lines = 0
        self.bar = None
        if self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                            file=self.stream, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self.done += n
        report_progress(self.done, self.total, self.unit)
        if self.bar is not None:
            self.bar.update(n)
        elif time.monotonic() - self.last_line >= self.interval_s:
            self._line()

    def _line(self) -> None:
        self.last_line = now = time.monotonic()
        elapsed = now - self.started
        eta = (self.total - self.done) * elapsed / self.done if 0 < self.done < self.total else None
        share = self.done / self.total if self.total else 1.0
        count = f"{human_bytes(self.done)}/{human_bytes(self.total)}" if self.unit == "B" else \
            f"{self.done}/{self.total} {self.unit}"
        print(f"{self.desc}: {count} ({share:.0%}), elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}",
              file=self.stream, flush=True)
        self.lines += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            self._line()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
