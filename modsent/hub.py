"""Models named by Hugging Face hub id, wherever a model path is accepted.

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
from pathlib import Path

from modsent.errors import ModsentError, first_line

__all__ = ["parse_hub_id", "hub_model_dir"]

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
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    parsed = parse_hub_id(value)
    if parsed is None:
        raise error(f"{value}: neither a local model directory nor a hub id (org/name[@revision])")
    repo_id, revision = parsed
    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except LocalEntryNotFoundError:
        fetch = f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")
        raise error(f"{value}: no such local directory, and as a hub id it is not in the Hugging Face cache while "
                    f"the hub cannot be reached (HF_HUB_OFFLINE or no network); fetch it ahead of time on a machine "
                    f"with access (`{fetch}`, with the same HF_HOME), or give a local directory") from None
    except (HFValidationError, OSError, ValueError) as err:  # unknown repo, revision or network failure
        raise error(f"{value}: no such local directory, and the Hugging Face hub has no such model "
                    f"({first_line(err)})") from None
