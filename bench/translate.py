"""Benchmark of the translate stage: CTranslate2 against transformers, and the whole job against the seed's method.

usage: python bench/translate.py [--quick] [--threads N] [--max-tokens N]

Model: ``tiny_nllb(size="medium")`` (NLLB architecture, d_model 512, 6+6 layers, ~48M parameters,
random weights). A random model never emits ``</s>``, so every output runs to the length cap;
both sides decode the same ``--max-tokens`` tokens per sentence (default 32, about a real
paraphrase sentence's translation; the seed's ``max_length=130`` is only a cap).

- ``ct2_int8_speedup_vs_hf_generate`` / ``ct2_float32_speedup_vs_hf_generate``: sentences/s of
  :class:`modsent.translate.NllbTranslator` (CTranslate2, greedy) over ``generate`` (greedy,
  ``forced_bos_token_id``) on the same sentences in the same order, batches of 32, same threads.
- ``pipeline_speedup_vs_seed_method``: wall time of the seed's method — for every dataset, column
  and language, ``generate`` in batches of 32 in file order, no dedup (torch given the faster of
  1 or 2 threads) — over ``modsent translate`` on the same corpus (``run_translate``: read, dedup,
  length-sort, 2 CTranslate2 int8 actors × 1 thread on Ray Data, write, quality checks; actor
  start-up included, the Ray session started beforehand, its start-up in ``results``).
- ``actor_scaling_1_to_2``: the same job with 1 actor over 2 actors.
- ``unique_sentence_saving``: source sentences / unique source sentences of the corpus
  (synthetic paraphrases, 30% of rows repeat an earlier sentence, one dataset with hard negatives;
  288 pair rows and 144 triplet rows, 2,016 output lines in 2 languages — big enough that the
  job's few seconds of fixed start-up, which a real corpus amortises, do not decide the ratio).

Every figure is the median of several repetitions after a warm-up; the sides of a ratio alternate
so machine load hits them alike. The last line of stdout is the JSON record (see BENCH.md).
"""

from __future__ import annotations

from _common import bench_args  # noqa: I001  (sets threads before numpy/torch load)

import os
from pathlib import Path

