"""Fault injection: SIGKILL every stage of ``modsent run`` (and the run itself) at random points, rerun, compare.

usage: python bench/faults.py [--quick] [--seed N]

A tiny two-language run (English pivot + German; every stage: translate, vocab, adapt, train,
align, evaluate; tiny models built locally, 2 CPU ranks per training job) first runs cleanly and
is kept aside. Then, per fault, the clean run is put back in its place (a run's files name their
own directory, as they would on a rerun), one job's output is removed (German's, or the shared
translation/evaluation) and ``modsent run`` is started on it:

- a *stage* fault SIGKILLs that job's process (its launcher: torchrun for training stages, the
  stage command otherwise) at a uniformly random point within 50% of the job's clean duration;
  the run goes on and reports the job failed (retries are off), then ``modsent run`` is rerun;
- a *run* fault SIGKILLs ``modsent run`` itself at a random point while it redoes alignment and
  evaluation, then reruns it.

A fault is *survived* when, after the rerun, the run finishes (exit 0); its outputs are identical
to the clean run's: every file under ``artifacts/`` and ``reports/`` byte for byte, except the
run's bookkeeping (``BOOKKEEPING``: which process held a job, and the wall-clock logs of training
and translation), which records when and by whom, not what; its evaluation scores equal the clean
run's; 5 s after the kill no process of that run is alive (matched by the run directory in its
command line) — ``leftover_processes`` counts those over all faults; no new ``/dev/shm`` entry of
DeepSpeed/torch is left; and no ``.tmp-*`` file is left in the run directory. ``results`` also
gives, per fault, the fraction of manifest entries whose artifact fingerprint equals the clean
run's and the files that differ (``differing_files``, bookkeeping included).

Ratios: ``faults_survived_fraction`` (goal 1.0) and ``leftover_processes`` (goal 0).
Full: 3 random points per stage (21 faults); ``--quick``: 1 (7 faults).
The last line of stdout is the JSON record (see /work/shared/BENCH.md).
"""

from __future__ import annotations

import argparse

from _common import bench_args  # noqa: I001  (sets threads before numpy/torch load)

ARGS = bench_args(__doc__.split("\n\n")[0], "one kill per stage instead of three",
                  extra=lambda p: (p.add_argument("--seed", type=int, default=0),
                                   p.add_argument("--only", nargs="+", help="only these faults (debugging)")),
                  env={"DS_ACCELERATOR": "cpu", "TRANSFORMERS_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_AUTH_MODE": "disabled"}) if __name__ == "__main__" else None

import fnmatch  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from modsent.io import sha256_file  # noqa: E402
from modsent.testing import tiny_bert_mlm, tiny_nllb, write_parallel_text, write_synthetic_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LANGS = ["eng_Latn", "deu_Latn"]
TRAIN = {"ds_config": "zero1", "global_batch_size": 8, "max_steps": 12, "save_every": 4, "eval_every": 0,
         "eval_at_start": False, "progress_bar": False, "schedule": "constant"}
# (fault name, job the kill targets, what of the clean run is removed so that job runs again)
FAULTS = [
    ("translate", "all/translate", ["artifacts/translate"]),
    ("vocab", "deu_Latn/vocab", ["artifacts/vocab/deu_Latn"]),
    ("adapt", "deu_Latn/adapt", ["artifacts/adapt/deu_Latn"]),
    ("train", "deu_Latn/train", ["artifacts/train/deu_Latn"]),
    ("align", "deu_Latn/align", ["artifacts/align/deu_Latn"]),
    ("evaluate", "all/evaluate", ["reports"]),
    ("run", None, ["artifacts/align/deu_Latn", "reports"]),
]
# Files that record when and by whom, not what: compared by the bench but not part of the outputs.
BOOKKEEPING = (
    "*.modsent-lock",  # pid and host of the process that held the job
    "*/metrics/*",  # training logs: wall-clock time of every step, tensorboard event files named by it
    "*/checkpoints/*/manifest.json",  # a checkpoint's creation time (its tensors are compared)
    "*/work/units/*",  # translation's resume records: when each shard finished (the corpus is compared)
)


