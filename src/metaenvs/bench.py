"""Throughput timing of metaenvs cores and faces (used by ``metaenvs bench`` and ``benchmarks/``).

Every timing follows the same recipe, so numbers from different faces and from peer
libraries are comparable:

1. **Compile apart.**  The first ``reset`` + ``observe`` + ``step`` of a core in a
   process pays Numba compilation (or, with a warm on-disk cache, the cache load).  It is
   timed once and reported as ``compile_s``; it never enters a throughput number.
   :func:`time_compile` measures it in a fresh interpreter, with the on-disk cache either
   used (``cold_cache=False``) or bypassed (``cold_cache=True``, a real compile).
2. **Actions made before the clock starts.**  A few arrays (or dicts) of random valid
   actions are drawn up front and cycled through, so drawing actions is not timed.
3. **Warm up, then repeat.**  A few untimed steps, then ``repeats`` timed runs of
   ``steps`` steps each with :func:`time.perf_counter`.  The headline number is the
   **best** (fastest) run, as :mod:`timeit` recommends: slower runs measure other load on
   the machine, not the code.  The median is reported beside it.
4. **Agent-independent units.**  ``copy_steps_per_s`` is ``batch * steps / seconds``:
   steps of one copy of the game, whatever N is.  ``agent_steps_per_s`` multiplies it by
   the number of agents N.

Nothing here asserts on time; these are measurements, not tests.

Examples
--------
>>> from metaenvs.bench import time_core
>>> r = time_core("ipd", batch=64, steps=20, repeats=2)
>>> r["copy_steps_per_s"] == 64 * 20 / r["seconds"]
True
>>> r["agent_steps_per_s"] == 2 * r["copy_steps_per_s"]
True
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import cycle, islice
from typing import Any

import numpy as np
from gymnasium import spaces

import metaenvs

__all__ = [
    "machine_info",
    "random_actions",
    "time_compile",
    "time_core",
    "time_first_call",
    "time_parallel_env",
    "time_parallel_face",
    "time_vector_face",
]

#: Statistic reported as the headline number of every timing.
STATISTIC = "best"
DEFAULT_REPEATS = 5
DEFAULT_SECONDS = 0.5
DEFAULT_ACTION_SETS = 8
DEFAULT_WARMUP = 10


# -- helpers ----------------------------------------------------------------------------
def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def random_actions(
    space: spaces.Space, shape: tuple[int, ...], n_sets: int, seed: int = 0
) -> list[np.ndarray]:
    """``n_sets`` arrays of random valid actions, each ``shape + space.shape``.

    Parameters
    ----------
    space : gymnasium.spaces.Discrete or gymnasium.spaces.Box
        The per-agent action space.
    shape : tuple of int
        Leading shape, e.g. ``(B, N)`` for a core.
    n_sets : int
        How many arrays to draw (they are cycled through while timing).
    seed : int
        Seed of the generator.

    Returns
    -------
    list of np.ndarray
        int64 arrays for a discrete space, arrays of ``space.dtype`` for a box.
    """
    rng = np.random.default_rng(seed)
    if isinstance(space, spaces.Discrete):
        lo = int(space.start)
        return [
            rng.integers(lo, lo + int(space.n), size=shape, dtype=np.int64) for _ in range(n_sets)
        ]
    if isinstance(space, spaces.Box):
        full = shape + space.shape
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return [rng.uniform(low, high, size=full).astype(space.dtype) for _ in range(n_sets)]
    raise TypeError(f"cannot draw actions for a {type(space).__name__} space")


def _dict_actions(
    agents: Sequence[str],
    space_of: Callable[[str], spaces.Space],
    n_sets: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Pre-made action dicts; discrete actions are plain Python ints (what users pass)."""
    per_agent = {
        a: random_actions(space_of(a), (n_sets,), 1, seed + i)[0] for i, a in enumerate(agents)
    }
    sets = []
    for k in range(n_sets):
        d = {}
        for a in agents:
            act = per_agent[a][k]
            d[a] = int(act) if np.ndim(act) == 0 and np.issubdtype(act.dtype, np.integer) else act
        sets.append(d)
    return sets


