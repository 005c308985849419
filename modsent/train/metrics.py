"""Training metrics to JSONL, one CSV per split and TensorBoard, written by rank 0 only."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any, Mapping

from modsent.io import atomic_write_text

__all__ = ["MetricsLogger", "read_metrics"]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them visible rather than failing the run
    return value


class MetricsLogger:
    """Append ``{split, step, ...values}`` records to ``metrics.jsonl``, ``<split>.csv`` and TensorBoard.

    Files live in ``directory``; TensorBoard events in ``directory/tensorboard`` under tags
    ``<split>/<name>``. On a resume from ``resume_step``, records after that step (written by the
    interrupted run after its last checkpoint) are dropped so every step appears once. On ranks
    other than 0 (``enabled=False``) every method does nothing.

    >>> metrics = MetricsLogger(Path("run/metrics"), enabled=True)  # doctest: +SKIP
    >>> metrics.log("eval", 100, {"loss": 2.31, "perplexity": 10.1})  # doctest: +SKIP
    """

    def __init__(self, directory: Path, enabled: bool, resume_step: int | None = None) -> None:
        self.directory = Path(directory)
        self.enabled = enabled
        self._writer = None
        self._csv_fields: dict[str, list[str]] = {}
        if not enabled:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            self._drop_after(resume_step)
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resume_step is None else resume_step + 1
        self._writer = SummaryWriter(log_dir=str(self.directory / "tensorboard"), purge_step=purge)

    @property
    def jsonl_path(self) -> Path:
        return self.directory / "metrics.jsonl"

    def csv_path(self, split: str) -> Path:
        return self.directory / f"{split}.csv"

    def _drop_after(self, step: int) -> None:
        if self.jsonl_path.is_file():
            kept = [line for line in self.jsonl_path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line)["step"] <= step]
            atomic_write_text(self.jsonl_path, "".join(line + "\n" for line in kept))
        for path in self.directory.glob("*.csv"):
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                fields, rows = reader.fieldnames or [], [r for r in reader if int(r["step"]) <= step]
            self._rewrite_csv(path, fields, rows)

    @staticmethod
    def _rewrite_csv(path: Path, fields: list[str], rows: list[Mapping[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buffer.getvalue())

    def _append_csv(self, split: str, record: Mapping[str, Any]) -> None:
        path = self.csv_path(split)
        if split not in self._csv_fields:
            if path.is_file():
                with open(path, newline="", encoding="utf-8") as handle:
                    self._csv_fields[split] = list(csv.DictReader(handle).fieldnames or [])
            else:
                self._csv_fields[split] = []
        fields = self._csv_fields[split]
        new = [key for key in record if key not in fields]
        if new or not path.is_file():
            # A metric seen for the first time becomes a new column: rewrite the (small) file once.
            rows: list[dict[str, Any]] = []
            if path.is_file():
                with open(path, newline="", encoding="utf-8") as handle:
                    rows = list(csv.DictReader(handle))
            fields.extend(new)
            self._rewrite_csv(path, fields, rows)
        with open(path, "a", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore").writerow(record)

    def log(self, split: str, step: int, values: Mapping[str, float | int | None]) -> None:
        """Record ``values`` for ``split`` (``train``, ``eval`` …) at optimizer step ``step``; skip None values."""
        if not self.enabled:
            return
        clean = {k: v for k, v in values.items() if v is not None}
        record = {"split": split, "step": step, "time_unix": round(time.time(), 3), **clean}
        with open(self.jsonl_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({k: _plain(v) for k, v in record.items()}) + "\n")
        self._append_csv(split, {k: v for k, v in record.items() if k != "split"})
        assert self._writer is not None
        for name, value in clean.items():
            self._writer.add_scalar(f"{split}/{name}", value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics(directory: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` in ``directory`` (optionally one split), in order."""
    path = Path(directory) / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if split is None or r["split"] == split]