ARGS = bench_args(__doc__.split("\n\n")[0], "fewer sentences, a smaller corpus", "threads per translator (torch and CTranslate2 alike)",
                  extra=lambda p: p.add_argument("--max-tokens", type=int, default=32, help="generated tokens per sentence, both sides"),
                  env={"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}) if __name__ == "__main__" else None

import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

from modsent.corpus import open_corpus, read_lines  # noqa: E402
from modsent.io import atomic_write_text  # noqa: E402
from modsent.testing.synthetic import synthetic_sentences, write_synthetic_corpus  # noqa: E402
from modsent.testing.tiny_models import tiny_nllb  # noqa: E402
from modsent.translate import (  # noqa: E402
    ComputeConfig, DecodingConfig, ModelConfig, NllbTranslator, RayConfig, TranslateConfig, load_source,
    prepare_model, ray_session, run_translate,
)
from modsent.translate.config import default_model_cache  # noqa: E402

SEED_BATCH = 32
LANGUAGES = ["deu_Latn", "rus_Cyrl"]


class HfGenerate:
    """The seed's translation step: tokenize with padding, ``generate`` with the forced language token."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, src_lang="eng_Latn")
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
        self.max_length = max_tokens + 1  # + the decoder start token

    def __call__(self, sentences: list[str], language: str) -> tuple[list[str], int]:
        import torch

        inputs = self.tokenizer(sentences, return_tensors="pt", padding=True)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, forced_bos_token_id=self.tokenizer.convert_tokens_to_ids(language),
                                            num_beams=1, do_sample=False, max_length=self.max_length)
        new = generated[:, 2:]  # after the decoder start and language tokens
        tokens = int(((new != self.tokenizer.pad_token_id) & (new != self.tokenizer.eos_token_id)).sum())
        return self.tokenizer.batch_decode(generated, skip_special_tokens=True), tokens


def alternating_medians(runs: dict[str, Callable[[], object]], repeats: int,
                        warmups: dict[str, Callable[[], object]] | None = None) -> dict[str, float]:
    """Median seconds per named run, after one warm-up each (``warmups[name]`` or the run itself);
    the runs alternate ``repeats`` times so changing machine load hits them alike."""
    for name, fn in runs.items():
        (warmups or {}).get(name, fn)()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def seed_method(hf: HfGenerate, corpus: Path, out: Path) -> int:
    """One column and one language at a time, batches of 32 in file order, every occurrence translated."""
    lines = 0
    for dataset in open_corpus(corpus):
        for column in sorted(col for lang, col in dataset.columns if lang == "eng_Latn"):
            english = list(read_lines(dataset.path / f"eng_Latn_{column}.txt"))
            for language in LANGUAGES:
                translated: list[str] = []
                for start in range(0, len(english), SEED_BATCH):
                    translated += hf(english[start:start + SEED_BATCH], language)[0]
                atomic_write_text(out / dataset.name / f"{language}_{column}.txt", "".join(t + "\n" for t in translated))
                lines += len(translated)
    return lines


def main() -> None:
    import torch

    args = ARGS
    logging.basicConfig(level=logging.WARNING)
    quick = args.quick
    load_at_start = os.getloadavg()[0]
    n_sentences = 32 if quick else 64
    repeats = 3
    job_repeats = 2 if quick else 3
    datasets = {"quora": 32, "simplewiki": 16} if quick else {"quora": 288, "simplewiki": 144}
    work = Path(tempfile.mkdtemp(prefix="modsent-bench-translate-"))
    try:
        source_model = tiny_nllb(size="medium")
        cache = default_model_cache()
        int8 = prepare_model(source_model, "int8", cache)
        float32 = prepare_model(source_model, "float32", cache)
        decoding = DecodingConfig(beam_size=1, max_decoding_length=args.max_tokens)

        # --- translators on the same sentences -------------------------------------------------
        torch.set_num_threads(args.threads)
        hf = HfGenerate(source_model, args.max_tokens)
        sentences = synthetic_sentences(n_sentences, seed=7)
        translators = {
            name: NllbTranslator(model.ct2_dir, compute_type=name, intra_threads=args.threads, decoding=decoding,
                                 max_batch_size=SEED_BATCH)
            for name, model in (("int8", int8), ("float32", float32))
        }
        tokens: dict[str, int] = {}

        def run_hf() -> None:
            tokens["hf"] = sum(hf(sentences[i:i + SEED_BATCH], "deu_Latn")[1] for i in range(0, n_sentences, SEED_BATCH))

        def run_ct2(name: str) -> Callable[[], None]:
            def run() -> None:
                generated = translators[name].generate_tokens(sentences, ["deu_Latn"] * n_sentences)
                translators[name].detokenize(generated)
                tokens[name] = sum(len(row) - 1 for row in generated)  # without the language token
            return run

        translator_seconds = alternating_medians({"hf": run_hf, "int8": run_ct2("int8"), "float32": run_ct2("float32")},
                                                 repeats)
        agreement = sum(a == b for a, b in zip(translators["int8"].translate(sentences, ["deu_Latn"] * n_sentences),
                                               translators["float32"].translate(sentences, ["deu_Latn"] * n_sentences)))
        del translators

        # --- whole job vs the seed's method ----------------------------------------------------
        corpus = write_synthetic_corpus(work / "corpus", [], datasets, triplet_datasets=["simplewiki"],
                                        repeat_fraction=0.3)
        source = load_source([corpus], "eng_Latn")
        seed_threads_seconds = {}
        probe = sentences[:8]
        for threads in (1, 2):  # give the baseline its best thread count on this machine
            torch.set_num_threads(threads)
            hf(probe, "deu_Latn")
            start = time.perf_counter()
            hf(probe, "deu_Latn")
            seed_threads_seconds[threads] = time.perf_counter() - start
        seed_threads = min(seed_threads_seconds, key=seed_threads_seconds.get)
        torch.set_num_threads(seed_threads)

        def job_config(actors: int, output_dir: Path, corpus_path: Path) -> TranslateConfig:
            return TranslateConfig(
                corpora=[corpus_path], languages=list(LANGUAGES), output_dir=output_dir,
                model=ModelConfig(path=source_model, quantization="int8", cache_dir=cache), decoding=decoding,
                compute=ComputeConfig(device="cpu", num_actors=actors, cpus_per_actor=0.5, intra_threads=1),
                ray=RayConfig(progress_bars=False, num_cpus=2, temp_dir=Path("/tmp/modsent-ray-bench")))

        runs = 0

        def ours(actors: int, corpus_path: Path = corpus) -> Callable[[], None]:
            def run() -> None:
                nonlocal runs
                runs += 1
                output_dir = work / f"job-{runs}"
                assert run_translate(job_config(actors, output_dir, corpus_path)).units_translated > 0
                shutil.rmtree(output_dir)
            return run

        def seed() -> None:
            seed_method(hf, corpus, work / "seed")

        # Warm-ups: one small job per actor count, one batch of the seed's method.
        warm_corpus = write_synthetic_corpus(work / "warm-corpus", [], {"warm": 8})
        warmups = {"seed": lambda: hf(probe, "deu_Latn"), "ours_2_actors": ours(2, warm_corpus),
                   "ours_1_actor": ours(1, warm_corpus)}
        start = time.perf_counter()
        with ray_session(RayConfig(num_cpus=2, temp_dir=Path("/tmp/modsent-ray-bench"))):
            ray_init_seconds = time.perf_counter() - start
            import ray

            ray.data.DataContext.get_current().enable_progress_bars = False
            job_seconds = alternating_medians({"seed": seed, "ours_2_actors": ours(2), "ours_1_actor": ours(1)},
                                              job_repeats, warmups)
        occurrences = source.num_occurrences
        lines = occurrences * len(LANGUAGES)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    hf_sps = n_sentences / translator_seconds["hf"]
    record = {
        "bench": "translate",
        "device": "cpu",
        "params": {
            "quick": quick, "model": "tiny_nllb(size='medium')", "model_parameters": sum(
                p.numel() for p in hf.model.parameters()), "threads_per_translator": args.threads,
            "max_tokens": args.max_tokens, "batch_size": SEED_BATCH, "translator_sentences": n_sentences,
            "repeats": repeats, "job_repeats": job_repeats, "languages": LANGUAGES, "datasets": datasets, "repeat_fraction": 0.3,
            "job_actors": 2, "job_threads_per_actor": 1, "seed_method_torch_threads": seed_threads,
            "cpu_count": os.cpu_count(),
        },
        "results": {
            "hf_generate_sentences_per_s": round(hf_sps, 2),
            "hf_generate_tokens_per_s": round(tokens["hf"] / translator_seconds["hf"], 1),
            **{f"ct2_{name}_sentences_per_s": round(n_sentences / translator_seconds[name], 2) for name in ("int8", "float32")},
            **{f"ct2_{name}_tokens_per_s": round(tokens[name] / translator_seconds[name], 1) for name in ("int8", "float32")},
            "ct2_int8_float32_identical_outputs": agreement, "ct2_int8_float32_compared_outputs": n_sentences,
            "seed_method_probe_seconds_by_threads": {str(k): round(v, 3) for k, v in seed_threads_seconds.items()},
            "source_sentences": occurrences, "unique_source_sentences": len(source.sentences),
            "output_lines": lines,
            "seed_method_seconds": round(job_seconds["seed"], 2),
            "job_2_actors_seconds": round(job_seconds["ours_2_actors"], 2),
            "job_1_actor_seconds": round(job_seconds["ours_1_actor"], 2),
            "seed_method_lines_per_s": round(lines / job_seconds["seed"], 2),
            "job_2_actors_lines_per_s": round(lines / job_seconds["ours_2_actors"], 2),
            "ray_init_seconds": round(ray_init_seconds, 2),
            # The machine may be shared: ratios alternate their sides, absolute figures do not.
            "load_average_1min_start": round(load_at_start, 2), "load_average_1min_end": round(os.getloadavg()[0], 2),
        },
        "ratios": {
            "ct2_int8_speedup_vs_hf_generate": round(translator_seconds["hf"] / translator_seconds["int8"], 3),
            "ct2_float32_speedup_vs_hf_generate": round(translator_seconds["hf"] / translator_seconds["float32"], 3),
            "pipeline_speedup_vs_seed_method": round(job_seconds["seed"] / job_seconds["ours_2_actors"], 3),
            "actor_scaling_1_to_2": round(job_seconds["ours_1_actor"] / job_seconds["ours_2_actors"], 3),
            "unique_sentence_saving": round(occurrences / len(source.sentences), 3),
        },
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
