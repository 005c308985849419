"""Language fan-out: run K independent per-language jobs at once over a pool of devices.

Per-language training jobs share nothing, so a 100-language run packs them onto the cluster:
each job takes a *slice* of devices (GPUs on one or more hosts, or CPU ranks here), gets its own
rendezvous port, and runs as its own DeepSpeed (or torchrun) process group. Jobs are queued by
dependency, started longest-estimated-first (so the long tail does not run alone at the end), a
failed job is retried, and a job that keeps failing is reported without stopping the others —
only the jobs that depend on it are skipped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from modsent.errors import ModsentError
from modsent.io import atomic_write_text
from modsent.lifetime import SUPERVISOR_PID_ENV, kill_followers, spawn_command

__all__ = ["Device", "Job", "JobResult", "FanoutError", "Interrupted", "parse_hostfile", "device_pool", "run_jobs",
           "launch_command", "job_command", "remote_environment", "runs_here", "free_port", "run_subprocess",
           "stop_children"]

logger = logging.getLogger(__name__)


class FanoutError(ModsentError):
    pass


@dataclass(frozen=True)
class Device:
    host: str  # "localhost" for this machine
    index: int  # GPU index, or CPU rank slot


@dataclass
class Job:
    """One unit of work: ``run(devices, port)`` raises on failure."""

    name: str
    run: Callable[[list[Device], int], None]
    devices: int = 1
    cost: float = 1.0  # estimated seconds; larger jobs start first
    deps: list[str] = field(default_factory=list)


@dataclass
class JobResult:
    name: str
    status: str  # done | failed | skipped
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None


def parse_hostfile(path: str | os.PathLike) -> list[Device]:
    """Read a DeepSpeed hostfile (``host slots=N`` per line, ``#`` comments) into devices."""
    path = Path(path)
    if not path.is_file():
        raise FanoutError(f"hostfile {path} does not exist")
    devices: list[Device] = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        slots = [p for p in parts[1:] if p.startswith("slots=")]
        if len(parts) != 2 or not slots or not slots[0][6:].isdigit():
            raise FanoutError(f"{path}:{lineno}: expected 'HOST slots=N', got {line!r}")
        devices += [Device(parts[0], i) for i in range(int(slots[0][6:]))]
    if not devices:
        raise FanoutError(f"{path}: names no hosts")
    return devices


def device_pool(gpus: int | None = None, hostfile: str | os.PathLike | None = None, cpu_ranks: int = 2,
                parallel_jobs: int = 1) -> list[Device]:
    """The devices a run may use: a hostfile's GPUs, this machine's GPUs, or CPU rank slots."""
    if hostfile:
        return parse_hostfile(hostfile)
    if gpus is None:
        try:
            import torch

            gpus = torch.cuda.device_count()
        except ImportError:
            gpus = 0
    if gpus:
        return [Device("localhost", i) for i in range(gpus)]
    return [Device("localhost", i) for i in range(cpu_ranks * parallel_jobs)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def _local_names() -> frozenset[str]:
    return frozenset({"localhost", "127.0.0.1", socket.gethostname(), socket.getfqdn()})


def runs_here(host: str) -> bool:
    """Whether a hostfile's ``host`` names this machine (by name: any other alias or address counts as
    another host, whose jobs then reach this machine over ssh — slower, never on the wrong GPUs)."""
    return host in _local_names()


def launch_command(module_args: Sequence[str], devices: list[Device], port: int, use_gpus: bool,
                   hostfile: str | os.PathLike | None = None) -> list[str]:
    """The command that runs ``python -m modsent.cli …`` as one process group on ``devices``.

    GPUs: the ``deepspeed`` launcher with ``--include host:i,j@host2:…`` (and the hostfile for
    several nodes). It starts the ranks on other hosts over pdsh/ssh; ``--force_multi`` makes it do
    so for a slice on one other host too, which it would otherwise start here with that host's GPU
    indices. CPU: ``torchrun`` on loopback — it leaves no shared-memory buffers behind.
    """
    if use_gpus:
        hosts: dict[str, list[int]] = {}
        for device in devices:
            hosts.setdefault(device.host, []).append(device.index)
        include = "@".join(f"{host}:{','.join(map(str, idx))}" for host, idx in hosts.items())
        cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--include", include, "--master_port", str(port)]
        if hostfile:
            cmd += ["--hostfile", str(hostfile)]
        if not all(runs_here(host) for host in hosts):
            cmd.append("--force_multi")
        return [*cmd, "--module", *module_args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(len(devices)),
            "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", *module_args]


def job_command(module_args: Sequence[str], devices: list[Device], port: int, use_gpus: bool,
                hostfile: str | os.PathLike | None, distributed: bool) -> tuple[list[str], dict[str, str]]:
    """The command of a job on ``devices`` and the environment it needs beyond the run's.

    A distributed job is a process group (:func:`launch_command`). A one-process job (translate,
    vocab, evaluate) runs as ``python -m`` here, seeing only its GPUs through ``CUDA_VISIBLE_DEVICES``;
    placed on another host of the hostfile, it runs *on that host*, started by DeepSpeed's runner over
    pdsh/ssh as a training job's ranks are (one process that sees only its GPU there). On a SLURM
    allocation or a Kubernetes job every node's GPUs then take work — and the GPU indices of another
    host never select a GPU here that a local training job may hold.
    """
    if distributed:
        return launch_command(module_args, devices, port, use_gpus, hostfile), {}
    if not use_gpus:
        return [sys.executable, "-m", *module_args], {}
    if all(runs_here(device.host) for device in devices):
        return [sys.executable, "-m", *module_args], {"CUDA_VISIBLE_DEVICES": ",".join(str(d.index) for d in devices)}
    return launch_command(module_args, devices, port, use_gpus, hostfile), {}


#: Variables a job needs on another host: DeepSpeed's runner forwards only its own few (PYTHON*, NCCL*, …).
_FORWARDED_PREFIXES = ("MODSENT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "TORCH_", "OMP_", "MKL_", "DS_", "RAY_")


def remote_environment(path: Path, job_env: dict[str, str]) -> dict[str, str]:
    """``{"DS_ENV_FILE": path}``, having written there (atomically) what a job started on another host needs:
    ``job_env`` (threads, progress file, …) and this process's ``MODSENT_*``, ``HF_*``, … variables.
    DeepSpeed's runner exports every line of that file on each host it starts ranks on."""
    wanted = {**{key: value for key, value in os.environ.items() if key.startswith(_FORWARDED_PREFIXES)}, **job_env}
    # One KEY=VALUE a line: a value with a newline cannot be written, and DS_ENV_FILE itself is for the runner.
    lines = [f"{key}={value}\n" for key, value in sorted(wanted.items()) if "\n" not in value and key != "DS_ENV_FILE"]
    atomic_write_text(path, "".join(lines))
    return {"DS_ENV_FILE": str(path.resolve())}


class Interrupted(KeyboardInterrupt):
    """``modsent run`` got SIGTERM: it stops as Ctrl-C stops it."""


_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_stopping = threading.Event()  # set while a run is being interrupted: failed jobs are not retried


def run_subprocess(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
    """Run a job's command, streaming its output to ``log_path``; raise with the log's tail on failure.

    The command goes through :func:`modsent.lifetime.spawn_command`, so it (and the ranks it
    starts) ends with this process even when this process is SIGKILLed.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {}), SUPERVISOR_PID_ENV: str(os.getpid())}
    with open(log_path, "ab") as log:
        log.write(f"$ {shlex.join(cmd)}\n".encode())
        log.flush()
        with _live_lock:
            if _stopping.is_set():
                raise RuntimeError("the run is being interrupted")
            proc = subprocess.Popen(spawn_command(cmd), stdout=log, stderr=subprocess.STDOUT, env=full_env)
            _live.add(proc)
        try:
            proc.wait()
        finally:
            with _live_lock:
                _live.discard(proc)
            leftovers = kill_followers(proc.pid)
            if leftovers:
                logger.warning("%s: ended %d process(es) the job left behind: %s", log_path.stem, len(leftovers),
                               leftovers)
    if proc.returncode != 0:
        lines = log_path.read_text(errors="replace").splitlines()
        # A modsent command states its input error in one line; launchers bury it under their own report.
        stated = [line for line in lines if line.startswith("modsent ") and ": error: " in line]
        headline = stated[-1] if stated else f"exit status {proc.returncode}"
        raise RuntimeError(f"{headline} (see {log_path}; last lines:)\n" + "\n".join(lines[-15:]))


def stop_children(grace_s: float = 20.0) -> None:
    """SIGTERM every running job (launchers forward it to their ranks); SIGKILL what outlives ``grace_s``."""
    with _live_lock:
        _stopping.set()
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _stop_children_on_exit() -> Iterator[None]:
    """SIGTERM becomes :class:`Interrupted` (main thread only); any abnormal exit stops the running jobs."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        def interrupted(signum: int, frame: object) -> None:
            raise Interrupted(f"signal {signal.Signals(signum).name}")

        previous = signal.signal(signal.SIGTERM, interrupted)
    _stopping.clear()
    try:
        yield
    except BaseException:
        stop_children()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_jobs(jobs: Sequence[Job], devices: Sequence[Device], retries: int = 1,
             on_event: Callable[[str, Job, JobResult], None] | None = None) -> dict[str, JobResult]:
    """Run ``jobs`` respecting ``deps``, as many at once as free devices allow.

    A job waits until all its dependencies are done; if one failed or was skipped, the job is
    skipped. ``on_event(kind, job, result)`` is called with kind ``start``/``done``/``failed``/``skipped``.
    """
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise FanoutError(f"duplicate job names: {sorted({n for n in names if names.count(n) > 1})}")
    by_name = {job.name: job for job in jobs}
    for job in jobs:
        missing = [d for d in job.deps if d not in by_name]
        if missing:
            raise FanoutError(f"job {job.name} depends on unknown job(s) {missing}")
        if job.devices > len(devices):
            raise FanoutError(f"job {job.name} needs {job.devices} devices but only {len(devices)} are available "
                              "(add hosts to the hostfile or lower ranks per job)")
    emit = on_event or (lambda kind, job, result: None)
    results: dict[str, JobResult] = {}
    free = list(devices)
    lock = threading.Lock()
    pending = sorted(jobs, key=lambda j: -j.cost)
    running: dict[Future, tuple[Job, list[Device]]] = {}

    def attempt(job: Job, slice_: list[Device]) -> JobResult:
        result = JobResult(job.name, "failed")
        start = time.time()
        for result.attempts in range(1, retries + 2):
            try:
                job.run(slice_, free_port())
                result.status, result.error = "done", None
                break
            except Exception as err:  # a job's failure is reported, never fatal to the others
                result.error = f"{type(err).__name__}: {err}"
                if _stopping.is_set():
                    break  # killed because the run is being interrupted: not a failure to retry
                logger.warning("job %s failed (attempt %d/%d): %s", job.name, result.attempts, retries + 1, err)
        result.seconds = round(time.time() - start, 3)
        return result

    with ThreadPoolExecutor(max_workers=max(1, len(devices))) as pool, _stop_children_on_exit():
        while pending or running:
            progressed = False
            for job in list(pending):
                dep_status = [results[d].status if d in results else None for d in job.deps]
                if any(s in ("failed", "skipped") for s in dep_status):
                    pending.remove(job)
                    failed_deps = [d for d, s in zip(job.deps, dep_status) if s in ("failed", "skipped")]
                    results[job.name] = JobResult(job.name, "skipped", error=f"dependency failed: {failed_deps}")
                    emit("skipped", job, results[job.name])
                    progressed = True
                    continue
                if any(s != "done" for s in dep_status):
                    continue
                with lock:
                    if len(free) < job.devices:
                        continue
                    slice_, free[:] = free[:job.devices], free[job.devices:]
                pending.remove(job)
                emit("start", job, JobResult(job.name, "running"))
                running[pool.submit(attempt, job, slice_)] = (job, slice_)
                progressed = True
            if running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    job, slice_ = running.pop(future)
                    with lock:
                        free.extend(slice_)
                    results[job.name] = future.result()
                    emit(results[job.name].status, job, results[job.name])
            elif pending and not progressed:
                stuck = [job.name for job in pending]
                raise FanoutError(f"jobs cannot start (unsatisfiable dependencies or devices): {stuck}")
    return results
