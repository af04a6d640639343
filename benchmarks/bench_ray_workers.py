"""Ray workers for ``metaenvs train``: runs per minute with 1 and 2 workers, and the overhead.

Trains the same R short runs of the comm experiment (``navigation_N3_l3``, method
``none``, seeds 0..R-1) three ways, each into a fresh folder:

- ``sequential``: one after the other in this process (``metaenvs train`` without
  ``--workers``), the reference;
- ``ray, 1 worker`` and ``ray, 2 workers``: :func:`baselines.experiment.workers.run_on_ray`
  on a local Ray instance of that many CPUs (Ray's start-up is timed apart).

Per-run overhead of a worker = (time with one worker - sequential time) / R: a fresh
process per task (imports, torch and Numba cache loads) and Ray's scheduling.  The
speed-up of two workers is bounded by the cores: measure it on an idle machine.  A
measurement, not a test; the JSON in ``benchmarks/results/`` keeps every timing.

Usage::

    python benchmarks/bench_ray_workers.py              # R = 6 runs of 480 episodes, ~4 min
    python benchmarks/bench_ray_workers.py --runs 4 --episodes 240
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from metaenvs.bench import machine_info, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="runs per way (seeds 0..R-1)")
    parser.add_argument("--episodes", type=int, default=480, help="episodes per run")
    ns = parser.parse_args()

    import ray

    from baselines._runs import one_thread_per_run
    from baselines.comm.experiment import EXPERIMENT
    from baselines.comm.learner import CommArgs
    from baselines.experiment.loop import run, warm_kernels
    from baselines.experiment.workers import run_on_ray

    one_thread_per_run(1)
    all_args = [CommArgs(env="navigation_N3_l3", method="none", seed=s, episodes=ns.episodes,
                         eval_every=ns.episodes) for s in range(ns.runs)]  # fmt: skip
    warm_kernels(EXPERIMENT, all_args, report=None)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for args in all_args:
            run(EXPERIMENT, args, Path(tmp) / "sequential", progress=False)
        timings["sequential"] = time.perf_counter() - start
        for workers in (1, 2):
            start = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            timings[f"ray start, {workers} CPUs"] = time.perf_counter() - start
            start = time.perf_counter()
            run_on_ray(EXPERIMENT, all_args, Path(tmp) / f"ray{workers}", workers=workers)
            timings[f"ray, {workers} worker(s)"] = time.perf_counter() - start
            ray.shutdown()
    rows = []
    for way in ("sequential", "ray, 1 worker(s)", "ray, 2 worker(s)"):
        rows.append({"way": way, "seconds": timings[way],
                     "runs_per_min": 60 * ns.runs / timings[way]})  # fmt: skip
    overhead = (timings["ray, 1 worker(s)"] - timings["sequential"]) / ns.runs
    print(f"{ns.runs} runs of {ns.episodes} episodes (navigation_N3_l3, method none)")
    print("| way | wall-clock (s) | runs / min | vs sequential |")
    print("|:--|--:|--:|--:|")
    for r in rows:
        speed = timings["sequential"] / r["seconds"]
        print(f"| {r['way']} | {r['seconds']:.1f} | {r['runs_per_min']:.2f} | {speed:.2f}x |")
    for key, value in timings.items():
        if key.startswith("ray start"):
            print(f"{key}: {value:.1f} s (not in the table)")
    print(f"overhead per run of a Ray worker: {overhead:.2f} s")
    results = {"machine": machine_info(), "args": vars(ns), "timings": timings,
               "overhead_per_run_s": overhead}  # fmt: skip
    print("wrote", write_results(results, Path(__file__).parent / "results", "bench_ray_workers"))


if __name__ == "__main__":
    main()