def _time_runs(
    run: Callable[[int], float], steps: int | None, seconds: float, repeats: int
) -> tuple[int, list[float]]:
    """Pick ``steps`` (if not given) so one run lasts about ``seconds``, then time runs.

    ``run(n)`` performs ``n`` steps and returns the elapsed seconds.
    """
    if steps is None:
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        n, elapsed = 1, run(1)
        while elapsed < seconds / 10 and n < 2**40:
            n *= 4
            elapsed = run(n)
        steps = max(1, math.ceil(n * seconds / max(elapsed, 1e-9)))
    return steps, [run(steps) for _ in range(repeats)]


def _summary(
    times: list[float], steps: int, batch: int, n_agents: int, repeats: int
) -> dict[str, Any]:
    best, median = min(times), statistics.median(times)
    copy_steps = batch * steps
    return {
        "batch": batch,
        "n_agents": n_agents,
        "steps": steps,
        "repeats": repeats,
        "statistic": f"{STATISTIC} of {repeats} repeats",
        "seconds": best,
        "seconds_median": median,
        "copy_steps_per_s": copy_steps / best,
        "copy_steps_per_s_median": copy_steps / median,
        "agent_steps_per_s": copy_steps * n_agents / best,
        "agent_steps_per_s_median": copy_steps * n_agents / median,
        "us_per_step": best / steps * 1e6,
    }


def _array_loop(
    step: Callable[[np.ndarray], Any], action_sets: list[np.ndarray]
) -> Callable[[int], float]:
    def run(n: int) -> float:
        acts = islice(cycle(action_sets), n)
        t0 = time.perf_counter()
        for a in acts:
            step(a)
        return time.perf_counter() - t0

    return run


# -- compile ----------------------------------------------------------------------------
def time_first_call(env_id: str, seed: int = 0, **kwargs: Any) -> dict[str, float]:
    """Time making a core and its first ``reset`` + ``observe`` + ``step`` in this process.

    In a fresh process this is the Numba compile (or on-disk cache load) of the core's
    kernels; once a core of the same kind has run in this process it is just one step.

    Parameters
    ----------
    env_id : str
        A registered id.
    seed : int
        Seed of the reset and of the random action.
    **kwargs
        Config keywords of the id.

    Returns
    -------
    dict
        ``make_s`` (building the core) and ``compile_s`` (first reset + observe + step).
    """
    t0 = time.perf_counter()
    core = metaenvs.make_core(env_id, **kwargs)
    t1 = time.perf_counter()
    action = random_actions(core.action_space, (1, core.n_agents), 1, seed)[0]
    t2 = time.perf_counter()
    state = core.reset(1, seed)
    core.observe(state)
    core.step(state, action)
    t3 = time.perf_counter()
    return {"make_s": t1 - t0, "compile_s": t3 - t2}


