"""GPU check: every CUDA path of modsent once on a lent GPU, with figures (aim ~4 min, cap 8).

usage: python bench/gpu_check.py [--quick] [--threads N] [--rehearse-on-cpu]

Each check is a function; one that fails is recorded as {"error": ...}, the others still run, and
the exit status is 1. All go through modsent's own code:

- ``translate``: :class:`~modsent.translate.NllbTranslator` on :func:`~modsent.translate.prepare_model`'s
  conversion (as the job: compute type = quantization) of ``tiny_nllb(size="medium")``: float16 and
  int8_float16 against float32 on the same GPU, float16 against CPU int8 on every core.
- ``train``: the contrastive recipe's :class:`~modsent.train.Trainer` (DeepSpeed, ``precision: bf16``)
  under torchrun, one rank per GPU (at most 2); ``init_distributed`` picks NCCL. Loss must be finite.
- ``faiss``: :func:`modsent.search.knn_search`'s GPU path against its CPU path, 100k × 384
  (``faiss_gpu: unavailable`` when the installed FAISS has no GPU support).
- ``evaluate``: :func:`~modsent.evaluate.evaluate_sts` of a modular model (adapters on for the
  cross-lingual pair) and of a single model (``load_encoder``) on CUDA and CPU: scores within 1e-3.
- ``mfu``: train-step model FLOP utilisation of e5-small- and LaBSE-sized BERTs (random weights from
  ``BertConfig``, nothing downloaded), bf16 autocast, batch 64 × 128 tokens.

Without CUDA every check is reported skipped (exit 0). ``--rehearse-on-cpu`` runs the same functions
with device cpu, gloo, float32/int8, faiss-cpu and tiny sizes, to prove the plumbing before a GPU
is lent. The last line of stdout is the JSON record (see /work/shared/BENCH.md).
"""

from __future__ import annotations

from _common import REPO, bench_args  # noqa: I001  (sets threads before numpy/torch load)

import os


def _extra(parser) -> None:
    parser.add_argument("--rehearse-on-cpu", action="store_true", help="run every check on CPU at tiny sizes")
    parser.add_argument("--train-rank", help=__import__("argparse").SUPPRESS)  # internal: one torchrun rank
    # The CPU sides of the comparisons get every core of the lent machine, not bench_args' default 1.
    parser.set_defaults(threads=os.cpu_count() or 1)


ARGS = bench_args(__doc__.split("\n\n")[0], "fewer sentences, pairs and steps", "CPU threads of the CPU baselines",
                  extra=_extra) if __name__ == "__main__" else None

import json  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

BUDGET_S = 300  # no check starts after 5 min (recorded as an error): the whole run must end within 8
DEADLINE_S = 450  # a check still running then is interrupted (between Python calls) and recorded as an error
# Dense bf16 peak FLOP/s by card name (the spec sheets' non-sparse figures); first match wins.
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12))


