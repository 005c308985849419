"""The bad-input catalogue: every command given broken input, as an adversarial new user would.

usage: python bench/bad_inputs.py [--quick] [--only NAME ...]

Each case runs one ``modsent`` command in a fresh process on input broken in one way (misaligned
or empty corpora, unknown language codes, missing, truncated or random model files, configs that
are not UTF-8, not YAML or out of range, typos in stage and language names, unwritable or
misnamed outputs, NUL bytes, invalid UTF-8) and is classified:

- ``clear``: a non-zero exit, no Python traceback, and the message names what is wrong (the
  file, the key or the value: ``expect`` lists strings of which one must appear);
- ``code_execution``: the case's ``harmed`` check found that code from a model directory ran (a
  marker file written by a ``modeling_*.py``), whatever the exit status;
- ``traceback``: a Python traceback reached the terminal;
- ``silent``: exit 0 on input that must be refused, or the ``harmed`` check found an input
  destroyed or a wrong result written (a silent wrong result);
- ``vague``: a non-zero exit without traceback whose message names none of ``expect``;
- ``accepted``: an ``accept=True`` case (input that must work) that exited 0 unharmed.

Cases may pipe ``stdin`` (``y`` to every prompt, as a careless user would) and name a ``harmed``
check that runs after the command and returns what went wrong (``None``: nothing).

Ratios: ``tracebacks``, ``silent_wrong_results`` and ``code_executions`` (goal 0 each) and
``clear_fraction`` (goal 1.0, over the cases that must be refused).
``--quick`` runs the cases that need no model load. The last line of stdout is the JSON record.
"""

from __future__ import annotations

import argparse

from _common import bench_args  # noqa: I001  (sets threads before numpy/torch load)

ARGS = bench_args(__doc__.split("\n\n")[0], "only the cases that load no model",
                  extra=lambda p: p.add_argument("--only", nargs="+", help="only these cases (debugging)"),
                  env={"DS_ACCELERATOR": "cpu", "TRANSFORMERS_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
                       "RAY_AUTH_MODE": "disabled"}) if __name__ == "__main__" else None

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import yaml  # noqa: E402

from modsent.io import sha256_file  # noqa: E402
from modsent.testing import tiny_bert_mlm, tiny_nllb_ct2, write_synthetic_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]  # the command, given the case's scratch directory
    expect: tuple[str, ...]  # one of these must appear in the message
    loads_model: bool = False
    cls: str = "other"  # the class of bad input, for the per-class counts
    stdin: str = ""  # piped to the command
    harmed: Callable[[Path], str | None] | None = None  # after the command: what it harmed, or None
    accept: bool = False  # the input is valid: the command must succeed (unharmed)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def corpus(root: Path, name: str = "corpus") -> Path:
    return write_synthetic_corpus(root / name, ["eng_Latn"], {"para": 8}, seed=0)


def damaged_model(root: Path, how: str) -> Path:
    """A copy of the tiny BERT with its weights truncated, replaced by random bytes, or its tokenizer removed."""
    model = root / "model"
    shutil.copytree(tiny_bert_mlm(), model)
    weights = model / "model.safetensors"
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "random":
        weights.write_bytes(os.urandom(weights.stat().st_size))
    elif how == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
            (model / name).unlink(missing_ok=True)
    return model


