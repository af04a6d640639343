"""Learning-peers chain: throughput of the batched chain and of its Gymnasium face.

Times, for IPD with the paper's chain (H = 150, L = 7, peers updating every K):

- ``PeerChain.step`` at (C chains, K trajectories) = (1, 1), (5, 64) (the paper's 5
  threads x K = 64) and (64, 64), peer updates included (they run every H rounds);
- the bare matrix-game core (``metaenvs.make_core("ipd")``) at the same C x K copies,
  to show what sampling the peers, recording trajectories and the updates cost;
- the single-agent Gymnasium face ``metaenvs/ipd-peers-v0`` (one trajectory at a time);

and the Numba compile time apart (first reset + step in a fresh interpreter, with the
on-disk cache as a user's second run finds it).  Rates are copy-steps/s: rounds of one
trajectory per second.  This is a measurement, not a test: nothing asserts on time.

Usage::

    python benchmarks/bench_peers.py            # about a minute
    python benchmarks/bench_peers.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import metaenvs
from meta_wrappers.peers import PeerChain, PeerChainConfig
from metaenvs.bench import format_rate, machine_info

SIZES = ((1, 1), (5, 64), (64, 64))
RESULTS_DIR = Path(__file__).resolve().parent / "results"
FIRST_CALL = (
    "import time; t = time.perf_counter(); import numpy as np; "
    "from meta_wrappers.peers import PeerChain, PeerChainConfig; "
    "c = PeerChain(PeerChainConfig(k=2, horizon=2, length=1)); s = c.reset(1, 0); "
    "[c.step(s, np.zeros((1, 2), dtype=np.int64)) for _ in range(4)]; "
    "print(time.perf_counter() - t)"
)


def best_rate(run, steps: int, copies: int, repeats: int) -> float:
    """Best copy-steps/s of ``repeats`` timings of ``run(steps)``."""
    run(151)  # warm up: one whole trajectory batch, so the update kernels are compiled too
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        run(steps)
        best = min(best, time.perf_counter() - tick)
    return steps * copies / best


def time_chain(chains: int, k: int, steps: int, repeats: int) -> float:
    chain = PeerChain(PeerChainConfig(game="ipd", k=k))
    state = chain.reset(chains, 0)
    actions = np.random.default_rng(0).integers(0, 2, size=(chains, k))

    def run(n: int) -> None:
        for _ in range(n):
            chain.step(state, actions)

    return best_rate(run, steps, chains * k, repeats)


def time_core(copies: int, steps: int, repeats: int) -> float:
    core = metaenvs.make_core("ipd")
    state = core.reset(copies, 0)
    actions = np.random.default_rng(0).integers(0, 2, size=(copies, 2))

    def run(n: int) -> None:
        for _ in range(n):
            core.step(state, actions)

    return best_rate(run, steps, copies, repeats)


def time_gym(steps: int, repeats: int) -> float:
    import gymnasium

    env = gymnasium.make("metaenvs/ipd-peers-v0", k=8)
    env.reset(seed=0)

    def run(n: int) -> None:
        for _ in range(n):
            _, _, terminated, truncated, _ = env.step(0)
            if terminated or truncated:
                env.reset()

    return best_rate(run, steps, 1, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    steps, repeats = (150, 1) if ns.quick else (1200, 3)
    rows = []
    for chains, k in SIZES:
        chain = time_chain(chains, k, steps, repeats)
        core = time_core(chains * k, steps, repeats)
        rows.append({"chains": chains, "k": k, "chain": chain, "core": core})
    gym = time_gym(steps * 2, repeats)
    compile_s = float(subprocess.check_output([sys.executable, "-c", FIRST_CALL], text=True))
    print("IPD, H = 150, L = 7; copy-steps/s (rounds of one trajectory per second)")
    print(f"{'C x K':>8} {'PeerChain':>12} {'bare core':>12} {'ratio':>7}")
    for r in rows:
        ratio = r["chain"] / r["core"]
        cell = f"{r['chains']}x{r['k']}"
        print(f"{cell:>8} {format_rate(r['chain']):>12} {format_rate(r['core']):>12} {ratio:>7.2f}")
    print(f"Gymnasium face metaenvs/ipd-peers-v0 (k=8): {format_rate(gym)} steps/s")
    print(f"first reset + steps in a fresh interpreter (cached kernels): {compile_s:.2f} s")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / "bench_peers.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "bench_peers",
                "date": dt.datetime.now(dt.timezone.utc).isoformat(),
                "machine": machine_info(),
                "rows": rows,
                "gymnasium_steps_per_s": gym,
                "first_call_s": compile_s,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
