"""Survival: metaenvs side by side with MAgent2 (``gather_v5``, ``battle_v4``), in one run.

For ``survival_N230`` and ``survival_N630`` this times:

- our batched core at B = 1, 16, 64, with ``threads=1`` and with the package's default
  thread count (its own pool, :mod:`metaenvs.threads`), random actions made in advance,
  auto-resets at episode ends inside the timed loop; agent-steps/s = B x N x steps / s,
  every slot counted (a dead agent keeps its slot and gets a zero observation); with
  ``--immortal`` our agents get hp no attack exhausts (``agent_hp=1e9``), so every slot is
  a live agent and the rows compare live with live;
- MAgent2's ``gather_v5`` (495 agents, on a map with about 2,300 food units) and
  ``battle_v4`` (2 x 81), through the PettingZoo ParallelEnv and through the engine's
  ``GridWorld`` handle API (``benchmarks/_magent2_peer.py`` says exactly what each loop
  does), random actions, resets at episode ends inside the timed loop; agent-steps/s
  counts the agents alive at each step (MAgent2 removes the dead).  MAgent2 is not
  batched: B copies of it run at best at its B = 1 rate, the same number in every row;
- the bytes of observation our step writes per agent-step, the bytes/s that makes at our
  rate, and the machine's write bandwidth measured here (best of several numpy ``fill``
  of a float32 array much larger than the last-level cache, one thread), as a fraction;
- the Numba compile time apart (fresh interpreter, warm and empty cache), never inside a
  throughput number.

The ratio column divides our agent-steps/s by MAgent2 gather's (the faster, GridWorld
API).  MAgent2 comes with ``pip install -e ".[bench]"`` and is timed in this process;
``--magent-python`` times it in another interpreter instead.  Writes JSON to
``benchmarks/results/``.  A measurement, not a test: nothing asserts on time.

Usage::

    python benchmarks/bench_survival.py                 # full run, about 70 s on 2 idle cores
    python benchmarks/bench_survival.py --quick         # short timed runs (compiles still cold)
    python benchmarks/bench_survival.py --magent-python /path/to/venv-with-magent2/bin/python
    python benchmarks/bench_survival.py --contended     # with a busy process on one core
    python benchmarks/bench_survival.py --immortal      # every one of our slots alive
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

import numpy as np

import metaenvs
from metaenvs import bench
from metaenvs.core import legal_actions
from metaenvs.threads import get_num_threads

TASKS = ("survival_N230", "survival_N630")
PEERS = ("gather_v5", "battle_v4")
BATCHES = (1, 16, 64)
HEADLINE_PEER = ("gather_v5", "gridworld")
API_NAMES = {"gridworld": "GridWorld", "parallel": "PettingZoo"}
HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
BANDWIDTH_BYTES = 512 * 2**20  # 16x the 32 MiB L3 of the machine this was written on


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# -- memory bandwidth ---------------------------------------------------------------------
def write_bandwidth(nbytes: int, repeats: int) -> dict[str, float]:
    """Bytes/s written by numpy on one thread over a float32 array of ``nbytes``: the best
    of ``repeats`` ``fill`` calls, and of ``repeats`` ``copyto`` (bytes written, the same
    number read) into a second array.  The arrays are touched once first (page faults).

    Over an array much larger than the last-level cache this is the memory's write
    bandwidth; over one the size of an observation buffer, the rate of writes that may stay
    in cache (a B = 1 buffer of a few MB does)."""
    a = np.zeros(nbytes // 4, dtype=np.float32)
    b = np.ones_like(a)
    fill, copy = [], []
    for k in range(repeats):
        t0 = time.perf_counter()
        a.fill(float(k + 2))
        fill.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.copyto(b, a)
        copy.append(time.perf_counter() - t0)
    return {
        "bytes": a.nbytes,
        "fill_bytes_per_s": a.nbytes / min(fill),
        "copy_write_bytes_per_s": a.nbytes / min(copy),
    }


# -- ours ---------------------------------------------------------------------------------
IMMORTAL = {"agent_hp": 1e9}
"""``--immortal``: hp no attack can exhaust in an episode, so every slot is a live agent
(the same code runs: attacks still land), for a live-against-live comparison."""


def describe(env_id: str, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Agents, observation bytes and the mean share of agents alive over two episodes of
    random actions (untimed, B = 16): what a live count of our rows would multiply by."""
    core = metaenvs.make_core(env_id, threads=1, **kwargs)
    state = core.reset(16, seed)
    obs = core.observe(state)
    horizon = getattr(getattr(core, "config", None), "horizon", 200)
    actions = bench.random_actions(core.action_space, (16, core.n_agents), 8, seed)
    alive = []
    for k in range(2 * horizon):
        core.step(state, legal_actions(core, state, actions[k % 8]))
        live = core.alive(state)  # None: agents never leave before the episode ends
        alive.append(1.0 if live is None else float(np.mean(live)))
    return {
        "env_id": metaenvs.spec(env_id).id,
        "n_agents": core.n_agents,
        "obs_shape": list(obs.shape[2:]),
        "obs_bytes_per_agent_step": obs[0, 0].nbytes,
        # obs, plus the float32 reward (terminated/truncated are per copy, not per agent)
        "step_bytes_per_agent_step": obs[0, 0].nbytes + state.reward[0, 0].nbytes,
        "min_parallel": core.min_parallel,
        "mean_alive": float(np.mean(alive)),
        "horizon": horizon,
    }


