"""Apertium, the rule-based MT engine (Debian packages, used by Wikimedia's Content Translation), as the
translate stage's second backend: real machine translation offline, on any CPU, at about 1,100
sentences a second per core.

The languages it covers come from the registry ``modsent/data/apertium.tsv`` (NLLB code → English→target
mode → Debian package). :func:`check_modes` runs when a translate config is built, so a language without a
mode, or a mode whose package is not installed, fails at planning in one line naming the fix.

:class:`ApertiumTranslator` has :class:`~modsent.translate.translator.NllbTranslator`'s ``translate``:
one ``apertium -u MODE`` process per target language of a batch, one sentence per line in and out
(``-u`` drops the ``*`` marks of unknown words, which then pass through as they are).

>>> check_modes(["spa_Latn"], "eng_Latn")  # doctest: +SKIP
{'spa_Latn': 'eng-spa'}
>>> ApertiumTranslator({"spa_Latn": "eng-spa"}).translate(["A man is playing a guitar."], ["spa_Latn"])  # doctest: +SKIP
['Un hombre está tocando una guitarra.']
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from modsent.errors import ModsentError

__all__ = ["ApertiumError", "ApertiumPair", "ApertiumTranslator", "apertium_pairs", "check_modes", "mode_sha256",
           "APERTIUM_SOURCE"]

logger = logging.getLogger(__name__)

APERTIUM_SOURCE = "eng_Latn"  # every registered mode translates from English
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


class ApertiumError(ModsentError):
    """Apertium is missing, lacks a language's mode, or returned output that does not line up with its input."""


@dataclass(frozen=True)
class ApertiumPair:
    language: str  # NLLB code of the target
    mode: str  # as `apertium -l` lists it
    package: str  # the Debian package that installs the mode


