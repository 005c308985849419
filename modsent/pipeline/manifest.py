"""The run manifest: per (language, stage), what was done, from which inputs, and where it lies.

One JSON file (``manifest.json`` in the run directory), rewritten atomically after every change
by the one process that schedules the run. An entry is *valid* when its status is ``done``, its
config and input hashes equal what the current config would use, and its artifact still is what
was recorded when it was finished — a deleted, replaced or half-written artifact is never
trusted, so the rerun redoes exactly that entry and whatever depends on it.

Each artifact is recorded file by file (``artifact_files``: size, mtime and SHA-256, the hash
taken when the file was written where the writer recorded one). Using an entry checks names,
sizes and mtimes (a file whose mtime alone moved is re-hashed); :meth:`Manifest.verify` (``modsent
status --verify``) re-reads every byte, so a flipped byte that kept size and mtime is found too.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from modsent.errors import ModsentError
from modsent.io import artifact_files, atomic_write_json, content_digest, file_sha256, fingerprint, sha256_json

__all__ = ["ManifestEntry", "Manifest", "fingerprint", "ManifestError"]

MANIFEST_VERSION = 1


class ManifestError(ModsentError):
    pass


@dataclass
class ManifestEntry:
    language: str
    stage: str
    status: str = "pending"  # pending | running | done | failed
    config_hash: str | None = None
    input_hashes: dict[str, str] = field(default_factory=dict)
    artifact: str | None = None  # path relative to the run directory
    artifact_fingerprint: str | None = None  # content_digest(artifact_files)
    artifact_files: dict[str, list] = field(default_factory=dict)  # name -> [size, mtime_ns, sha256]
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    attempts: int = 0
    error: str | None = None
    # Where the last attempt ran: hostfile host (``localhost`` without one) -> GPU indices, or CPU rank
    # slots on a machine without GPUs.
    placement: dict[str, list[int]] = field(default_factory=dict)


_FIELD_TYPES = {"language": str, "stage": str, "status": str, "config_hash": (str, type(None)),
                "input_hashes": dict, "artifact": (str, type(None)), "artifact_fingerprint": (str, type(None)),
                "artifact_files": dict, "started": (int, float, type(None)), "finished": (int, float, type(None)),
                "seconds": (int, float, type(None)), "attempts": int, "error": (str, type(None)),
                "placement": dict}


def _shape_problem(data: object) -> str | None:
    """What in parsed ``manifest.json`` is not as :meth:`Manifest.save` writes it (None: nothing).

    Valid JSON of another shape (a list, an entry that is a number, a file record that is a string)
    would otherwise fail deep inside a check of the run with a traceback.
    """
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        return "'entries' must be an object of entries"
    for key, entry in data["entries"].items():
        if not isinstance(entry, dict):
            return f"entry {key!r} is not an object"
        unknown = sorted(set(entry) - set(_FIELD_TYPES))
        if unknown or "language" not in entry or "stage" not in entry:
            return f"entry {key!r} has unknown fields {unknown}" if unknown else f"entry {key!r} lacks language/stage"
        wrong = [name for name, value in entry.items() if not isinstance(value, _FIELD_TYPES[name])
                 or (name == "attempts" and isinstance(value, bool))]
        if wrong:
            return f"entry {key!r}: {wrong[0]} is a {type(entry[wrong[0]]).__name__}"
        artifact = entry.get("artifact")
        if artifact is not None and (Path(artifact).is_absolute() or ".." in Path(artifact).parts):
            return f"entry {key!r}: its artifact {artifact} is not a path inside the run directory"
        for name, record in entry.get("artifact_files", {}).items():
            if not (isinstance(record, list) and len(record) == 3 and all(isinstance(v, int) for v in record[:2])
                    and isinstance(record[2], str)):
                return f"entry {key!r}: artifact_files[{name!r}] is not [size, mtime_ns, sha256]"
    return None


class Manifest:
    """Read/modify/write access to ``<run_dir>/manifest.json`` (thread-safe within one process)."""

    def __init__(self, run_dir: str | os.PathLike):
        # Absolute: artifacts are recorded relative to it whichever way the run directory was named.
        self.run_dir = Path(run_dir).resolve()
        self.path = self.run_dir / "manifest.json"
        self._lock = threading.Lock()
        self.entries: dict[str, ManifestEntry] = {}
        if self.path.exists():
            self._load()

    @staticmethod
    def key(language: str, stage: str) -> str:
        return f"{language}/{stage}"

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ManifestError(f"{self.path}: unreadable manifest ({err}); move it away to start the run afresh")
        if isinstance(data, dict) and "entries" not in data:
            made_by = " (it lists translated files: the output of `modsent translate`)" if "files" in data else ""
            raise ManifestError(f"{self.path}: not the manifest of a `modsent run` directory{made_by}; "
                                "give the run_dir of a pipeline run")
        if isinstance(data, dict) and data.get("version") != MANIFEST_VERSION:
            raise ManifestError(f"{self.path}: manifest version {data.get('version')} is not "
                                f"{MANIFEST_VERSION}; start a new run directory")
        problem = _shape_problem(data)
        if problem:
            raise ManifestError(f"{self.path}: not a manifest modsent wrote ({problem}); move it away to start the "
                                "run afresh")
        self.entries = {k: ManifestEntry(**v) for k, v in data["entries"].items()}

    def save(self) -> None:
        atomic_write_json(self.path, {"version": MANIFEST_VERSION,
                                      "entries": {k: asdict(v) for k, v in sorted(self.entries.items())}})

    def get(self, language: str, stage: str) -> ManifestEntry:
        return self.entries.setdefault(self.key(language, stage), ManifestEntry(language, stage))

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(list(self.entries.values()))

    def is_valid(self, language: str, stage: str, config_hash: str, input_hashes: dict[str, str]) -> bool:
        entry = self.entries.get(self.key(language, stage))
        if entry is None or entry.status != "done":
            return False
        if entry.config_hash != config_hash or entry.input_hashes != input_hashes:
            return False
        if entry.artifact is None:
            return True
        return not self.artifact_problems(entry, full=False)

    def artifact_problems(self, entry: ManifestEntry, full: bool) -> list[str]:
        """How ``entry``'s artifact differs from its record, one line per file (empty: intact).

        ``full=False`` compares names, sizes and mtimes, re-hashing only files whose mtime moved;
        ``full=True`` re-reads every file and compares its SHA-256.
        """
        if entry.artifact is None:
            return []
        path = self.run_dir / entry.artifact
        if not entry.artifact_files or entry.artifact_fingerprint is None:
            return [f"{entry.artifact}: no fingerprint recorded (made by an older modsent); its stage is redone"]
        if not path.exists():
            return [f"{entry.artifact}: missing"]
        problems = []
        current = {f.relative_to(path).as_posix() if f != path else f.name: f
                   for f in ([path] if path.is_file() else path.rglob("*"))
                   if f.is_file() and not f.name.startswith(".tmp-")}
        for name in sorted(set(entry.artifact_files) - set(current)):
            problems.append(f"{entry.artifact}/{name}: missing")
        for name in sorted(set(current) - set(entry.artifact_files)):
            problems.append(f"{entry.artifact}/{name}: not part of the recorded artifact")
        for name in sorted(set(current) & set(entry.artifact_files)):
            size, mtime_ns, digest = entry.artifact_files[name]
            stat = current[name].stat()
            if stat.st_size != size:
                problems.append(f"{entry.artifact}/{name}: size {stat.st_size} bytes, recorded {size}")
            elif (full or stat.st_mtime_ns != mtime_ns) and file_sha256(current[name], trust_record=not full) != digest:
                problems.append(f"{entry.artifact}/{name}: content changed (SHA-256 differs from the one recorded)")
        return problems

    def verify(self) -> list[str]:
        """Every finished entry's artifact re-read in full; one line per damaged file, naming it."""
        return [f"{entry.language}/{entry.stage}: {problem}" for entry in self
                if entry.status == "done" for problem in self.artifact_problems(entry, full=True)]

    def mark_running(self, language: str, stage: str, config_hash: str, input_hashes: dict[str, str],
                     placement: dict[str, list[int]] | None = None) -> None:
        with self._lock:
            entry = self.get(language, stage)
            entry.status, entry.config_hash, entry.input_hashes = "running", config_hash, dict(input_hashes)
            entry.placement = dict(placement or {})
            entry.started, entry.finished, entry.seconds, entry.error = time.time(), None, None, None
            entry.attempts += 1
            self.save()

    def mark_done(self, language: str, stage: str, artifact: str | os.PathLike | None) -> ManifestEntry:
        with self._lock:
            entry = self.get(language, stage)
            entry.status = "done"
            entry.finished = time.time()
            entry.seconds = round(entry.finished - (entry.started or entry.finished), 3)
            if artifact is not None:
                path = Path(artifact)
                entry.artifact = path.resolve().relative_to(self.run_dir).as_posix()
                entry.artifact_files = artifact_files(self.run_dir / entry.artifact)
                entry.artifact_fingerprint = content_digest(entry.artifact_files)
            entry.error = None
            self.save()
            return entry

    def mark_failed(self, language: str, stage: str, error: str) -> None:
        with self._lock:
            entry = self.get(language, stage)
            entry.status, entry.finished, entry.error = "failed", time.time(), error[-4000:]
            self.save()

    def artifact_hash(self, language: str, stage: str) -> str:
        """What downstream entries record as their input: changes whenever this entry is redone."""
        entry = self.entries[self.key(language, stage)]
        return sha256_json([entry.config_hash, entry.input_hashes, entry.artifact_fingerprint])
