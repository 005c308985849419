"""Child processes that never outlive the process that launched them.

``modsent run`` starts each job as a launcher (torchrun, the deepspeed runner, or a plain
``python -m modsent.cli``), and the launchers start the ranks — torchrun each in its *own session*,
so killing the run's process group does not reach them. Left alive, they would keep training and
pruning checkpoints under the next run's feet. Three links keep every process tied to its launcher:

- :func:`spawn_command` prefixes a job's command with ``python -m modsent.lifetime --``: that
  trampoline asks the kernel for ``SIGTERM`` when its parent (``modsent run``) dies
  (``prctl(PR_SET_PDEATHSIG)``, which survives the ``exec`` into the real launcher), and exports
  its pid as ``MODSENT_LAUNCHER_PID``;
- every rank calls :func:`follow_launcher` first thing: ``SIGTERM`` when its own parent dies
  (torchrun, or deepspeed's per-node ``launch``), and a watchdog thread that ends it when the
  launcher named in ``MODSENT_LAUNCHER_PID`` is gone (what covers deepspeed's two-level launcher);
- both check right after arming that their parent is still the one they were started by, since a
  parent that died a moment earlier sends no signal.

SIGTERM lets torchrun and the deepspeed launcher forward the signal to their ranks as they do for
a Ctrl-C; a stage command that is its own launcher (translate, vocab, evaluate) turns it into
KeyboardInterrupt, so its context managers run (``ray.shutdown()`` stops the Ray processes it
started). Processes that no signal reaches — Ray's agents outlive a SIGKILLed driver, orphaned —
still carry ``MODSENT_LAUNCHER_PID`` in their environment: :func:`kill_followers`, which the
supervisor calls when a launcher has exited, ends them. Elsewhere than Linux the kernel part is a
no-op and the watchdog does the work.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["LAUNCHER_PID_ENV", "SUPERVISOR_PID_ENV", "spawn_command", "die_with_parent", "follow_launcher",
           "kill_followers"]

LAUNCHER_PID_ENV = "MODSENT_LAUNCHER_PID"  # the trampolined launcher every rank of a job follows
SUPERVISOR_PID_ENV = "MODSENT_SUPERVISOR_PID"  # the process that spawned the launcher (modsent run)
_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def spawn_command(cmd: list[str]) -> list[str]:
    """``cmd`` run through the trampoline, so it dies with the calling process (see module doc)."""
    return [sys.executable, "-m", "modsent.lifetime", "--", *cmd]


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (pid reuse): not our launcher any more
        return False
    return True


def _watch(pid: int) -> None:
    while _alive(pid):
        time.sleep(WATCH_INTERVAL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def follow_launcher() -> None:
    """In a rank (or any process a trampolined launcher started): end when that launcher ends.

    A no-op unless ``MODSENT_LAUNCHER_PID`` is set, i.e. outside jobs that ``modsent run`` started.
    """
    value = os.environ.get(LAUNCHER_PID_ENV)
    if not value:
        return  # not under a launcher
    if int(value) == os.getpid():  # the launcher itself (the trampoline armed it): clean up on SIGTERM
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)
        return
    launcher = int(value)
    die_with_parent()
    if not _alive(launcher):
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch, args=(launcher,), name="modsent-launcher-watch", daemon=True).start()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def kill_followers(launcher_pid: int, settle_s: float = 0.2, quiet_s: float = 2.0, limit_s: float = 30.0) -> list[int]:
    """SIGKILL every process still running with ``MODSENT_LAUNCHER_PID=launcher_pid`` (Linux); their pids.

    Called once the launcher has exited: whatever of its job is left (orphans of a killed job) goes.
    A first sweep that finds nothing ends it (a job that exited cleanly). Once it has found some, it
    sweeps every ``settle_s`` until none has appeared for ``quiet_s`` (at most ``limit_s``): a process
    manager that a sweep missed (Ray's raylet, mid-start when its driver was killed) still starts its
    agents a second or two later.
    """
    marker = f"{LAUNCHER_PID_ENV}={launcher_pid}".encode()
    killed: list[int] = []
    started = last_found = time.monotonic()
    while time.monotonic() - started < limit_s:
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            pid = int(proc.name)
            if pid == os.getpid() or pid in killed:
                continue
            try:
                if marker not in (proc / "environ").read_bytes().split(b"\0"):
                    continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):  # gone meanwhile, or not ours to read
                continue
            found.append(pid)
        if found:
            killed += found
            last_found = time.monotonic()
        elif not killed or time.monotonic() - last_found >= quiet_s:
            break
        time.sleep(settle_s)
    return killed


def _trampoline(argv: list[str]) -> None:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise SystemExit("usage: python -m modsent.lifetime -- COMMAND [ARGS…]")
    die_with_parent()
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if supervisor and os.getppid() != int(supervisor):
        raise SystemExit(f"modsent: the process that started {argv[0]} ({supervisor}) is gone; not starting")
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())  # exec keeps the pid: the ranks follow this process
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    _trampoline(sys.argv[1:])
