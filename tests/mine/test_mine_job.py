"""`modsent mine` end to end on a local Ray with a tiny encoder: planted pairs, kill -9 and resume, the IVF path.

Order matters: the kill test runs first and starts its own Ray in a subprocess before this
module's in-process Ray exists (two local clusters at once would double the memory).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modsent.config import load_config
from modsent.mine import MineConfig, run_mine
from modsent.mine.embed import FAULT_ENV
from modsent.testing import (
    save_perturbed_encoder,
    save_tiny_modular,
    synthetic_sentences,
    tiny_bert_mlm,
    translate_synthetic,
)
from modsent.testing.sentences import JAPANESE_SENTENCE, LANGUAGE_ID_SENTENCES

pytestmark = pytest.mark.slow

PLANTED = 8
SENTENCES = synthetic_sentences(400, seed=5)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, object_store_memory=256 << 20, include_dashboard=False, _node_ip_address="127.0.0.1",
                 _temp_dir=tempfile.mkdtemp(prefix="/tmp/msr"), log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, model_cache) -> Path:
    return save_perturbed_encoder(tiny_bert_mlm(model_cache), tmp_path_factory.mktemp("enc") / "encoder", None, 32)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[Path]]:
    """Source: 52 English sentences + 8 planted ones over a .txt (with a blank line and duplicates) and a
    .jsonl. Target: 340 pseudo-German sentences with the 8 planted English ones at rows 101..108 (.parquet)."""
    root = tmp_path_factory.mktemp("inputs")
    planted, src_other = SENTENCES[:PLANTED], SENTENCES[PLANTED:60]
    (root / "a.txt").write_text("\n".join(src_other[:20] + planted + [""] + planted[:3]) + "\n", encoding="utf-8")
    (root / "b.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in src_other[20:] + planted[3:5]),
                                  encoding="utf-8")
    german = translate_synthetic(SENTENCES[60:400], "deu_Latn")
    pq.write_table(pa.table({"text": german[:100] + planted + german[100:]}), root / "t.parquet")
    return {"src": [root / "a.txt", root / "b.jsonl"], "tgt": [root / "t.parquet"]}


def _config(encoder_dir: Path, inputs, output: Path, *overrides: str) -> MineConfig:
    return load_config(MineConfig, None, [
        f"model={encoder_dir}", f"src={json.dumps([str(p) for p in inputs['src']])}",
        f"tgt={json.dumps([str(p) for p in inputs['tgt']])}", f"output_dir={output}", "embed.shard_size=48",
        "score.threshold=null", "ray.progress_bars=false", "ray.num_cpus=2", *overrides])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.npy"))}


def _kill_leftovers(marker: str) -> None:
    """SIGKILL the Ray processes the killed driver left (found by the marker in their environment)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"MODSENT_TEST_MARKER={marker}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.fixture(scope="module")
def reference(ray_local, encoder_dir, inputs, tmp_path_factory):
    """An uninterrupted run (exact search, max mode)."""
    result = run_mine(_config(encoder_dir, inputs, tmp_path_factory.mktemp("reference") / "out"))
    return result, result.pairs_path.read_bytes(), _tree(result.output_dir / "embeddings")