def time_compile(
    env_id: str, cold_cache: bool = False, timeout: float = 600.0, **kwargs: Any
) -> dict[str, Any]:
    """Compile time measured in a fresh Python interpreter.

    Parameters
    ----------
    env_id : str
        A registered id.
    cold_cache : bool
        If True, Numba's on-disk cache is pointed at an empty temporary folder
        (``NUMBA_CACHE_DIR``), so every kernel is really compiled; otherwise the cache
        in ``__pycache__`` is used as a user's second run would.
    timeout : float
        Seconds to wait for the child process.
    **kwargs
        JSON-serialisable config keywords (arrays are sent as nested lists).

    Returns
    -------
    dict
        ``import_s`` (``import metaenvs``), ``make_s``, ``compile_s`` (first reset +
        observe + step) and ``cold_cache``.

    Raises
    ------
    RuntimeError
        If the child process fails.
    """
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "import metaenvs.bench as b\n"
        "t1 = time.perf_counter()\n"
        "r = b.time_first_call(sys.argv[1], **json.loads(sys.argv[2]))\n"
        "r['import_s'] = t1 - t0\n"
        "print(json.dumps(r))\n"
    )
    args = json.dumps(kwargs, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="metaenvs-numba-cache-") as tmp:
        if cold_cache:
            env["NUMBA_CACHE_DIR"] = tmp
        proc = subprocess.run(
            [sys.executable, "-c", code, env_id, args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"compile timing of {env_id!r} failed:\n{proc.stderr.strip()}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"env_id": env_id, "cold_cache": cold_cache, **result}


# -- the batched core -------------------------------------------------------------------
def time_core(
    env_id: str,
    batch: int,
    steps: int | None = None,
    seed: int = 0,
    *,
    seconds: float = DEFAULT_SECONDS,
    repeats: int = DEFAULT_REPEATS,
    n_action_sets: int = DEFAULT_ACTION_SETS,
    warmup: int = DEFAULT_WARMUP,
    **kwargs: Any,
) -> dict[str, Any]:
    """Throughput of ``core.step`` over ``batch`` copies, with actions made in advance.

    Parameters
    ----------
    env_id : str
        A registered id.
    batch : int
        Number of copies B.
    steps : int, optional
        Steps per timed run; by default chosen so that one run lasts about ``seconds``.
    seed : int
        Seed of the reset and of the random actions.
    seconds : float
        Target length of one timed run when ``steps`` is None.
    repeats : int
        Number of timed runs; the best is the headline, the median is reported too.
    n_action_sets : int
        Number of pre-made ``(B, N)`` action arrays cycled through.
    warmup : int
        Untimed steps before the first run.
    **kwargs
        Config keywords of the id.

    Returns
    -------
    dict
        ``face="core"``, ``env_id``, ``compile_s`` (the first reset + observe + step of
        this core, see :func:`time_first_call`), ``steps``, ``seconds`` (best run),
        ``copy_steps_per_s`` (``batch * steps / seconds``), ``agent_steps_per_s``, their
        ``*_median`` counterparts, ``us_per_step`` and ``statistic``.
    """
    batch = _positive_int("batch", batch)
    repeats = _positive_int("repeats", repeats)
    if steps is not None:
        steps = _positive_int("steps", steps)
    core = metaenvs.make_core(env_id, **kwargs)
    action_sets = random_actions(
        core.action_space,
        (batch, core.n_agents),
        _positive_int("n_action_sets", n_action_sets),
        seed,
    )
    t0 = time.perf_counter()
    state = core.reset(batch, seed)
    core.observe(state)
    core.step(state, action_sets[0])
    compile_s = time.perf_counter() - t0

    run = _array_loop(lambda a: core.step(state, a), action_sets)
    run(warmup)
    steps, times = _time_runs(run, steps, seconds, repeats)
    return {
        "env_id": metaenvs.spec(env_id).id,
        "face": "core",
        "compile_s": compile_s,
        **_summary(times, steps, batch, core.n_agents, repeats),
    }


# -- the PettingZoo face ------------------------------------------------------------------
def time_parallel_env(
    env: Any,
    steps: int | None = None,
    seed: int = 0,
    *,
    seconds: float = DEFAULT_SECONDS,
    repeats: int = DEFAULT_REPEATS,
    n_action_sets: int = DEFAULT_ACTION_SETS,
    warmup: int = DEFAULT_WARMUP,
) -> dict[str, Any]:
    """Throughput of any PettingZoo ``ParallelEnv`` (ours or a peer library's).

    The loop is ``if not env.agents: env.reset()`` then ``env.step(actions)`` with
    pre-made action dicts (Python ints for discrete spaces); the resets at episode ends
    are part of the timed loop, as in a real rollout, and ``steps`` counts only steps.

    Parameters
    ----------
    env : pettingzoo.ParallelEnv
        The environment; it is reset with ``seed`` first.
    steps, seed, seconds, repeats, n_action_sets, warmup
        As in :func:`time_core`.

    Returns
    -------
    dict
        As :func:`time_core` with ``batch=1`` and ``face="parallel"``, without
        ``compile_s``.
    """
    repeats = _positive_int("repeats", repeats)
    if steps is not None:
        steps = _positive_int("steps", steps)
    env.reset(seed=seed)
    agents = list(env.possible_agents)
    action_sets = _dict_actions(
        agents, env.action_space, _positive_int("n_action_sets", n_action_sets), seed
    )

    def run(n: int) -> float:
        acts = islice(cycle(action_sets), n)
        t0 = time.perf_counter()
        for a in acts:
            if not env.agents:
                env.reset()
            env.step(a)
        return time.perf_counter() - t0

    run(warmup)
    steps, times = _time_runs(run, steps, seconds, repeats)
    return {"face": "parallel", **_summary(times, steps, 1, len(agents), repeats)}


def time_parallel_face(
    env_id: str,
    steps: int | None = None,
    seed: int = 0,
    *,
    seconds: float = DEFAULT_SECONDS,
    repeats: int = DEFAULT_REPEATS,
    n_action_sets: int = DEFAULT_ACTION_SETS,
    warmup: int = DEFAULT_WARMUP,
    **kwargs: Any,
) -> dict[str, Any]:
    """Throughput of ``metaenvs.make(env_id)``, the PettingZoo face (B = 1, dict actions).

    See :func:`time_parallel_env` for the loop and :func:`time_core` for the parameters.
    """
    env = metaenvs.make(env_id, **kwargs)
    result = time_parallel_env(
        env,
        steps,
        seed,
        seconds=seconds,
        repeats=repeats,
        n_action_sets=n_action_sets,
        warmup=warmup,
    )
    return {"env_id": metaenvs.spec(env_id).id, **result}


# -- the Gymnasium vector face --------------------------------------------------------------
def time_vector_face(
    env_id: str,
    num_envs: int,
    steps: int | None = None,
    seed: int = 0,
    *,
    seconds: float = DEFAULT_SECONDS,
    repeats: int = DEFAULT_REPEATS,
    n_action_sets: int = DEFAULT_ACTION_SETS,
    warmup: int = DEFAULT_WARMUP,
    **kwargs: Any,
) -> dict[str, Any]:
    """Throughput of ``metaenvs.make_vec(env_id, num_envs)``, the Gymnasium vector face.

    Actions are pre-made ``(num_envs, N)`` arrays; episodes restart inside the kernel.
    Parameters are as in :func:`time_core` (``num_envs`` is the batch).

    Returns
    -------
    dict
        As :func:`time_core` with ``face="vector"``, without ``compile_s``.
    """
    num_envs = _positive_int("num_envs", num_envs)
    repeats = _positive_int("repeats", repeats)
    if steps is not None:
        steps = _positive_int("steps", steps)
    venv = metaenvs.make_vec(env_id, num_envs, **kwargs)
    n_agents = len(venv.agent_names)
    action_sets = random_actions(
        venv.core.action_space,
        (num_envs, n_agents),
        _positive_int("n_action_sets", n_action_sets),
        seed,
    )
    venv.reset(seed=seed)
    run = _array_loop(venv.step, action_sets)
    run(warmup)
    steps, times = _time_runs(run, steps, seconds, repeats)
    venv.close()
    return {
        "env_id": metaenvs.spec(env_id).id,
        "face": "vector",
        **_summary(times, steps, num_envs, n_agents, repeats),
    }


# -- context ---------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """Versions and machine facts to store beside timings."""
    import gymnasium
    import numba
    import pettingzoo

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "gymnasium": gymnasium.__version__,
        "pettingzoo": pettingzoo.__version__,
        "metaenvs": metaenvs.__version__,
        "statistic": STATISTIC,
    }
