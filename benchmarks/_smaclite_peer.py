"""Time SMAClite (a pure-Python SMAC re-implementation) as a peer of the Skirmish env.

Usage: ``python _smaclite_peer.py '{"map": "3m", "batches": [1, 64, 1024], "seconds": 0.5,
"repeats": 3}'``; prints one JSON object (versions, env facts and a ``results`` list) as its
last line, as ``_smax_peer.py`` does.  Optional keys: ``"time_limit"`` (default 100, SMAX's
``max_steps``; SMAClite has no limit of its own) and ``"max_batch"`` (batches above it are
left out of the results).

SMAClite is not on PyPI: install it from its source (the uoe-agents/smaclite repository) with
``pip install .``, then ``pip install -U "rtree>=1.1"``, since its pinned ``Rtree==1.0.0`` has no
bundled libspatialindex and fails to import without the system library.  It runs one env per
Python object and has no vector env: a batch of B is B independent envs stepped one after the
other in a Python loop, so its copy-steps/s do not grow with B.  The enemies attack-move
towards the allies' spawn (SMAC's built-in AI); collision avoidance is the numpy RVO2 port.
SMAClite has no ``3m`` map: it is built here from the ``27m_vs_30m`` preset with 3 marines a
side (same spawn points, terrain and unit stats).  The policy is random legal actions: each
alive ally picks uniformly among the actions of ``get_avail_actions()`` (dead ones get the
no-op), using uniform numbers drawn in advance and cycled; reading the masks is timed with the
step.  An episode that ends (a side wiped out, or ``time_limit`` steps) is reset inside the
timed loop.  There is nothing to compile (``compile_s`` is null; ``setup_s`` is building and
resetting the B envs).  The rate is the best of ``repeats`` timings.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import sys
import time

import numpy as np
from _peer_timing import measure
from smaclite.env import SMACliteEnv
from smaclite.env.maps.map import Group, get_standard_map

N_DRAWS = 4096


def map_info(name: str):
    if name != "3m":
        return get_standard_map(name)
    base = get_standard_map("27m_vs_30m")
    groups = [Group(g.x, g.y, g.faction, [(t, 3) for t, _ in g.units]) for g in base.groups]
    return dataclasses.replace(
        base, name="3m", num_allied_units=3, num_enemy_units=3, groups=groups
    )


class Batch:
    """B independent SMAClite envs, stepped in a Python loop with random legal actions."""

    def __init__(self, info, batch: int, time_limit: int):
        self.envs = [SMACliteEnv(map_info=info, seed=i) for i in range(batch)]
        for i, env in enumerate(self.envs):
            env.reset(seed=i)
        self.t = [0] * batch
        self.time_limit = time_limit
        self.draws = np.random.default_rng(0).random(N_DRAWS).tolist()
        self.k = 0
        self.episodes = 0

    def step(self) -> None:
        draws, k = self.draws, self.k
        for i, env in enumerate(self.envs):
            actions = []
            for avail in env.get_avail_actions():
                legal = np.flatnonzero(avail)
                actions.append(int(legal[int(draws[k] * len(legal))]))
                k = (k + 1) % N_DRAWS
            _, _, done, _, _ = env.step(actions)
            self.t[i] += 1
            if done or self.t[i] >= self.time_limit:
                env.reset()
                self.t[i] = 0
                self.episodes += 1
        self.k = k


def time_batch(info, batch: int, seconds: float, repeats: int, time_limit: int) -> dict:
    t0 = time.perf_counter()
    envs = Batch(info, batch, time_limit)
    setup_s = time.perf_counter() - t0

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            envs.step()
        return time.perf_counter() - t

    return {
        **measure(run, batch, info.num_allied_units, seconds, repeats),
        "compile_s": None,
        "setup_s": setup_s,
        "episodes_ended": envs.episodes,
    }


def main() -> int:
    args = json.loads(sys.argv[1])
    info = map_info(args["map"])
    time_limit = args.get("time_limit", 100)
    batches = [b for b in args["batches"] if b <= args.get("max_batch", b)]
    out = [time_batch(info, b, args["seconds"], args["repeats"], time_limit) for b in batches]
    probe = SMACliteEnv(map_info=info, seed=0)
    print(
        json.dumps(
            {
                "smaclite": importlib.metadata.version("smaclite"),
                "numpy": np.__version__,
                "env": "SMACliteEnv",
                "map": args["map"],
                "n_allies": probe.n_agents,
                "n_enemies": probe.n_enemies,
                "n_actions": probe.n_actions,
                "obs_size": probe.obs_size,
                "time_limit": time_limit,
                "batching": "B independent envs stepped in a Python loop",
                "policy": "uniform over available actions, draws made in advance and cycled",
                "reset": "reset in the timed loop when an episode ends",
                "results": out,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