def ct2_model(root: Path, truncate: bool) -> Path:
    model = root / "ct2"
    shutil.copytree(tiny_nllb_ct2(), model)
    if truncate:
        data = (model / "model.bin").read_bytes()
        (model / "model.bin").write_bytes(data[: len(data) // 3])
    return model


def train_args(root: Path, *overrides: str) -> list[str]:
    return ["train", f"model={tiny_bert_mlm()}", f"corpus={corpus(root)}", "languages=[eng_Latn]",
            f"output_dir={root / 'out'}", "trainer.max_steps=1", "trainer.global_batch_size=4",
            "trainer.ds_config=zero0", *overrides]


def run_config(root: Path) -> Path:
    config = {"run_dir": str(root / "run"), "languages": ["eng_Latn", "deu_Latn"],
              "source_model": str(tiny_bert_mlm()), "corpus": str(corpus(root)),
              "translate": {"model": {"path": str(ct2_model(root, truncate=False))}},
              "vocab": {"text": "corpus"}, "adapt": {"text": "corpus"}}
    return write(root / "run.yaml", yaml.safe_dump(config))


def misaligned_corpus(root: Path) -> Path:
    path = corpus(root, "misaligned")
    side = next(path.rglob("eng_Latn_2.txt"))
    lines = side.read_text(encoding="utf-8").splitlines()
    side.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    return path


def blank_corpus(root: Path) -> Path:
    path = corpus(root, "blank")
    for side in path.rglob("eng_Latn_*.txt"):
        side.write_text("\n" * 8, encoding="utf-8")
    return path


def empty_corpus(root: Path) -> Path:
    path = corpus(root, "empty")
    for side in path.rglob("eng_Latn_*.txt"):
        side.write_text("", encoding="utf-8")
    return path


def translate_args(root: Path, model: Path, corpus_dir: Path, *overrides: str) -> list[str]:
    return ["translate", f"model.path={model}", f"corpora=[{corpus_dir}]", f"output_dir={root / 'out'}",
            "languages=[deu_Latn]", "ray.num_cpus=1",
            # Ray's socket paths must stay under 108 bytes: a short directory beside the cases, not under its long name.
            f"ray.temp_dir={tempfile.mkdtemp(prefix='ray-', dir=root.parent)}", *overrides]


def encode_args(model: Path, text: Path, output: Path) -> list[str]:
    return ["encode", "--model", str(model), "--input", str(text), "--output", str(output)]


def text_file(root: Path, data: str | bytes = "Ein Satz.\nNoch einer.\n") -> Path:
    return write(root / "input.txt", data)


def inside_a_file(root: Path) -> Path:
    """An output path whose parent is a file: unwritable for every user (root ignores permission bits)."""
    return write(root / "a-file", "not a directory\n") / "out"


from modsent.testing.hostile_models import (  # noqa: E402
    dense_model,
    long_sequence_model,
    mismatched_model,
    pickled_model,
    remote_code_model,
)


def code_ran(root: Path) -> str | None:
    """The harm check of the hostile model cases: the model directory's code (or pickle) writes ``code-ran``."""
    marker = root / "code-ran"
    return f"code ran from the model directory: {marker}" if marker.exists() else None


def remote_code(root: Path, where: str = "config") -> Path:
    return remote_code_model(root / "model", root / "code-ran", where)


def bilingual_corpus(root: Path) -> Path:
    return write_synthetic_corpus(root / "bilingual", ["eng_Latn", "deu_Latn"], {"para": 8}, seed=0)


def align_args(root: Path, target: Path, *overrides: str) -> list[str]:
    return ["align", f"pivot={tiny_bert_mlm()}", f"model={target}", "languages=[deu_Latn]", f"output_dir={root / 'out'}",
            f"data.paraphrase=[{bilingual_corpus(root)}]", "trainer.max_steps=1", "trainer.global_batch_size=4",
            "trainer.ds_config=zero0", *overrides]


def _files(path: Path) -> dict[str, str]:
    if path.is_file():
        return {path.name: sha256_file(path)}
    return {p.relative_to(path).as_posix(): sha256_file(p) for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.endswith(".modsent-lock")}


def protect(root: Path, path: Path) -> Path:
    """``path``, recorded so that :func:`input_changed` can tell whether the command changed it."""
    write(root / ".protected.json", json.dumps({"path": str(path), "files": _files(path)}))
    return path


def input_changed(root: Path) -> str | None:
    record = json.loads((root / ".protected.json").read_text(encoding="utf-8"))
    path = Path(record["path"])
    now = _files(path) if path.exists() else {}
    changed = sorted(set(now.items()) ^ set(record["files"].items()))
    return f"the input {path} changed: {', '.join(sorted({name for name, _ in changed}))}" if changed else None


def model_copy(root: Path) -> Path:
    return Path(shutil.copytree(tiny_bert_mlm(), root / "model"))


def bitext(root: Path) -> Path:
    from modsent.testing.synthetic import write_parallel_text

    write_parallel_text(root / "bitext" / "train" / "eng_Latn-deu_Latn", "deu_Latn", 8, seed=7)
    return root / "bitext"


def one_sided_corpus(root: Path) -> Path:
    """A corpus whose dataset has each sentence but not its paraphrase (``eng_Latn_1.txt`` only)."""
    path = corpus(root, "one-sided")
    for side in path.rglob("eng_Latn_2.txt"):
        side.unlink()
    return path


def negatives_for_one(root: Path) -> Path:
    path = bilingual_corpus(root)
    for first in path.rglob("eng_Latn_1.txt"):
        shutil.copy(first, first.with_name("eng_Latn_3.txt"))
    return path


def few_blank_rows(root: Path) -> Path:
    path = corpus(root, "few-blank")
    side = next(path.rglob("eng_Latn_1.txt"))
    lines = side.read_text(encoding="utf-8").splitlines()
    side.write_text("\n".join(["", *lines[1:]]) + "\n", encoding="utf-8")
    return path


def many_lines(root: Path, name: str) -> Path:
    """20,000 distinct sentences: their float16 embeddings (1.2 MiB) overflow the 256 KiB small disk."""
    return write(root / f"{name}.txt", "".join(f"Sentence number {i} of {name}.\n" for i in range(20_000)))


def release_small_disk(root: Path) -> str | None:
    subprocess.run(["umount", str(root / "small")], check=True)
    return None


CASES = [
    # language registry
    Case("unknown language code", lambda r: ["languages", "resolve", "xx_Yyyy"], ("xx_Yyyy",), cls="language"),
    Case("region tag of a script NLLB lacks", lambda r: ["languages", "resolve", "uz-AF"], ("uz-AF",), cls="language"),
    # corpora
    Case("validate: misaligned corpus", lambda r: ["corpus", "validate", str(misaligned_corpus(r))],
         ("eng_Latn_2.txt", "lines"), cls="corpus"),
    Case("validate: 0-line corpus", lambda r: ["corpus", "validate", str(empty_corpus(r))], ("empty", "no "),
         cls="corpus"),
    Case("validate: corpus of blank lines", lambda r: ["corpus", "validate", str(blank_corpus(r))], ("blank", "empty"),
         cls="corpus"),
    Case("validate: path that does not exist", lambda r: ["corpus", "validate", str(r / "nowhere")], ("nowhere",),
         cls="corpus"),
    # configs
    Case("config not UTF-8", lambda r: ["train", "--config", str(write(r / "bad.yaml", b"model: \xff\xfe\n"))],
         ("bad.yaml",), cls="config"),
    Case("config not YAML", lambda r: ["train", "--config", str(write(r / "bad.yaml", "model: [unclosed\n"))],
         ("bad.yaml",), cls="config"),
    Case("config not a mapping", lambda r: ["train", "--config", str(write(r / "bad.yaml", "- a\n- b\n"))],
         ("bad.yaml",), cls="config"),
    Case("config key misspelt", lambda r: train_args(r, "trainer.lrr=1e-4"), ("lrr",), cls="config"),
    Case("lr=.nan", lambda r: train_args(r, "trainer.lr=.nan"), ("lr",), cls="config"),
    Case("epochs=.inf", lambda r: train_args(r, "trainer.epochs=.inf"), ("epochs",), cls="config"),
    Case("max_steps: 3.5", lambda r: train_args(r, "trainer.max_steps=3.5"), ("max_steps",), cls="config"),
    Case("unknown language in a stage config", lambda r: train_args(r, "languages=[eng_Latn, xx_Yyyy]"), ("xx_Yyyy",),
         cls="language"),
    # the pipeline
    Case("run --stages misspelt", lambda r: ["run", str(run_config(r)), "--stages", "trian"], ("'train'",),
         cls="pipeline"),
    Case("run --languages outside the run", lambda r: ["run", str(run_config(r)), "--languages", "ukr_Cyrl"],
         ("ukr_Cyrl",), cls="pipeline"),
    Case("status of a directory that is no run", lambda r: ["status", str(corpus(r))], ("manifest", "not a run"),
         cls="pipeline"),
    Case("status of a path that does not exist", lambda r: ["status", str(r / "nowhere")], ("nowhere",),
         cls="pipeline"),
    # models
    Case("encode: model without tokenizer files", lambda r: encode_args(damaged_model(r, "no-tokenizer"),
         text_file(r), r / "e.npy"), ("tokenizer",), loads_model=True, cls="model files"),
    Case("encode: truncated model.safetensors", lambda r: encode_args(damaged_model(r, "truncated"), text_file(r),
         r / "e.npy"), ("model.safetensors",), loads_model=True, cls="model files"),
    Case("encode: random model.safetensors", lambda r: encode_args(damaged_model(r, "random"), text_file(r),
         r / "e.npy"), ("model.safetensors",), loads_model=True, cls="model files"),
    Case("encode: a file given as the model", lambda r: encode_args(text_file(r), text_file(r), r / "e.npy"),
         ("input.txt",), loads_model=True, cls="model files"),
    Case("encode: --output names a directory", lambda r: encode_args(tiny_bert_mlm(), text_file(r), r),
         (str("--output"), "directory"), loads_model=True, cls="output"),
    Case("encode: output inside a file", lambda r: encode_args(tiny_bert_mlm(), text_file(r),
         inside_a_file(r) / "e.npy"), ("a-file",), loads_model=True, cls="output"),
    Case("encode: NUL byte in the input", lambda r: encode_args(tiny_bert_mlm(),
         text_file(r, "Ein Satz.\nNo\x00ch einer.\n"), r / "e.npy"), ("input.txt:2",), loads_model=True,
         cls="input text"),
    Case("encode: invalid UTF-8 input", lambda r: encode_args(tiny_bert_mlm(),
         text_file(r, b"Ein Satz.\n\xff\xfe\n"), r / "e.npy"), ("input.txt",), loads_model=True, cls="input text"),
    Case("train: corpus of blank lines", lambda r: train_args(r, f"corpus={blank_corpus(r)}"), ("blank", "empty"),
         loads_model=True, cls="corpus"),
    Case("train: model without tokenizer files", lambda r: train_args(r, f"model={damaged_model(r, 'no-tokenizer')}"),
         ("tokenizer",), loads_model=True, cls="model files"),
    Case("train: output inside a file", lambda r: train_args(r, f"output_dir={inside_a_file(r)}"),
         ("a-file",), loads_model=True, cls="output"),
    Case("vocab: vocab_size below the special tokens", lambda r: [
        "vocab", f"model={tiny_bert_mlm()}", f"text_files=[{text_file(r)}]", "languages=[deu_Latn]",
        f"output_dir={r / 'out'}", "vocab_size=3"], ("vocab_size",), loads_model=True, cls="config"),
    # translation
    Case("translate: truncated CTranslate2 model.bin", lambda r: translate_args(r, ct2_model(r, truncate=True),
         corpus(r)), ("model.bin",), loads_model=True, cls="model files"),
    Case("translate: model path that does not exist", lambda r: translate_args(r, r / "nllb", corpus(r)), ("nllb",),
         cls="translate"),
    Case("translate: 0-line corpus", lambda r: translate_args(r, ct2_model(r, truncate=False), empty_corpus(r)),
         ("empty", "no "), loads_model=True, cls="corpus"),
    Case("translate: corpus of blank lines", lambda r: translate_args(r, ct2_model(r, truncate=False), blank_corpus(r)),
         ("blank", "empty"), loads_model=True, cls="corpus"),
    Case("translate: unknown target language", lambda r: translate_args(r, ct2_model(r, truncate=False), corpus(r),
         "languages=[xx_Yyyy]"), ("xx_Yyyy",), cls="language"),
    Case("translate: output inside a file", lambda r: translate_args(r, ct2_model(r, truncate=False), corpus(r),
         f"output_dir={inside_a_file(r)}"), ("a-file",), cls="output"),
    # evaluation
    Case("evaluate: a bitext file that does not exist", lambda r: ["evaluate", "--config", str(write(
        r / "eval.yaml", yaml.safe_dump({"models": {"m": str(tiny_bert_mlm())}, "output_dir": str(r / "o"),
                                         "bitext": [{"name": "b", "files": {"eng_Latn": str(text_file(r)),
                                                                            "deu_Latn": str(r / "missing.txt")}}]})))],
         ("missing.txt",), cls="evaluate"),
    Case("evaluate: bitext files of different lengths", lambda r: ["evaluate", "--config", str(write(
        r / "eval.yaml", yaml.safe_dump({"models": {"m": str(tiny_bert_mlm())}, "output_dir": str(r / "o"),
                                         "bitext": [{"name": "b", "files": {"eng_Latn": str(text_file(r)),
                                                                            "deu_Latn": str(write(r / "de.txt", "A\n"))}}]})))],
         ("de.txt", "input.txt"), cls="evaluate"),
    Case("run: unknown language in the config", lambda r: ["run", str(run_config(r)), "languages=[eng_Latn, xx_Yyyy]"],
         ("xx_Yyyy",), cls="language"),
    # mining
    Case("mine: empty input", lambda r: ["mine", "--model", str(tiny_bert_mlm()), "--src",
         str(text_file(r, "")), "--src-lang", "eng_Latn", "--tgt", str(write(r / "tgt.txt", "Ein Satz.\n")),
         "--tgt-lang", "deu_Latn", "--output", str(r / "out")], ("input.txt",), cls="mine"),
    Case("mine: invalid UTF-8 shard", lambda r: ["mine", "--model", str(tiny_bert_mlm()), "--src",
         str(text_file(r, b"A\n\xff\n")), "--src-lang", "eng_Latn", "--tgt", str(write(r / "tgt.txt", "Ein Satz.\n")),
         "--tgt-lang", "deu_Latn", "--output", str(r / "out")], ("input.txt",), cls="input text"),
    Case("mine: model that is not an encoder", lambda r: ["mine", "--model", str(corpus(r)), "--src",
         str(text_file(r)), "--src-lang", "eng_Latn", "--tgt", str(write(r / "tgt.txt", "Ein Satz.\n")),
         "--tgt-lang", "deu_Latn", "--output", str(r / "out")], ("corpus",), cls="model files"),
    # code in a model directory (auto_map; transformers asks [y/N] on stdin, and a careless user answers y)
    *[Case(f"{command}: model directory that ships code and y on stdin", argv, ("trust_remote_code",),
           loads_model=True, cls="code execution", stdin="y\n" * 20, harmed=code_ran) for command, argv in (
        ("encode", lambda r: encode_args(remote_code(r), text_file(r), r / "e.npy")),
        ("mine", lambda r: ["mine", "--model", str(remote_code(r)), "--src", str(text_file(r)), "--src-lang",
                            "eng_Latn", "--tgt", str(write(r / "tgt.txt", "Ein Satz.\n")), "--tgt-lang", "deu_Latn",
                            "--output", str(r / "out")]),
        ("train", lambda r: ["train", f"model={remote_code(r)}", f"corpus={corpus(r)}", "languages=[eng_Latn]",
                             f"output_dir={r / 'out'}", "trainer.max_steps=1", "trainer.ds_config=zero0"]),
        ("align", lambda r: align_args(r, remote_code(r))),
        ("evaluate", lambda r: ["evaluate", "--config", str(write(r / "eval.yaml", yaml.safe_dump({
            "models": {"m": str(remote_code(r))}, "output_dir": str(r / "o"),
            "bitext": [{"name": "b", "files": {"eng_Latn": str(text_file(r)), "deu_Latn": str(text_file(r))}}]})))]),
        ("vocab", lambda r: ["vocab", f"model={remote_code(r)}", f"text_files=[{text_file(r)}]",
                             "languages=[deu_Latn]", f"output_dir={r / 'out'}"]),
        ("adapt", lambda r: ["adapt", f"model={remote_code(r)}", f"train_files=[{text_file(r)}]",
                             f"output_dir={r / 'out'}", "trainer.max_steps=1", "trainer.ds_config=zero0"]),
    )],
    Case("encode: tokenizer that ships code and y on stdin", lambda r: encode_args(
         remote_code(r, where="tokenizer"), text_file(r), r / "e.npy"), ("tokenizer_config.json",), loads_model=True,
         cls="code execution", stdin="y\n" * 20, harmed=code_ran),
    Case("encode: pytorch_model.bin with a pickled command", lambda r: encode_args(
         pickled_model(r / "model", r / "code-ran"), text_file(r), r / "e.npy"), ("safetensors",), loads_model=True,
         cls="code execution", harmed=code_ran),
    # model files that disagree with each other
    Case("encode: checkpoint with more layers than config.json", lambda r: encode_args(
         mismatched_model(r / "model", num_hidden_layers=1), text_file(r), r / "e.npy"), ("num_hidden_layers",),
         loads_model=True, cls="model files"),
    Case("encode: config.json hidden_size unlike the weights", lambda r: encode_args(
         mismatched_model(r / "model", hidden_size=64), text_file(r), r / "e.npy"), ("config.json",),
         loads_model=True, cls="model files"),
    Case("encode: truncated 2_Dense weights", lambda r: encode_args(dense_model(r / "model", "truncated"),
         text_file(r), r / "e.npy"), ("2_Dense",), loads_model=True, cls="model files"),
    Case("encode: 2_Dense weights of another shape", lambda r: encode_args(dense_model(r / "model", "shape"),
         text_file(r), r / "e.npy"), ("2_Dense",), loads_model=True, cls="model files"),
    Case("encode: intact 2_Dense module", lambda r: encode_args(dense_model(r / "model"), text_file(r), r / "e.npy"),
         (), loads_model=True, cls="model files", accept=True),
    Case("encode: sentence_bert_config.json max_seq_length beyond the positions", lambda r: encode_args(
         long_sequence_model(r / "model", 512), text_file(r), r / "e.npy"), ("sentence_bert_config.json",),
         loads_model=True, cls="model files"),
    Case("train: max_seq_length beyond the positions", lambda r: train_args(r, "max_seq_length=1000"),
         ("position table of 128",), loads_model=True, cls="model files"),
    Case("align: max_seq_length beyond the positions", lambda r: align_args(r, tiny_bert_mlm(), "max_seq_length=1000"),
         ("position table of 128",), loads_model=True, cls="model files"),
    # a run directory copied or moved: it must export, verify and resume as itself
    Case("export: a copied run whose adapter changed", lambda r: ["export", str(changed_copy(r)), str(r / "out")],
         (), loads_model=True, cls="relocated run", accept=True, harmed=lambda r: shipped_other(r, r / "copy")),
    Case("run: a copied run's own config.yaml", lambda r: ["run", str(changed_copy(r) / "config.yaml")], (),
         loads_model=True, cls="relocated run", accept=True, harmed=lambda r: copy_not_redone(r)),
    Case("export: a moved run", lambda r: ["export", str(moved_run(r)), str(r / "out")], (), loads_model=True,
         cls="relocated run", accept=True, harmed=lambda r: shipped_other(r, r / "moved")),
    Case("status --verify: a moved run", lambda r: ["status", str(moved_run(r)), "--verify"], (), loads_model=True,
         cls="relocated run", accept=True),
    # what a killed export or encode left beside its output
    Case("export: rerun after a killed export", lambda r: ["export", str(killed_before(r, finished_run(r))),
         str(r / "out")], (), loads_model=True, cls="leftovers", accept=True, harmed=lambda r: leftovers(r)),
    Case("encode: rerun after a killed encode", lambda r: encode_args(tiny_bert_mlm(), killed_before(r, text_file(r)),
         r / "out"), (), loads_model=True, cls="leftovers", accept=True, harmed=lambda r: leftovers(r)),
    # no space left (a 256 KiB tmpfs; needs root to mount it)
    Case("export: disk full", lambda r: ["export", str(finished_run(r)), str(small_disk(r) / "out")],
         ("no space left",), loads_model=True, cls="disk full", harmed=lambda r: kept_on_small_disk(r)),
    # a run's manifest.json that is valid JSON of another shape
    Case("status --verify: manifest.json a JSON list", lambda r: ["status", str(manifest_of(r, "[]")), "--verify"],
         ("manifest.json",), cls="manifest"),
    Case("status --verify: manifest entry a number", lambda r: ["status", str(manifest_of(
         r, '{"version": 1, "entries": {"deu_Latn/align": 5}}')), "--verify"], ("manifest.json",), cls="manifest"),
    Case("status --verify: manifest file record a string", lambda r: ["status", str(manifest_of(
         r, '{"version": 1, "entries": {"deu_Latn/align": {"language": "deu_Latn", "stage": "align", "status": '
            '"done", "artifact": "a", "artifact_fingerprint": "f", "artifact_files": {"w": "x"}}}}')), "--verify"],
         ("manifest.json",), cls="manifest"),
    # an output over, inside or around an input: refused before any work, the input left as it was
    Case("encode: --output is the --input", lambda r: encode_args(tiny_bert_mlm(), protect(r, text_file(r)),
         r / "input.txt"), ("input.txt",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("encode: --output inside the model directory", lambda r: encode_args(protect(r, model_copy(r)),
         text_file(r), r / "model" / "e.npy"), ("model",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("vocab: output_dir is the source model", lambda r: [
        "vocab", f"model={protect(r, model_copy(r))}", f"text_files=[{text_file(r)}]", "languages=[deu_Latn]",
        f"output_dir={r / 'model'}"], ("source_model",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("train: trainer.output_dir is the corpus", lambda r: train_args(
         r, f"output_dir={protect(r, corpus(r))}"), ("corpus",), loads_model=True, cls="overwrite",
         harmed=input_changed),
    Case("align: output is the target encoder", lambda r: align_args(r, protect(r, model_copy(r)),
         f"output_dir={r / 'model'}"), ("model",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("evaluate: output_dir inside a model", lambda r: ["evaluate", "--config", str(write(
        r / "eval.yaml", yaml.safe_dump({"models": {"m": str(protect(r, model_copy(r)))},
                                         "output_dir": str(r / "model" / "reports"),
                                         "bitext": [{"name": "b", "files": {"eng_Latn": str(text_file(r)),
                                                                            "deu_Latn": str(text_file(r))}}]})))],
         ("models.m",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("mine: --output inside a --src directory", lambda r: [
        "mine", "--model", str(tiny_bert_mlm()), "--src", str(protect(r, write(r / "src" / "en.txt", "A sentence.\n")
                                                                     .parent)), "--src-lang", "eng_Latn",
        "--tgt", str(write(r / "tgt.txt", "Ein Satz.\n")), "--tgt-lang", "deu_Latn",
        "--output", str(r / "src" / "out")], ("--src",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("translate: output_dir is the corpus", lambda r: translate_args(r, ct2_model(r, truncate=False),
         protect(r, corpus(r)), f"output_dir={r / 'corpus'}"), ("corpora",), loads_model=True, cls="overwrite",
         harmed=input_changed),
    Case("corpus mine-paraphrases: --output inside the parallel corpus", lambda r: [
        "corpus", "mine-paraphrases", str(protect(r, bitext(r))), "--output", str(r / "bitext" / "train" / "para")],
         ("CORPUS",), cls="overwrite", harmed=input_changed),
    Case("export: OUT inside RUN_DIR", lambda r: ["export", str(protect(r, finished_run(r))), str(r / "run" / "out")],
         ("RUN_DIR",), loads_model=True, cls="overwrite", harmed=input_changed),
    Case("run: run_dir inside the corpus", lambda r: ["run", str(run_config(r)),
         f"run_dir={protect(r, corpus(r)) / 'run'}"], ("corpus",), loads_model=True, cls="overwrite",
         harmed=input_changed),
    # a config that states a key twice (PyYAML keeps the last value without a word)
    Case("config: a key given twice", lambda r: ["train", "--config", str(write(
         r / "dup.yaml", f"model: {tiny_bert_mlm()}\ncorpus: {corpus(r)}\nlanguages: [eng_Latn]\nmodel: elsewhere\n"))],
         ("dup.yaml line 4",), loads_model=True, cls="config"),
    Case("config: a nested key given twice", lambda r: ["train", "--config", str(write(r / "dup.yaml", yaml.safe_dump({
         "model": str(tiny_bert_mlm()), "corpus": str(corpus(r)), "languages": ["eng_Latn"],
         "output_dir": str(r / "out"), "trainer": {"max_steps": 1, "global_batch_size": 4, "ds_config": "zero0",
                     "lr": 1e-4}}) + "  lr: 1.0\n"))], ("dup.yaml line",), loads_model=True, cls="config"),
    # corpora that `corpus validate` and the stages judged differently
    Case("validate: a dataset with one side only", lambda r: ["corpus", "validate", str(one_sided_corpus(r))],
         ("no column 2",), cls="corpus"),
    Case("validate: hard negatives for one language only", lambda r: ["corpus", "validate", str(
         negatives_for_one(r))], ("mixes pairs and triplets",), cls="corpus"),
    Case("validate: a few blank rows, which train skips", lambda r: ["corpus", "validate", str(few_blank_rows(r))],
         (), cls="corpus", accept=True),
    Case("translate: a dataset with one side only", lambda r: translate_args(r, ct2_model(r, truncate=False),
         one_sided_corpus(r)), ("no column 2",), loads_model=True, cls="corpus"),
    # no space left while mining (a 256 KiB tmpfs; needs root to mount it); finished shards stay for the rerun
    Case("mine: disk full", lambda r: ["mine", "--model", str(tiny_bert_mlm()), "--src", str(many_lines(r, "en")),
         "--src-lang", "eng_Latn", "--tgt", str(many_lines(r, "de")), "--tgt-lang", "deu_Latn",
         "--output", str(small_disk(r) / "out")], ("no space left",), loads_model=True, cls="disk full",
         harmed=release_small_disk),
    # the lead's own: a YAML tag that would build a Python object, a link as the output, numbers out of range,
    # a manifest that is not JSON, and a hub id where only local models resolve today
    Case("config: a !!python tag", lambda r: ["train", "--config", str(write(
        r / "tag.yaml", "model: !!python/object/apply:os.system ['touch pwned']\n"))], ("tag.yaml",), cls="config",
         harmed=lambda r: "code ran: pwned was written" if (r / "pwned").exists() else None),
    Case("encode: --output a symbolic link to the --input", lambda r: encode_args(
        tiny_bert_mlm(), protect(r, text_file(r)), link(r / "link.npy", r / "input.txt")), ("input.txt",),
         loads_model=True, cls="overwrite", harmed=input_changed),
    Case("encode: --batch-size 0", lambda r: [*encode_args(tiny_bert_mlm(), text_file(r), r / "e.npy"),
                                              "--batch-size", "0"], ("batch",), loads_model=True, cls="input text"),
    Case("encode: unknown --lang", lambda r: [*encode_args(tiny_bert_mlm(), text_file(r), r / "e.npy"),
                                              "--lang", "xx_Yyyy"], ("xx_Yyyy",), cls="language"),
    Case("status --verify: manifest.json not JSON", lambda r: ["status", str(manifest_of(r, '{"entries": [')),
                                                               "--verify"], ("manifest.json",), cls="manifest"),
    Case("encode: a hub id that is not downloaded", lambda r: encode_args(
        Path("sentence-transformers/no-such-model-xyz"), text_file(r), r / "e.npy"),
         ("sentence-transformers/no-such-model-xyz",), loads_model=True, cls="model files"),
]


RUN_ADAPTER = Path("artifacts/align/deu_Latn/artifacts/adapter/adapter.safetensors")


def made_run(home: Path) -> Path:
    """``home/run``: a real tiny run by ``modsent run`` (German aligned onto English, then evaluated; ~30 s)."""
    from modsent.testing.synthetic import write_parallel_text

    for split, lines, seed in (("train", 24, 7), ("test", 8, 8)):
        write_parallel_text(home / "bitext" / split / "eng_Latn-deu_Latn", "deu_Latn", lines, seed=seed)
    trainer = {"global_batch_size": 4, "max_steps": 1, "save_every": 0, "eval_every": 0, "eval_at_start": False,
               "progress_bar": False, "schedule": "constant"}
    config = write(home / "run.yaml", yaml.safe_dump({
        "run_dir": str(home / "run"), "languages": ["eng_Latn", "deu_Latn"], "source_model": str(tiny_bert_mlm()),
        "corpus": str(write_synthetic_corpus(home / "corpus", ["eng_Latn", "deu_Latn"], {"para": 16})),
        "parallel_text": str(home / "bitext"), "stages": ["align", "evaluate"],
        "align": {"use_corpus": False, "max_seq_length": 16, "trainer": trainer},
        "resources": {"ranks_per_job": 1, "parallel_jobs": 1, "retries": 0}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-m", "modsent.cli", "run", str(config)], check=True, capture_output=True,
                   env=env, timeout=600)
    return home / "run"


def finished_run(root: Path) -> Path:
    """A copy in ``root`` of one finished run, made once per bench beside the cases' scratch directories."""
    shared = root.parent / ".finished-run" / "run"
    if not shared.is_dir():
        made_run(shared.parent)
    return Path(shutil.copytree(shared, root / "run", symlinks=True))


def changed_copy(root: Path) -> Path:
    """``root/copy``: a copy of a finished run with one byte of its adapter changed."""
    copy = Path(shutil.copytree(finished_run(root), root / "copy", symlinks=True))
    data = bytearray((copy / RUN_ADAPTER).read_bytes())
    data[-1] ^= 1
    (copy / RUN_ADAPTER).write_bytes(bytes(data))
    return copy


def moved_run(root: Path) -> Path:
    """``root/moved``: a run made in ``root/made/run``, then renamed (nothing is left where it was made)."""
    return made_run(root / "made").rename(root / "moved")


def shipped_other(root: Path, run: Path) -> str | None:
    shipped = root / "out" / "adapters" / "deu_Latn" / RUN_ADAPTER.name
    if shipped.is_file() and shipped.read_bytes() != (run / RUN_ADAPTER).read_bytes():
        return "export shipped another directory's adapter, not the exported run's"
    return None


def copy_not_redone(root: Path) -> str | None:
    if (root / "copy" / RUN_ADAPTER).read_bytes() != (root / "run" / RUN_ADAPTER).read_bytes():
        return "run on the copy kept its changed adapter (it ran the directory the copy was made from)"
    return None


def killed_before(root: Path, path: Path) -> Path:
    """``path``, with what a killed export or encode of ``root/out`` left beside it (1 MiB)."""
    write(root / ".tmp-out.k1ll3d00" / "encoders" / "eng_Latn" / "model.safetensors", b"\0" * (1 << 20))
    return path


def leftovers(root: Path) -> str | None:
    left = sorted(p.name for p in root.glob(".tmp-out.*"))
    return f"still there after a successful rerun: {', '.join(left)}" if left and (root / "out").exists() else None


def small_disk(root: Path) -> Path:
    small = root / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], check=True)
    return small


def kept_on_small_disk(root: Path) -> str | None:
    kept = sorted(p.name for p in (root / "small").iterdir() if not p.name.endswith(".modsent-lock"))
    subprocess.run(["umount", str(root / "small")], check=True)
    return f"a full disk kept {', '.join(kept)}" if kept else None


def link(path: Path, target: Path) -> Path:
    path.symlink_to(target)
    return path


def manifest_of(root: Path, text: str) -> Path:
    write(root / "run" / "manifest.json", text)
    return root / "run"


def classify(case: Case, status: int, output: str, harm: str | None) -> str:
    if harm is not None:
        return "code_execution" if harm.startswith("code ran") else "silent"
    if "Traceback (most recent call last)" in output:
        return "traceback"
    if case.accept:
        return "accepted" if status == 0 else "vague"
    if status == 0:
        return "silent"
    return "clear" if any(text in output for text in case.expect) else "vague"


def run_case(case: Case, work: Path) -> dict:
    scratch = work / case.name.replace(" ", "-").replace(":", "").replace("/", "-")
    scratch.mkdir(parents=True)
    argv = case.argv(scratch)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "modsent.cli", *argv], capture_output=True, text=True,
                          errors="replace", env=env, timeout=600, cwd=scratch, input=case.stdin)
    output = done.stdout + done.stderr
    harm = case.harmed(scratch) if case.harmed is not None else None
    outcome = classify(case, done.returncode, output, harm)
    message = [line for line in output.strip().splitlines() if line.strip()][-1:] or [""]
    record = {"case": case.name, "class": case.cls, "outcome": outcome, "exit": done.returncode,
              "seconds": round(time.time() - started, 1), "message": (harm or message[0])[:300]}
    print(json.dumps(record), file=sys.stderr, flush=True)
    return record


def main(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="modsent-bad-inputs-"))
    cases = [c for c in CASES if (not args.quick or not c.loads_model) and (not args.only or c.name in args.only)]
    records = [run_case(case, work) for case in cases]
    shutil.rmtree(work)
    kinds = ("clear", "accepted", "traceback", "silent", "code_execution", "vague")
    counts = {kind: sum(r["outcome"] == kind for r in records) for kind in kinds}
    per_class = {cls: {kind: n for kind in kinds if (n := sum(r["outcome"] == kind for r in records
                                                              if r["class"] == cls))}
                 for cls in sorted({r["class"] for r in records})}
    refused = [r for r, c in zip(records, cases) if not c.accept]
    return {
        "bench": "bad_inputs", "device": "cpu",
        "params": {"quick": args.quick, "cases": len(records), "only": args.only},
        "results": {**counts, "per_class": per_class, "per_case": records},
        "ratios": {"tracebacks": float(counts["traceback"]), "silent_wrong_results": float(counts["silent"]),
                   "code_executions": float(counts["code_execution"]),
                   "clear_fraction": sum(r["outcome"] == "clear" for r in refused) / len(refused) if refused else 0.0},
    }


if __name__ == "__main__":
    print(json.dumps(main(ARGS)))
