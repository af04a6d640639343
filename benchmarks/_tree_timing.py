"""Time a learner of this checkout against the same learner of an older commit.

Shared by the learner benchmarks (``bench_peer_learner.py``, ``bench_comm_learner.py``):
:func:`export` writes ``src/`` of a commit into a folder with ``git archive``;
:func:`time_tree` runs a timing script in a fresh one-thread interpreter (torch, Numba and
BLAS threads 1) with that ``src/`` first on ``PYTHONPATH`` and returns the list of
seconds the script prints as JSON on its last line.  Imported as a sibling module (the
scripts' folder is on ``sys.path`` when they run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def export(ref: str, into: Path) -> Path:
    """``src/`` of commit ``ref`` under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def time_tree(src: Path, timer: str, settings: dict[str, Any]) -> list[float]:
    """Seconds printed by ``timer`` (run as ``python -c timer SETTINGS_JSON``) on ``src``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", timer, json.dumps(settings)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])
