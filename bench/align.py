"""Benchmark of the alignment stage: what the pivot-embedding cache saves, and how small the adapter is.

usage: python bench/align.py [--quick] [--threads N]

- ``pivot_cache_step_speedup``: seconds per optimizer step of ``modsent align`` re-encoding the
  English side with the frozen pivot in every step (the seed's method) over the same step reading
  the pivot embeddings from the cache. Same model, data, batches and adapter start; both trainers
  run in one process, steps alternate one by one so machine load hits both alike; medians after a
  warm-up (> 1 is better; goal >= 1.4).
- ``pivot_cache_job_speedup``: wall time of aligning 4 languages one after another with
  ``run_align`` (model loading, DeepSpeed engine, training, export: the whole run) without the
  cache, over the same 4 runs sharing a cache that starts empty — so the one-time cost of
  embedding the English side is inside the cached total. The two jobs advance language by
  language (which side goes first alternates), so the machine's drifting speed hits both alike;
  ratio of the medians over repetitions (goal >= 1.3).
- Ratios are of wall-clock medians; ``results`` repeats them on this process's CPU time
  (``…_by_cpu_time``), which a machine shared with other jobs distorts much less.
- ``adapter_params_fraction``: trainable adapter parameters / parameters of the encoder it is
  attached to, for the benchmark model; ``results`` also gives the fraction for BERT-base and
  XLM-R-base shapes (counted on the meta device, nothing allocated).

Model: ``tiny_bert_mlm(size="small")`` (hidden 256, 4 layers) as pivot and, perturbed, as every
language's encoder; synthetic paraphrases (one pair and one triplet dataset) in 4 languages;
32 rows per batch, fp32, ZeRO-0, one process. The last line of stdout is the JSON record (see
/work/shared/BENCH.md).
"""

from __future__ import annotations

from _common import bench_args  # noqa: I001  (sets threads before numpy/torch load)

import argparse

import tempfile
from pathlib import Path

ARGS = bench_args(__doc__.split("\n\n")[0], "fewer steps and repetitions", "torch threads",
                  env={"DS_ACCELERATOR": "cpu"}) if __name__ == "__main__" else None

import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import torch  # noqa: E402

from modsent.align.stage import AlignConfig, build_align_job, fill_pivot_cache, run as run_align  # noqa: E402
from modsent.config import load_config  # noqa: E402
from modsent.models.adapter import ParallelAdapter, count_parameters  # noqa: E402
from modsent.testing import save_perturbed_encoder, tiny_bert_mlm, write_synthetic_corpus  # noqa: E402
from modsent.train import Trainer, init_distributed  # noqa: E402

LANGS = ("deu_Latn", "fra_Latn", "rus_Cyrl", "ell_Grek")
BATCH_SIZE = 32
MAX_SEQ_LENGTH = 128  # the seed's value; synthetic sentences are far shorter, so it never truncates


def _config(work: Path, lang: str, output: Path, steps: int, cache: Path | None) -> AlignConfig:
    return load_config(AlignConfig, Path(__file__).resolve().parents[1] / "configs" / "align.yaml", [
        f"pivot={work / 'pivot'}", f"model={work / 'target'}", f"languages=[{lang}]", f"output_dir={output}",
        f"data.paraphrase=[{work / 'corpus'}]", f"max_seq_length={MAX_SEQ_LENGTH}",
        f"pivot_cache={cache if cache is not None else 'null'}", f"trainer.global_batch_size={BATCH_SIZE}",
        f"trainer.max_steps={steps}", "trainer.resume=none", "trainer.eval_every=0", "trainer.save_every=0",
        "trainer.eval_at_start=false", "trainer.progress_bar=false", "trainer.log_every=1000"])