def pipeline_config(root: Path, run_dir: Path) -> dict:
    corpus = write_synthetic_corpus(root / "corpus", ["eng_Latn"], {"para": 48}, seed=0)
    bitext = write_parallel_text(root / "bitext" / "deu_Latn", "deu_Latn", 40, seed=7)
    return {
        "run_dir": str(run_dir), "languages": LANGS, "source_model": str(tiny_bert_mlm()), "corpus": str(corpus),
        "translate": {"model": {"path": str(tiny_nllb()), "quantization": "float32"},
                      "decoding": {"max_decoding_length": 16}, "shard_size": 16,
                      "ray": {"num_cpus": 2, "progress_bars": False, "temp_dir": str(root / "ray")}},
        # No monolingual text here: vocab and adapt opt into the translated corpus's sentences.
        "vocab": {"text": "corpus", "vocab_size": 400, "fasttext": {"dim": 8, "epochs": 1, "min_count": 1, "threads": 1}},
        "adapt": {"text": "corpus", "max_seq_length": 32, "valid_fraction": 0.25, "trainer": TRAIN},
        "train": {"max_seq_length": 32, "trainer": TRAIN},
        "align": {"max_seq_length": 32, "trainer": TRAIN},
        "evaluate": {"bitext": [{"name": "synthetic-deu_Latn", "files": {
            "eng_Latn": str(bitext / "eng_Latn.txt"), "deu_Latn": str(bitext / "deu_Latn.txt")}}]},
        "resources": {"ranks_per_job": 2, "parallel_jobs": 1, "retries": 0},
    }


def start_run(config_path: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "modsent.cli", "run", str(config_path)], stdout=handle,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive_of(*marks: Path) -> list[int]:
    """Running processes whose command line or environment names one of ``marks`` (the run directory:
    every job's config lies in it and every job's environment names its progress file, which Ray's
    workers and agents inherit; Ray's temp directory). Zombies are not running."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        try:
            line = cmdline(int(proc.name)) + (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if state not in ("Z", "X") and any(str(mark) in line for mark in marks) and int(proc.name) != os.getpid():
            found.append(int(proc.name))
    return found


def shm_entries() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith(("deepspeed", "torch"))}


def scores(run_dir: Path) -> list | None:
    path = run_dir / "reports" / "results.json"
    return json.loads(path.read_text())["scores"] if path.exists() else None


def digests(run_dir: Path) -> dict[str, str | None]:
    entries = json.loads((run_dir / "manifest.json").read_text())["entries"]
    return {key: entry["artifact_fingerprint"] for key, entry in entries.items()}


def file_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under a run's artifacts/ and reports/, by relative path."""
    return {str(f.relative_to(root)): sha256_file(f)
            for top in ("artifacts", "reports") for f in sorted((root / top).rglob("*")) if f.is_file()}


def differing_files(clean: dict[str, str], run_dir: Path) -> list[str]:
    """Files whose bytes differ from the clean run's (``clean``: its :func:`file_digests`), or exist in one only."""
    after = file_digests(run_dir)
    return sorted(name for name in clean.keys() | after.keys() if clean.get(name) != after.get(name))


def is_bookkeeping(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in BOOKKEEPING)


def wait_for_job(run: subprocess.Popen, job: str | None, timeout: float) -> int | None:
    """The pid of the process running ``job`` (a child of ``modsent run``), once it has started."""
    stage = job.split("/")[1] if job else None
    deadline = time.time() + timeout
    while time.time() < deadline and run.poll() is None:
        for pid in children(run.pid):
            if stage is None or f"modsent.cli {stage} " in cmdline(pid):
                return pid
        time.sleep(0.05)
    return None


