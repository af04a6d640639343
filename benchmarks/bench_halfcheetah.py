"""halfcheetah_2x3 against raw MuJoCo and its peers in one run: env-steps/s of the core and
the PettingZoo face beside a bare single-threaded ``mj_step`` x 5 loop, ``mujoco.rollout``,
MaMuJoCo's HalfCheetah 2x3 and Gymnasium's HalfCheetah-v5.

Rows (one env step = 5 MuJoCo steps of one copy; every loop resets at episode ends inside
the timed loop, each after 200 steps, the paper's horizon):

- ``raw mj_step x5``: one ``MjData``, ``mujoco.mj_step(model, data, 5)`` in a Python loop
  (no actions written, no rewards, no observations): the floor of any MuJoCo env.
- ``core B=...``: ``core.step`` with random actions, ``threads`` 1 and 2.
- ``PettingZoo B=1``: ``metaenvs.make("halfcheetah_2x3")`` with dict actions.
- ``rollout B=...``: ``mujoco.rollout`` of 5 steps per call from the batch's states (the
  alternative we did not keep: it cannot hand back each copy's solver warm start, so
  trajectories part from HalfCheetah-v5's; shown for speed only).
- ``MaMuJoCo 2x3 B=1``: ``gymnasium_robotics.mamujoco_v1.parallel_env("HalfCheetah",
  "2x3")`` with every joint observed (our face's 17 numbers per agent), through the same
  PettingZoo loop as our face.  It is not batched: B copies step no faster than its B = 1
  rate, which the ratios use as its bound at every B.
- ``HalfCheetah-v5 B=1``: ``gymnasium.make("HalfCheetah-v5")``, one env, array actions.
- ``HalfCheetah-v5 sync B=...``: ``gymnasium.make_vec(..., vectorization_mode="sync")``
  (the envs stepped in turn in one Python loop; autoreset on the next step).

The peers' models are loaded with MuJoCo's warnings collected (they warn about
``settotalmass``), so no MUJOCO_LOG.TXT lands in the working directory.  A missing peer
(``pip install gymnasium-robotics``) is reported as skipped.  The run ends with the issue's
targets (issue 20): B = 1 through the PettingZoo face at least 1.5x MaMuJoCo, and the core
at B = 64 on 2 threads at least 1.6x the raw ``mj_step`` floor, each met or not met.

The rows are measured in turns, ``--rounds`` times (3), and each keeps its best rate: on a
machine whose speed drifts (a shared VM), every row then sees the fast periods too.

Not a test: nothing asserts on time.  ``python benchmarks/bench_halfcheetah.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings
from collections.abc import Callable
from itertools import cycle, islice
from typing import Any

import gymnasium
import mujoco
import numpy as np
from mujoco import rollout

from metaenvs.bench import (
    Timing,
    machine_info,
    random_actions,
    time_core,
    time_parallel_env,
    time_parallel_face,
)
from metaenvs.games.halfcheetah import FRAME_SKIP, HalfCheetahConfig, load_model

HORIZON = HalfCheetahConfig().horizon  # 200: our default, given to the peers too
#: (name, numerator row, denominator row, at least): issue 20's targets.
TARGETS = (
    ("B = 1: PettingZoo face / MaMuJoCo", "PettingZoo B=1", "MaMuJoCo 2x3 B=1", 1.5),
    ("B = 64, 2 cores: core / raw mj_step floor", "core B=64, threads=2", "raw", 1.6),
)


def best_rate(run, steps: int, repeats: int, per_call: int) -> float:
    """Env-steps/s of the best of ``repeats`` runs of ``run(steps)``."""
    run(max(1, steps // 10))
    best = min(_timed(run, steps) for _ in range(repeats))
    return steps * per_call / best


def _timed(run, steps: int) -> float:
    t0 = time.perf_counter()
    run(steps)
    return time.perf_counter() - t0


def quietly(make: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``make(*args, **kwargs)`` with MuJoCo's warnings collected (as the tests do), so
    the peers' model loads write no MUJOCO_LOG.TXT into the working directory."""
    seen: list[str] = []
    mujoco.set_mju_user_warning(seen.append)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make(*args, **kwargs)
    finally:
        mujoco.set_mju_user_warning(None)


def gym_rate(env: Any, batch: int, timing: Timing) -> float:
    """Env-steps/s of a Gymnasium env (``batch`` = 1) or sync vector env with random
    actions made in advance; a single env is reset at episode ends inside the timed loop,
    the vector env resets its copies itself."""
    env.reset(seed=0)
    action_sets = random_actions(env.action_space, (), timing.n_action_sets)
    single = batch == 1

    def run(n: int) -> float:
        acts = islice(cycle(action_sets), n)
        t0 = time.perf_counter()
        for a in acts:
            _, _, terminated, truncated, _ = env.step(a)
            if single and (terminated or truncated):
                env.reset()
        return time.perf_counter() - t0

    steps, times = timing.measure(run)
    return batch * steps / min(times)


