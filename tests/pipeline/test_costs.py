import time
from pathlib import Path

import pytest
import yaml

from modsent.cli import main
from modsent.config import from_dict
from modsent.languages import nllb_codes
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.costs import PlanError, estimate_plan, load_costs, model_parameters, plan_run
from modsent.testing.synthetic import write_synthetic_corpus
from modsent.testing.tiny_models import tiny_bert_mlm


@pytest.fixture(scope="module")
def setup(tmp_path_factory, model_cache):
    root = tmp_path_factory.mktemp("plan")
    corpus = write_synthetic_corpus(root / "corpus", ["eng_Latn"], {"para": 200})
    return {"run_dir": str(root / "run"), "source_model": str(tiny_bert_mlm(model_cache)), "corpus": str(corpus)}


def test_estimate_scales_linearly_with_languages():
    costs = load_costs()
    kwargs = dict(pivot="eng_Latn", stages=["translate", "vocab", "adapt", "train", "align"], source_params=470_000_000,
                  english_tokens=50_000_000, costs=costs, devices=64, device_kind="h100", ranks_per_job=8)
    others = [code for code in nllb_codes() if code != "eng_Latn"]
    small = estimate_plan(["eng_Latn"] + others[:50], **kwargs)
    large = estimate_plan(["eng_Latn"] + others[:200], **kwargs)
    for a, b in zip(small.stages, large.stages):
        per_language = {"translate": 1, "align": 1}.get(a.stage, 0)
        assert b.device_hours / a.device_hours == pytest.approx((200 + 1 - per_language) / (50 + 1 - per_language),
                                                               rel=1e-9)
    assert large.device_hours == pytest.approx(sum(s.device_hours for s in large.stages))
    # LaBSE-sized model, 50M tokens, MLM at 6 FLOPs/param/token on 64 GPUs: a sane number of hours.
    adapt = next(s for s in large.stages if s.stage == "adapt")
    assert 1 < adapt.device_hours < 1e5 and adapt.wall_hours == pytest.approx(adapt.device_hours / 64)


def test_plan_200_languages_is_fast_and_readable(setup, capsys, tmp_path):
    cfg_path = tmp_path / "p.yaml"
    cfg_path.write_text("languages: ['@all']\n" + "".join(f"{k}: {v}\n" for k, v in setup.items()))
    start = time.perf_counter()
    assert main(["plan", str(cfg_path), "--gpus", "64", "--nodes", "8", "--device-kind", "h100"]) == 0
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert elapsed < 5.0
    assert "202 languages on 64 × h100" in out and "8 node(s) × 8 device(s)" in out
    assert "| align | 201 |" in out and "| **total** |" in out


def test_plan_errors(setup):
    cfg = from_dict(PipelineConfig, dict(setup, languages=["de"]))
    with pytest.raises(PlanError, match="does not split evenly"):
        plan_run(cfg, gpus=10, nodes=3)
    with pytest.raises(PlanError, match="no measured rates for device 'tpu'"):
        plan_run(cfg, gpus=8, device_kind="tpu")
    with pytest.raises(PlanError, match="config.json does not exist"):
        model_parameters(setup["corpus"])


