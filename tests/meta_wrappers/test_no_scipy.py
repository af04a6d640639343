"""The main job's kernels compile without SciPy: it is in no dependency list.

Numba's ``np.dot`` (and any other BLAS call) needs SciPy; a fresh install of the README's
first command does not have it, while the test extra brings it in through mpe2.  This
compiles the learning-peer chain with an empty cache and SciPy made unimportable.
"""

import os
import subprocess
import sys

SCRIPT = """
import sys
class NoScipy:
    def find_spec(self, name, path=None, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError("scipy is blocked in this test")
sys.meta_path.insert(0, NoScipy())
import numpy as np
from meta_wrappers.peers import PeerChain, PeerChainConfig
for model in ("tabular", "mlp"):
    config = PeerChainConfig(game="ipd", k=2, length=1, horizon=3, peer_model=model)
    chain = PeerChain(config)
    state = chain.reset(n_chains=2, seed=0)
    updates = 0
    for _ in range(2 * 2 * 3):
        out = chain.step(state, np.zeros((2, 2), dtype=np.int64))
        updates += out.batch is not None
    assert updates >= 1, "the peers never updated: the fit was not reached"
assert "scipy" not in sys.modules
print("OK")
"""


def test_peer_kernels_compile_and_run_without_scipy(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)  # empty: everything compiles here
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr[-3000:]
