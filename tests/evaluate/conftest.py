"""Shared pieces of the evaluator tests, handed out by the ``fakes`` fixture (the suite runs with
``--import-mode=importlib``, so test modules cannot import helpers by name): a deterministic fake
encoder and writers of fixture files in the published layouts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

DIM = 16


class HashEncoder:
    """Deterministic stand-in for a model: each (text, lang, aligned) hashes to a unit vector.

    ``shared_space=True`` drops ``lang``/``aligned`` from the hash, so translations that are the same
    string land on the same vector (useful where a test needs correct retrievals). Every call is
    recorded in ``calls`` as (lang, aligned, number of texts).
    """

    def __init__(self, shared_space: bool = False, fingerprint: str | None = None) -> None:
        self.shared_space = shared_space
        self.fingerprint = fingerprint
        self.calls: list[tuple[str, bool, int]] = []

    def vector(self, text: str, lang: str, aligned: bool) -> np.ndarray:
        key = text if self.shared_space else f"{lang}|{aligned}|{text}"
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        vec = np.random.default_rng(seed).standard_normal(DIM)
        return (vec / np.linalg.norm(vec)).astype(np.float32)

    def encode(self, texts: list[str], lang: str, aligned: bool) -> np.ndarray:
        self.calls.append((lang, aligned, len(texts)))
        return np.stack([self.vector(t, lang, aligned) for t in texts])


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def belebele_records(lang: str, n_passages: int = 3, questions_per_passage: int = 2, seed: int = 0) -> list[dict]:
    """Belebele rows in the published layout (string answer numbers, as facebook/belebele has them)."""
    rng = np.random.default_rng(seed)
    records = []
    for p in range(n_passages):
        for q in range(1, questions_per_passage + 1):
            records.append({
                "link": f"https://en.wikibooks.org/wiki/page_{p}",
                "question_number": q,
                "flores_passage": f"[{lang}] passage {p} about topic {p} with several sentences.",
                "question": f"[{lang}] question {q} on passage {p}?",
                "mc_answer1": f"[{lang}] option a {p}.{q}",
                "mc_answer2": f"[{lang}] option b {p}.{q}",
                "mc_answer3": f"[{lang}] option c {p}.{q}",
                "mc_answer4": f"[{lang}] option d {p}.{q}",
                "correct_answer_num": str(int(rng.integers(1, 5))),
                "dialect": lang,
                "ds": "2023-05-03",
            })
    return records


def write_belebele(directory: Path, languages: list[str], **kwargs) -> Path:
    for lang in languages:
        write_jsonl(directory / f"{lang}.jsonl", belebele_records(lang, **kwargs))
    return directory


@pytest.fixture
def fakes() -> SimpleNamespace:
    return SimpleNamespace(HashEncoder=HashEncoder, write_jsonl=write_jsonl, belebele_records=belebele_records,
                           write_belebele=write_belebele)
