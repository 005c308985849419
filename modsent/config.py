"""Typed stage configs: one dataclass per stage, loaded from YAML, overridable from the command line.

>>> from dataclasses import dataclass
>>> @dataclass
... class Optim:
...     lr: float = 2e-5
>>> @dataclass
... class Stage:
...     name: str
...     optim: Optim = field(default_factory=Optim)
>>> load_config(Stage, overrides=["name=demo", "optim.lr=1e-4"]).optim.lr
0.0001

Errors name the key, the file it came from and, for unknown keys, the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import os
import types
from dataclasses import MISSING, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from modsent.errors import ModsentError
from modsent.io import atomic_write_text, sha256_json

__all__ = ["ConfigError", "load_config", "from_dict", "to_dict", "dump_config", "config_hash", "field"]

T = TypeVar("T")


class ConfigError(ModsentError):
    """A config value is missing, unknown or of the wrong type; the message says where and how to fix it."""


def _where(source: str | None) -> str:
    return f" in {source}" if source else ""


def did_you_mean(key: str, valid: Iterable[str], cutoff: float = 0.5) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``valid`` to a mistyped ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str | None) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (YAML scalars, nested dataclasses)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        candidates = [option for option in options if option is not type(None)]
        errors = []
        for option in candidates:
            try:
                return _convert(value, option, key, source)
            except ConfigError as err:
                errors.append(err)
        if len(candidates) == 1:  # Optional[X]: X's own message says what was expected
            raise ConfigError(f"{errors[0]} (or null)") from None
        raise ConfigError(f"'{key}'{_where(source)}: {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                f"'{key}'{_where(source)}: {value!r} is not one of {', '.join(map(repr, allowed))}"
                + (did_you_mean(str(value), map(str, allowed)) if isinstance(value, str) else "")
            )
        return value
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, str) and origin is not None:
            # `langs=deu_Latn,fra_Latn` on the command line is a list of one or more items.
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{key}'{_where(source)}: expected a list, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(item, item_tp, f"{key}[{i}]", source) for i, item in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}'{_where(source)}: expected a mapping, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        key_tp, val_tp = args if args else (Any, Any)
        return {
            _convert(k, key_tp, f"{key}.{k}", source): _convert(v, val_tp, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}'{_where(source)}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, source=source, prefix=f"{key}.")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = [member.value for member in tp]
            raise ConfigError(f"'{key}'{_where(source)}: {value!r} is not one of {allowed}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}'{_where(source)}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"'{key}'{_where(source)}: expected an integer, got {value!r}"
                          + (" (a whole number, without a decimal point)" if isinstance(value, float) else ""))
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            # YAML 1.1 reads `1e-4` as a string; accept any float literal.
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"'{key}'{_where(source)}: expected a number, got {value!r}")
        # No setting means anything with nan or inf (lr=.nan trains on NaN, epochs=.inf never ends).
        if not math.isfinite(number):
            raise ConfigError(f"'{key}'{_where(source)}: {value!r} is not a finite number")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"'{key}'{_where(source)}: expected a string, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, os.PathLike)):
            return Path(value)
        raise ConfigError(f"'{key}'{_where(source)}: expected a path, got {value!r}")
    raise ConfigError(f"'{key}'{_where(source)}: unsupported config type {_type_name(tp)}")


def from_dict(cls: type[T], data: dict[str, Any], source: str | None = None, prefix: str = "") -> T:
    """Build the dataclass ``cls`` from a plain mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source or 'config'}: expected a mapping at the top level, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    for old, new in getattr(cls, "RENAMED_KEYS", {}).items():
        head, _, rest = old.partition(".")
        if head in data and (not rest or isinstance(data[head], dict) and rest in data[head]):
            raise ConfigError(f"key '{prefix}{old}'{_where(source)} was renamed to '{prefix}{new}': rename it (every "
                              "stage names its input model 'model', its output 'output_dir', its languages 'languages')")
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown key '{prefix}{key}'{_where(source)}{did_you_mean(str(key), known)}")
    kwargs = {}
    for name, fld in known.items():
        if name in data:
            value = data[name]
            if isinstance(value, dict) and fld.default_factory is not MISSING:
                default = fld.default_factory()
                if is_dataclass(default):
                    # A partial section overrides the field's own default (a recipe's trainer
                    # defaults), not the nested class's generic defaults.
                    value = deep_merge(to_dict(default), value)
            kwargs[name] = _convert(value, hints[name], f"{prefix}{name}", source)
        elif fld.default is MISSING and fld.default_factory is MISSING:
            raise ConfigError(f"missing required key '{prefix}{name}'{_where(source)} ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        # __post_init__ checks raise plain ValueErrors; say which file they came from.
        raise ConfigError(f"{source or 'config'}: {err}") from err


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, nested mappings merged key by key (a new copy; neither is changed)."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override '{dotted}': '{part}' is not a mapping")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``key.sub=value`` → (``key.sub``, value parsed as YAML, so ``3``, ``true``, ``[a, b]`` work)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' is not of the form key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