def test_plan_counts_parallel_text_for_alignment_and_gives_single_c_its_row(setup, tmp_path):
    from modsent.testing import write_parallel_text

    parallel = tmp_path / "parallel"
    write_parallel_text(parallel / "train" / "eng_Latn-deu_Latn", "deu_Latn", 400, seed=1)
    base = dict(setup, languages=["eng_Latn", "deu_Latn"], stages=["train", "align"], align={"use_corpus": False})
    without = plan_run(from_dict(PipelineConfig, base), gpus=8, device_kind="h100")
    with_text = plan_run(from_dict(PipelineConfig, dict(base, parallel_text=str(parallel), single_c={})),
                         gpus=8, device_kind="h100")

    assert "| single_c |" not in without and "| single_c | 1 |" in with_text
    assert "outside the embeddings" in with_text
    # Alignment's cost follows its parallel text, and without the corpus only that.
    kwargs = dict(pivot="eng_Latn", stages=["align"], source_params=21_000_000, english_tokens=1_000_000,
                  costs=load_costs(), devices=2, device_kind="cpu", ranks_per_job=2)
    languages = ["eng_Latn", "deu_Latn", "kat_Geor"]
    plan = estimate_plan(languages, **kwargs, align_tokens={"deu_Latn": 3_000_000, "kat_Geor": 1_000_000})
    alone = estimate_plan(languages, **kwargs, align_tokens={"deu_Latn": 3_000_000, "kat_Geor": 1_000_000},
                          align_uses_corpus=False)
    corpus_only = estimate_plan(languages, **kwargs)
    assert plan.stages[0].device_hours == pytest.approx(alone.stages[0].device_hours + corpus_only.stages[0].device_hours)
    assert alone.stages[0].device_hours == pytest.approx(corpus_only.stages[0].device_hours * 2)  # 4M vs 2 x 1M
    # A bridged pivot's training also reads its bridge languages' parallel text; the targets' does not change.
    train = dict(kwargs, stages=["train"])
    bridged = estimate_plan(languages, **train, pivot_extra_tokens=3_000_000)
    assert bridged.stages[0].device_hours == pytest.approx(estimate_plan(languages, **train).stages[0].device_hours * 2)


def _cpu_costs(tmp_path, **rates) -> Path:
    """A costs file: the shipped one with these CPU rates changed (slow ones give hours the table shows)."""
    costs = load_costs()
    path = tmp_path / "costs.yaml"
    path.write_text(yaml.safe_dump(dict(costs, devices={"cpu": dict(costs["devices"]["cpu"], **rates)})))
    return path


def _stage_hours(cfg, stage: str, costs_file: Path) -> float:
    """The device-hours `modsent plan` gives ``stage`` of ``cfg`` (a PipelineConfig) at ``costs_file``'s rates."""
    plan = plan_run(cfg, costs_file=costs_file)
    return float(next(line for line in plan.splitlines() if line.startswith(f"| {stage} |")).split("|")[3])


def test_plan_prices_translation_at_its_backends_rate(setup, tmp_path):
    costs = load_costs()
    kwargs = dict(pivot="eng_Latn", stages=["translate"], source_params=21_000_000, english_tokens=1_000_000,
                  costs=costs, devices=2, device_kind="cpu", ranks_per_job=1)
    languages = ["eng_Latn", "spa_Latn", "cat_Latn"]
    nllb = estimate_plan(languages, **kwargs).stages[0]
    apertium = estimate_plan(languages, **kwargs, translate_backend="apertium").stages[0]
    rates = costs["devices"]["cpu"]
    assert apertium.device_hours == pytest.approx(
        nllb.device_hours * rates["translate_tokens_per_s"] / rates["apertium_tokens_per_s"])
    assert apertium.device_hours < nllb.device_hours / 5  # rule-based MT: no decoder to run
    with pytest.raises(PlanError, match="translate.backend 'moses' has no rate"):
        estimate_plan(languages, **kwargs, translate_backend="moses")
    without_rate = dict(costs, devices={"cpu": {k: v for k, v in rates.items() if k != "apertium_tokens_per_s"}})
    with pytest.raises(PlanError, match="device 'cpu' has no 'apertium_tokens_per_s' rate"):
        estimate_plan(languages, **dict(kwargs, costs=without_rate), translate_backend="apertium")

    # `modsent plan` reads the backend from the config's translate section.
    slow = _cpu_costs(tmp_path, translate_tokens_per_s=1.0, apertium_tokens_per_s=10.0)
    base = dict(setup, languages=languages, stages=["translate"])
    hours = {backend: _stage_hours(from_dict(PipelineConfig, dict(base, translate={"backend": backend})), "translate",
                                   slow) for backend in ("ctranslate2", "apertium")}
    assert hours["ctranslate2"] > 0.1 and hours["apertium"] == pytest.approx(hours["ctranslate2"] / 10, abs=0.01)

