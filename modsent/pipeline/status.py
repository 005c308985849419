"""A run directory's state: ``modsent status`` (the languages × stages matrix, as Markdown and a PNG) and
``modsent verify`` (every finished artifact re-read against its record)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from modsent.io import atomic_write_bytes, atomic_write_text
from modsent.pipeline.config import STAGES
from modsent.pipeline.layout import ALL
from modsent.pipeline.manifest import Manifest
from modsent.pipeline.plan import PipelineError

__all__ = ["verify_run", "write_status"]

logger = logging.getLogger(__name__)


def verify_run(run_dir: str | os.PathLike) -> list[str]:
    """Re-read every finished artifact of a run in full; one line per file that differs from its record."""
    root = Path(run_dir)
    if not (root / "manifest.json").exists():
        raise PipelineError(f"{root} has no manifest.json: not a run directory (or nothing ran yet)")
    return Manifest(root).verify()


def write_status(run_dir: str | os.PathLike) -> str:
    """The languages × stages matrix of a run directory, as Markdown (and ``status.png`` beside it)."""
    root = Path(run_dir)
    if not (root / "manifest.json").exists():
        raise PipelineError(f"{root} has no manifest.json: not a run directory (or nothing ran yet)")
    manifest = Manifest(root)
    langs = sorted({e.language for e in manifest if e.language != ALL})
    lines = ["| language | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    matrix = []
    for lang in langs + [ALL]:
        row = []
        for stage in STAGES:
            entry = manifest.entries.get(Manifest.key(lang, stage))
            row.append(entry.status if entry else "-")
        if lang == ALL and all(s == "-" for s in row):
            continue
        matrix.append((lang, row))
        lines.append(f"| {lang} | " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    try:
        atomic_write_text(root / "status.md", text)
        _status_png(root / "status.png", matrix)
    except OSError as err:  # a read-only run directory (a finished run copied for reading): still show it
        logger.warning("status.md/status.png not written in %s (%s)", root, err.strerror)
    return text


def _status_png(path: Path, matrix: list[tuple[str, list[str]]]) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    codes = {"-": 0, "pending": 0, "running": 1, "failed": 2, "done": 3}
    values = [[codes.get(s, 0) for s in row] for _, row in matrix]
    fig, ax = plt.subplots(figsize=(1.2 * len(STAGES) + 2, 0.35 * len(matrix) + 1.5))
    ax.imshow(values, cmap=ListedColormap(["#dddddd", "#f2c94c", "#eb5757", "#27ae60"]), vmin=0, vmax=3,
              aspect="auto")
    ax.set_xticks(range(len(STAGES)), STAGES)
    ax.set_yticks(range(len(matrix)), [lang for lang, _ in matrix])
    ax.set_title("modsent run status (grey: not run, yellow: running, red: failed, green: done)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