@dataclass(frozen=True)
class Setup:
    device: str  # "cuda", or "cpu" when rehearsing
    quick: bool
    threads: int
    work: Path

    @property
    def rehearse(self) -> bool:
        return self.device == "cpu"

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def median_seconds(setup: Setup, fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up, the device drained around each."""
    fn()
    times = []
    for _ in range(repeats):
        setup.sync()
        start = time.perf_counter()
        fn()
        setup.sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check_translate(s: Setup) -> tuple[dict, dict]:
    from modsent.testing import synthetic_sentences, tiny_nllb
    from modsent.translate import DecodingConfig, NllbTranslator, prepare_model, resolve_device
    from modsent.translate.config import default_model_cache
    from modsent.translate.model import check_compute_type, fit_decoding

    source = tiny_nllb(size="tiny" if s.rehearse else "medium")
    device = resolve_device(s.device)  # the job's own check: one line when CTranslate2 sees no GPU
    n = 32 if s.rehearse else 256 if s.quick else 1024
    sentences = synthetic_sentences(n, seed=7)

    def run(device: str, compute_type: str, count: int) -> tuple[float, list[str]]:
        check_compute_type(device, compute_type)
        model = prepare_model(source, compute_type, default_model_cache())  # as the job: one conversion each
        translator = NllbTranslator(model.ct2_dir, model.tokenizer_dir, device=device, compute_type=compute_type,
                                    intra_threads=s.threads if device == "cpu" else 1, max_batch_size=64,
                                    decoding=fit_decoding(DecodingConfig(beam_size=1, max_decoding_length=32), model))
        texts, targets = sentences[:count], ["deu_Latn"] * count
        out: dict[str, list[str]] = {}
        seconds = median_seconds(s, lambda: out.update(texts=translator.translate(texts, targets)), 3)
        return count / seconds, out["texts"]

    types = ("float32", "int8") if s.rehearse else ("float32", "float16", "int8_float16")
    rates, outputs = {}, {}
    for compute_type in types:
        rates[compute_type], outputs[compute_type] = run(device, compute_type, n)
    results = {f"ct2_{device}_{t}_sentences_per_s": round(rates[t], 1) for t in types}
    results.update({f"ct2_{t}_outputs_equal_to_float32": sum(a == b for a, b in zip(outputs[t], outputs["float32"]))
                    for t in types[1:]})
    results.update(model=source.name, sentences=n, max_decoding_length=32, batch_size=64)
    ratios = {f"ct2_{t}_speedup_vs_float32": rates[t] / rates["float32"] for t in types[1:]}
    if device == "cuda":  # the GPU against CPU int8 with every core (fewer sentences: the rate is per sentence)
        cpu_rate, _ = run("cpu", "int8", min(n, 128))
        results["ct2_cpu_int8_sentences_per_s"] = round(cpu_rate, 1)
        ratios["ct2_cuda_float16_speedup_vs_cpu_int8"] = rates["float16"] / cpu_rate
    return results, ratios


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_train(s: Setup) -> tuple[dict, dict]:
    from modsent.testing import tiny_bert_mlm, write_synthetic_corpus
    from modsent.testing.ranks import child_environment

    ranks = 2 if s.rehearse else max(1, min(2, torch.cuda.device_count()))  # rehearsal proves the 2-rank path
    batch = 8 if s.rehearse else 64
    spec = {"model": str(tiny_bert_mlm(size="tiny" if s.rehearse else "small")), "batch": batch,
            "precision": "fp32" if s.rehearse else "bf16", "warmup": 1 if s.rehearse else 3,
            "steps": 3 if s.rehearse else 5 if s.quick else 10,
            "corpus": str(write_synthetic_corpus(s.work / "corpus", ["deu_Latn"], {"pairs": 40 * batch}, seed=0)),
            "output": str(s.work / "train")}
    (s.work / "train_spec.json").write_text(json.dumps(spec))
    env = child_environment(OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1", PYTHONPATH=str(REPO),
                            **({"CUDA_VISIBLE_DEVICES": ""} if s.rehearse else {}))  # rehearsal: gloo even beside a GPU
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(ranks),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), __file__, "--threads", "1",
               "--train-rank", str(s.work)]
    # Its own session, so that a timeout (or the deadline's alarm) ends torchrun's ranks too, not torchrun alone.
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    try:
        output = launcher.communicate(timeout=240)[0]
    except BaseException:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        raise
    if launcher.returncode != 0:
        raise RuntimeError(f"torchrun exited {launcher.returncode}: {output[-3000:]}")
    result = json.loads((s.work / "train_result.json").read_text())
    if not all(math.isfinite(loss) for loss in result["losses"]):
        raise AssertionError(f"non-finite training loss: {result['losses']}")
    if not s.rehearse and (result["backend"], result["engine_dtype"]) != ("nccl", "torch.bfloat16"):
        raise AssertionError(f"expected NCCL and a bf16 engine, got {result['backend']}, {result['engine_dtype']}")
    return result, {}


def train_rank(work: Path) -> None:
    """One torchrun rank: the contrastive recipe's Trainer for a few steps, timed; rank 0 writes the figures."""
    from modsent.config import load_config
    from modsent.testing.ranks import end_rank
    from modsent.train import Trainer, init_distributed
    from modsent.train.stage import ContrastiveConfig, build_contrastive_task

    spec = json.loads((work / "train_spec.json").read_text())
    info = init_distributed()
    cfg = load_config(ContrastiveConfig, overrides=[
        f"model={spec['model']}", f"corpus={spec['corpus']}", "languages=[deu_Latn]", "trainer.resume=none",
        f"output_dir={spec['output']}", "trainer.ds_config=zero1",
        f"trainer.zero_stage={1 if info.world_size > 1 else 0}",  # ZeRO on one rank only slows the step
        f"trainer.precision={spec['precision']}", f"trainer.global_batch_size={spec['batch']}",
        "trainer.max_steps=1000", "trainer.eval_every=0", "trainer.save_every=0", "trainer.eval_at_start=false",
        "trainer.progress_bar=false"])
    task, _ = build_contrastive_task(cfg, info)
    trainer = Trainer(task, cfg.trainer, info)
    losses, times = [], []
    for step in range(spec["warmup"] + spec["steps"]):
        start = time.perf_counter()
        loss = trainer.train_step()[0].item()  # .item() waits for the step
        if step >= spec["warmup"]:
            losses.append(loss)
            times.append(time.perf_counter() - start)
    if info.is_main:
        step_s = statistics.median(times)
        (work / "train_result.json").write_text(json.dumps({
            "ranks": info.world_size, "backend": info.backend, "device": str(info.device),
            "precision": trainer.precision, "engine_dtype": str(next(trainer.engine.module.parameters()).dtype),
            "model": Path(spec["model"]).name,
            "global_batch_pairs": spec["batch"], "losses": losses, "step_s_median": step_s,
            "pairs_per_s": spec["batch"] / step_s}))
    end_rank()


def check_faiss(s: Setup) -> tuple[dict, dict]:
    import faiss

    from modsent.models.encoders import normalize_rows
    from modsent.search import faiss_gpu_count, knn_search

    size, n_queries, k = (10_000, 100, 10) if s.rehearse else (100_000, 1000, 10)
    rng = np.random.default_rng(0)
    database = normalize_rows(rng.standard_normal((size, 384)).astype(np.float32))
    queries = normalize_rows(rng.standard_normal((n_queries, 384)).astype(np.float32))
    faiss.omp_set_num_threads(s.threads)
    cpu_s = median_seconds(s, lambda: knn_search(queries, database, k, use_gpu=False), 3)
    results = {"database": size, "dim": 384, "queries": n_queries, "k": k, "faiss": faiss.__version__,
               "cpu_threads": s.threads, "faiss_cpu_s": cpu_s}
    use_gpu = s.device == "cuda"
    if use_gpu and faiss_gpu_count() == 0:
        return {**results, "faiss_gpu": "unavailable (the installed faiss has no GPU support)"}, {}
    # knn_search builds its (GPU) index per call: the index upload is part of what is timed, as in use.
    fast_s = median_seconds(s, lambda: knn_search(queries, database, k, use_gpu=use_gpu), 3)
    fast_ids, cpu_ids = (knn_search(queries, database, k, use_gpu=gpu)[1] for gpu in (use_gpu, False))
    same = float((fast_ids[:, 0] == cpu_ids[:, 0]).mean())
    if same < 0.99:
        raise AssertionError(f"GPU and CPU top-1 agree on only {same:.3f} of the queries")
    return ({**results, "faiss_gpu_s": fast_s, "faiss_gpus": faiss_gpu_count(), "top1_equal_fraction": same},
            {"faiss_gpu_speedup_vs_cpu": cpu_s / fast_s})


def check_evaluate(s: Setup) -> tuple[dict, dict]:
    from modsent.evaluate import EmbeddingCache, STSPairs, evaluate_sts, paired_cosine
    from modsent.models.encoders import ModularModelEncoder, load_encoder
    from modsent.testing import save_tiny_modular, synthetic_sentences, tiny_bert_mlm

    model = save_tiny_modular(s.work / "modular", tiny_bert_mlm(size="tiny" if s.rehearse else "small"),
                              {"eng_Latn": None, "deu_Latn": 1})
    n = 64 if s.rehearse else 256 if s.quick else 1024
    texts = synthetic_sentences(2 * n, seed=3)
    gold = np.random.default_rng(3).uniform(0, 5, n)
    pairs = {(a, b): STSPairs(a, b, tuple(texts[:n]), tuple(texts[n:]), gold, "synthetic")
             for a, b in (("eng_Latn", "deu_Latn"), ("deu_Latn", "deu_Latn"))}  # adapters on, then off

    def scores(encoder) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Spearman × 100 per pair (and combined), and the pairs' cosines the evaluator ranked."""
        cache = EmbeddingCache()
        values = {f"{x.lang1}-{x.lang2}" + ("" if x.directed else "-combined"): x.value
                  for x in evaluate_sts("synthetic", pairs, "model", encoder, cache)}
        cosines = {f"{a}-{b}": paired_cosine(cache.embed("model", encoder, a, a != b, "synthetic", p.sentences1),
                                             cache.embed("model", encoder, b, a != b, "synthetic", p.sentences2))
                   for (a, b), p in pairs.items()}
        return values, cosines

    ours, reference = ModularModelEncoder(model), ModularModelEncoder(model)  # default device: CUDA when there is one
    if s.device == "cuda" and ours.model.device.type != "cuda":
        raise AssertionError(f"ModularModelEncoder chose {ours.model.device} beside a GPU")
    # Set before any language encoder loads: each is loaded onto this device when first used.
    reference.model.device = torch.device("cpu")
    if s.rehearse:
        ours.model.device = torch.device("cpu")
    seconds = {name: median_seconds(s, lambda e=encoder: scores(e), 3) for name, encoder in
               (("device", ours), ("cpu", reference))}
    (device_scores, device_cos), (cpu_scores, cpu_cos) = scores(ours), scores(reference)
    # A single (non-modular) model, as baselines are evaluated: load_encoder picks the device itself.
    allocated = torch.cuda.memory_allocated() if s.device == "cuda" else 0
    single = load_encoder(model / "encoders" / "deu_Latn")
    if s.device == "cuda" and torch.cuda.memory_allocated() <= allocated:
        raise AssertionError("load_encoder left a single model on the CPU beside a GPU")
    single_scores, single_cos = scores(single)
    key = "single-model deu_Latn-deu_Latn"  # the same encoder as the modular deu_Latn one, without its adapter
    device_scores[key], device_cos[key] = single_scores["deu_Latn-deu_Latn"], single_cos["deu_Latn-deu_Latn"]
    cpu_scores[key], cpu_cos[key] = cpu_scores["deu_Latn-deu_Latn"], cpu_cos["deu_Latn-deu_Latn"]
    # "The same scores within 1e-3": the cosines the evaluator ranks, and Spearman's rho (the x100 figure / 100;
    # one swap of two near-tied cosines among 1024 pairs moves the x100 figure by up to ~6e-4).
    cos_diff = max(float(np.abs(device_cos[k] - cpu_cos[k]).max()) for k in cpu_cos)
    rho_diff = max(abs(device_scores[k] - cpu_scores[k]) for k in cpu_scores) / 100
    if cos_diff > 1e-3 or rho_diff > 1e-3:
        raise AssertionError(f"{s.device} and CPU differ: cosines by {cos_diff:.2g}, Spearman rho by {rho_diff:.2g}: "
                             f"{device_scores} vs {cpu_scores}")
    return ({"pairs": n, "scores_device": device_scores, "scores_cpu": cpu_scores, "max_abs_cosine_diff": cos_diff,
             "max_abs_spearman_rho_diff": rho_diff, "sts_device_s": seconds["device"], "sts_cpu_s": seconds["cpu"]},
            {"evaluate_sts_speedup_vs_cpu": seconds["cpu"] / seconds["device"]})


def mfu_one(s: Setup, config, batch: int, seq: int, steps: int) -> dict:
    """Median train-step time and model FLOP/s of a random BertModel built from ``config`` on the device."""
    from transformers import BertModel

    from modsent.models.pooling import pool
    from modsent.train.losses.mnrl import mnrl_loss

    torch.manual_seed(0)
    with torch.device(s.device):  # initialise on the device: LaBSE's 385M embedding weights are slow on CPU
        model = BertModel(config, add_pooling_layer=False).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)  # as the Trainer
    ids = torch.randint(0, config.vocab_size, (batch, seq), device=s.device)
    mask = torch.ones_like(ids)
    losses = []

    def step() -> None:
        with torch.autocast(s.device, dtype=torch.bfloat16, enabled=not s.rehearse):
            embeddings = pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask, "mean")
        # In-batch MNRL, the recipe's loss: the first half of the rows against the second.
        loss = mnrl_loss(embeddings[: batch // 2], embeddings[batch // 2:], across_ranks=False)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    step_s = median_seconds(s, step, steps)
    if not torch.isfinite(torch.stack(losses)).all():
        raise AssertionError(f"non-finite loss: {torch.stack(losses).tolist()}")
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embeddings."))
    # Model FLOPs per step, forward + backward = 3 × forward: 6 × non-embedding params × tokens for the
    # matmuls, plus attention's QK^T and AV (forward 2 × 2 × batch × seq² × hidden per layer), i.e.
    # 12 × layers × hidden × seq² × batch. Embedding lookups and the optimizer are not model FLOPs.
    flops = 6 * non_embedding * batch * seq + 12 * config.num_hidden_layers * config.hidden_size * seq ** 2 * batch
    return {"non_embedding_params": non_embedding, "params": sum(p.numel() for p in model.parameters()),
            "attention": model.config._attn_implementation, "step_s_median": step_s,
            "tokens_per_s": batch * seq / step_s, "flops_per_step": flops, "achieved_tflops": flops / step_s / 1e12}


def check_mfu(s: Setup) -> tuple[dict, dict]:
    from transformers import BertConfig

    shapes = {"tiny": (1000, 64, 2, 2, 256)} if s.rehearse else {
        "e5_small": (250037, 384, 12, 12, 1536), "labse": (501153, 768, 12, 12, 3072)}  # vocab, hidden, L, heads, FFN
    batch, seq = (8, 32) if s.rehearse else (64, 128)
    name = torch.cuda.get_device_name() if s.device == "cuda" else "cpu"
    peak = next((flops for key, flops in PEAK_BF16 if key in name), None) if s.device == "cuda" else None
    results: dict = {"card": name, "peak_bf16_flops": peak, "batch": batch, "seq": seq,
                     "precision": "fp32" if s.rehearse else "bf16 autocast, fp32 master weights, fused AdamW"}
    for label, (vocab, hidden, layers, heads, ffn) in shapes.items():
        config = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=ffn)
        figures = mfu_one(s, config, batch, seq, 2 if s.rehearse else 5 if s.quick else 10)
        results[label] = {**figures, "mfu": figures["achieved_tflops"] * 1e12 / peak if peak else None}
        if s.device == "cuda":
            torch.cuda.empty_cache()
    return results, {f"mfu_{label}": results[label]["mfu"] for label in shapes if peak}


CHECKS = {"translate": check_translate, "train": check_train, "faiss": check_faiss, "evaluate": check_evaluate,
          "mfu": check_mfu}


def versions() -> dict[str, str]:
    import ctranslate2
    import deepspeed
    import faiss
    import transformers

    return {"torch": torch.__version__, "cuda": str(torch.version.cuda), "ctranslate2": ctranslate2.__version__,
            "deepspeed": deepspeed.__version__, "faiss": faiss.__version__, "transformers": transformers.__version__}


def _deadline(signum, frame) -> None:
    raise TimeoutError(f"still running {DEADLINE_S} s after the start")


def main(args) -> int:
    started = time.perf_counter()
    cuda = torch.cuda.is_available()
    params = {"quick": args.quick, "rehearse_on_cpu": args.rehearse_on_cpu, "threads": args.threads,
              "gpus": torch.cuda.device_count() if cuda else 0, "cpu_count": os.cpu_count()}
    record = {"bench": "gpu_check", "device": "cpu", "params": params, "results": {}, "ratios": {}}
    if not cuda and not args.rehearse_on_cpu:  # never pretend: nothing measured, nothing failed
        record["results"] = {name: {"skipped": "no CUDA device"} for name in CHECKS}
        print(json.dumps(record))
        return 0
    device = "cpu" if args.rehearse_on_cpu else "cuda"
    if device == "cuda":
        record["device"] = f"cuda:{torch.cuda.get_device_name()}"
    torch.set_num_threads(args.threads)
    signal.signal(signal.SIGALRM, _deadline)
    failed = False
    with tempfile.TemporaryDirectory(prefix="modsent-gpu-check-") as tmp:
        params["versions"] = versions()
        for name, check in CHECKS.items():
            elapsed = time.perf_counter() - started
            if elapsed > BUDGET_S:
                record["results"][name] = {"error": f"not run: {elapsed:.0f} s spent of the {BUDGET_S} s budget"}
                failed = True
                continue
            (Path(tmp) / name).mkdir()
            setup = Setup(device, args.quick, args.threads, Path(tmp) / name)
            signal.alarm(int(DEADLINE_S - elapsed))
            try:
                results, ratios = check(setup)
                record["results"][name] = {**results, "check_s": round(time.perf_counter() - started - elapsed, 1)}
                record["ratios"].update({key: float(value) for key, value in ratios.items()})
            except Exception as err:  # noqa: BLE001 (one failing check must not hide the others' figures)
                traceback.print_exc()
                record["results"][name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
                failed = True
            signal.alarm(0)
            print(f"{name}: {json.dumps(record['results'][name])[:400]}", file=sys.stderr, flush=True)
    params["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(record))
    return 1 if failed else 0


if __name__ == "__main__":
    if ARGS.train_rank:
        train_rank(Path(ARGS.train_rank))
    sys.exit(main(ARGS))
