"""Particle world: metaenvs side by side with mpe2, VMAS and JaxMARL, in one run.

For ``navigation_N3_l3``, ``navigation_N6_l6`` and ``predator_prey_N3_M1_l3`` this times:

- our batched core at B = 1, 64, 1024, 4096 and our PettingZoo face (B = 1);
- mpe2's ``simple_spread`` (N = 3, 6) and ``simple_tag`` (3 vs 1) ParallelEnvs (B = 1;
  mpe2 is not batched: B copies run at best at its B = 1 rate);
- VMAS on CPU (``simple_spread``, ``simple_tag`` and ``navigation``) at the same B;
- JaxMARL's MPE (jit + vmap on CPU, compile excluded) at the same B, through
  ``--jax-python`` (an interpreter with ``jaxmarl`` installed; skipped if absent);

plus the Numba compile time of each task apart (fresh interpreter, warm and empty
cache).  Rates are copy-steps/s (steps of one copy of the game per second) and
agent-steps/s; the ratio divides ours by the fastest peer at the same B.  Resets at
episode ends (25 steps) are inside every timed loop.  Writes JSON to
``benchmarks/results/``.  A measurement, not a test: nothing asserts on time.

Usage::

    python benchmarks/bench_particle.py --jax-python /path/to/venv-with-jaxmarl/bin/python
    python benchmarks/bench_particle.py --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from metaenvs import bench

BATCHES = (1, 64, 1024, 4096)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent

# our id -> its peers: (library, scenario, kwargs)
TASKS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "navigation_N3_l3": [
        ("mpe2", "simple_spread_v3", {"N": 3}),
        ("vmas", "simple_spread", {"n_agents": 3}),
        ("vmas", "navigation", {"n_agents": 3}),
        ("jaxmarl", "MPE_simple_spread_v3", {}),
    ],
    "navigation_N6_l6": [
        ("mpe2", "simple_spread_v3", {"N": 6}),
        ("vmas", "simple_spread", {"n_agents": 6}),
        ("jaxmarl", "MPE_simple_spread_v3", {"num_agents": 6, "num_landmarks": 6}),
    ],
    "predator_prey_N3_M1_l3": [
        ("mpe2", "simple_tag_v3", {}),
        ("vmas", "simple_tag", {}),
        ("jaxmarl", "MPE_simple_tag_v3", {}),
    ],
}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def time_mpe2(scenario: str, kwargs: dict, timing: bench.Timing) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(f"mpe2.{scenario}")
    env = module.parallel_env(max_cycles=25, **kwargs)
    return {"batch": 1, **bench.time_parallel_env(env, timing=timing)}


def time_vmas(scenario: str, kwargs: dict, batch: int, timing: bench.Timing) -> dict[str, Any]:
    import torch
    import vmas

    env = vmas.make_env(
        scenario, num_envs=batch, device="cpu", continuous_actions=False, max_steps=25, seed=0,
        **kwargs,
    )  # fmt: skip
    env.reset()
    n = len(env.agents)
    gen = torch.Generator().manual_seed(0)
    action_sets = [
        [torch.randint(0, 5, (batch,), generator=gen) for _ in range(n)] for _ in range(16)
    ]

    def run(steps: int) -> float:
        t0 = time.perf_counter()
        for k in range(steps):
            _, _, dones, _ = env.step(action_sets[k % 16])
            if dones.any():  # fixed horizon: every copy ends together
                env.reset()
        return time.perf_counter() - t0

    with torch.no_grad():
        steps, times = timing.measure(run)
    best = min(times)
    return {
        "batch": batch,
        "steps": steps,
        "seconds": best,
        "copy_steps_per_s": batch * steps / best,
        "agent_steps_per_s": batch * steps * n / best,
    }


def time_jaxmarl(
    python: str, scenario: str, kwargs: dict, batches: tuple[int, ...], timing: bench.Timing
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    spec = {
        "env": scenario,
        "kwargs": kwargs,
        "batches": list(batches),
        "seconds": timing.seconds,
        "repeats": timing.repeats,
    }
    out = subprocess.run(
        [python, str(HERE / "_jaxmarl_peer.py"), json.dumps(spec)],
        capture_output=True, text=True, check=True, env={"JAX_PLATFORMS": "cpu", "PATH": ""},
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["results"], {"jax": data["jax"], "jaxmarl": data["jaxmarl"]}


def run(quick: bool, jax_python: str | None) -> dict[str, Any]:
    timing = bench.Timing(seconds=0.05, repeats=2) if quick else bench.Timing(seconds=0.5)
    batches = (1, 1024) if quick else BATCHES
    results: dict[str, Any] = {
        "benchmark": "bench_particle",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": bench.machine_info(),
        "versions": {d: _version(d) for d in ("mpe2", "vmas", "torch")},
        "compile": [],
        "rows": [],
    }
    for env_id in TASKS:
        print(f"compile {env_id} ...", flush=True)
        for cold in (False, True):
            results["compile"].append(bench.time_compile(env_id, cold_cache=cold))
    for env_id, peers in TASKS.items():
        print(f"{env_id} ...", flush=True)
        rows = [{"who": "metaenvs", **bench.time_core(env_id, b, timing=timing)} for b in batches]
        rows.append({"who": "metaenvs", **bench.time_parallel_face(env_id, timing=timing)})
        for lib, scenario, kwargs in peers:
            name = f"{lib} {scenario}"
            try:
                if lib == "mpe2":
                    rows.append(
                        {"who": name, "face": "parallel", **time_mpe2(scenario, kwargs, timing)}
                    )
                elif lib == "vmas":
                    for b in batches:
                        rows.append(
                            {
                                "who": name,
                                "face": "batched",
                                **time_vmas(scenario, kwargs, b, timing),
                            }
                        )
                elif jax_python:
                    jrows, versions = time_jaxmarl(jax_python, scenario, kwargs, batches, timing)
                    results["versions"].update(versions)
                    rows += [{"who": name, "face": "batched", **r} for r in jrows]
            except Exception as err:  # a peer that fails is reported, not fatal
                print(f"  peer {name} skipped: {type(err).__name__}: {err}")
        for r in rows:
            r["env_id"] = env_id
        results["rows"].extend(rows)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--jax-python", help="python with jaxmarl installed (JaxMARL peer)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    parser.add_argument(
        "--contended", action="store_true", help="with a busy process on one core meanwhile"
    )
    args = parser.parse_args(argv)
    with bench.busy_process(args.contended):
        results = run(args.quick, args.jax_python)
    results["contended"] = args.contended
    m = results["machine"]
    print(f"\nparticle world ({m['cpu_count']} CPUs, numba {m['numba']}, {results['versions']})")
    print("\n" + "\n".join(bench.compile_lines(results)))
    print()
    print(bench.comparison_table(results, list(TASKS)))
    path = bench.write_results(results, args.out, "bench_particle")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
