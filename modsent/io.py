"""Files that are either complete or absent: atomic writes, content hashes, run directories.

Every artifact modsent produces goes through :func:`atomic_write` (or one of its wrappers), so a
killed job never leaves a half-written file under its final name: the data is written to a
temporary file in the same directory, flushed and fsync'ed, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

logger = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit fsync it and rename it to ``path``.

    If the body raises (or the process dies), ``path`` is untouched and the temporary file is
    removed (or, after a hard kill, left under a ``.tmp-`` name that no reader mistakes for output).

    >>> with atomic_write("out.txt") as f:  # doctest: +SKIP
    ...     f.write("hello\\n")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{target.name}.", dir=target.parent)
    # mkstemp creates 0600; outputs get the permissions an ordinary open() would give them.
    os.chmod(tmp_name, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        record_sha256(tmp_name)  # read back from the page cache; the rename keeps the record
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary name and rename it to ``path`` once the body succeeds.

    An existing ``path`` is replaced only after the new one is complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}.", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        yield staging
        _follow_umask(staging)
        for file in staging.rglob("*"):
            if file.is_file() and not file.is_symlink():
                file_sha256(file)  # files written by other libraries (save_pretrained) get their record here
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".old-{target.name}.", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(target.parent)


def _follow_umask(root: Path) -> None:
    """Give files written into ``root`` the permissions the umask allows: some writers (safetensors via
    ``save_pretrained``) create them 0600, so other users of a shared model directory could not read them."""
    allowed = 0o666 & ~_umask()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            mode = path.stat().st_mode & 0o7777
            if mode | allowed != mode:
                os.chmod(path, mode | allowed)


def read_format_json(path: str | os.PathLike, fmt: str, version: int, error: type[Exception],
                     missing_hint: str) -> dict[str, Any]:
    """Read a ``{"format": fmt, "format_version": n, ...}`` file, refusing anything else with ``error``.

    ``missing_hint`` finishes the message when the file does not exist (say what makes one).
    A file from a newer modsent (higher ``format_version``) is refused rather than misread.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path.parent}: no {path.name}; {missing_hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise error(f"{path} line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{path}: not a {fmt} file (format must be {fmt!r})")
    if data.get("format_version", 0) > version:
        raise error(f"{path}: format_version {data['format_version']} is newer than this modsent reads "
                    f"({version}); upgrade modsent")
    return data


def relative_path(target: str | os.PathLike, origin: str | os.PathLike) -> str:
    """How a file in the directory ``origin`` names ``target`` so that moving both together keeps the link:
    relative, POSIX separators, ``../`` where needed (both resolved first)."""
    return Path(os.path.relpath(Path(target).resolve(), Path(origin).resolve())).as_posix()


def cache_root() -> Path:
    """``$MODSENT_CACHE``, else ``~/.cache/modsent``: downloads and conversions made once and reused."""
    return Path(os.environ.get("MODSENT_CACHE") or Path.home() / ".cache" / "modsent").expanduser()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(path: str | os.PathLike) -> str:
    """Hash of a file, or of a directory's relative file names and contents (temp files skipped)."""
    root = Path(path)
    if root.is_file():
        return sha256_file(root)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Stable hash of a JSON-serialisable object (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


SHA256_XATTR = "user.modsent.sha256"


def record_sha256(path: str | os.PathLike) -> str:
    """Hash ``path`` and record the digest, with the size and mtime it belongs to, in an extended attribute.

    Writers call this right after writing (the bytes are still in the page cache), so later
    checks of a multi-GB artifact cost a ``stat`` instead of a full read. Where the file system
    has no user xattrs the record is skipped and readers hash the file themselves.
    """
    digest = sha256_file(path)
    stat = os.stat(path)
    with contextlib.suppress(OSError, AttributeError):
        os.setxattr(path, SHA256_XATTR, f"{stat.st_size}:{stat.st_mtime_ns}:{digest}".encode())
    return digest


def file_sha256(path: str | os.PathLike, trust_record: bool = True) -> str:
    """SHA-256 of a file: from its write-time record while size and mtime still match it, else by reading it.

    ``trust_record=False`` always reads every byte (a full verification: catches a flipped byte
    that left size and mtime as they were).
    """
    if trust_record:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            size, mtime_ns, digest = os.getxattr(path, SHA256_XATTR).decode().split(":")
            stat = os.stat(path)
            if (int(size), int(mtime_ns)) == (stat.st_size, stat.st_mtime_ns):
                return digest
    return record_sha256(path)


def artifact_paths(directory: str | os.PathLike) -> list[Path]:
    """Every file of the artifact in ``directory``, sorted: not temporaries (``.tmp-*``, or anything inside one)."""
    root = Path(directory)
    return [f for f in sorted(root.rglob("*"))
            if f.is_file() and not any(part.startswith(".tmp-") for part in f.relative_to(root).parts)]


def artifact_files(path: str | os.PathLike, trust_record: bool = True) -> dict[str, list]:
    """``{relative name: [size, mtime_ns, sha256]}`` for a file or every file under a directory.

    Temporary files (``.tmp-*``) are not part of an artifact. A single file is listed under its name.
    """
    root = Path(path)
    files = {root.name: root} if root.is_file() else {f.relative_to(root).as_posix(): f for f in artifact_paths(root)}
    listing = {}
    for name, file in files.items():
        stat = file.stat()
        listing[name] = [stat.st_size, stat.st_mtime_ns, file_sha256(file, trust_record)]
    return listing


def content_digest(files: dict[str, list]) -> str:
    """One identity for an artifact's listing: names and contents only (a redone, identical job keeps it)."""
    return sha256_json(sorted((name, size, digest) for name, (size, _, digest) in files.items()))


CONTENT_HASH_LIMIT = 64 << 20  # artifacts up to this size are identified by content


def fingerprint(path: str | os.PathLike) -> str | None:
    """Identity of a file or directory; ``None`` when it is missing.

    Small artifacts (adapters, reports, configs) are identified by their content, so a
    deterministic job that is redone yields the same identity and its dependants stay valid.
    Hashing every byte of a multi-GB model on each rerun costs minutes, so larger ones are
    identified by relative names, sizes and modification times, which change whenever an artifact
    is rewritten, deleted or truncated.
    """
    root = Path(path)
    if not root.exists():
        return None
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files = [f for f in files if not f.name.startswith(".tmp-")]
    stats = [(f.relative_to(root).as_posix() if f != root else f.name, f.stat()) for f in files]
    if sum(stat.st_size for _, stat in stats) <= CONTENT_HASH_LIMIT:
        return sha256_json([(name, sha256_file(f)) for (name, _), f in zip(stats, files)])
    return sha256_json([(name, stat.st_size, stat.st_mtime_ns) for name, stat in stats])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (when installed) torch."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (1 << 32))
    except ImportError:  # pragma: no cover - numpy is a hard dependency in practice
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # translate-only installs need no torch
        pass


def setup_logging(level: str = "INFO", log_file: str | os.PathLike | None = None) -> None:
    """Log to stderr (and a file when given) with one format for every stage."""
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=getattr(logging, level.upper()), format=fmt, handlers=handlers, force=True)


@contextlib.contextmanager
def output_to(handle: IO[bytes]) -> Iterator[None]:
    """Send everything written to stdout and stderr — by C++ libraries too — into the open binary file ``handle``.

    For third-party chatter (absl/sentencepiece ``I0000 … builder.cc`` lines, weight-loading bars)
    produced while work runs in-process; exceptions still reach the caller, which reports them.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    # Python-level writers too, for when sys.stdout is not fd 1 (a test's capture, a live display).
    text = open(handle.fileno(), "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    try:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield
    finally:
        text.close()  # flushes; the descriptor stays open (closefd=False)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


@dataclass(frozen=True)
class RunDir:
    """The layout of one run's output directory.

    ``config.yaml`` (the resolved config), ``logs/``, ``metrics/`` and ``artifacts/`` live under
    ``root``; stages write their outputs under ``artifacts/``.
    """

    root: Path

    @classmethod
    def create(cls, root: str | os.PathLike) -> "RunDir":
        run = cls(Path(root))
        for sub in (run.logs, run.metrics, run.artifacts):
            sub.mkdir(parents=True, exist_ok=True)
        return run

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"


def remove_stale_temporaries(parent: str | os.PathLike, name: str) -> int:
    """Remove ``.tmp-NAME.*`` / ``.old-NAME.*`` left in ``parent`` by a killed :func:`atomic_directory`
    or :func:`atomic_write` for ``name``; returns how many. Call it only where no other process writes ``name``."""
    removed = 0
    root = Path(parent)
    if not root.is_dir():
        return 0
    # mkstemp/mkdtemp add one dotless random suffix: `.tmp-out.*` would also match what a writer of the
    # neighbouring output `out.v2` is writing right now (`.tmp-out.v2.x1y2z3w4`).
    own = re.compile(rf"\.(tmp|old)-{re.escape(name)}\.[^.]+")
    for stale in [entry for entry in root.iterdir() if own.fullmatch(entry.name)]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.info("removed %d temporary %s left by an interrupted run in %s", removed, name, root)
    return removed
