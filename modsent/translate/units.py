"""Work units: one (target language, source shard) each, stored atomically, reused on reruns.

A unit's file ``work/units/<language>/shard-<n>.json`` is its manifest entry and its output in
one atomic write: the shard's source hash, the line count, the model and decoding settings, and
the translations in shard order, and the Ray nodes that translated it. A rerun takes a unit as finished only when all of these match
the current job; anything else (absent, truncated by a kill, other settings) is translated again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modsent.io import atomic_write_json

__all__ = ["Unit", "UnitStore"]


@dataclass(frozen=True)
class Unit:
    language: str
    shard: int
    start: int  # first sorted-sentence rank of the shard
    stop: int
    source_sha256: str

    @property
    def size(self) -> int:
        return self.stop - self.start


class UnitStore:
    """Finished units under ``root``, valid only for the given ``settings`` (model, decoding…), plus
    ``language_settings`` of the unit's own language (an Apertium mode's hash: upgrading one language's
    package retranslates that language only)."""

    def __init__(self, root: str | Path, settings: dict[str, Any],
                 language_settings: dict[str, dict[str, Any]] | None = None) -> None:
        self.root = Path(root)
        self.shared_settings = settings
        self.language_settings = language_settings or {}

    def settings(self, unit: Unit) -> dict[str, Any]:
        return {**self.shared_settings, **self.language_settings.get(unit.language, {})}

    def path(self, unit: Unit) -> Path:
        return self.root / unit.language / f"shard-{unit.shard:06d}.json"

    def load(self, unit: Unit) -> list[str] | None:
        """The unit's translations when it finished under the current settings, else None."""
        try:
            entry = json.loads(self.path(unit).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        translations = entry.get("translations")
        if (entry.get("source_sha256") != unit.source_sha256 or entry.get("settings") != self.settings(unit)
                or not isinstance(translations, list) or entry.get("lines") != unit.size
                or len(translations) != unit.size):
            return None
        return translations

    def is_done(self, unit: Unit) -> bool:
        return self.load(unit) is not None

    def save(self, unit: Unit, translations: list[str], nodes: list[str]) -> None:
        if len(translations) != unit.size:
            raise ValueError(f"unit {unit.language}/{unit.shard}: {len(translations)} translations for {unit.size} sentences")
        atomic_write_json(self.path(unit), {
            "language": unit.language, "shard": unit.shard, "start": unit.start, "stop": unit.stop,
            "source_sha256": unit.source_sha256, "lines": unit.size, "settings": self.settings(unit),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nodes": nodes,
            "translations": translations,
        })
