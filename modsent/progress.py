"""Progress of a job, as a small JSON file the operator's view reads (``modsent run``'s live rows).

Stages that are not step-based training (translate, evaluate) call :func:`report_progress` as work
gets done; it writes ``{"done", "total", "unit", "time_unix"}`` atomically to the file named in
``$MODSENT_PROGRESS_FILE`` (set by ``modsent run`` for each job, beside the job's log) and does
nothing when that variable is unset. Training stages need no call: the view reads their
``metrics.jsonl``. Writes are throttled, so calling it per batch costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from modsent.io import atomic_write_text

__all__ = ["PROGRESS_ENV", "report_progress", "read_progress"]

PROGRESS_ENV = "MODSENT_PROGRESS_FILE"
MIN_INTERVAL_S = 1.0
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
