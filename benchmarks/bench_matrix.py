"""Iterated matrix games: metaenvs side by side with PettingZoo's rock-paper-scissors.

For ``ipd`` and ``rps`` this times, in one run:

- our batched core at B = 1, 1024, 65536 (``metaenvs.make_core``);
- our PettingZoo face, B = 1, dict actions (``metaenvs.make``);
- our Gymnasium vector face at B = 1024 (``metaenvs.make_vec``);
- the peer: PettingZoo's own ``pettingzoo.classic.rps_v2.parallel_env(max_cycles=50)``,
  the only matrix game PettingZoo ships, used as the peer of both rows;
- with ``--openspiel-python PATH`` (an interpreter with ``open_spiel`` installed),
  OpenSpiel's C++ repeated prisoner's dilemma through its state API
  (``_openspiel_peer.py``), the per-call yardstick of ``ipd`` at B = 1;

and the Numba compile time apart (first reset + observe + step, in a fresh interpreter,
with the on-disk cache as a user's second run finds it, and with an empty cache).
It prints a table with ratios ours / peer (copy-steps/s, i.e. steps of one copy of the
game per second) and writes everything as JSON to ``benchmarks/results/``.

This is a measurement, not a test: nothing asserts on time.

Usage::

    python benchmarks/bench_matrix.py            # full run, about a minute
    python benchmarks/bench_matrix.py --quick    # a few seconds
    python benchmarks/bench_matrix.py --openspiel-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from metaenvs import bench

GAMES = ("ipd", "rps")
CORE_BATCHES = (1, 1024, 65536)
VECTOR_BATCH = 1024
PEER = "pettingzoo.classic.rps_v2.parallel_env(max_cycles=50)"
HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"


def make_peer() -> Any | None:
    """PettingZoo's rock-paper-scissors as a ParallelEnv, or None if it cannot be imported."""
    try:
        from pettingzoo.classic import rps_v2
    except Exception as err:  # ImportError, or gymnasium's DependencyNotInstalled (pygame)
        print(
            f"peer skipped: {PEER} unavailable ({type(err).__name__}: {err}); "
            "install it with `pip install 'metaenvs[bench]'` (pygame)"
        )
        return None
    return rps_v2.parallel_env(max_cycles=50)


