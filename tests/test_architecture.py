"""The import rules of the layout (ARCHITECTURE: stages on a shared floor, one orchestrator on top).

- The shared floor (config, io, languages, hub, sources, corpus/, models/, …) imports no stage, no
  pipeline, no cli and no test helpers.
- A stage imports the floor, itself and the shared training core (``train/``), never another stage.
- Nothing below ``pipeline/`` imports ``pipeline`` or ``cli``.
Imports inside functions count: a lazy import still runs the arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "modsent"
STAGES = {"translate", "vocab", "adapt", "train", "align", "evaluate", "mine"}
TRAINING_CORE = "train"
TOP = {"pipeline", "cli"}
TEST_HELPERS = "testing"


def part(module: str) -> str:
    """``modsent.align.stage`` -> ``align``; ``modsent.io`` -> ``io``."""
    return module.split(".")[1] if module.count(".") else ""


def imports() -> list[tuple[str, str, int]]:
    """(importing file, imported modsent module, line) for every import in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                found += [(str(relative), name, node.lineno) for name in names[:1] if name.startswith("modsent.")]
            elif isinstance(node, ast.Import):
                found += [(str(relative), alias.name, node.lineno) for alias in node.names
                          if alias.name.startswith("modsent.")]
    return found


def allowed(importer: str, imported: str) -> bool:
    source = Path(importer).parts[1].removesuffix(".py")
    target = part(imported)
    if source in TOP or source == target or not target:
        return True
    if target in TOP:
        return False
    if source == TEST_HELPERS:
        return True  # tiny models and synthetic data are built with the stages' own code
    if target == TEST_HELPERS:
        return False
    if source in STAGES:
        return target not in STAGES or target == TRAINING_CORE
    return target not in STAGES  # the shared floor


def test_no_import_runs_back_up_or_sideways():
    found = imports()
    assert len(found) > 300  # the walk really sees the package's imports
    wrong = [f"{importer}:{line} imports {imported}" for importer, imported, line in found
             if not allowed(importer, imported)]
    assert wrong == []


def test_the_rules_reject_what_they_should():
    assert not allowed("modsent/mine/stage.py", "modsent.pipeline.execute")
    assert not allowed("modsent/sources.py", "modsent.evaluate.runner")
    assert not allowed("modsent/align/stage.py", "modsent.evaluate.runner")
    assert not allowed("modsent/models/encoder.py", "modsent.testing")
    assert allowed("modsent/align/stage.py", "modsent.train.trainer")
    assert allowed("modsent/pipeline/plan.py", "modsent.align.stage")


def test_a_module_over_500_lines_says_why_in_its_docstring():
    over = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > 500 and "One module, over 500 lines, because" not in docstring:
            over.append(f"{path.relative_to(PACKAGE.parent)} ({text.count(chr(10))} lines)")
    assert over == []
