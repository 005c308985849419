import hashlib
import os
import subprocess
import sys

import pytest

from modsent.io import (SHA256_XATTR, atomic_directory, atomic_write, atomic_write_bytes, atomic_write_json, file_sha256,
                        output_to, sha256_tree)


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]  # the temporary file is gone
    atomic_write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'


def test_killed_writer_leaves_no_final_file(tmp_path):
    """A process killed mid-write (no cleanup at all) leaves only a .tmp- file, never the target."""
    target = tmp_path / "big.txt"
    script = (
        "import os, sys\n"
        "from modsent.io import atomic_write\n"
        f"with atomic_write({str(target)!r}) as f:\n"
        "    f.write('x' * 1000)\n"
        "    f.flush()\n"
        "    os._exit(9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == 9
    assert not target.exists()
    leftovers = os.listdir(tmp_path)
    assert leftovers and all(name.startswith(".tmp-big.txt.") for name in leftovers)


def test_atomic_directory(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(ValueError):
        with atomic_directory(target) as staging:
            (staging / "a").write_text("1")
            raise ValueError
    assert not target.exists() and os.listdir(tmp_path) == []
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
    first = sha256_tree(target)
    with atomic_directory(target) as staging:
        (staging / "a").write_text("2")
    assert (target / "a").read_text() == "2" and sha256_tree(target) != first
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_outputs_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.txt") as handle:
            handle.write("x")
        with atomic_directory(tmp_path / "d") as staging:
            (staging / "a").write_text("1")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_output_checks_refuse_unwritable_places_files_and_full_disks(tmp_path, unwritable_dir):
    """Before: a read-only output directory failed late with a PermissionError traceback."""
    from modsent.output_checks import OutputError, check_output_dir, check_output_file

    made = check_output_dir(tmp_path / "a" / "b", "output directory")
    assert made.is_dir() and not list(made.iterdir())  # the write probe leaves nothing
    with pytest.raises(OutputError, match=rf"{unwritable_dir}: the output directory is not writable"):
        check_output_dir(unwritable_dir, "output directory")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=rf"the output directory cannot be created, {tmp_path / 'file'} is a file"):
        check_output_dir(tmp_path / "file" / "out", "output directory")
    with pytest.raises(OutputError, match=r"needs about 1024\.0 TiB but its disk has .* free"):
        check_output_dir(tmp_path / "a", "output directory", need_bytes=1 << 50)
    with pytest.raises(OutputError, match=rf"{tmp_path / 'a'} is a directory; the embeddings file must be a file path"):
        check_output_file(tmp_path / "a", "embeddings file")
    assert check_output_file(tmp_path / "c" / "emb.npy", "embeddings file") == tmp_path / "c" / "emb.npy"


def test_disk_full_is_recognised_from_a_real_enospc(tmp_path):
    from modsent.output_checks import is_disk_full

    with pytest.raises(OSError) as caught:
        with open("/dev/full", "wb") as handle:  # the kernel answers every write with ENOSPC
            handle.write(b"x" * 4096)
    assert is_disk_full(caught.value, tmp_path)
    assert not is_disk_full(OSError(13, "Permission denied"), tmp_path)
    assert not is_disk_full(RuntimeError("unexpected pos 704 vs 598"), tmp_path)  # this disk is not full


def test_stale_temporaries_of_an_interrupted_atomic_directory_are_removed(tmp_path):
    """Before: a kill during translate's corpus assembly left .tmp-corpus.* that no rerun removed."""
    from modsent.io import remove_stale_temporaries

    (tmp_path / ".tmp-corpus.abc" / "para").mkdir(parents=True)
    (tmp_path / ".old-corpus.def").mkdir()
    (tmp_path / ".tmp-corpus-other.x").mkdir()  # another name's: kept
    (tmp_path / "corpus").mkdir()
    assert remove_stale_temporaries(tmp_path, "corpus") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-corpus-other.x", "corpus"]


def test_files_of_an_atomic_directory_follow_the_umask(tmp_path):
    """Before: exported weights (written 0600 by safetensors) were unreadable by the group and others."""
    from safetensors.torch import save_file
    import torch

    previous = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "model") as staging:
            save_file({"w": torch.zeros(2)}, str(staging / "model.safetensors"))
            private = staging / "private.txt"
            private.write_text("x")
            private.chmod(0o600)
            (staging / "run.sh").write_text("")
            (staging / "run.sh").chmod(0o700)
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "model").iterdir()}
    assert modes == {"model.safetensors": 0o644, "private.txt": 0o644, "run.sh": 0o744}
def test_writers_record_the_sha256_that_later_checks_trust_until_the_file_changes(tmp_path):
    target = tmp_path / "weights.bin"
    atomic_write_bytes(target, b"abc" * 1000)
    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    size, mtime_ns, digest = os.getxattr(target, SHA256_XATTR).decode().split(":")
    assert (int(size), int(mtime_ns), digest) == (3000, target.stat().st_mtime_ns, expected)
    # The record is what a trusting read returns (proved by a record that lies); a full read ignores it.
    os.setxattr(target, SHA256_XATTR, f"3000:{target.stat().st_mtime_ns}:{'0' * 64}".encode())
    assert file_sha256(target) == "0" * 64
    assert file_sha256(target, trust_record=False) == expected
    target.write_bytes(b"abd" * 1000)  # rewritten by someone else: size/mtime no longer match the record
    assert file_sha256(target) == hashlib.sha256(b"abd" * 1000).hexdigest()
    with atomic_directory(tmp_path / "model") as staging:
        (staging / "plain.txt").write_text("written by another library\n")
    assert os.getxattr(tmp_path / "model" / "plain.txt", SHA256_XATTR).decode().endswith(
        hashlib.sha256(b"written by another library\n").hexdigest())


def test_output_to_takes_python_and_native_writes_off_the_terminal(tmp_path, capfd):
    with open(tmp_path / "chatter.log", "w+b") as log:
        with output_to(log):
            print("Loading weights: 100%")
            os.write(2, b"I0000 00:00:1700000000.000000   123 builder.cc:42] native chatter\n")
        print("after")
    out, err = capfd.readouterr()
    assert out == "after\n" and err == ""
    assert (tmp_path / "chatter.log").read_text() == (
        "Loading weights: 100%\nI0000 00:00:1700000000.000000   123 builder.cc:42] native chatter\n")


def test_every_cache_is_under_one_root_that_follows_modsent_cache(monkeypatch, tmp_path):
    from modsent.io import cache_root
    from modsent.translate.config import default_model_cache

    monkeypatch.setenv("MODSENT_CACHE", "~/elsewhere")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_root() == tmp_path / "elsewhere"
    assert default_model_cache() == tmp_path / "elsewhere" / "ct2"
    monkeypatch.delenv("MODSENT_CACHE")
    assert cache_root() == tmp_path / ".cache" / "modsent"
