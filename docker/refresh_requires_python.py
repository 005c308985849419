"""Write docker/requires-python.json: the Requires-Python of every pin in constraints.txt, from its metadata.

    .venv/bin/python docker/refresh_requires_python.py      # after changing constraints.txt (needs the index)

pip resolves every pin without installing it (``--dry-run --report``) and the report carries each
distribution's metadata: a wheel's METADATA, or for a pin published only as an sdist (deepspeed) the
metadata its build backend prepares (``--no-build-isolation``: with the project's installed torch, no download).
tests/test_dockerfile.py checks the image's Python against this file, so no test downloads anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "docker" / "requires-python.json"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                        "--no-build-isolation", "--prefer-binary", "--quiet", "--report", str(report),
                        "-r", str(REPO / "constraints.txt")], check=True)
        installs = json.loads(report.read_text())["install"]
    pins = {canonicalize_name(item["metadata"]["name"]): {
        # The pin's version: here torch resolves to its local +cpu build, whose Requires-Python the CUDA one shares.
        "version": Version(item["metadata"]["version"]).public,
        "requires_python": item["metadata"].get("requires_python"),
        "from": "wheel" if item["download_info"]["url"].endswith(".whl") else "sdist",
    } for item in installs}
    SNAPSHOT.write_text(json.dumps(dict(sorted(pins.items())), indent=1) + "\n")
    print(f"{len(pins)} pins -> {SNAPSHOT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
