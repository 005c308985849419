"""``modsent run`` over a hostfile's hosts: every job runs on the host it was placed on, and the manifest says where.

Before: a one-process job (translate, vocab, evaluate) placed on another host ran on this machine with
``CUDA_VISIBLE_DEVICES`` set to the other host's GPU index, on a GPU a local training job may hold.
Here ``127.0.0.2`` is the other host; stand-ins for ``ssh`` and ``pdsh`` on ``PATH`` carry DeepSpeed's
real multi-node runner there (they run the command on this machine, as node 0) and record the hosts it
asked for: what is checked is whom modsent and DeepSpeed ask to run what, not the transport.
"""

from __future__ import annotations

import os
from pathlib import Path

from modsent.config import from_dict
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.fanout import Device, job_command
from modsent.pipeline.manifest import Manifest
from modsent.pipeline.execute import run_pipeline
from modsent.testing.synthetic import synthetic_sentences, write_synthetic_corpus
from modsent.testing.tiny_models import tiny_bert_mlm

LANGS = ["eng_Latn", "deu_Latn", "rus_Cyrl"]
SSH = """#!/usr/bin/env bash
# Stand-in for ssh HOST COMMAND: runs COMMAND here.
while [[ $1 == -* ]]; do [[ $1 == -o || $1 == -p ]] && shift; shift; done
shift
exec "$@"
"""
PDSH = """#!/usr/bin/env bash
# Stand-in for pdsh -w HOSTS COMMAND: records HOSTS and COMMAND, runs COMMAND here as node 0 (%n), in the
# bare environment of a fresh ssh session: what the job needs must travel in COMMAND.
while getopts "Sf:w:" opt; do [[ $opt == w ]] && hosts=$OPTARG; done
shift $((OPTIND - 1))
printf '%s\\t%s\\n' "$hosts" "$*" >> "$PDSH_STANDIN_LOG"
exec env -i PATH="$PATH" HOME="$HOME" bash -c "${*//%n/0}"
"""


def _stand_ins(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, text in (("ssh", SSH), ("pdsh", PDSH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


def test_a_one_process_job_on_another_host_runs_there_and_the_manifest_records_each_jobs_host(
        tmp_path, model_cache, monkeypatch):
    _stand_ins(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PDSH_STANDIN_LOG", str(tmp_path / "pdsh.log"))
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # pdsh's command starts where `modsent run` runs
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("localhost slots=1\n127.0.0.2 slots=1\n")
    text = {}
    for lang in LANGS:
        text[lang] = tmp_path / f"{lang}.txt"
        text[lang].write_text("".join(f"{s}\n" for s in synthetic_sentences(30, seed=lang)))
    cfg = from_dict(PipelineConfig, {
        "run_dir": str(tmp_path / "run"), "languages": LANGS, "source_model": str(tiny_bert_mlm(model_cache)),
        "corpus": str(write_synthetic_corpus(tmp_path / "corpus", ["eng_Latn"], {"para": 8})),
        "monolingual_text": {lang: str(path) for lang, path in text.items()}, "stages": ["vocab"],
        "vocab": {"method": "trim"}, "resources": {"hostfile": str(hostfile)}})
    results = run_pipeline(cfg)
    assert {name: r.status for name, r in results.items()} == {f"{lang}/vocab": "done" for lang in LANGS}, results
    placed = {entry.language: entry.placement for entry in Manifest(cfg.run_dir)}
    assert set(placed) == set(LANGS) and all(where in ({"localhost": [0]}, {"127.0.0.2": [0]})
                                             for where in placed.values()), placed
    remote = sorted(lang for lang, where in placed.items() if "127.0.0.2" in where)
    assert 0 < len(remote) < len(LANGS), placed  # both hosts took jobs
    asked = [line.split("\t") for line in (tmp_path / "pdsh.log").read_text().splitlines()]
    assert [hosts for hosts, _ in asked] == ["127.0.0.2"] * len(remote)
    assert sorted(lang for lang in LANGS for _, command in asked if f"/configs/{lang}/vocab.yaml" in command) == remote
    # The run's environment went along (DeepSpeed's runner forwards only PYTHON*, NCCL*, … itself).
    assert all("MODSENT_PROGRESS_FILE=" in command and "MODSENT_CACHE=" in command for _, command in asked), asked


def test_only_a_job_on_this_machine_selects_its_gpus_here():
    module = ["modsent.cli", "vocab", "--config", "c.yaml"]
    here, env = job_command(module, [Device("localhost", 1)], 29500, True, "hf", distributed=False)
    assert here[-4:] == module and "deepspeed.launcher.runner" not in here and env == {"CUDA_VISIBLE_DEVICES": "1"}
    there, env = job_command(module, [Device("node2", 1)], 29500, True, "hf", distributed=False)
    assert there[there.index("--include") + 1] == "node2:1" and "--force_multi" in there and env == {}
    ranks, _ = job_command(["modsent.cli", "train"], [Device("node2", 0), Device("node2", 1)], 29500, True, "hf",
                           distributed=True)
    assert "--force_multi" in ranks  # DeepSpeed would start ranks on one other host here, with its GPU indices