def test_plan_prices_evaluation_per_encoder_it_evaluates(setup, tmp_path):
    cpu = load_costs()["devices"]["cpu"]
    ratio = cpu["translated_sts_s_per_language_encoder"] / cpu["evaluate_s_per_language_encoder"]
    slow = _cpu_costs(tmp_path, evaluate_s_per_language_encoder=3600.0,
                      translated_sts_s_per_language_encoder=3600.0 * ratio)
    base = dict(setup, languages=["eng_Latn", "deu_Latn"], stages=["train", "align", "evaluate"])

    def evaluate_hours(**changes) -> float:
        return _stage_hours(from_dict(PipelineConfig, dict(base, **changes)), "evaluate", slow)

    # 2 languages x 1 hour per language and encoder: the modular model alone, then with every other system.
    assert evaluate_hours() == pytest.approx(2.0)
    assert evaluate_hours(baselines={"e5": "x"}, single_c={},
                          evaluate={"compare_unaligned": True, "step_ablations": True}) == pytest.approx(12.0)
    # A machine-translated STS set adds its own rate per language and encoder (the default file's ratio here).
    assert evaluate_hours(evaluate={"translated_sts": "pypi:stsb/sts-test.csv"}) == pytest.approx(2.0 * (1 + ratio),
                                                                                                abs=0.01)


def test_plan_prices_mlm_by_the_blocks_it_reads(setup, tmp_path):
    slow = _cpu_costs(tmp_path, effective_flops=1.0e5)
    text = tmp_path / "deu.txt"
    text.write_text("Neues Diagramm erstellen\n" * 4000, encoding="utf-8")
    base = dict(setup, languages=["eng_Latn", "deu_Latn"], stages=["adapt"], stage_languages={"adapt": ["deu_Latn"]},
                monolingual_text={"deu_Latn": str(text)})

    def adapt_hours(adapt: dict) -> float:
        return _stage_hours(from_dict(PipelineConfig, dict(base, adapt=adapt)), "adapt", slow)

    # max_steps: steps x global batch x block length, whatever the text's size (adapt packs full blocks).
    steps = adapt_hours({"max_seq_length": 64, "trainer": {"max_steps": 100, "global_batch_size": 32}})
    assert steps > 50
    assert adapt_hours({"max_seq_length": 128, "trainer": {"max_steps": 100, "global_batch_size": 32}}) == \
        pytest.approx(2 * steps, rel=1e-3)
    # Otherwise epochs over the language's monolingual text: twice the text, twice the hours.
    epochs = adapt_hours({"trainer": {"epochs": 1}})
    text.write_text("Neues Diagramm erstellen\n" * 8000, encoding="utf-8")
    assert adapt_hours({"trainer": {"epochs": 1}}) == pytest.approx(2 * epochs, rel=1e-3)
    assert adapt_hours({"trainer": {"epochs": 3}}) == pytest.approx(6 * epochs, rel=1e-3)


def test_plan_prices_each_vocab_job_by_its_languages_text(setup, tmp_path):
    german, welsh = tmp_path / "deu.txt", tmp_path / "cym.txt"
    german.write_text("Neues Diagramm erstellen\n" * 4000, encoding="utf-8")
    welsh.write_text("Creu siart newydd\n" * 10, encoding="utf-8")
    cfg = from_dict(PipelineConfig, dict(setup, languages=["eng_Latn", "deu_Latn", "cym_Latn"], stages=["vocab"],
                                         stage_languages={"vocab": ["deu_Latn", "cym_Latn"]},
                                         monolingual_text={"deu_Latn": str(german), "cym_Latn": str(welsh)}))

    def vocab_hours(**rates) -> float:
        return _stage_hours(cfg, "vocab", _cpu_costs(tmp_path, **rates))

    # German's 100 kB is 25k tokens and Welsh's 180 bytes 45: at 10 tokens/s, 0.70 h and 0.00 h.
    assert vocab_hours(vocab_tokens_per_s=10.0, vocab_s_per_job=0.0) == pytest.approx(0.70, abs=0.011)
    # Each job also starts, loads and saves the model: an hour each here.
    assert vocab_hours(vocab_tokens_per_s=1e9, vocab_s_per_job=3600.0) == pytest.approx(2.0)


