"""Time JaxMARL's MPE (jit + vmap on CPU) for bench_particle.py; run in an env with jaxmarl.

Usage: ``python _jaxmarl_peer.py '{"env": "MPE_simple_spread_v3", "kwargs": {}, "batches":
[1, 64], "seconds": 0.5, "repeats": 3}'``; prints one JSON list of results.
Compile time (the first jitted call) is reported apart and excluded from throughput.
"""

from __future__ import annotations

import json
import sys
import time

import jax
import jaxmarl
import numpy as np
from _peer_timing import measure


def time_batch(env, batch: int, seconds: float, repeats: int) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    reset = jax.jit(jax.vmap(env.reset))
    step = jax.jit(jax.vmap(env.step))
    _, state = reset(keys)
    rng = np.random.default_rng(0)
    n_sets = 16
    actions = [
        {a: jax.numpy.asarray(rng.integers(0, 5, batch)) for a in env.agents} for _ in range(n_sets)
    ]
    t0 = time.perf_counter()
    _, state, _, _, _ = step(keys, state, actions[0])
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0

    def run(n: int) -> float:
        nonlocal state
        t = time.perf_counter()
        for k in range(n):
            _, state, _, _, _ = step(keys, state, actions[k % n_sets])
        jax.block_until_ready(state)
        return time.perf_counter() - t

    return {**measure(run, batch, len(env.agents), seconds, repeats), "compile_s": compile_s}


def main() -> int:
    args = json.loads(sys.argv[1])
    env = jaxmarl.make(args["env"], **args.get("kwargs", {}))
    out = [time_batch(env, b, args["seconds"], args["repeats"]) for b in args["batches"]]
    print(
        json.dumps(
            {
                "jax": jax.__version__,
                "jaxmarl": jaxmarl.__version__ if hasattr(jaxmarl, "__version__") else "?",
                "results": out,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
