"""Throughput of the communication-topology wrapper against the bare particle core.

    python benchmarks/bench_comm.py [--env navigation_N3_l3] [--batch 1 1024] [--seconds 0.5]

Rates are env copy-steps per second (a two-phase ``same_step`` env step is two wrapper
steps); compile time is excluded by warm-up steps.  Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import metaenvs
from meta_wrappers.comm import make_comm_core
from metaenvs.bench import format_rate

VARIANTS = {
    "bare core": None,
    "learned, next_step": {"timing": "next_step"},
    "learned, same_step (2 phases)": {"timing": "same_step"},
    "k_nearest (k=1), same_step": {"topology": "k_nearest", "k": 1},
    "full, next_step": {"topology": "full", "timing": "next_step"},
}


def rate(core, batch: int, seconds: float, phases: int) -> float:
    """Best of 3 timed runs of about ``seconds`` each, in env copy-steps/s."""
    rng = np.random.default_rng(0)
    state = core.reset(batch, 0)
    actions = [core.sample_actions(batch, rng) for _ in range(64)]
    for a in actions[:16]:  # compile and warm up
        core.step(state, a)
    best, steps = 0.0, 16
    while True:  # calibrate the number of steps to ~seconds
        t = time.perf_counter()
        for i in range(steps):
            core.step(state, actions[i % 64])
        dt = time.perf_counter() - t
        if dt > seconds / 4:
            break
        steps *= 4
    steps = max(1, int(steps * seconds / dt))
    for _ in range(3):
        t = time.perf_counter()
        for i in range(steps):
            core.step(state, actions[i % 64])
        best = max(best, steps * batch / (time.perf_counter() - t) / phases)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="navigation_N3_l3")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 1024])
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    print(f"{args.env}: env copy-steps/s (best of 3)")
    for batch in args.batch:
        base = None
        for name, kwargs in VARIANTS.items():
            core = (
                metaenvs.make_core(args.env)
                if kwargs is None
                else make_comm_core(args.env, **kwargs)
            )
            phases = 2 if kwargs is not None and core.config.two_phase else 1
            r = rate(core, batch, args.seconds, phases)
            base = base or r
            print(f"  B={batch:<5} {name:<32} {format_rate(r):>8}  ({r / base:.2f} of bare)")


if __name__ == "__main__":
    main()