def _prepare(work: Path, rows: int) -> None:
    base = tiny_bert_mlm(size="small")
    save_perturbed_encoder(base, work / "pivot", None, MAX_SEQ_LENGTH)
    save_perturbed_encoder(base, work / "target", 1, MAX_SEQ_LENGTH)
    write_synthetic_corpus(work / "corpus", LANGS, {"pairs": rows, "triplets": rows // 2}, seed=0,
                           triplet_datasets=["triplets"])


def _timed(step: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``step()``; CPU time is what a busy machine distorts least."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def step_times(work: Path, rounds: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]], dict]:
    """Per-step (wall, CPU) seconds (recompute, cached), one step of each per round, after 3 warm-up steps of each."""
    info = init_distributed()
    steps = 3 + rounds
    cached_cfg = _config(work, LANGS[0], work / "steps_cached", steps, work / "steps_cache")
    plain_cfg = _config(work, LANGS[0], work / "steps_plain", steps, None)
    cached_job = build_align_job(cached_cfg, info)
    plain_job = build_align_job(plain_cfg, info)
    cached, plain = Trainer(cached_job.task, cached_cfg.trainer, info), Trainer(plain_job.task, plain_cfg.trainer, info)
    fill_pivot_cache(cached_job, 0, steps, cached_cfg.pivot_lang)
    cached_step = lambda: cached.train_step()[0].item()  # noqa: E731 (.item(): wait for the step to finish)
    plain_step = lambda: plain.train_step()[0].item()  # noqa: E731
    for _ in range(3):
        cached_step()
        plain_step()
    recompute_s, cached_s = [], []
    for _ in range(rounds):  # interleaved step by step: drifting machine load hits both alike
        recompute_s.append(_timed(plain_step))
        cached_s.append(_timed(cached_step))
    adapter = cached_job.task.model.adapter
    sizes = {"adapter": count_parameters(adapter), "encoder": count_parameters(cached_job.target)}
    return recompute_s, cached_s, sizes


def job_times(work: Path, steps: int, rep: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) seconds to align every language in LANGS one after another, without and with a cache
    that starts empty. The two jobs advance language by language, alternating which runs first, so
    drift in machine speed during the repetition hits both alike."""
    cache = work / f"cache_{rep}"
    shutil.rmtree(cache, ignore_errors=True)
    totals = {"plain": [0.0, 0.0], "cached": [0.0, 0.0]}
    for index, lang in enumerate(LANGS):
        sides = [("plain", None), ("cached", cache)]
        for tag, cache_dir in (sides if (rep + index) % 2 == 0 else sides[::-1]):
            wall, cpu = _timed(lambda: run_align(_config(work, lang, work / f"job_{tag}_{rep}" / lang, steps, cache_dir)))
            totals[tag][0] += wall
            totals[tag][1] += cpu
    return tuple(totals["plain"]), tuple(totals["cached"])  # type: ignore[return-value]


def median(times: list[tuple[float, float]], which: int) -> float:
    """Median of the wall (``which=0``) or CPU (``which=1``) seconds of ``times``."""
    return statistics.median(t[which] for t in times)


def rounded(times: list[tuple[float, float]], digits: int) -> list[float]:
    return [round(t[0], digits) for t in times]


def reference_fractions() -> dict[str, float]:
    """Adapter / encoder parameters for the usual base shapes (meta device: nothing is allocated)."""
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    shapes = {"bert_base": (BertModel, BertConfig()),
              "xlm_roberta_base": (XLMRobertaModel, XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514))}
    out = {}
    with torch.device("meta"):
        for name, (model_cls, config) in shapes.items():
            model = model_cls(config, add_pooling_layer=False)
            out[f"adapter_params_fraction_{name}"] = count_parameters(ParallelAdapter.for_model(model)) / count_parameters(model)
    return out


def main(args: argparse.Namespace) -> dict:
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    rounds, job_steps, job_reps, rows = (16, 24, 2, 800) if args.quick else (48, 60, 3, 2000)
    work = Path(tempfile.mkdtemp(prefix="bench-align-"))
    try:
        _prepare(work, rows)
        recompute_s, cached_s, sizes = step_times(work, rounds)
        plain_jobs, cached_jobs = [], []
        for rep in range(job_reps):
            plain, cached = job_times(work, job_steps, rep)
            plain_jobs.append(plain)
            cached_jobs.append(cached)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    recompute_med, cached_med = median(recompute_s, 0), median(cached_s, 0)
    plain_job_med, cached_job_med = median(plain_jobs, 0), median(cached_jobs, 0)
    return {
        "bench": "align",
        "device": f"cuda:{torch.cuda.get_device_name()}" if torch.cuda.is_available() else "cpu",
        "params": {"model": "tiny_bert_mlm(size='small')", "encoder_parameters": sizes["encoder"],
                   "languages": list(LANGS), "batch_rows": BATCH_SIZE, "max_seq_length": MAX_SEQ_LENGTH,
                   "datasets": {"pairs": rows, "triplets": rows // 2}, "timed_steps_each": len(cached_s),
                   "job_steps_per_language": job_steps, "job_repetitions": job_reps, "threads": args.threads,
                   "precision": "fp32", "ds_config": "zero0", "cache_dtype": "float32", "quick": args.quick},
        "results": {"recompute_step_s_median": recompute_med, "cached_step_s_median": cached_med,
                    "recompute_job_s_median": plain_job_med, "cached_job_s_median": cached_job_med,
                    "recompute_step_cpu_s_median": median(recompute_s, 1), "cached_step_cpu_s_median": median(cached_s, 1),
                    "recompute_job_cpu_s_median": median(plain_jobs, 1), "cached_job_cpu_s_median": median(cached_jobs, 1),
                    "step_speedup_by_cpu_time": median(recompute_s, 1) / median(cached_s, 1),
                    "job_speedup_by_cpu_time": median(plain_jobs, 1) / median(cached_jobs, 1),
                    "recompute_job_s_all": rounded(plain_jobs, 3), "cached_job_s_all": rounded(cached_jobs, 3),
                    "recompute_step_s_all": rounded(recompute_s, 5), "cached_step_s_all": rounded(cached_s, 5),
                    "adapter_parameters": sizes["adapter"], **reference_fractions()},
        "ratios": {"pivot_cache_step_speedup": recompute_med / cached_med,
                   "pivot_cache_job_speedup": plain_job_med / cached_job_med,
                   "adapter_params_fraction": sizes["adapter"] / sizes["encoder"]},
    }


if __name__ == "__main__":
    print(json.dumps(main(ARGS)))
