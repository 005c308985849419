"""No rank outlives its launcher, and one output directory has one writer at a time.

Each test starts a stand-in ``modsent run`` (procs/launch_sleepers.py: the real fan-out, the real
torchrun, two ranks that follow their launcher as modsent ranks do), kills it one way, and checks
that within seconds no rank is alive and nothing of theirs is left in /dev/shm.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modsent.dirlock import DirectoryBusyError, DirectoryLock, lock_path
from modsent.lifetime import LAUNCHER_PID_ENV, follow_launcher, kill_followers, spawn_command
from modsent.pipeline.fanout import run_subprocess

PROCS = Path(__file__).with_name("procs")
REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone: it runs nothing and holds no lock)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _start_run(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROCS), str(REPO), os.environ.get("PYTHONPATH", "")])}
    # SIGINT as a terminal delivers it: a suite started in the background of a script inherits SIGINT
    # ignored (POSIX shells do that to background jobs), and Python would then keep ignoring it.
    proc = subprocess.Popen([sys.executable, str(PROCS / "launch_sleepers.py"), str(tmp_path)], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pid_files = [tmp_path / "rank0.pid", tmp_path / "rank1.pid"]
    if not _wait(lambda: all(p.exists() and p.read_text() for p in pid_files), timeout=120, step=0.2):
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("ranks did not start:\n" + (tmp_path / "job.log").read_text(errors="replace"))
    return proc, [int(p.read_text()) for p in pid_files]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with open(task / "children") as handle:
            found += [int(c) for c in handle.read().split()]
    return found


@pytest.mark.parametrize("death", ["SIGINT", "SIGTERM", "SIGKILL", "SIGKILL-group"])
def test_no_rank_outlives_its_launcher(tmp_path, death):
    proc, ranks = _start_run(tmp_path)
    launchers = _children(proc.pid)  # the torchrun process, under its lifetime trampoline's pid
    shm_before = set(os.listdir("/dev/shm"))
    if death == "SIGKILL-group":
        os.killpg(proc.pid, signal.SIGKILL)  # run and torchrun; torchrun put the ranks in sessions of their own
    else:
        os.kill(proc.pid, getattr(signal, death))
    try:
        assert _wait(lambda: not any(_alive(p) for p in ranks + launchers), timeout=15), \
            f"alive after {death}: {[p for p in ranks + launchers if _alive(p)]}"
        assert proc.wait(timeout=15) == (130 if death in ("SIGINT", "SIGTERM") else -signal.SIGKILL)
    finally:
        for pid in ranks + launchers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    ours = [name for name in set(os.listdir("/dev/shm")) - shm_before
            if name.startswith("deepspeed") or any(str(p) in name for p in ranks)]
    assert ours == []
    # Nothing holds the run or the job directory any more: a rerun takes both over at once.
    DirectoryLock(tmp_path / "run", "rerun").release()
    DirectoryLock(tmp_path / "job", "rerun").release()


def test_a_directory_written_by_a_live_process_is_refused_naming_it(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom modsent.dirlock import hold_directory\n"
                               f"hold_directory({str(tmp_path / 'job')!r}, 'modsent train')\n"
                               "print('locked', flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert writer.stdout.readline().strip() == "locked"
        with pytest.raises(DirectoryBusyError, match=rf"{tmp_path / 'job'} is being written by modsent train "
                                                     rf"\(pid {writer.pid} on host {os.uname().nodename}\)"):
            DirectoryLock(tmp_path / "job", "modsent train")
    finally:
        writer.kill()
        writer.wait()
    # The writer died without releasing anything: its lock file is stale and taken over.
    assert f'"pid": {writer.pid}' in lock_path(tmp_path / "job").read_text()
    with DirectoryLock(tmp_path / "job", "modsent train"):
        assert f'"pid": {os.getpid()}' in lock_path(tmp_path / "job").read_text()


def test_follow_launcher_ends_a_process_whose_launcher_is_already_gone(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    code = "from modsent.lifetime import follow_launcher\nfollow_launcher()\nimport time\ntime.sleep(30)"
    proc = subprocess.run([sys.executable, "-c", code], timeout=20,
                          env={**os.environ, "PYTHONPATH": str(REPO), "MODSENT_LAUNCHER_PID": str(dead.pid)})
    assert proc.returncode == -signal.SIGTERM
    follow_launcher()  # outside a launched job: nothing happens


def test_what_a_job_leaves_behind_is_ended_when_its_launcher_exits(tmp_path):
    """Like Ray's agents after its driver is killed: a process in a session of its own, not following."""
    code = ("import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], start_new_session=True)\n"
            f"open({str(tmp_path / 'orphan.pid')!r}, 'w').write(str(child.pid))\n")
    run_subprocess([sys.executable, "-c", code], tmp_path / "job.log", {"PYTHONPATH": str(REPO)})
    orphan = int((tmp_path / "orphan.pid").read_text())
    assert _wait(lambda: not _alive(orphan), timeout=5)


def test_followers_a_missed_process_starts_later_are_ended_too(tmp_path):
    """Like Ray's raylet, missed by a sweep while its killed driver was starting it: its agents come a moment later."""
    launcher = "987654321"  # no real launcher: only the marker in the environment matters
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    early = subprocess.Popen(sleeper, env={**os.environ, LAUNCHER_PID_ENV: launcher})
    spawner_code = ("import os, subprocess, sys, time\n"
                    "time.sleep(0.8)\n"
                    f"child = subprocess.Popen({sleeper!r}, env=dict(os.environ, {LAUNCHER_PID_ENV}={launcher!r}))\n"
                    f"open({str(tmp_path / 'late.pid')!r}, 'w').write(str(child.pid))\n")
    spawner = subprocess.Popen([sys.executable, "-c", spawner_code])  # unmarked itself: no sweep finds it
    marker = f"{LAUNCHER_PID_ENV}={launcher}".encode()
    assert _wait(lambda: marker in Path(f"/proc/{early.pid}/environ").read_bytes(), timeout=10, step=0.01)

    killed = kill_followers(int(launcher))
    spawner.wait(timeout=30)
    early.wait(timeout=30)
    late = int((tmp_path / "late.pid").read_text())
    assert early.pid in killed and late in killed, (killed, early.pid, late)
    assert _wait(lambda: not _alive(late), timeout=5)


def test_a_stage_that_is_its_own_launcher_cleans_up_on_sigterm(tmp_path):
    code = ("import time\nfrom modsent.lifetime import follow_launcher\nfollow_launcher()\n"
            "try:\n    print('ready', flush=True)\n    time.sleep(60)\n"
            f"finally:\n    open({str(tmp_path / 'cleaned')!r}, 'w').write('ray.shutdown() would run here')\n")
    proc = subprocess.Popen(spawn_command([sys.executable, "-c", code]), stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()
    proc.wait(timeout=20)
    assert (tmp_path / "cleaned").exists()
