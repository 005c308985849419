"""Models and evaluation datasets named by Hugging Face hub id, wherever a path is accepted.

``sentence-transformers/LaBSE`` or ``intfloat/multilingual-e5-small@<revision>`` resolves through the
standard hub cache (``huggingface_hub``: ``HF_HOME``/``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are
honoured) to the snapshot directory, which every stage then reads as a local model directory. A local
path always wins: a name is taken for a hub id only when no such file or directory exists. Offline (a
cluster's compute nodes, every test), an id that is not in the cache fails with one line saying how to
fetch it ahead of time.

>>> hub_model_dir("sentence-transformers/LaBSE", ModsentError)  # doctest: +SKIP
PosixPath('/home/me/.cache/huggingface/hub/models--sentence-transformers--LaBSE/snapshots/…')
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from modsent.errors import ModsentError, first_line

__all__ = ["parse_hub_id", "hub_model_dir", "hub_dataset_files", "dataset_card_configs", "HubDatasetError"]

# org/name, optionally @revision (a branch, tag or commit); both parts as the hub allows them.
_HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?")


def parse_hub_id(value: str | os.PathLike) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` when ``value`` reads as a hub id and names nothing on disk, else ``None``."""
    text = os.fspath(value)
    match = _HUB_ID.fullmatch(text)
    if match is None or Path(text).exists() or text.startswith(("./", "../")):
        return None
    return match["repo"], match["revision"]


def hub_model_dir(value: str | os.PathLike, error: type[ModsentError]) -> Path:
    """The local snapshot directory of the hub model ``value`` (downloaded unless ``HF_HUB_OFFLINE``)."""
    repo_id, revision = _parsed(value, error, "model directory")
    return _snapshot(value, repo_id, revision, "model", None, error)


class HubDatasetError(ModsentError):
    """A hub dataset is not cached (offline), unknown, or has no files for the requested config and split."""


def hub_dataset_files(value: str | os.PathLike, configs: Sequence[str] | None,
                      split: str = "test") -> dict[str, list[Path]]:
    """The cached data files of each of ``configs``' ``split`` in the hub dataset ``value`` (``org/name[@revision]``);
    ``None``: every config the card lists with that split (its all-languages ``default`` only when alone).

    Which files those are comes from the dataset card's ``configs`` (the hub's convention for datasets
    without a loading script, as ``datasets.load_dataset`` reads it); a card without them falls back to
    the usual layouts ``CONFIG/SPLIT*`` and ``data/CONFIG/SPLIT*``. The card is read once and only the
    files asked for are fetched, in one download.

    >>> hub_dataset_files("mteb/sts17-crosslingual-sts", ["en-de"])  # doctest: +SKIP
    {'en-de': [PosixPath('…/hub/datasets--mteb--sts17-crosslingual-sts/snapshots/…/en-de/test.jsonl.gz')]}
    """
    repo_id, revision = _parsed(value, HubDatasetError, "file or directory")
    card = dataset_card_configs(value)
    if configs is None:
        configs = [name for name, splits in card.items() if split in splits]
        if len(configs) > 1 and "default" in configs:  # the card's all-languages config repeats the others
            configs.remove("default")
        if not configs:
            raise HubDatasetError(f"{value}: its dataset card lists no config with a '{split}' split; name the configs")
    patterns = {config: card.get(config, {}).get(split) or [f"{config}/{split}*", f"data/{config}/{split}*"]
                for config in configs}
    root = _snapshot(value, repo_id, revision, "dataset", [p for each in patterns.values() for p in each],
                     HubDatasetError)
    found = {}
    for config, globs in patterns.items():
        found[config] = sorted({path for pattern in globs for path in root.glob(pattern) if path.is_file()})
        if not found[config]:
            raise HubDatasetError(f"{value}: no '{split}' files of config '{config}' in the Hugging Face cache (looked "
                                  f"for {', '.join(globs)}); fetch them ahead of time (`hf download {repo_id} "
                                  "--repo-type dataset`, with the same HF_HOME), or check the config name against the "
                                  "dataset card")
    return found


def dataset_card_configs(value: str | os.PathLike) -> dict[str, dict[str, list[str]]]:
    """``{config: {split: [file patterns]}}`` from the ``configs`` of the hub dataset ``value``'s card (README.md)."""
    import yaml

    repo_id, revision = _parsed(value, HubDatasetError, "file or directory")
    card = _snapshot(value, repo_id, revision, "dataset", ["README.md"], HubDatasetError) / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if not text.startswith("---"):
        return {}
    try:
        header = yaml.safe_load(text.split("---", 2)[1]) or {}
    except (yaml.YAMLError, IndexError) as err:
        raise HubDatasetError(f"{card}: the dataset card's YAML header does not parse ({first_line(err)})") from None
    found: dict[str, dict[str, list[str]]] = {}
    for entry in header.get("configs") or []:
        data_files = entry.get("data_files", [])
        if isinstance(data_files, (str, list)) and not any(isinstance(item, dict) for item in _listed(data_files)):
            data_files = [{"split": "train", "path": data_files}]  # the card's shorthand for one train split
        found[str(entry.get("config_name", "default"))] = {
            str(item["split"]): _listed(item["path"]) for item in data_files if isinstance(item, dict)}
    return found


def _listed(value: str | list) -> list:
    return [value] if isinstance(value, str) else list(value)


def _parsed(value: str | os.PathLike, error: type[ModsentError], what: str) -> tuple[str, str | None]:
    parsed = parse_hub_id(value)
    if parsed is None:
        raise error(f"{value}: neither a local {what} nor a hub id (org/name[@revision])")
    return parsed


def _snapshot(value: str | os.PathLike, repo_id: str, revision: str | None, repo_type: str,
              allow_patterns: list[str] | None, error: type[ModsentError]) -> Path:
    """``snapshot_download`` (offline: the cached snapshot) with its failures as one line naming ``value``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    kind = "dataset" if repo_type == "dataset" else "model"
    try:
        return Path(snapshot_download(repo_id, revision=revision, repo_type=repo_type, allow_patterns=allow_patterns))
    except LocalEntryNotFoundError:
        fetch = (f"hf download {repo_id}" + (f" --repo-type {repo_type}" if repo_type != "model" else "")
                 + (f" --revision {revision}" if revision else ""))
        raise error(f"{value}: no such local path, and as a hub {kind} id it is not in the Hugging Face cache while "
                    f"the hub cannot be reached (HF_HUB_OFFLINE or no network); fetch it ahead of time on a machine "
                    f"with access (`{fetch}`, with the same HF_HOME), or give a local path") from None
    except (HFValidationError, OSError, ValueError) as err:  # unknown repo, revision or network failure
        raise error(f"{value}: no such local path, and the Hugging Face hub has no such {kind} "
                    f"({first_line(err)})") from None
