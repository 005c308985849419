"""The files a non-editable install carries besides code, found in this one place.

The example configs and DeepSpeed configs stay in the checkout's top-level ``configs/`` and
``ds_configs/``, where users look for them; setup.cfg's ``package_dir`` installs those folders as the
packages ``modsent.resources.configs`` and ``modsent.resources.ds_configs`` (each holds an
``__init__.py`` for that reason: setuptools' editable finder only maps a folder that is a regular
package). A wheel and an editable install therefore both find them through importlib.resources.
A source tree used without being installed (on ``PYTHONPATH``: ``ray job submit --working-dir .``, a node's
``.deepspeed_env``) finds them too: this package's ``__path__`` ends with the folder above ``modsent/``, searched
after the package's own folder, where an install puts them. The cost rates of ``modsent plan`` are
``modsent/data/costs.yaml``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from modsent.errors import ModsentError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["BundledConfigError", "ds_configs", "bundled_configs", "find_bundled_config"]

__path__.append(str(Path(__file__).resolve().parents[2]))  # noqa: F821 (a package's own __path__)

#: Each kind of bundled config: its package and file suffix, in listing order.
_KINDS = {"example": ("modsent.resources.configs", ".yaml"), "deepspeed": ("modsent.resources.ds_configs", ".json")}


class BundledConfigError(ModsentError):
    """A name that is none of the configs the package carries."""


def _walk(folder: Traversable, suffix: str, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir() and entry.name != "__pycache__":
            found.update(_walk(entry, suffix, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(suffix):
            found[prefix + entry.name[: -len(suffix)]] = entry
    return found


def _configs(kind: str) -> dict[str, Traversable]:
    package, suffix = _KINDS[kind]
    return _walk(resources.files(package), suffix)


def ds_configs() -> dict[str, Traversable]:
    """The DeepSpeed configs by name (``zero0`` … ``zero3``, ``zero3_offload``): the checkout's ``ds_configs/``."""
    return _configs("deepspeed")


def bundled_configs() -> dict[str, tuple[str, Traversable]]:
    """Every bundled config by name, with its kind (``example`` or ``deepspeed``): what ``modsent configs`` serves."""
    return {name: (kind, file) for kind in _KINDS for name, file in _configs(kind).items()}


def find_bundled_config(name: str) -> Traversable:
    """The bundled config ``name`` (with or without its ``.yaml``/``.json``); an unknown name names the close ones."""
    import difflib

    configs = bundled_configs()
    stem = next((name[: -len(suffix)] for _, suffix in _KINDS.values() if name.endswith(suffix)), name)
    if stem in configs:
        return configs[stem][1]
    close = difflib.get_close_matches(stem, configs, n=5, cutoff=0.5)
    hint = f"close names: {', '.join(close)}" if close else "none is close"
    raise BundledConfigError(f"no bundled config named '{name}'; {hint} (all of them: modsent configs list)")