def peer_rows(batches: list[int], timing: Timing) -> list[tuple[str, float | None]]:
    """MaMuJoCo 2x3 and Gymnasium's HalfCheetah-v5 (rate None where not installed)."""
    rows: list[tuple[str, float | None]] = []
    try:  # its import prints a notice about its Adroit envs to stderr: kept out of the table
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            from gymnasium_robotics import mamujoco_v1
    except ImportError:
        rows.append(("MaMuJoCo 2x3 B=1", None))
    else:
        env = quietly(
            mamujoco_v1.parallel_env,
            "HalfCheetah",
            "2x3",
            agent_obsk=3,  # every joint observed, as our face observes the whole state
            local_categories=[["qpos", "qvel"]] * 4,
            max_episode_steps=HORIZON,
        )
        rows.append(("MaMuJoCo 2x3 B=1", time_parallel_env(env, timing=timing)["copy_steps_per_s"]))
    for batch in batches:
        name = "HalfCheetah-v5 B=1" if batch == 1 else f"HalfCheetah-v5 sync B={batch}"
        try:
            if batch == 1:
                env = quietly(gymnasium.make, "HalfCheetah-v5", max_episode_steps=HORIZON)
            else:
                env = quietly(
                    gymnasium.make_vec,
                    "HalfCheetah-v5",
                    num_envs=batch,
                    vectorization_mode="sync",
                    max_episode_steps=HORIZON,
                )
        except ImportError:  # Gymnasium's MuJoCo envs import imageio
            rows.append((name, None))
            continue
        rows.append((name, gym_rate(env, batch, timing)))
        env.close()
    return rows


def ratio_lines(rates: dict[str, float | None], batches: list[int]) -> list[str]:
    """The targets (met / not met) and the other ratios against the peers."""
    lines = ["targets (issue 20):"]
    for name, mine, theirs, at_least in TARGETS:
        a, b = rates.get(mine), rates.get(theirs)
        if a is None or b is None:
            lines.append(f"  {name}: not measured ({mine} or {theirs} missing)")
            continue
        verdict = "met" if a / b >= at_least else "NOT met"
        lines.append(f"  {name} = {a / b:.2f}x (target >= {at_least}x): {verdict}")
    lines.append("against the peers:")
    pairs = [("core B=1, threads=1", "HalfCheetah-v5 B=1", "")]
    for batch in batches:
        if batch > 1:
            best = max(
                (f"core B={batch}, threads={t}" for t in (1, 2)), key=lambda k: rates[k] or 0
            )
            pairs.append((best, f"HalfCheetah-v5 sync B={batch}", ""))
            pairs.append((best, "MaMuJoCo 2x3 B=1", f" (bounds {batch} MaMuJoCo copies)"))
    for mine, theirs, note in pairs:
        a, b = rates.get(mine), rates.get(theirs)
        if a is not None and b is not None:
            lines.append(f"  {mine} / {theirs}{note} = {a / b:.2f}x")
    return lines


def measure_rows(batches: list[int], timing: Timing) -> list[tuple[str, float | None]]:
    """One round: every row of the table, measured once each (best of ``timing.repeats``)."""
    rows: list[tuple[str, float | None]] = []
    model = load_model()
    data = mujoco.MjData(model)
    mujoco.mj_resetData(model, data)
    n = max(50, int(timing.seconds / 40e-6))

    def raw(steps: int) -> None:
        for _ in range(steps):
            mujoco.mj_step(model, data, FRAME_SKIP)

    rows.append(("raw mj_step x5, 1 thread", best_rate(raw, n, timing.repeats, 1)))
    rows.append(
        ("PettingZoo B=1", time_parallel_face("halfcheetah_2x3", timing=timing)["copy_steps_per_s"])
    )
    for batch in batches:
        for threads in (1, 2):
            r = time_core("halfcheetah_2x3", batch, timing=timing, threads=threads)
            rows.append((f"core B={batch}, threads={threads}", r["copy_steps_per_s"]))
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    for batch in batches:
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

                rate = best_rate(run, max(10, n // batch), timing.repeats, batch)
            rows.append((f"rollout B={batch}, nthread={threads} (no warm start)", rate))
    return rows + peer_rows(batches, timing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check the script")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds over all rows; each row keeps its best"
    )
    args = parser.parse_args()
    seconds, repeats = (0.1, 2) if args.quick else (0.5, 5)
    timing = Timing(seconds=seconds, repeats=repeats)
    best: dict[str, float | None] = {}
    for _ in range(1 if args.quick else args.rounds):
        for name, rate in measure_rows(args.batch, timing):
            old = best.get(name)
            best[name] = rate if old is None or (rate is not None and rate > old) else old
    rows = list(best.items())

    raw_rate = rows[0][1]
    print(f"mujoco {mujoco.__version__}; machine: {machine_info()}")
    print(f"{'':46s} {'env-steps/s':>12s} {'x raw':>7s}")
    for name, rate in rows:
        if rate is None:
            print(f"{name:46s} {'skipped':>12s} (not installed)")
        else:
            print(f"{name:46s} {rate:12,.0f} {rate / raw_rate:7.2f}")
    rates = dict(rows)
    rates["raw"] = raw_rate
    print("\n".join(ratio_lines(rates, args.batch)))


if __name__ == "__main__":
    main()