def time_ours(
    env_id: str, timing: bench.Timing, batches: tuple[int, ...], quick: bool, **kwargs: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Our core at each batch, on one thread and on the default threads, with the fill
    bandwidth over an array the size of each batch's observation buffer."""
    info = describe(env_id, **kwargs)
    buffers = {b: b * info["n_agents"] * info["obs_bytes_per_agent_step"] for b in batches}
    fills = {
        b: write_bandwidth(n, max(3 if quick else 10, min(200, 2**30 // n)))["fill_bytes_per_s"]
        for b, n in buffers.items()
    }
    rows = []
    for threads in (1, None):
        used = threads or get_num_threads()
        for b in batches:
            row = bench.time_core(env_id, b, timing=timing, threads=threads, **kwargs)
            row.update(
                who="metaenvs",
                threads=used,
                pool=used > 1 and b >= info["min_parallel"],
                obs_bytes_per_s=row["agent_steps_per_s"] * info["obs_bytes_per_agent_step"],
                buffer_bytes=buffers[b],
                buffer_fill_bytes_per_s=fills[b],
                live_agent_steps_per_s=row["agent_steps_per_s"] * info["mean_alive"],
            )
            rows.append(row)
    return info, rows


# -- MAgent2 ------------------------------------------------------------------------------
def time_magent(python: str | None, timing: bench.Timing) -> dict[str, Any]:
    """MAgent2's rows: in this process, or in the interpreter ``python``."""
    if python is None:
        import _magent2_peer  # the scripts' folder is on sys.path

        return _magent2_peer.time_all(list(PEERS), timing.seconds, timing.repeats)
    spec = {"envs": list(PEERS), "seconds": timing.seconds, "repeats": timing.repeats}
    out = subprocess.run(
        [python, str(HERE / "_magent2_peer.py"), json.dumps(spec)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the run ------------------------------------------------------------------------------
def run(
    quick: bool, magent_python: str | None, env_ids: tuple[str, ...], immortal: bool = False
) -> dict[str, Any]:
    timing = bench.Timing(seconds=0.05, repeats=2) if quick else bench.Timing(seconds=0.5)
    results: dict[str, Any] = {
        "benchmark": "bench_survival",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": bench.machine_info(),
        "versions": {"magent2": _version("magent2")},
        "default_threads": get_num_threads(),
        "compile": [],
        "tasks": [],
        "rows": [],
        "peer": None,
        "immortal": immortal,
    }
    for env_id in env_ids:
        print(f"compile {env_id} ...", flush=True)
        for cold in (False, True):
            results["compile"].append(bench.time_compile(env_id, cold_cache=cold))
    print("memory bandwidth ...", flush=True)
    results["bandwidth"] = write_bandwidth(BANDWIDTH_BYTES, 3 if quick else 10)
    for env_id in env_ids:
        print(f"{env_id} ...", flush=True)
        info, rows = time_ours(env_id, timing, BATCHES, quick, **(IMMORTAL if immortal else {}))
        results["tasks"].append(info)
        results["rows"].extend(rows)
    print("MAgent2 ...", flush=True)
    try:
        results["peer"] = time_magent(magent_python, timing)
        results["versions"]["magent2"] = results["peer"]["magent2"]
    except Exception as err:  # a peer that fails is reported, not fatal
        detail = getattr(err, "stderr", "") or ""
        print(f"  MAgent2 skipped: {type(err).__name__}: {err} {detail[-500:]}")
    return results


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios of the largest task to MAgent2 gather: best row, and B = 1 on one thread."""
    peer = results["peer"]
    task = max(results["tasks"], key=lambda t: t["n_agents"])
    rows = [r for r in results["rows"] if r["env_id"] == task["env_id"]]
    best = max(rows, key=lambda r: r["agent_steps_per_s"])
    single = next(r for r in rows if r["batch"] == 1 and r["threads"] == 1)
    out: dict[str, Any] = {
        "env_id": task["env_id"],
        "best": {k: best[k] for k in ("batch", "threads", "agent_steps_per_s")},
        "b1_threads1": single["agent_steps_per_s"],
        "obs_bytes_per_s": best["obs_bytes_per_s"],
        "obs_fraction_of_fill_bandwidth": best["obs_bytes_per_s"]
        / results["bandwidth"]["fill_bytes_per_s"],
        "obs_fraction_of_fill_at_buffer_size": best["obs_bytes_per_s"]
        / best["buffer_fill_bytes_per_s"],
        "bandwidth_bound_agent_steps_per_s": results["bandwidth"]["fill_bytes_per_s"]
        / task["obs_bytes_per_agent_step"],
    }
    if peer:
        for name, api in ((HEADLINE_PEER[0], "gridworld"), (HEADLINE_PEER[0], "parallel")):
            g = next(r for r in peer["results"] if r["env"] == name and r["api"] == api)
            out[f"vs_{name}_{api}"] = {
                "peer_agent_steps_per_s": g["agent_steps_per_s"],
                "best": best["agent_steps_per_s"] / g["agent_steps_per_s"],
                "b1_threads1": single["agent_steps_per_s"] / g["agent_steps_per_s"],
                "best_live_vs_live": best["live_agent_steps_per_s"] / g["agent_steps_per_s"],
                "best_slots_vs_slots": best["agent_steps_per_s"] / g["slot_agent_steps_per_s"],
            }
    return out


# -- output -------------------------------------------------------------------------------
def _peer_row(results: dict[str, Any], env: str, api: str) -> dict[str, Any] | None:
    peer = results["peer"]
    if not peer:
        return None
    return next((r for r in peer["results"] if r["env"] == env and r["api"] == api), None)


def table(results: dict[str, Any]) -> str:
    """Ours per task, B and threads against MAgent2 (agent-steps/s), with the bandwidth."""
    rate = bench.format_rate
    fill = results["bandwidth"]["fill_bytes_per_s"]
    cols = [(env, api) for env in PEERS for api in ("gridworld", "parallel")]
    peer = {c: _peer_row(results, *c) for c in cols}
    head = " | ".join(f"MAgent2 {env} {API_NAMES[api]}" for env, api in cols)
    lines = [
        f"| task | N | B | threads | metaenvs agent-steps/s | obs GB/s | of DRAM fill "
        f"| of fill at its size | {head} "
        "| ours / gather GridWorld | ours / gather PettingZoo |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(cols) + "---:|---:|",
    ]
    for r in results["rows"]:
        peers = " | ".join(rate(p["agent_steps_per_s"]) if p else "-" for p in peer.values())
        ratios = [
            f"{r['agent_steps_per_s'] / p['agent_steps_per_s']:.2f}x" if p else "-"
            for p in (peer[(HEADLINE_PEER[0], "gridworld")], peer[(HEADLINE_PEER[0], "parallel")])
        ]
        lines.append(
            f"| {r['env_id']} | {r['n_agents']} | {r['batch']} | {r['threads']}"
            f"{' (pool)' if r['pool'] else ''} | {rate(r['agent_steps_per_s'])} "
            f"| {r['obs_bytes_per_s'] / 1e9:.2f} | {r['obs_bytes_per_s'] / fill:.1%} "
            f"| {r['obs_bytes_per_s'] / r['buffer_fill_bytes_per_s']:.1%} "
            f"| {peers} | {ratios[0]} | {ratios[1]} |"
        )
    return "\n".join(lines)


def peer_lines(results: dict[str, Any]) -> list[str]:
    peer = results["peer"]
    if not peer:
        return ["MAgent2: skipped (not importable here; see --magent-python)"]
    threads = {True: "OpenMP runtime loaded", False: "no OpenMP runtime: one thread"}
    lines = [
        f"MAgent2 {peer['magent2']} (numpy {peer['numpy']}, python {peer['python']}; "
        f"{threads.get(peer['openmp'], 'OpenMP unknown')}); B = 1 only: not batched, B copies "
        "run at best at this rate",
        "| env | API | agents at start | mean live | agent-steps/s (live) | (all slots) "
        "| env steps/s | obs bytes/agent-step | CPU s / wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in peer["results"]:
        lines.append(
            f"| {r['env']} | {API_NAMES[r['api']]} | {r['n_agents']} | {r['mean_live']:.0f} "
            f"| {bench.format_rate(r['agent_steps_per_s'])} "
            f"| {bench.format_rate(r['slot_agent_steps_per_s'])} "
            f"| {bench.format_rate(r['copy_steps_per_s'])} | {r['obs_bytes_per_agent_step']:.0f} "
            f"| {r['cpu_per_wall']:.2f} |"
        )
    return lines


def report(results: dict[str, Any]) -> str:
    m, bw, s = results["machine"], results["bandwidth"], results["summary"]
    out = [
        f"Survival vs MAgent2 ({m['cpu_count']} CPUs, numba {m['numba']}, numpy {m['numpy']}, "
        f"default threads {results['default_threads']}"
        f"{', contended' if results.get('contended') else ''})",
        "",
        *bench.compile_lines(results),
        "",
    ]
    for t in results["tasks"]:
        out.append(
            f"{t['env_id']}: N = {t['n_agents']}, obs {tuple(t['obs_shape'])} float32 = "
            f"{t['obs_bytes_per_agent_step']} bytes written per agent-step "
            f"({t['step_bytes_per_agent_step']} with the reward), pool from B = "
            f"{t['min_parallel']}, {t['mean_alive']:.0%} of agents alive on average "
            "(random actions)"
        )
    out += [
        f"DRAM write bandwidth, one thread, {bw['bytes'] / 2**20:.0f} MiB float32: numpy fill "
        f"{bw['fill_bytes_per_s'] / 1e9:.2f} GB/s, copyto {bw['copy_write_bytes_per_s'] / 1e9:.2f}"
        " GB/s written",
        "",
        "agent-steps/s (ours: B x N x steps / s, dead slots included; MAgent2: live agents)",
        table(results),
        "",
        *peer_lines(results),
        "",
        f"{s['env_id']}: best {bench.format_rate(s['best']['agent_steps_per_s'])} agent-steps/s "
        f"(B = {s['best']['batch']}, threads {s['best']['threads']}); "
        f"B = 1, one thread {bench.format_rate(s['b1_threads1'])}",
        f"  observation writes at the best rate: {s['obs_bytes_per_s'] / 1e9:.2f} GB/s = "
        f"{s['obs_fraction_of_fill_bandwidth']:.1%} of the DRAM fill bandwidth "
        f"({s['obs_fraction_of_fill_at_buffer_size']:.1%} of a fill of the same size); the DRAM "
        f"fill bandwidth bounds one thread at "
        f"{bench.format_rate(s['bandwidth_bound_agent_steps_per_s'])} agent-steps/s",
    ]
    for api in ("gridworld", "parallel"):
        key = f"vs_{HEADLINE_PEER[0]}_{api}"
        if key in s:
            v = s[key]
            out.append(
                f"  / MAgent2 {HEADLINE_PEER[0]} {API_NAMES[api]} "
                f"({bench.format_rate(v['peer_agent_steps_per_s'])}): "
                f"best {v['best']:.2f}x (target 3x), B = 1 one thread {v['b1_threads1']:.2f}x, "
                f"live vs live {v['best_live_vs_live']:.2f}x, all slots vs all slots "
                f"{v['best_slots_vs_slots']:.2f}x"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument(
        "--magent-python", help="time MAgent2 in this interpreter (with magent2 installed)"
    )
    parser.add_argument(
        "--envs", nargs="+", default=list(TASKS), help="our ids (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    parser.add_argument(
        "--contended", action="store_true", help="with a busy process on one core meanwhile"
    )
    parser.add_argument(
        "--immortal",
        action="store_true",
        help="our agents with hp no attack exhausts: every slot a live agent",
    )
    args = parser.parse_args(argv)
    with bench.busy_process(args.contended):
        results = run(args.quick, args.magent_python, tuple(args.envs), args.immortal)
    results["contended"] = args.contended
    results["summary"] = summary(results)
    print("\n" + report(results))
    path = bench.write_results(results, args.out, "bench_survival")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