def test_kill_9_during_embedding_then_rerun_redoes_only_unfinished_shards(encoder_dir, inputs, tmp_path, request):
    output = tmp_path / "out"
    marker = uuid.uuid4().hex
    env = {**os.environ, FAULT_ENV: "kill-after:2", "MODSENT_TEST_MARKER": marker,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "modsent.cli", "mine", "--model", str(encoder_dir),
           "--src", *map(str, inputs["src"]), "--tgt", *map(str, inputs["tgt"]), "--output", str(output),
           "embed.shard_size=48", "ray.progress_bars=false", "ray.num_cpus=2",
           f"ray.temp_dir={tempfile.mkdtemp(prefix='/tmp/msk')}"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        _kill_leftovers(marker)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    finished = sorted((output / "embeddings").rglob("shard-*.json"))
    assert len(finished) == 2 and not (output / "pairs.parquet").exists()

    result, pairs_bytes, shard_bytes = request.getfixturevalue("reference")
    total = result.shards_embedded
    resumed = run_mine(_config(encoder_dir, inputs, output))
    assert (resumed.shards_reused, resumed.shards_embedded) == (2, total - 2)
    assert resumed.pairs_path.read_bytes() == pairs_bytes
    assert _tree(output / "embeddings") == shard_bytes


def test_mining_recovers_planted_pairs_with_line_ids(reference, inputs):
    result, _, _ = reference
    sides = result.sides
    # 60 unique source sentences (3 duplicate lines + a blank line folded), 348 unique targets.
    assert (sides["src"].lines, sides["src"].unique) == (60 + 5, 60)
    assert (sides["tgt"].lines, sides["tgt"].unique) == (348, 348)
    pairs = pq.read_table(result.pairs_path).to_pydict()
    planted = set(SENTENCES[:PLANTED])
    top = pairs["source"][:PLANTED]
    assert set(top) == planted and pairs["target"][:PLANTED] == top
    assert all(a >= b for a, b in zip(pairs["score"], pairs["score"][1:]))  # sorted best first
    assert len(set(zip(pairs["source"], pairs["target"]))) == len(pairs["source"])  # no duplicate pair
    for source, src_file, src_line, tgt_line in zip(top, pairs["source_file"], pairs["source_line"],
                                                     pairs["target_line"]):
        assert src_file == str(inputs["src"][0]) and src_line == 21 + SENTENCES.index(source)
        assert tgt_line == 101 + SENTENCES.index(source)


def test_rerun_with_an_ivf_index_reuses_every_shard_and_finds_the_same_pairs(reference, encoder_dir, inputs):
    result, _, _ = reference
    again = run_mine(_config(encoder_dir, inputs, result.output_dir, "index.exact_max_vectors=10",
                             "index.factory=IVF{nlist},Flat", "index.nprobe=64", "output_format=tsv",
                             f"score.top_n={PLANTED}"))
    assert again.shards_embedded == 0 and again.shards_reused == result.shards_embedded
    assert [call["index"].split(",")[0].startswith("IVF") for call in again.index] == [True, True]
    rows = again.pairs_path.read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == ["score", "source", "target", "source_file", "source_line", "target_file",
                                   "target_line"]
    assert {row.split("\t")[1] for row in rows[1:]} == set(SENTENCES[:PLANTED]) and len(rows) == PLANTED + 1


MIXED, JAPANESE = LANGUAGE_ID_SENTENCES, JAPANESE_SENTENCE  # language identification must get these right


def test_auto_language_routes_each_sentence_to_its_encoder_or_the_fallback(ray_local, encoder_dir, tmp_path,
                                                                           model_cache):
    from modsent.models.modular import ModularEncoder

    model_dir = save_tiny_modular(tmp_path / "modular", tiny_bert_mlm(model_cache),
                                  {"eng_Latn": None, "deu_Latn": 1, "rus_Cyrl": 2})
    texts = [MIXED["rus_Cyrl"][0], MIXED["eng_Latn"][0], JAPANESE, MIXED["deu_Latn"][0], MIXED["deu_Latn"][1],
             MIXED["eng_Latn"][1], MIXED["rus_Cyrl"][1]]
    (tmp_path / "src.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("\n".join(MIXED["eng_Latn"]) + "\n", encoding="utf-8")
    overrides = [f"model={model_dir}", f"src=[{tmp_path / 'src.txt'}]", f"tgt=[{tmp_path / 'tgt.txt'}]",
                 "src_lang=auto", "tgt_lang=eng_Latn", "score.threshold=null", "ray.progress_bars=false"]
    result = run_mine(load_config(MineConfig, None, [*overrides, f"output_dir={tmp_path / 'out'}",
                                                     f"fallback_model={encoder_dir}"]))
    assert result.sides["src"].languages == {"deu_Latn": 2, "eng_Latn": 2, "jpn_Jpan": 1, "rus_Cyrl": 2}
    assert result.sides["src"].fallback == {"jpn_Jpan": 1} and result.sides["src"].embedded == 7
    report = json.loads((tmp_path / "out" / "mine_report.json").read_text())
    assert report["sides"]["src"]["fallback"] == {"jpn_Jpan": 1}
    # Each sentence went to its own language's encoder and adapter; Japanese to the fallback encoder.
    stored = np.load(tmp_path / "out" / "embeddings" / "src" / "shard-000000.npy").astype(np.float32)
    kept = [row for row, text in enumerate(texts) if text != JAPANESE]
    langs = ["rus_Cyrl", "eng_Latn", "deu_Latn", "deu_Latn", "eng_Latn", "rus_Cyrl"]
    want = ModularEncoder(model_dir).encode([texts[row] for row in kept], lang=langs, normalize=True)
    np.testing.assert_allclose(stored[kept], want, atol=2e-3)
    from modsent.models.encoder import SentenceEncoder

    japanese = SentenceEncoder.from_pretrained(encoder_dir).encode([JAPANESE], normalize=True)[0]
    np.testing.assert_allclose(stored[2], japanese, atol=2e-3)
