"""The config of ``modsent evaluate`` (the stage is :mod:`modsent.evaluate.stage`).

Example config (YAML)::

    output_dir: runs/eval
    languages: [eng_Latn, deu_Latn, kin_Latn]
    baseline: labse
    resource_levels: {eng_Latn: high, deu_Latn: high, kin_Latn: low}
    sts:
      - {name: sts17, format: mteb, files: {"*": data/sts17/test.jsonl}}
      - {name: sts17, format: mteb, recombine: true,
         files: {deu: data/sts17x/de.jsonl, eng: data/sts17x/en.jsonl}}
      - {name: str24, format: str, files: {kin_Latn: "data/str/Track A/kin/kin_test_with_labels.csv"}}
    belebele: {directory: data/belebele}
    bitext:
      - {name: flores, files: {eng_Latn: flores/eng_Latn.devtest, deu_Latn: flores/deu_Latn.devtest}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from modsent.models.encoders import EVAL_MAX_SEQ_LENGTH

__all__ = ["artifact", "EvaluateConfig", "STSDatasetConfig", "BelebeleConfig", "BitextConfig", "TASKS", "TaskName"]

TaskName = Literal["sts", "belebele", "belebele_retrieval", "bitext"]
TASKS: tuple[str, ...] = ("sts", "belebele", "belebele_retrieval", "bitext")


@dataclass
class STSDatasetConfig:
    """One STS/STR source. Several entries with the same ``name`` form one data set (e.g. extended STS17)."""

    name: str
    # stsb: STS-benchmark TSV; mteb: JSONL/Parquet with sentence1/sentence2/score; str: SemEval-2024
    # track A CSV; kardes: Kardeş-NLU STS CSV (always recombined with its English side)
    format: Literal["stsb", "mteb", "str", "kardes"]
    # language (or "a-b" pair) -> file; for mteb, "*" reads the pairs from the file's lang column(s). For mteb, the
    # file may be a hub dataset id (mteb/sts17-crosslingual-sts): the key is then its config ("*": every config)
    files: dict[str, Path] = field(default_factory=dict)
    split: str = "test"  # the split read from a hub dataset
    # treat the monolingual sets as row-aligned translations and build every cross-language pair
    recombine: bool = False
    # keep only these "a-b" / "a" pairs (after recombination); empty keeps all
    pairs: list[str] = field(default_factory=list)


@dataclass
class BelebeleConfig:
    # holds one <file_pattern> per language (facebook/belebele's data/), or is the hub dataset id facebook/belebele
    directory: Optional[Path] = None
    file_pattern: str = "{lang}.jsonl"
    languages: list[str] = field(default_factory=list)  # empty: EvaluateConfig.languages
    cross_lingual: bool = True  # the full language × language matrix, not only the diagonal
    retrieval_ks: list[int] = field(default_factory=lambda: [1, 5, 10])


@dataclass
class BitextConfig:
    name: str
    files: dict[str, Path] = field(default_factory=dict)  # language -> line-aligned sentence file
    pairs: list[str] = field(default_factory=list)  # "a-b" pairs; empty: every pair of the files' languages


@dataclass
class EvaluateConfig:
    output_dir: Path = Path("runs/evaluate")
    tasks: list[TaskName] = field(default_factory=list)  # empty: every task that has data configured
    languages: list[str] = field(default_factory=list)  # evaluate only these (empty: all in the data)
    models: dict[str, str] = field(default_factory=dict)  # encoder name -> model path (read by the CLI)
    baseline: str = ""  # encoder name the delta table compares the others against
    sts: list[STSDatasetConfig] = field(default_factory=list)
    belebele: BelebeleConfig = field(default_factory=BelebeleConfig)
    bitext: list[BitextConfig] = field(default_factory=list)
    batch_size: int = 64  # for the encoders the CLI builds
    # and at most this many padded tokens per forward (None: no cap), so a few long texts no longer pad a whole
    # batch: the demo's modular model encoded 600 held-out strings on one CPU thread in 29.3 s uncapped, 17.9 s
    # at 2048 and 15.6 s at 1024
    max_batch_tokens: Optional[int] = None
    # tokens every encoder reads (capped by each model's positions), whatever length it was trained at
    max_seq_length: int = EVAL_MAX_SEQ_LENGTH
    margin_k: int = 4
    retrieval_scoring: list[Literal["cosine", "margin"]] = field(default_factory=lambda: ["cosine", "margin"])
    query_chunk: int = 16_384  # FAISS search shards
    database_chunk: int = 1_000_000
    cache_dir: Optional[Path] = None  # on-disk embedding cache; None keeps embeddings in memory only
    resource_levels: dict[str, str] = field(default_factory=dict)  # language -> "high"/"low"/...
    language_aliases: dict[str, str] = field(default_factory=dict)  # data-set code -> code, before resolve()
    compare_unaligned: bool = False  # also evaluate each modular model with its adapters off ("<name>-unaligned")
    heatmaps: bool = True
    trust_remote_code: bool = False  # run Python a model directory ships (auto_map): only for a directory you trust

    def __post_init__(self) -> None:
        for name in ("batch_size", "margin_k", "query_chunk", "database_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_batch_tokens is not None and self.max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1 or null, got {self.max_batch_tokens}")
        if self.max_seq_length < 2:
            raise ValueError(f"max_seq_length must be >= 2, got {self.max_seq_length}")

    def active_tasks(self) -> list[str]:
        """The configured tasks, or every task with data when none are listed; a listed task without data raises."""
        has_data = {"sts": bool(self.sts), "belebele": self.belebele.directory is not None,
                    "belebele_retrieval": self.belebele.directory is not None, "bitext": bool(self.bitext)}
        if not self.tasks:
            return [task for task in TASKS if has_data[task]]
        missing = [task for task in self.tasks if not has_data[task]]
        if missing:
            raise ValueError(f"task(s) {', '.join(missing)} listed but no data configured for them "
                             "(set sts / belebele.directory / bitext)")
        return list(dict.fromkeys(self.tasks))


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent evaluate`` writes: ``output_dir`` itself (results.json, the tables and heatmaps)."""
    return Path(output_dir)