class _DuplicateKey(yaml.constructor.ConstructorError):
    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark):
        super().__init__(problem=f"key {key!r} given twice", problem_mark=again)
        self.key, self.first, self.again = key, first, again


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key stated twice in one mapping (PyYAML keeps the last silently).

    Keys brought in by a ``<<: *anchor`` merge may be overridden: that is what a merge is for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if first is not key_node.start_mark:
                    raise _DuplicateKey(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except _DuplicateKey as err:
        raise ConfigError(f"{path} line {err.again.line + 1}: key {err.key!r} is given twice (first on line "
                          f"{err.first.line + 1}); delete one of the two") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text (byte {err.object[err.start]:#04x}); save the config "
                          "as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
    return data or {}


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> T:
    """Load ``cls`` from a YAML file (optional) with ``key.sub=value`` overrides applied on top.

    Relative paths inside the file stay as written (they are resolved by the stage, relative to
    the working directory, as on the command line).
    """
    data = load_yaml(path) if path is not None else {}
    source = str(path) if path is not None else None
    override_list = list(overrides)
    # A key given twice on the command line takes the last value, as flags do: scripts append overrides to
    # a base command, and both values stand in the command the user typed (unlike a key repeated in a file).
    for text in override_list:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    if override_list:
        source = f"{source} (with command-line overrides)" if source else "command-line overrides"
    return from_dict(cls, data, source=source)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain YAML/JSON-serialisable mapping of a config dataclass (paths as strings); a field whose metadata says
    ``dumped: False`` (one a stage sets from another key) is left out."""

    def plain(value: Any) -> Any:
        if is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value) if f.metadata.get("dumped", True)}
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, enum.Enum):
            return value.value
        return value

    return plain(config)


def dump_config(config: Any, path: str | os.PathLike, header: str | None = None) -> None:
    """Write the resolved config as YAML (atomically), with an optional comment header."""
    text = yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    atomic_write_text(path, text)


def config_hash(config: Any, exclude: Iterable[str] = ()) -> str:
    """Hash of a config's values, leaving out top-level keys that do not change results (paths to logs…)."""
    data = to_dict(config)
    for key in exclude:
        data.pop(key, None)
    return sha256_json(data)


def replace(config: T, **changes: Any) -> T:
    """``dataclasses.replace`` re-exported so stages need one import for config work."""
    return dataclasses.replace(config, **changes)



def config_job_main(prog: str, description: str, config_class: type[T], run: Callable[[T], Any],
                    argv: list[str] | None = None) -> int:
    """The ``main`` of a job script: ``--config FILE.yaml key.sub=value …`` → ``run(config)``.

    Bad input (any :class:`~modsent.errors.ModsentError`) is one line on stderr and exit status 2.
    Used by the thin entry points in ``ray_jobs/``, which Ray ships without installing modsent.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", "-c", required=True, help="YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    try:
        run(load_config(config_class, args.config, args.overrides))
    except ModsentError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0
