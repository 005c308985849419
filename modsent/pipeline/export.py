"""``modsent export RUN_DIR OUT``: a run's modular model as one self-contained, movable directory.

A run's ``model/modular.json`` points at encoders wherever they lie — the run's own artifacts,
or imports under ``~/.cache/modsent`` — so it cannot be copied to another machine. The export
copies every encoder and adapter under ``OUT`` (the layout of :mod:`modsent.models.modular`),
stores an encoder that several languages share once (languages are grouped by the content
digest of the encoder's files), writes ``modular.json`` with paths relative to ``OUT``, and adds a
Hugging Face–style model card (``README.md``): languages, base models and their licences,
training data, the run's evaluation table and how to load the model.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from modsent.errors import ModsentError
from modsent.dirlock import claim_output
from modsent.io import (
    artifact_files,
    artifact_paths,
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    content_digest,
    relative_path,
)
from modsent.output_checks import check_not_overwriting, no_space_as_error
from modsent.languages import resolve
from modsent.models.modular import MODULAR_FILE, read_modular_manifest, write_modular_manifest
from modsent.pipeline.layout import RunLayout
from modsent.sources import PACKAGES, PYPI_PREFIX
from modsent.progress import Progress

__all__ = ["ExportError", "export_model"]

ADAPTER_CONFIG = "adapter_config.json"


class ExportError(ModsentError):
    pass


def export_model(run_dir: str | os.PathLike, output: str | os.PathLike) -> Path:
    """Write the run's modular model to ``output`` (atomically: complete or absent) and return it."""
    run = Path(run_dir)
    model = RunLayout(run).modular_model()
    if not (model / MODULAR_FILE).is_file():
        raise ExportError(f"{run} has no model/{MODULAR_FILE}: not a run directory, or its evaluate stage has not "
                          "run yet (it assembles the modular model); run `modsent run CONFIG` first")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ExportError(f"{output} exists and is not an empty directory; choose a new output directory")
    pivot, modules = read_modular_manifest(model)
    for code, module in modules.items():
        for kind, path in (("encoder", module.encoder), ("adapter", module.adapter)):
            if path is not None and not path.is_dir():
                raise ExportError(f"{model / MODULAR_FILE}: the {kind} of {code}, {path}, does not exist")
    check_not_overwriting({"OUT": output}, {"RUN_DIR": run, **{f"the {kind} of {code}": path
                                                               for code, module in modules.items()
                                                               for kind, path in (("encoder", module.encoder),
                                                                                  ("adapter", module.adapter))}})
    # Pivot first, so a shared encoder is stored under the first language (in run order) that uses it.
    order = [pivot] + sorted(code for code in modules if code != pivot)
    stored: dict[str, str] = {}  # content digest -> encoders/<name>
    encoder_of: dict[str, str] = {}
    for code in order:
        digest = content_digest(artifact_files(modules[code].encoder))
        encoder_of[code] = stored.setdefault(digest, f"encoders/{code}")
    copies = [(modules[code].encoder, encoder_of[code]) for code in order if encoder_of[code] == f"encoders/{code}"]
    copies += [(modules[code].adapter, f"adapters/{code}") for code in order if modules[code].adapter is not None]
    config = _run_config(run)
    claim_output(output, "modsent export")  # and remove what a killed export of it left
    with no_space_as_error(output, ExportError), atomic_directory(output) as staging, \
            Progress(sum(_size(source) for source, _ in copies), "export", "B") as progress:
        for source, name in copies:
            _copy_tree(source, staging / name, progress)
        layout: dict[str, tuple[str, str | None]] = {}
        for code in order:
            adapter = modules[code].adapter
            if adapter is not None:
                _relink_adapter(staging / "adapters" / code, staging / encoder_of[code])
            layout[code] = (str(staging / encoder_of[code]),
                            None if adapter is None else str(staging / "adapters" / code))
        write_modular_manifest(staging, pivot, layout)
        atomic_write_text(staging / "README.md", model_card(run, config, pivot, order, encoder_of, modules))
    return output


COPY_CHUNK = 16 << 20


def _size(directory: Path) -> int:
    return sum(f.stat().st_size for f in artifact_paths(directory))


def _copy_tree(source: Path, target: Path, progress: Progress) -> None:
    """``shutil.copytree`` chunk by chunk: progress moves within a multi-GB weights file, and a failed write
    keeps its errno (copytree folds every file's error into the text of one ``shutil.Error``)."""
    for file in artifact_paths(source):
        copy = target / file.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "rb") as reader, open(copy, "wb") as writer:
            for chunk in iter(lambda: reader.read(COPY_CHUNK), b""):
                writer.write(chunk)
                progress.update(len(chunk))
        shutil.copystat(file, copy)


def _relink_adapter(adapter_dir: Path, encoder_dir: Path) -> None:
    """The adapter's record of its base encoder names the copy beside it (relative), not the run's path."""
    path = adapter_dir / ADAPTER_CONFIG
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data.get("base"), dict):
        data["base"]["path"] = relative_path(encoder_dir, adapter_dir)
        atomic_write_json(path, data)


