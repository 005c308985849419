"""Contrastive training batches from several paraphrase datasets, as the reference builds them.

* Every global batch (``batch_size × world_size`` rows) comes from **one dataset**, so its
  in-batch negatives share a domain; datasets are visited in a shuffled round-robin (a new
  shuffle every round), and each dataset walks through its own shuffled rows, reshuffling when
  it runs out (the few rows that do not fill a last batch change from pass to pass).
* A row is a pair (anchor, positive) or, when the dataset has third columns, a triplet with a hard
  negative; both kinds of dataset may be mixed in one corpus, not within one dataset.
* ``train_type="mono"``: all texts of a batch are in one language drawn from ``langs``.
  ``train_type="cross"`` (the multilingual baseline): a batch draws up to ``max_langs_per_batch``
  (6) of the languages and every row mixes them across its columns (distinct languages when the
  batch has three or more).
* ``partial_datasets``: a dataset may hold only some of ``langs`` (plain parallel text, an
  English-only paraphrase corpus) and its batches draw from those; by default every dataset must
  hold every language, so a language missing from a translated corpus is an error, not a gap.
* ``group_by_length``: inside a dataset, chunks of ``length_group_batches`` global batches are
  sorted by row length (the longest text of the row, as ``length_fn`` measures it: pass the
  model's token count, since character counts predict padding poorly) before being cut into
  batches (then the batches are shuffled), which cuts padding; each batch still comes from one
  dataset.

Everything is a pure function of (seed, global batch number), so :class:`ParaphraseBatches` can
be resumed exactly from its ``state_dict`` and every rank agrees on the batch and takes its own
``batch_size`` rows of it.

>>> from modsent.corpus import open_corpus
>>> batches = ParaphraseBatches(open_corpus("seed"), ["deu_Latn"], batch_size=32)  # doctest: +SKIP
>>> batch = next(batches); batch.texts[0][:2], batch.langs[0][:2]  # doctest: +SKIP
(('Der alte Mann …', 'Ein Kind …'), ('deu_Latn', 'deu_Latn'))
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from modsent.corpus import CorpusError, ParaphraseDataset
from modsent.corpus.validate import BlankRows, row_columns
from modsent.errors import ModsentError
from modsent.train.data import BatchStateError, derive_seed

__all__ = ["ParaphraseBatch", "ParaphraseBatches", "ParaphraseBatchError", "TrainType", "MAX_LANGS_PER_BATCH"]

logger = logging.getLogger(__name__)

TrainType = Literal["mono", "cross"]
MAX_LANGS_PER_BATCH = 6  # the reference's cap on languages in one cross-lingual batch


class ParaphraseBatchError(ModsentError):
    """The paraphrase data cannot make the requested batches (wrong columns, too few rows, bad settings)."""


@dataclass(frozen=True)
class ParaphraseBatch:
    """This rank's part of one global batch: ``texts[column][row]`` and the language of each text.

    Column 0 holds anchors, 1 positives, 2 (triplet datasets only) hard negatives.
    """

    dataset: str
    index: int  # global batch number since the start of training
    texts: tuple[tuple[str, ...], ...]
    langs: tuple[tuple[str, ...], ...]

    @property
    def num_columns(self) -> int:
        return len(self.texts)

    @property
    def size(self) -> int:
        return len(self.texts[0])


@dataclass
class _LoadedDataset:
    name: str
    langs: list[str]  # the languages its batches draw from
    num_columns: int
    # (lang, column) -> that column's sentences; row i of every list is the same example
    columns: dict[tuple[str, int], list[str]]
    lengths: np.ndarray | None  # longest text of each row (length_fn): the length-grouping key

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values())))


def _column_count(dataset: ParaphraseDataset, langs: Sequence[str], use_hard_negatives: bool) -> int:
    try:
        return row_columns(dataset, langs, use_hard_negatives)
    except CorpusError as err:
        if all(lang in dataset.languages for lang in langs):
            raise  # the dataset itself is broken: `modsent corpus validate` says the same
        raise CorpusError(f"{err} (a dataset meant to hold only some of the languages, such as parallel text or an "
                          "English-only corpus, needs partial_datasets: true)") from None


LengthFn = Callable[[Sequence[str], str], Sequence[int]]  # (texts, their language) -> length of each text
_LENGTH_CHUNK = 8192


def _row_lengths(columns: dict[tuple[str, int], list[str]], length_fn: LengthFn) -> np.ndarray:
    """The longest text of each row: what the padded length of a batch of such rows follows."""
    lengths = np.zeros(len(next(iter(columns.values()))), dtype=np.int64)
    for (lang, _), texts in columns.items():
        for start in range(0, len(texts), _LENGTH_CHUNK):
            chunk = np.asarray(length_fn(texts[start:start + _LENGTH_CHUNK], lang), dtype=np.int64)
            np.maximum(lengths[start:start + len(chunk)], chunk, out=lengths[start:start + len(chunk)])
    return lengths


def _character_counts(texts: Sequence[str], lang: str) -> list[int]:
    return [len(text) for text in texts]


def _own_languages(dataset: ParaphraseDataset, langs: Sequence[str]) -> list[str]:
    """The languages of ``langs`` that ``dataset`` holds as pairs (``partial_datasets``)."""
    own = [lang for lang in langs if (lang, 1) in dataset.columns and (lang, 2) in dataset.columns]
    if not own:
        raise ParaphraseBatchError(f"dataset '{dataset.name}' ({dataset.path}) holds none of the languages trained on "
                                   f"({', '.join(langs)}); it has {', '.join(dataset.languages)}: drop it or add "
                                   "one of its languages")
    return own


def _load(dataset: ParaphraseDataset, langs: Sequence[str], use_hard_negatives: bool,
          length_fn: LengthFn | None) -> _LoadedDataset:
    num_columns = _column_count(dataset, langs, use_hard_negatives)
    keys = [(lang, col) for lang in langs for col in range(1, num_columns + 1)]
    values: list[list[str]] = [[] for _ in keys]
    blanks = BlankRows(dataset, keys)
    for row in dataset.iter_rows(keys):
        if blanks.skip(row):
            continue
        for store, text in zip(values, row):
            store.append(text)
    blanks.check()
    if blanks.skipped:
        logger.warning("dataset '%s' (%s): skipped %d of %d rows with a blank sentence (%s)", dataset.name,
                       dataset.path, blanks.skipped, blanks.skipped + blanks.kept, blanks.summary())
    columns = dict(zip(keys, values))
    lengths = _row_lengths(columns, length_fn) if length_fn is not None else None
    return _LoadedDataset(dataset.name, list(langs), num_columns, columns, lengths)


class ParaphraseBatches:
    """This rank's endless stream of :class:`ParaphraseBatch` (or ``collate(batch)``), resumable.

    Follows :class:`modsent.train.data.ResumableBatches`: ``batches_per_epoch`` is the reference's
    epoch length, ``sum(rows) // (batch_size × world_size)``; ``state_dict()`` holds the number
    of batches taken. ``collate`` (e.g. tokenisation) is applied to each batch before it is
    returned. ``batch_at(i)`` returns global batch ``i`` without moving the stream.
    ``length_fn(texts, lang) -> lengths`` measures texts for ``group_by_length`` (default:
    characters); it runs once over the loaded corpus.

    Raises :class:`~modsent.corpus.CorpusError` for what ``modsent corpus validate`` refuses too (a
    language without both pair columns, pairs mixed with triplets, only blank rows) and for a dataset
    that lacks a requested language; :class:`ParaphraseBatchError` for a dataset with fewer rows than
    one global batch, or bad settings.
    """

    def __init__(
        self,
        datasets: Sequence[ParaphraseDataset],
        langs: Sequence[str],
        batch_size: int,
        train_type: TrainType = "mono",
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        group_by_length: bool = False,
        length_group_batches: int = 16,
        max_langs_per_batch: int = MAX_LANGS_PER_BATCH,
        use_hard_negatives: bool = True,
        partial_datasets: bool = False,
        length_fn: LengthFn | None = None,
        collate: Callable[[ParaphraseBatch], Any] | None = None,
    ) -> None:
        if train_type not in ("mono", "cross"):
            raise ParaphraseBatchError(f"train_type must be mono or cross, got {train_type!r}")
        if not langs:
            raise ParaphraseBatchError("langs is empty: name at least one language to train on")
        if len(set(langs)) != len(langs):
            raise ParaphraseBatchError(f"langs lists a language twice: {list(langs)}")
        if train_type == "cross" and len(langs) < 2:
            raise ParaphraseBatchError(f"train_type cross mixes languages and needs at least two, got {list(langs)}")
        if not datasets:
            raise ParaphraseBatchError("no paraphrase datasets given")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ParaphraseBatchError(f"bad batch layout: batch_size={batch_size}, rank={rank}, world_size={world_size}")
        if length_group_batches < 1 or max_langs_per_batch < 2:
            raise ParaphraseBatchError("length_group_batches must be >= 1 and max_langs_per_batch >= 2")
        self.langs = list(langs)
        self.train_type = train_type
        self.batch_size, self.rank, self.world_size, self.seed = batch_size, rank, world_size, seed
        self.global_batch = batch_size * world_size
        self.group_by_length = group_by_length
        self.length_group_batches = length_group_batches
        self.max_langs_per_batch = max_langs_per_batch
        self.collate = collate
        if group_by_length and length_fn is None:
            length_fn = _character_counts
        self.partial_datasets = partial_datasets
        self.datasets = [_load(dataset, _own_languages(dataset, self.langs) if partial_datasets else self.langs,
                               use_hard_negatives, length_fn if group_by_length else None)
                         for dataset in datasets]
        for loaded, source in zip(self.datasets, datasets):
            if loaded.num_rows < self.global_batch:
                raise ParaphraseBatchError(
                    f"dataset '{loaded.name}' ({source.path}) has {loaded.num_rows} rows, fewer than one global batch of "
                    f"{self.global_batch} (batch_size {batch_size} × {world_size} ranks); lower trainer.global_batch_size "
                    "or drop the dataset")
        self.batches_per_pass = [d.num_rows // self.global_batch for d in self.datasets]
        self.batches_per_epoch = sum(d.num_rows for d in self.datasets) // self.global_batch
        logger.info("%s batches of %d rows (%d per rank) from %s; %d batches per epoch", train_type, self.global_batch,
                    batch_size, ", ".join(f"{d.name} ({d.num_rows} {'triplets' if d.num_columns == 3 else 'pairs'})"
                                          for d in self.datasets), self.batches_per_epoch)
        self.position = 0  # global batches taken so far
        self._pass_cache: dict[int, tuple[int, list[np.ndarray]]] = {}

    # ------------------------------------------------------------------ schedule (pure functions of the seed)

    def _dataset_at(self, index: int) -> tuple[int, int]:
        """(dataset, how many batches of it came before) for global batch ``index``.

        Every round visits each dataset once, in a fresh shuffled order.
        """
        rounds, offset = divmod(index, len(self.datasets))
        order = np.random.default_rng(derive_seed(self.seed, "datasets", rounds)).permutation(len(self.datasets))
        return int(order[offset]), rounds

    def _pass_batches(self, dataset: int, pass_number: int) -> list[np.ndarray]:
        """The global batches (row indices) of one pass over a dataset."""
        cached = self._pass_cache.get(dataset)
        if cached is not None and cached[0] == pass_number:
            return cached[1]
        loaded = self.datasets[dataset]
        rng = np.random.default_rng(derive_seed(self.seed, "rows", dataset, pass_number))
        order = rng.permutation(loaded.num_rows)[: self.batches_per_pass[dataset] * self.global_batch]
        if self.group_by_length:
            chunk = self.length_group_batches * self.global_batch
            pieces = [order[s:s + chunk] for s in range(0, len(order), chunk)]
            # Longest first within each chunk; a stable sort keeps the shuffled order among equals.
            lengths = loaded.lengths
            assert lengths is not None
            order = np.concatenate([p[np.argsort(-lengths[p], kind="stable")] for p in pieces])
        batches = [order[s:s + self.global_batch] for s in range(0, len(order), self.global_batch)]
        if self.group_by_length:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._pass_cache[dataset] = (pass_number, batches)
        return batches

    def _row_languages(self, rng: np.random.Generator, langs: list[str], num_columns: int) -> list[list[str]]:
        """Language of every (row, column) of one global batch of a dataset holding ``langs``.

        A dataset with a single language (an English-only corpus in a ``cross`` run) gives
        batches in that language alone.
        """
        if self.train_type == "mono" or len(langs) == 1:
            lang = langs[int(rng.integers(len(langs)))]
            return [[lang] * num_columns for _ in range(self.global_batch)]
        chosen = [langs[i] for i in rng.choice(len(langs), min(self.max_langs_per_batch, len(langs)), replace=False)]
        rows = []
        for _ in range(self.global_batch):
            if len(chosen) >= num_columns:
                rows.append([chosen[i] for i in rng.choice(len(chosen), num_columns, replace=False)])
            else:  # two languages, a triplet: the negative repeats one of them
                first, second = (chosen[i] for i in rng.permutation(2))
                rows.append([first, second, first if rng.random() < 0.5 else second][:num_columns])
        return rows

    def batch_at(self, index: int) -> ParaphraseBatch:
        """This rank's part of global batch ``index`` (texts only; ``collate`` is not applied)."""
        dataset, visits = self._dataset_at(index)
        pass_number, within = divmod(visits, self.batches_per_pass[dataset])
        rows = self._pass_batches(dataset, pass_number)[within]
        loaded = self.datasets[dataset]
        languages = self._row_languages(np.random.default_rng(derive_seed(self.seed, "langs", index)), loaded.langs,
                                        loaded.num_columns)
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        texts, langs = [], []
        for column in range(loaded.num_columns):
            column_langs = tuple(row_langs[column] for row_langs in languages[mine])
            texts.append(tuple(loaded.columns[(lang, column + 1)][row] for lang, row in zip(column_langs, rows[mine])))
            langs.append(column_langs)
        return ParaphraseBatch(loaded.name, index, tuple(texts), tuple(langs))

    # ------------------------------------------------------------------ ResumableBatches

    def __iter__(self) -> "ParaphraseBatches":
        return self

    def __next__(self) -> Any:
        batch = self.batch_at(self.position)
        self.position += 1
        return self.collate(batch) if self.collate is not None else batch

    @property
    def epoch_progress(self) -> float:
        """Epochs completed, fractional."""
        return self.position / self.batches_per_epoch

    def signature(self) -> dict[str, Any]:
        return {"seed": self.seed, "world_size": self.world_size, "batch_size": self.batch_size,
                "train_type": self.train_type, "langs": self.langs, "group_by_length": self.group_by_length,
                **({"partial_datasets": True} if self.partial_datasets else {}),  # earlier runs' state lacks it
                "length_group_batches": self.length_group_batches,
                "datasets": [[d.name, d.num_rows, d.num_columns] for d in self.datasets]}

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, **self.signature()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in self.signature().items():
            if state.get(key) != value:
                raise BatchStateError(
                    f"saved data position has {key}={state.get(key)!r} but this run has {value!r}; resume with the "
                    "same corpus, languages, batch settings, seed and number of ranks")
        self.position = int(state["position"])
