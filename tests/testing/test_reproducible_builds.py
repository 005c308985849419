"""Everything the tests build is byte-identical in every process and on every x86-64 CPU.

A new user's first run builds the tiny models into an empty cache; a developer's cache holds models
built long ago. If two builds of one recipe differ, a test can pass on one machine and fail on the
other (the WordPiece trainer's hash-map order once moved 996 of 2000 token ids between processes).
The second build here runs with another hash seed and torch's narrowest CPU kernels
(``ATEN_CPU_CAPABILITY=default``), as a machine without AVX2 would.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Builds every artifact ``modsent.testing`` makes under the directory given as argv[1].
_BUILD_ALL = """
import sys
from pathlib import Path

from modsent.testing import (save_tiny_modular, tiny_bert_mlm, tiny_nllb_ct2, write_parallel_text,
                             write_synthetic_corpus)
from modsent.testing.catalogues import fake_packages

root = Path(sys.argv[1])
cache = root / "cache"
bert = tiny_bert_mlm(cache)
tiny_bert_mlm(cache, size="small")
for quantization in ("float32", "int8"):
    tiny_nllb_ct2(cache, quantization=quantization)  # builds tiny_nllb on the way
save_tiny_modular(root / "modular", bert, {"eng_Latn": None, "deu_Latn": 1, "rus_Cyrl": 2})
write_synthetic_corpus(root / "corpus", ["eng_Latn", "deu_Latn", "zho_Hans"], {"para": 40, "triplets": 20}, seed=3,
                       triplet_datasets=["triplets"])
write_parallel_text(root / "parallel", "ell_Grek", 30, seed=5)
fake_packages(root / "wheels")
"""


def _file_digests(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and not path.name.endswith(".lock")}


@pytest.mark.slow
def test_every_test_artifact_is_byte_identical_across_processes_and_cpu_kernels(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "ATEN_CPU_CAPABILITY"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    variants = {"native": {"PYTHONHASHSEED": "0"}, "narrow": {"PYTHONHASHSEED": "4242", "ATEN_CPU_CAPABILITY": "default"}}
    builds = {name: subprocess.Popen([sys.executable, "-c", _BUILD_ALL, str(tmp_path / name)], env={**env, **extra},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for name, extra in variants.items()}  # both at once: one per core
    for name, process in builds.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name} build failed:\n{output[-4000:]}"
    native, narrow = (_file_digests(tmp_path / name) for name in variants)
    assert len(native) > 40 and {"cache", "modular", "corpus", "parallel", "wheels"} <= {p.split("/")[0] for p in native}
    assert sorted(native) == sorted(narrow)
    differing = [path for path in native if native[path] != narrow[path]]
    assert differing == [], f"built differently in two processes: {differing}"
