"""Time MAgent2 (``gather_v5``, ``battle_v4``) for bench_survival.py.

Runs wherever ``magent2`` is installed: imported by bench_survival.py when its own
interpreter has it, or as a script in another interpreter (``--magent-python``)::

    python _magent2_peer.py '{"envs": ["gather_v5", "battle_v4"], "seconds": 0.5, "repeats": 5}'

prints one JSON object (versions, whether the engine runs on OpenMP threads, one result
per env and API).  Standard library, numpy and magent2 only.

Two APIs per env, both with random actions drawn before the clock starts (8 sets, cycled)
and the resets at episode ends inside the timed loop:

- ``parallel``: the PettingZoo ParallelEnv, ``env.step(dict)`` with a pre-made dict of
  Python ints over all possible agents (the env reads the live ones), and
  ``env.reset()`` when ``env.agents`` is empty (all dead, or ``max_cycles`` reached).
- ``gridworld``: the engine's handle API under that env (``magent2.GridWorld``), per step
  ``set_action(handle, int32 array)`` for every controlled group, ``step()``, then
  ``get_observation(handle)`` and ``get_reward(handle)`` for every controlled group
  and ``clear_dead()``; at ``max_cycles`` (or when the engine says done, or no agent is
  left) ``reset()`` and the env's own ``generate_map()``.  Gather's food is a group of
  the engine too (thousands of units, no actions); it is not counted as agents.

Agents stepped are counted live: MAgent2 removes dead agents (``clear_dead``), so each
step counts the agents alive before it, and ``agent_steps_per_s`` is their sum over a
timed run divided by its seconds.  ``slot_agent_steps_per_s`` counts every agent of the
first step instead (as if the dead kept their slots, as ours do).  ``mean_live`` is the
live agents per step averaged over that run.  MAgent2 is not batched: B copies of it run
at best at this (B = 1) rate.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _peer_timing import measure

N_SETS = 8


def openmp_loaded() -> bool | None:
    """Whether an OpenMP runtime is mapped into this process (None off Linux).

    MAgent2's engine is written with OpenMP; a build without it steps on one thread."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    text = maps.read_text()
    return any(name in text for name in ("libgomp", "libomp", "libiomp"))


def _timed(run_steps, n_agents: int, seconds: float, repeats: int) -> dict[str, Any]:
    """``measure`` over ``run_steps(n) -> (seconds, live agent-steps, cpu seconds)``, with
    the live count and CPU time of the best run added."""
    log: list[tuple[float, int, float]] = []

    def run(n: int) -> float:
        log.append(run_steps(n))
        return log[-1][0]

    result = measure(run, 1, n_agents, seconds, repeats)
    best, live, cpu = next(r for r in reversed(log) if r[0] == result["seconds"])
    result["slot_agent_steps_per_s"] = result.pop("agent_steps_per_s")
    result["agent_steps_per_s"] = live / best
    result["mean_live"] = live / result["steps"]
    result["cpu_per_wall"] = cpu / best
    return result


def time_parallel(name: str, seconds: float, repeats: int, seed: int = 0) -> dict[str, Any]:
    """The PettingZoo ParallelEnv of ``magent2.environments.<name>``."""
    env = importlib.import_module(f"magent2.environments.{name}").parallel_env()
    env.reset(seed=seed)
    agents = list(env.possible_agents)
    highs = np.array([env.action_space(a).n for a in agents])
    rng = np.random.default_rng(seed)
    sets = [dict(zip(agents, rng.integers(0, highs).tolist())) for _ in range(N_SETS)]

    def run_steps(n: int) -> tuple[float, int, float]:
        live = 0
        c0, t0 = time.process_time(), time.perf_counter()
        for k in range(n):
            if not env.agents:
                env.reset()
            live += len(env.agents)
            env.step(sets[k % N_SETS])
        return time.perf_counter() - t0, live, time.process_time() - c0

    result = _timed(run_steps, len(agents), seconds, repeats)
    env.close()
    return result


def time_gridworld(name: str, seconds: float, repeats: int, seed: int = 0) -> dict[str, Any]:
    """The ``magent2.GridWorld`` handle API under ``magent2.environments.<name>``."""
    env = importlib.import_module(f"magent2.environments.{name}").parallel_env()
    env.reset(seed=seed)
    raw = env.unwrapped
    world, handles, max_cycles = raw.env, list(raw.handles), raw.max_cycles
    sizes = [world.get_num(h) for h in handles]
    rng = np.random.default_rng(seed)
    sets = [
        rng.integers(0, world.get_action_space(h)[0], (N_SETS, size)).astype(np.int32)
        for h, size in zip(handles, sizes)
    ]
    frame = 0

    def run_steps(n: int) -> tuple[float, int, float]:
        nonlocal frame
        live = 0
        c0, t0 = time.process_time(), time.perf_counter()
        for k in range(n):
            if frame >= max_cycles:
                world.reset()
                raw.generate_map()
                frame = 0
            alive = 0
            for h, acts in zip(handles, sets):
                m = world.get_num(h)
                alive += m
                world.set_action(h, acts[k % N_SETS, :m])
            done = world.step()
            for h in handles:
                world.get_observation(h)
                world.get_reward(h)
            world.clear_dead()
            live += alive
            frame += 1
            if done or alive == 0:
                frame = max_cycles
        return time.perf_counter() - t0, live, time.process_time() - c0

    result = _timed(run_steps, sum(sizes), seconds, repeats)
    result["obs_bytes_per_agent_step"] = obs_bytes(world, handles)
    env.close()
    return result


def obs_bytes(world: Any, handles: list[Any]) -> float:
    """Bytes of one agent's observation (view + feature vector, float32), averaged over the
    agents of the first step."""
    sizes = [world.get_num(h) for h in handles]
    per = [
        4 * (int(np.prod(world.get_view_space(h))) + int(np.prod(world.get_feature_space(h))))
        for h in handles
    ]
    return sum(s * p for s, p in zip(sizes, per)) / max(1, sum(sizes))


def time_all(envs: list[str], seconds: float, repeats: int) -> dict[str, Any]:
    """Every env of ``envs`` through both APIs; the JSON object the script prints."""
    import magent2

    rows = []
    for name in envs:
        for api, fn in (("gridworld", time_gridworld), ("parallel", time_parallel)):
            rows.append({"env": name, "api": api, **fn(name, seconds, repeats)})
    for row in rows:  # the same observation for both APIs of an env
        row["obs_bytes_per_agent_step"] = next(
            r["obs_bytes_per_agent_step"] for r in rows if r["env"] == row["env"]
        )
    return {
        "magent2": getattr(magent2, "__version__", "?"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "openmp": openmp_loaded(),
        "results": rows,
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    print(json.dumps(time_all(spec["envs"], spec["seconds"], spec["repeats"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