def time_openspiel(python: str, timing: bench.Timing) -> dict[str, Any]:
    """OpenSpiel's C++ iterated prisoner's dilemma, timed in the interpreter ``python``."""
    spec = {"seconds": timing.seconds, "repeats": timing.repeats}
    out = subprocess.run(
        [python, str(HERE / "_openspiel_peer.py"), json.dumps(spec)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout)
    result["us_per_step"] = 1e6 / result["copy_steps_per_s"]
    return result


def run(quick: bool, openspiel_python: str | None = None) -> dict[str, Any]:
    """Time everything; returns the JSON-able results."""
    timing = bench.Timing(seconds=0.05, repeats=2) if quick else bench.Timing()
    results: dict[str, Any] = {
        "benchmark": "bench_matrix",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "timing": dataclasses.asdict(timing),
        "machine": bench.machine_info(),
        "peer": PEER,
        "compile": [],
        "rows": [],
    }

    for game in GAMES:
        print(f"compile {game} ...", flush=True)
        results["compile"].append(bench.time_compile(game, cold_cache=False))
        results["compile"].append(bench.time_compile(game, cold_cache=True))

    peer_env = make_peer()
    peer = None
    if peer_env is not None:
        print("peer rps_v2 ...", flush=True)
        peer = {"env_id": "pettingzoo rps_v2", **bench.time_parallel_env(peer_env, timing=timing)}
        peer_env.close()
    results["peer_result"] = peer
    results["openspiel"] = None
    if openspiel_python:
        print("OpenSpiel repeated matrix_pd ...", flush=True)
        try:
            results["openspiel"] = time_openspiel(openspiel_python, timing)
        except Exception as err:  # a peer that fails is reported, not fatal
            print(f"  OpenSpiel skipped: {type(err).__name__}: {err}")

    for game in GAMES:
        print(f"{game} ...", flush=True)
        rows = [bench.time_core(game, b, timing=timing) for b in CORE_BATCHES]
        rows.append(bench.time_parallel_face(game, timing=timing))
        rows.append(bench.time_vector_face(game, VECTOR_BATCH, timing=timing))
        for r in rows:
            r["ratio_vs_peer"] = (
                r["copy_steps_per_s"] / peer["copy_steps_per_s"] if peer is not None else None
            )
        results["rows"].extend(rows)
    return results


def print_table(results: dict[str, Any]) -> None:
    """The human-readable summary of :func:`run`'s results."""
    m = results["machine"]
    print(
        f"\nmatrix games, {results['timing']['repeats']} repeats, best reported "
        f"(Python {m['python']}, numpy {m['numpy']}, numba {m['numba']}, "
        f"pettingzoo {m['pettingzoo']}, {m['cpu_count']} CPUs)"
    )
    print("\ncompile (fresh interpreter; first reset + observe + step):")
    for c in results["compile"]:
        cache = "empty cache (real compile)" if c["cold_cache"] else "warm on-disk cache"
        print(
            f"  {c['env_id']:<4} {cache:<27} compile {c['compile_s']:7.3f} s"
            f"   (import metaenvs {c['import_s']:.3f} s)"
        )

    peer = results["peer_result"]
    header = ["game", "what", "batch", "copy-steps/s", "agent-steps/s", "us/step", "ours/peer"]

    def line(game: str, what: str, r: dict[str, Any], ratio: str) -> list[str]:
        rates = (r["copy_steps_per_s"], r["agent_steps_per_s"])
        return [game, what, str(r["batch"]), *map(bench.format_rate, rates),
                f"{r['us_per_step']:.2f}", ratio]  # fmt: skip

    faces = {
        "core": "metaenvs core",
        "parallel": "metaenvs PettingZoo face",
        "vector": "metaenvs vector face",
    }
    lines = [header]
    for r in results["rows"]:
        ratio = r["ratio_vs_peer"]
        lines.append(
            line(r["env_id"], faces[r["face"]], r, "-" if ratio is None else f"{ratio:.1f}x")
        )
    if peer is not None:
        lines.append(line("rps", "PettingZoo rps_v2 (peer)", {**peer, "batch": 1}, "1.0x"))
    spiel = results.get("openspiel")
    notes = []
    if spiel is not None:
        ipd_b1 = next(
            r
            for r in results["rows"]
            if r["env_id"].split("-")[0] == "ipd" and r["face"] == "core" and r["batch"] == 1
        )
        lines.append(line("ipd", "OpenSpiel C++ state API", spiel, "-"))
        ratio = ipd_b1["copy_steps_per_s"] / spiel["copy_steps_per_s"]
        notes.append(f"ipd core at B = 1 / OpenSpiel C++ (same run): {ratio:.2f}x")
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    align = "<<>>>>>"
    print()
    for row in lines:
        print("  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths, strict=True)))
    print(
        "\ncopy-steps/s = batch x steps / s (one step of one copy of the game); "
        "agent-steps/s x 2 agents."
    )
    for note in notes:
        print(note)
    if peer is None:
        print("peer skipped: no ratios.")
    else:
        print(
            "ours/peer divides copy-steps/s by the peer's (one env, B=1).  The peer is "
            "rps for both games;\nipd episodes last 150 steps, rps 50 (both faces reset "
            "at episode end inside the timed loop)."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a few seconds)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the JSON results")
    parser.add_argument(
        "--openspiel-python", help="an interpreter with open_spiel: adds OpenSpiel's C++ ipd"
    )
    args = parser.parse_args(argv)
    results = run(args.quick, args.openspiel_python)
    print_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"bench_matrix{'-quick' if args.quick else ''}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
