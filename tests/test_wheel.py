"""The wheel is the product: built from the checkout, installed into a fresh virtualenv, used from elsewhere.

The virtualenv gets the wheel and nothing else of modsent: the project's dependencies come from the
test interpreter's site-packages through a ``.pth`` line, which puts that directory on ``sys.path``
without running the ``.pth`` files inside it (the editable install's finder, which maps ``modsent``
to this checkout). Every command runs from a directory outside the checkout, without ``PYTHONPATH``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

from modsent.pipeline.manifest import Manifest
from modsent.testing import tiny_bert_mlm, write_parallel_text, write_synthetic_corpus
from modsent.testing.ranks import child_environment
from modsent.train.metrics import read_metrics

REPO = Path(__file__).resolve().parents[1]
STEPS = 2


def _run(command: list[str | Path], cwd: Path, timeout: float = 300, pythonpath: Path | None = None,
         **environment: str) -> str:
    env = child_environment(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu", **environment)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{(done.stdout + done.stderr)[-6000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv holding the wheel built from this checkout; returns its bin/ directory."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools would reuse (and write) the checkout's build/, so a module deleted since an
    # earlier build could still ship, and two runs at once would race on it.
    source = shutil.copytree(REPO, root / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist", source],
         cwd=root)
    (wheel,) = (root / "dist").glob("modsent-*.whl")
    packed = {Path(name).parent.as_posix() for name in zipfile.ZipFile(wheel).namelist() if name.endswith("__init__.py")}
    checkout = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "modsent").rglob("__init__.py")}
    assert checkout <= packed, f"setup.cfg [options] packages misses {sorted(checkout - packed)}"

    python = _virtualenv_with_the_dependencies(root / "venv")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], cwd=root)
    return python.parent


def _virtualenv_with_the_dependencies(env_dir: Path) -> Path:
    """A fresh virtualenv that sees the project's dependencies but no modsent; returns its python."""
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=env_dir).strip())
    (site / "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_a_source_tree_on_pythonpath_finds_the_bundled_configs(tmp_path):
    """Not installed at all (``ray job submit --working-dir .``, a node's ``.deepspeed_env``): found beside the package."""
    python = _virtualenv_with_the_dependencies(tmp_path / "venv")
    found = _run([python, "-c", "import modsent, modsent.resources as r; print(modsent.__file__); "
                  "print(r.ds_configs()['zero2']); print(r.find_bundled_config('paper/train_mono'))"],
                 cwd=tmp_path, pythonpath=REPO).split()
    assert found == [str(REPO / "modsent" / "__init__.py"), str(REPO / "ds_configs" / "zero2.json"),
                     str(REPO / "configs" / "paper" / "train_mono.yaml")]


@pytest.mark.slow
def test_a_wheel_install_copies_plans_and_trains_on_two_ranks_with_zero2(installed, tmp_path, model_cache):
    user = tmp_path / "user"
    user.mkdir()
    where = _run([installed / "python", "-c", "import modsent; print(modsent.__file__)"], cwd=user)
    assert Path(where).is_relative_to(installed.parent) and not Path(where).is_relative_to(REPO), where

    model = tiny_bert_mlm(cache_dir=model_cache)
    corpus = write_synthetic_corpus(tmp_path / "corpus", ["eng_Latn", "deu_Latn"], {"quora": 64}, seed=0)
    parallel = tmp_path / "parallel"
    write_parallel_text(parallel / "train" / "eng_Latn-deu_Latn", "deu_Latn", 100)
    modsent = installed / "modsent"

    _run([modsent, "configs", "copy", "demo", "."], cwd=user)
    plan = _run([modsent, "plan", "demo.yaml", f"source_model={model}", f"corpus={corpus}",
                 f"parallel_text={parallel}", "languages=[eng_Latn,deu_Latn]", "stage_languages.vocab=[deu_Latn]"],
                cwd=user)
    assert "| **total** | 5 |" in plan  # rates read from the installed costs.yaml: vocab, train, align, evaluate, Single_c

    _run([modsent, "configs", "copy", "train_mono", "train.yaml"], cwd=user)
    assert yaml.safe_load((user / "train.yaml").read_text())["trainer"]["ds_config"] == "zero1"
    _run([installed / "python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "modsent.cli", "train", "--config", "train.yaml", f"model={model}", f"corpus={corpus}",
          "max_seq_length=32", "trainer.ds_config=zero2", "trainer.global_batch_size=8", f"trainer.max_steps={STEPS}",
          "output_dir=out", "trainer.save_every=0", "trainer.eval_every=0", "trainer.log_every=1",
          "trainer.eval_at_start=false", "trainer.progress_bar=false"], cwd=user, timeout=400)
    assert [r["step"] for r in read_metrics(user / "out" / "metrics", "train")] == list(range(1, STEPS + 1))



@pytest.mark.slow
def test_a_new_user_runs_the_demo_on_a_hub_named_source_model(installed, tmp_path, model_cache):
    """README's sequence from a wheel: copy the demo, run it on ``intfloat/multilingual-e5-small`` from the hub
    cache (seeded here with the tiny BERT under that name, offline), shortened by overrides."""
    hub = tmp_path / "hf" / "hub" / "models--intfloat--multilingual-e5-small"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_bert_mlm(cache_dir=model_cache), hub / "snapshots" / commit)
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text(commit)
    corpus = write_synthetic_corpus(tmp_path / "corpus", ["eng_Latn", "deu_Latn"], {"quora": 64}, seed=0)
    pairs = tmp_path / "parallel"
    write_parallel_text(pairs / "train" / "eng_Latn-deu_Latn", "deu_Latn", 100)
    write_parallel_text(pairs / "test" / "eng_Latn-deu_Latn", "deu_Latn", 40, seed=3)
    user = tmp_path / "user"
    user.mkdir()
    modsent = installed / "modsent"

    _run([modsent, "configs", "copy", "demo", "."], cwd=user)
    hub_id = "intfloat/multilingual-e5-small"
    printed = _run([modsent, "run", "demo.yaml", f"source_model={hub_id}", f"baselines.e5-small={hub_id}",
                    f"corpus={corpus}", f"parallel_text={pairs}", "languages=[eng_Latn,deu_Latn]",
                    "stage_languages.vocab=[deu_Latn]", f"monolingual_text={{deu_Latn: {pairs}/train/eng_Latn-deu_Latn/"
                    "deu_Latn.txt}", "evaluate.sts=[]", "train.trainer.max_steps=2", "align.trainer.max_steps=2",
                    "parallel_text_max_pairs=40", "parallel_text_max_test_pairs=20"],
                   cwd=user, timeout=600, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1")
    run = user / "runs" / "demo"
    assert {key: entry.status for key, entry in Manifest(run).entries.items()} == {
        key: "done" for key in ("eng_Latn/train", "all/train", "deu_Latn/vocab", "deu_Latn/align", "all/evaluate")}
    assert "| Single_c |" in printed and "| e5-small |" in printed and "| modular |" in printed
    trained_from = yaml.safe_load((run / "configs" / "eng_Latn" / "train.yaml").read_text())["model"]
    assert Path(trained_from) == hub / "snapshots" / commit
