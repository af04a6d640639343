"""Skirmish: metaenvs side by side with JaxMARL's SMAX and SMAClite, in one run.

For ``skirmish_3m`` and ``skirmish_27m_vs_30m`` this times:

- our batched core at B = 1, 64, 1024 (and 4096), the enemy driven by the built-in
  scripted AI, our agents by random *available* actions: pre-drawn random actions moved
  onto each step's masks (:func:`metaenvs.core.within_mask`) inside the timed loop; and
  our PettingZoo face (B = 1, dict actions moved onto the masks the same way);
- JaxMARL's ``HeuristicEnemySMAX`` (jit + vmap on CPU, compile excluded; random available
  actions drawn inside the jitted step) at the same B, through ``--jax-python`` (an
  interpreter with ``jaxmarl``; see ``_smax_peer.py``);
- SMAClite (pure Python, one env per object: B copies are B envs stepped in a loop)
  through ``--smaclite-python`` (see ``_smaclite_peer.py`` for its install);

plus the Numba compile time of each map apart (fresh interpreter, warm and empty cache).
Rates are copy-steps/s and agent-steps/s; the ratio divides ours by the fastest peer at
the same B.  Episode ends and resets are inside every timed loop.  The games are not the
same game (see docs/skirmish.md): SMAX steps 0.5 s of game time, we and SMAC 0.357 s.
Writes JSON to ``benchmarks/results/``.  A measurement, not a test.

Usage::

    python benchmarks/bench_skirmish.py --jax-python /tmp/jax/bin/python \\
        --smaclite-python /tmp/smaclite/bin/python
    python benchmarks/bench_skirmish.py --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from metaenvs import bench

MAPS = ("3m", "27m_vs_30m")
BATCHES = (1, 64, 1024, 4096)
PEER_BATCHES = (1, 64, 1024)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent
PEERS = {"smax": "_smax_peer.py", "smaclite": "_smaclite_peer.py"}


def time_peer(
    name: str, python: str, map_name: str, batches: tuple[int, ...], timing: bench.Timing
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run a peer script in its own interpreter; its rows and facts (versions, sizes)."""
    spec = {
        "map": map_name,
        "batches": list(batches),
        "seconds": timing.seconds,
        "repeats": timing.repeats,
    }
    out = subprocess.run(
        [python, str(HERE / PEERS[name]), json.dumps(spec)],
        capture_output=True, text=True, check=True, env={"JAX_PLATFORMS": "cpu", "PATH": ""},
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data.pop("results"), data


def run(quick: bool, pythons: dict[str, str | None]) -> dict[str, Any]:
    timing = bench.Timing(seconds=0.05, repeats=2) if quick else bench.Timing(seconds=0.5)
    batches = (1, 1024) if quick else BATCHES
    peer_batches = (1, 1024) if quick else PEER_BATCHES
    results: dict[str, Any] = {
        "benchmark": "bench_skirmish",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": bench.machine_info(),
        "peers": {},
        "compile": [],
        "rows": [],
    }
    for map_name in MAPS:
        env_id = f"skirmish_{map_name}"
        print(f"compile {env_id} ...", flush=True)
        for cold in (False, True):
            results["compile"].append(bench.time_compile(env_id, cold_cache=cold))
        print(f"{env_id} ...", flush=True)
        rows = [{"who": "metaenvs", **bench.time_core(env_id, b, timing=timing)} for b in batches]
        rows.append({"who": "metaenvs", **bench.time_parallel_face(env_id, timing=timing)})
        for name, python in pythons.items():
            if not python:
                continue
            try:
                prows, facts = time_peer(name, python, map_name, peer_batches, timing)
            except Exception as err:  # a peer that fails is reported, not fatal
                print(f"  peer {name} skipped: {type(err).__name__}: {err}")
                continue
            results["peers"][f"{name} {map_name}"] = facts
            rows += [{"who": name, "face": "batched", **r} for r in prows]
        for r in rows:
            r["env_id"] = env_id
        results["rows"].extend(rows)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--jax-python", help="python with jaxmarl installed (SMAX peer)")
    parser.add_argument("--smaclite-python", help="python with smaclite installed")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON")
    parser.add_argument(
        "--contended", action="store_true", help="with a busy process on one core meanwhile"
    )
    args = parser.parse_args(argv)
    with bench.busy_process(args.contended):
        results = run(args.quick, {"smax": args.jax_python, "smaclite": args.smaclite_python})
    results["contended"] = args.contended
    m = results["machine"]
    print(f"\nskirmish ({m['cpu_count']} CPUs, numba {m['numba']})")
    print("\n" + "\n".join(bench.compile_lines(results)))
    for key, facts in results["peers"].items():
        who, map_name = key.split()
        compile_s = [
            r.get("compile_s")
            for r in results["rows"]
            if r["who"] == who and r["env_id"] == f"skirmish_{map_name}"
        ]
        print(f"  peer {key}: {facts}, compile_s by batch {compile_s}")
    print()
    print(bench.comparison_table(results, [f"skirmish_{m}" for m in MAPS]))
    path = bench.write_results(results, args.out, "bench_skirmish")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
