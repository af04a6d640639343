"""halfcheetah_2x3 against raw MuJoCo in one run: env-steps/s of the core and the faces
beside a bare single-threaded ``mj_step`` x 5 loop and ``mujoco.rollout``.

Rows (one env step = 5 MuJoCo steps of one copy):

- ``raw mj_step x5``: one ``MjData``, ``mujoco.mj_step(model, data, 5)`` in a Python loop
  (no actions written, no rewards, no observations): the floor of any MuJoCo env.
- ``core B=...``: ``core.step`` with random actions, ``threads`` 1 and 2.
- ``PettingZoo B=1``: ``metaenvs.make("halfcheetah_2x3")`` with dict actions.
- ``rollout B=...``: ``mujoco.rollout`` of 5 steps per call from the batch's states (the
  alternative we did not keep: it cannot hand back each copy's solver warm start, so
  trajectories part from HalfCheetah-v5's; shown for speed only).

Not a test: nothing asserts on time.  ``python benchmarks/bench_halfcheetah.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np
from mujoco import rollout

from metaenvs.bench import Timing, machine_info, time_core, time_parallel_face
from metaenvs.games.halfcheetah import FRAME_SKIP, load_model


def best_rate(run, steps: int, repeats: int, per_call: int) -> float:
    """Env-steps/s of the best of ``repeats`` runs of ``run(steps)``."""
    run(max(1, steps // 10))
    best = min(_timed(run, steps) for _ in range(repeats))
    return steps * per_call / best


def _timed(run, steps: int) -> float:
    t0 = time.perf_counter()
    run(steps)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the script")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    seconds, repeats = (0.1, 2) if args.quick else (0.5, 5)
    timing = Timing(seconds=seconds, repeats=repeats)
    rows: list[tuple[str, float]] = []

    model = load_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetData(model, data)
    n = max(50, int(seconds / 40e-6))

    def raw(steps: int) -> None:
        for _ in range(steps):
            mujoco.mj_step(model, data, FRAME_SKIP)

    rows.append(("raw mj_step x5, 1 thread", best_rate(raw, n, repeats, 1)))
    rows.append(
        ("PettingZoo B=1", time_parallel_face("halfcheetah_2x3", timing=timing)["copy_steps_per_s"])
    )
    for batch in args.batch:
        for threads in (1, 2):
            r = time_core("halfcheetah_2x3", batch, timing=timing, threads=threads)
            rows.append((f"core B={batch}, threads={threads}", r["copy_steps_per_s"]))
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    for batch in args.batch:
        start = np.zeros((batch, mujoco.mj_stateSize(model, spec)))
        for b in range(batch):
            mujoco.mj_getState(model, data, start[b], spec)
        control = np.random.default_rng(0).uniform(-1, 1, (batch, FRAME_SKIP, model.nu))
        out = np.zeros((batch, FRAME_SKIP, start.shape[1]))
        for threads in (1, 2):
            datas = [mujoco.MjData(model) for _ in range(threads)]
            with rollout.Rollout(nthread=threads) as roll:

                def run(steps: int, roll=roll, datas=datas, x=(start, control, out)) -> None:
                    for _ in range(steps):
                        roll.rollout(model, datas, x[0], x[1], state=x[2])

                rate = best_rate(run, max(10, n // batch), repeats, batch)
            rows.append((f"rollout B={batch}, nthread={threads} (no warm start)", rate))

    raw_rate = rows[0][1]
    print(f"mujoco {mujoco.__version__}; machine: {machine_info()}")
    print(f"{'':46s} {'env-steps/s':>12s} {'x raw':>7s}")
    for name, rate in rows:
        print(f"{name:46s} {rate:12,.0f} {rate / raw_rate:7.2f}")


if __name__ == "__main__":
    main()