def _run_config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _licence(source: str | None) -> str:
    """A base model's licence: a pypi: package's declared licence, or a model card's ``license:`` line."""
    if not source:
        return "not stated"
    if source.startswith(PYPI_PREFIX):
        package = PACKAGES.get(source[len(PYPI_PREFIX):].split("/")[0])
        if package is None:
            return "not stated"
        try:
            meta = importlib.metadata.metadata(package)
        except importlib.metadata.PackageNotFoundError:
            return f"see the PyPI package {package}"
        licence = meta.get("License-Expression") or meta.get("License") or next(
            (c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")), None)
        return f"{licence} (as declared by the PyPI package {package})" if licence else \
            f"not declared by the PyPI package {package}"
    card = Path(source) / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            for line in text.split("---", 2)[1].splitlines():
                if line.strip().lower().startswith("license:"):
                    return line.split(":", 1)[1].strip()
    return f"not stated in {source}"


def _base_of(config: dict[str, Any], code: str) -> str | None:
    return (config.get("models") or {}).get(code, config.get("source_model"))


def _stages_of(config: dict[str, Any], code: str) -> list[str]:
    stages = config.get("stages") or []
    limits = config.get("stage_languages") or {}
    return [s for s in stages if s in ("vocab", "adapt", "train", "align") and (s not in limits or code in limits[s])]


def model_card(run: Path, config: dict[str, Any], pivot: str, order: list[str], encoder_of: dict[str, str],
               modules: dict[str, Any]) -> str:
    """The README.md of an exported model (Hugging Face model-card layout: YAML front matter, then sections)."""
    langs = [resolve(code) for code in order]
    bases = sorted({b for b in (_base_of(config, code) for code in order) if b})
    iso = sorted({lang.iso639_1 or lang.iso639_3 for lang in langs})
    lines = ["---", "language:", *[f"- {code}" for code in iso], "library_name: sentence-transformers",
             "pipeline_tag: sentence-similarity", "tags:", "- modsent", "- modular-sentence-encoder",
             "- sentence-transformers", "---", "",
             "# Modular sentence encoder", "",
             f"One sentence encoder per language; every language but the pivot ({pivot}) has a parallel adapter "
             "that maps its embeddings into the pivot's space (Huang et al., 2024, *Modular Sentence Encoders*). "
             f"Exported with `modsent export` from the run `{run.name}`.", "",
             "## Languages", "",
             "| language | name | encoder | base model | stages trained in the run | cross-lingual adapter |",
             "|---|---|---|---|---|---|"]
    for lang in langs:
        stages = _stages_of(config, lang.code)
        trained = [s for s in stages if s != "align"]
        lines.append(f"| {lang.code} | {lang.name} | `{encoder_of[lang.code]}` | {_base_of(config, lang.code) or '-'} "
                     f"| {', '.join(trained) or 'none (frozen)'} | "
                     f"{'`adapters/' + lang.code + '`' if modules[lang.code].adapter is not None else '- (pivot)'} |")
    shared = {path: [c for c in order if encoder_of[c] == path] for path in set(encoder_of.values())}
    shared = {path: codes for path, codes in shared.items() if len(codes) > 1}
    if shared:
        lines += ["", "Encoders stored once and shared: " + "; ".join(
            f"`{path}` by {', '.join(codes)}" for path, codes in sorted(shared.items())) + "."]
    lines += ["", "## Base models and licences", ""]
    lines += [f"- `{base}`: licence {_licence(base)}" for base in bases] or ["- not recorded (no config.yaml in the run)"]
    lines += ["", "The licence of each base model applies to the encoders derived from it.", "",
              "## Training data", ""]
    data = [("paraphrase corpus", config.get("corpus")), ("parallel text (alignment)", config.get("parallel_text"))]
    data += [(f"monolingual text ({code})", path) for code, path in (config.get("monolingual_text") or {}).items()]
    lines += [f"- {label}: `{value}`" for label, value in data if value] or ["- not recorded"]
    if "translate" in (config.get("stages") or []):
        lines.append("- the paraphrase corpus was machine-translated into the target languages in the run "
                     "(`modsent translate`)")
    lines += ["", "## Evaluation", ""]
    summary = run / "summary.md"
    lines += [summary.read_text(encoding="utf-8").rstrip(), "", "All tables and heatmaps are in the run's `reports/`."] \
        if summary.is_file() else ["The run has no evaluation summary (`summary.md`)."]
    example = next((c for c in order if c != pivot and modules[c].adapter is not None), pivot)
    lines += ["", "## Usage", "", "With modsent installed (`pip install modsent`):", "", "```python",
              "from modsent.models.modular import ModularEncoder", "",
              'model = ModularEncoder("path/to/this/directory")',
              f'embeddings = model.encode(["A sentence in {resolve(example).name}."], lang="{example}")'
              "  # aligned to the pivot's space",
              f'own = model.encode(["..."], lang="{example}", aligned=False)  # the language encoder alone', "```", "",
              "With sentence-transformers: the pivot's encoder is a plain sentence-transformers directory; "
              "any other language is exported (its encoder with its adapter attached) first:", "", "```python",
              "from sentence_transformers import SentenceTransformer", "",
              f'pivot = SentenceTransformer("path/to/this/directory/{encoder_of[pivot]}")']
    if example != pivot:
        lines += [f'ModularEncoder("path/to/this/directory").export_sentence_transformer("{example}", "{example}-st")',
                  f'aligned = SentenceTransformer("{example}-st", trust_remote_code=True)  # needs modsent installed']
    lines += ["```", "", "Or from the command line: `modsent encode --model path/to/this/directory --lang "
              f"{example} --input sentences.txt --output embeddings.npy`.", ""]
    return "\n".join(lines)