@functools.lru_cache(maxsize=1)
def apertium_pairs() -> dict[str, ApertiumPair]:
    """The registered English→target modes, by NLLB code of the target."""
    text = resources.files("modsent.data").joinpath("apertium.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return {code: ApertiumPair(code, mode, package) for code, mode, package in rows}


def _program() -> Path:
    """The ``apertium`` program; its absence fails naming a package that installs it."""
    program = shutil.which("apertium")
    if program is None:
        raise ApertiumError("translate.backend apertium: the apertium program is not installed; install a pair's "
                            f"package, e.g. apt-get install {apertium_pairs()['spa_Latn'].package}")
    return Path(program)


def _modes_dir() -> Path:
    """Where the installed modes are: ``<prefix>/share/apertium/modes`` beside the ``apertium`` program."""
    return _program().resolve().parent.parent / "share" / "apertium" / "modes"


def _mode_file(mode: str) -> Path:
    return _modes_dir() / f"{mode}.mode"


def check_modes(languages: Sequence[str], source_language: str) -> dict[str, str]:
    """The installed Apertium mode of each target language; a language without one fails in one line."""
    pairs = apertium_pairs()
    if source_language != APERTIUM_SOURCE:
        raise ApertiumError(f"translate.backend apertium translates from {APERTIUM_SOURCE} only, not from "
                            f"{source_language}; use backend: ctranslate2 (NLLB)")
    modes = {}
    for language in languages:
        pair = pairs.get(language)
        if pair is None:
            covered = ", ".join(f"{code} ({p.mode})" for code, p in pairs.items())
            raise ApertiumError(f"translate.backend apertium has no mode from {source_language} into {language} "
                                f"(it covers {covered}); translate {language} with backend: ctranslate2 (NLLB)")
        if not _mode_file(pair.mode).is_file():
            raise ApertiumError(f"translate.backend apertium: the mode {pair.mode} for {language} is not installed "
                                f"({_mode_file(pair.mode)} is missing); apt-get install {pair.package}")
        modes[language] = pair.mode
    return modes


def mode_sha256(mode: str) -> str:
    """Content hash of a mode: its pipeline and every dictionary and rule file it reads, so an upgraded
    package invalidates the translations it made (the units' fingerprint holds it)."""
    path = _mode_file(mode)
    pipeline = path.read_text(encoding="utf-8")
    digest = hashlib.sha256(pipeline.encode("utf-8"))
    for name in re.findall(r"'([^']+)'", pipeline):
        data = Path(name)
        if data.is_file():
            digest.update(data.read_bytes())
    return digest.hexdigest()


class ApertiumTranslator:
    """Translate English sentences into per-sentence target languages with Apertium.

    ``modes``: the mode of every target language (:func:`check_modes`). Blank sentences give ``""``
    without the engine; a line break inside a sentence becomes a space (one paragraph per sentence is how
    the output is matched back to its input). A sentence's translation may depend on the sentences
    translated in the same call (rarely: 2 of 27 sampled STS-B sentences in eng-spa, none in eng-cat):
    the translate job hands it whole shards, so a unit's translations do not depend on what else is pending.
    """

    def __init__(self, modes: dict[str, str]) -> None:
        self.modes = modes
        self.command = [str(_program()), "-d", str(_modes_dir().parent)]  # -d: the modes check_modes found

    def _run(self, mode: str, sentences: list[str]) -> list[str]:
        """Translations of ``sentences``; a call whose output does not line up is split in halves until it does.

        Some sentences make a mode print nothing for them and the rest of the call, with exit status 0
        (eng-cat: "A man is rapidly lifting small weights."): such a sentence alone keeps its English
        text, which the job's quality checks count as a copy.
        """
        translations = self._call(mode, sentences)
        if translations is not None:
            return translations
        if len(sentences) == 1:
            logger.warning("apertium -u %s gave no translation of %r: kept in English", mode, sentences[0][:200])
            return [_LINE_BREAKS.sub(" ", sentences[0]).strip()]
        half = len(sentences) // 2
        return self._run(mode, sentences[:half]) + self._run(mode, sentences[half:])

    def _call(self, mode: str, sentences: list[str]) -> list[str] | None:
        # Apertium reads its input as running text: a line break is a blank that transfer rules may move
        # (en-eo put one inside the next sentence: 516 lines out for 512 in). Each sentence is a paragraph of
        # its own, after a paragraph holding only "." (every sentence then starts where a sentence ended, and
        # the separators show that output and input line up).
        text = "".join(".\n\n" + _LINE_BREAKS.sub(" ", sentence) + "\n\n" for sentence in sentences)
        done = subprocess.run([*self.command, "-u", mode], input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0:
            raise ApertiumError(f"apertium -u {mode} failed (exit {done.returncode}): "
                                f"{done.stderr.decode('utf-8', 'replace').strip()[-500:]}")
        paragraphs = done.stdout.decode("utf-8").split("\n\n")
        if paragraphs and not paragraphs[-1].strip():
            paragraphs.pop()
        translations = [text.strip() for text in paragraphs[1::2]]
        if (len(paragraphs) != 2 * len(sentences) or any(sep.strip() != "." for sep in paragraphs[0::2])
                or any("\n" in text or not text for text in translations)):
            return None
        return translations

    def translate(self, sentences: Sequence[str], targets: Sequence[str]) -> list[str]:
        """Translate ``sentences[i]`` into ``targets[i]``; one Apertium process per target language."""
        if len(sentences) != len(targets):
            raise ValueError(f"{len(sentences)} sentences but {len(targets)} target languages")
        outputs = [""] * len(sentences)
        by_target: dict[str, list[int]] = {}
        for i, (sentence, target) in enumerate(zip(sentences, targets)):
            if sentence.strip():
                by_target.setdefault(target, []).append(i)
        for target, indices in by_target.items():
            for i, text in zip(indices, self._run(self.modes[target], [sentences[i] for i in indices])):
                outputs[i] = text
        return outputs