def test_single_c_shares_the_devices_with_the_per_language_stages():
    from modsent.pipeline.costs import Plan, StageEstimate

    def plan(*stages: tuple[str, float, float]) -> Plan:
        return Plan(["eng_Latn", "deu_Latn"], [StageEstimate(name, 1, device, wall) for name, device, wall in stages],
                    devices=2, device_kind="cpu")

    # Many languages: vocab and align spread over both devices, Single_c on one of them beside them, then evaluate.
    many = plan(("vocab", 0.5, 0.25), ("align", 0.4, 0.2), ("single_c", 0.7, 0.7), ("evaluate", 0.9, 0.45))
    assert many.wall_hours == pytest.approx(0.45 + (0.5 + 0.4 + 0.7) / 2)
    # One language: its chain of jobs, one after another, is the longest part.
    one = plan(("vocab", 0.2, 0.2), ("align", 0.3, 0.3), ("single_c", 0.4, 0.4), ("evaluate", 0.1, 0.05))
    assert one.wall_hours == pytest.approx(0.05 + 0.5)
    # Without Single_c the stages run one after another.
    assert plan(("vocab", 0.2, 0.1), ("align", 0.3, 0.15)).wall_hours == pytest.approx(0.25)


def test_plan_prices_contrastive_jobs_by_their_steps_start_and_optimiser(setup, tmp_path):
    from modsent.testing import write_parallel_text

    write_parallel_text(tmp_path / "parallel" / "train" / "eng_Latn-deu_Latn", "deu_Latn", 400, seed=1)

    def hours(stage: str, align_trainer: dict | None = None, max_pairs: int = 160, **rates) -> float:
        cfg = from_dict(PipelineConfig, dict(
            setup, languages=["eng_Latn", "deu_Latn"], stages=["train", "align"], single_c={},
            parallel_text=str(tmp_path / "parallel"), parallel_text_max_pairs=max_pairs,
            train={"trainer": {"max_steps": 10, "global_batch_size": 8}},
            align={"use_corpus": False, "trainer": {"epochs": 2, "global_batch_size": 16, **(align_trainer or {})}}))
        rates = {"train_s_per_job": 0.0, "optimizer_s_per_param_step": 0.0, "effective_flops": 1.0e4, **rates}
        return _stage_hours(cfg, stage, _cpu_costs(tmp_path, **rates))

    align = hours("align")
    assert align > 1
    # Its steps, not its data: twice the epochs or twice the pairs read, twice the hours.
    assert hours("align", {"epochs": 4}) == pytest.approx(2 * align, rel=0.01)
    assert hours("align", max_pairs=320) == pytest.approx(2 * align, rel=0.01)
    assert hours("align", {"max_steps": 40}) == pytest.approx(2 * align, rel=0.01)  # 2 epochs of 160 // 16: 20
    # Each job's start; and the optimiser's update of every trainable parameter at every step: Single_c's
    # 10 + 10 + 20 steps (both languages train, German aligns) of the tiny model's parameters, the adapter's
    # few not counted.
    slow = dict(effective_flops=1.0e30)
    assert hours("align", train_s_per_job=3600.0, **slow) == pytest.approx(1.0)
    params = model_parameters(setup["source_model"])
    per_step = 3600.0 / (40 * params)
    assert hours("single_c", optimizer_s_per_param_step=per_step, **slow) == pytest.approx(1.0, abs=0.01)
    assert hours("align", optimizer_s_per_param_step=per_step, **slow) == 0.0
