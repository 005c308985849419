"""A stand-in training rank for the orphan tests: follows its launcher as every modsent rank does,
records its pid, holds its job directory's lock (rank 0) and trains (sleeps) for two minutes."""

import os
import sys
import time
from pathlib import Path

from modsent.dirlock import hold_directory
from modsent.lifetime import follow_launcher

follow_launcher()
out = Path(sys.argv[1])
if os.environ.get("RANK") == "0":
    hold_directory(out / "job", "sleeper rank")
(out / f"rank{os.environ.get('RANK')}.pid").write_text(str(os.getpid()))
time.sleep(120)
