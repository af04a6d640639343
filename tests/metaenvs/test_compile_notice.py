"""The first use of a family says it is compiling; a cached second use is quiet."""

import os
import subprocess
import sys

SCRIPT = """
import numpy as np, metaenvs
core = metaenvs.make_core("rps", horizon=3)
state = core.reset(2, 0)
core.step(state, np.zeros((2, 2), dtype=np.int64))
"""


def _stderr(cache_dir) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stderr


def test_a_compile_is_announced_once_per_module_and_a_cache_load_is_quiet(tmp_path):
    first = _stderr(tmp_path)
    lines = [line for line in first.splitlines() if "compiling the Numba kernels" in line]
    modules = [line.split(" of ")[1].split(" ")[0] for line in lines]
    assert "metaenvs._rng" in modules and "metaenvs.games._matrix_kernels" in modules
    assert len(modules) == len(set(modules)), "a module was announced twice"
    assert "compiling" not in _stderr(tmp_path)