def one_fault(name: str, job: str | None, remove: list[str], clean: Path, config: dict, config_path: Path, work: Path,
              clean_seconds: dict[str, float], clean_files: dict[str, str], rng: random.Random, index: int) -> dict:
    run_dir = Path(config["run_dir"])
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(clean, run_dir, symlinks=True)
    for rel in remove:
        shutil.rmtree(run_dir / rel)
    log = work / f"{name}-{index}.log"
    shm_before = shm_entries()
    run = start_run(config_path, log)
    target = wait_for_job(run, job, timeout=600)
    # The manifest records translation per target language.
    entry = {"all/translate": "deu_Latn/translate"}.get(job, job)
    duration = clean_seconds[entry] if job else clean_seconds["deu_Latn/align"] + clean_seconds["all/evaluate"]
    delay = rng.uniform(0.0, 0.5 * duration)  # the job may run faster than in the clean run
    time.sleep(delay)
    killed = target is not None and run.poll() is None
    if killed:
        try:
            os.kill(run.pid if job is None else target, signal.SIGKILL)
        except ProcessLookupError:  # the job finished before the chosen point
            killed = False
    if job is None:
        run.wait()
    time.sleep(5.0)
    ray_dir = Path(config["translate"]["ray"]["temp_dir"])
    if job is not None:  # a stage kill: the run itself goes on, to its end
        run.wait(timeout=1800)
        time.sleep(1.0)
    leftovers = alive_of(run_dir, ray_dir)
    leftover_commands = [cmdline(pid)[:100] for pid in leftovers]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    shm_left = sorted(shm_entries() - shm_before)
    rerun = start_run(config_path, log)
    rerun_status = rerun.wait(timeout=1800)
    tmp_left = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob(".tmp-*"))
    same_scores = scores(run_dir) == scores(clean)
    clean_digests, fault_digests = digests(clean), digests(run_dir)
    identical = sum(fault_digests.get(k) == v for k, v in clean_digests.items()) / len(clean_digests)
    differing = differing_files(clean_files, run_dir)
    differing_outputs = [file for file in differing if not is_bookkeeping(file)]
    survived = (rerun_status == 0 and not differing_outputs and same_scores and not leftovers and not shm_left
                and not tmp_left)
    record = {"fault": name, "killed": killed, "kill_after_s": round(delay, 2), "rerun_exit": rerun_status,
              "outputs_identical": not differing_outputs, "differing_outputs": differing_outputs[:12],
              "same_scores": same_scores, "identical_artifacts_fraction": round(identical, 3),
              "differing_files": differing[:12],
              "leftover_processes": len(leftovers), "leftover_commands": leftover_commands, "shm_left": shm_left, "tmp_left": tmp_left[:5],
              "survived": survived}
    print(json.dumps(record), file=sys.stderr, flush=True)
    if not survived:  # kept for inspection; the next fault needs the run's place
        shutil.move(run_dir, work / f"{name}-{index}")
    return record


def main(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    per_stage = 1 if args.quick else 3
    work = Path(tempfile.mkdtemp(prefix="modsent-faults-"))
    clean = work / "clean"
    config = pipeline_config(work / "data", work / "run")
    config_path = work / "run.yaml"
    config_path.write_text(yaml.safe_dump(config))
    started = time.time()
    status = start_run(config_path, work / "clean.log").wait()
    if status != 0:
        raise SystemExit(f"the clean run failed (exit {status}); see {work / 'clean.log'}")
    shutil.move(work / "run", clean)
    clean_seconds = {key: entry["seconds"] for key, entry in
                     json.loads((clean / "manifest.json").read_text())["entries"].items()}
    clean_s = time.time() - started
    clean_files = file_digests(clean)
    records = [one_fault(name, job, remove, clean, config, config_path, work, clean_seconds, clean_files, rng, index)
               for index in range(per_stage) for name, job, remove in FAULTS if not args.only or name in args.only]
    survived = sum(r["survived"] for r in records)
    kept = any(not r["survived"] for r in records)
    shutil.rmtree(work / "run", ignore_errors=True)
    if not kept:
        shutil.rmtree(work)
    return {
        "bench": "faults", "device": "cpu",
        "params": {"languages": LANGS, "kills_per_stage": per_stage, "stages": [f[0] for f in FAULTS],
                   "seed": args.seed, "only": args.only, "ranks_per_job": 2, "train_max_steps": TRAIN["max_steps"],
                   "work_dir_kept": str(work) if kept else None},
        "results": {"faults": len(records), "faults_survived": survived, "clean_run_s": round(clean_s, 1),
                    "kills_landed": sum(r["killed"] for r in records),
                    "outputs_identical": sum(r["outputs_identical"] for r in records), "per_fault": records},
        "ratios": {"faults_survived_fraction": survived / len(records),
                   "leftover_processes": float(sum(r["leftover_processes"] for r in records))},
    }


if __name__ == "__main__":
    print(json.dumps(main(ARGS)))
