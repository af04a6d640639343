"""The ``metaenvs`` command: list the environments, describe one, time one.

::

    metaenvs list                       # ids, Gymnasium ids, one-line descriptions
    metaenvs info ipd                   # agents, spaces, reward, keywords and defaults
    metaenvs bench ipd --batch 1 1024 65536 --seconds 0.5
    metaenvs warmup ipd navigation      # compile their kernels into Numba's cache (no ids: all)
    metaenvs train comm --env navigation_N3_l3 --methods meta none --seeds 0 1 2
    metaenvs compare comm runs/comm/navigation_N3_l3

``python -m metaenvs.cli`` does the same.  Importing this module imports
``metaenvs`` (NumPy, Numba, Gymnasium, PettingZoo) but not torch.  ``train`` and
``compare`` run experiments that other distributions plug in through the entry-point group
``metaenvs.experiments`` (``metaenvs[baselines]`` provides ``comm``): ``metaenvs train NAME
ARGS...`` calls the entry point ``NAME`` with ``["train", *ARGS]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

import metaenvs
from metaenvs.registry import NAMESPACE, EnvSpec, UnknownEnvError

EXIT_USAGE = 2
EXPERIMENT_GROUP = "metaenvs.experiments"


# -- formatting helpers -------------------------------------------------------------------
def _fmt_value(value: Any) -> str:
    """A one-line rendering of a config value (arrays by shape, not by content)."""
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            flat = np.array2string(value.ravel(), separator=", ")
            return f"ndarray {value.shape} {value.dtype} {flat}"
        return f"ndarray {value.shape} {value.dtype}"
    return repr(value)


def _config_defaults(config_cls: type) -> dict[str, Any]:
    """Default of every config field (``default_factory`` called), or ``MISSING``."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = dataclasses.MISSING
    return out


def _table(rows: list[list[str]], out: TextIO, align: str) -> None:
    """Print rows as a fixed-width table; ``align`` has one ``<`` or ``>`` per column."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [f"{c:{a}{w}}" for c, a, w in zip(r, align, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=out)


def _spec_or_exit(env_id: str) -> EnvSpec | None:
    try:
        return metaenvs.spec(env_id)
    except UnknownEnvError as err:
        print(f"metaenvs: error: {err}", file=sys.stderr)
        return None


# -- subcommands --------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered id with its Gymnasium id and description."""
    rows = [["id", "gymnasium id", "description"]]
    for s in metaenvs.registered_specs():
        rows.append([s.id, s.gymnasium_id, s.description])
    _table(rows, sys.stdout, "<<<")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print the agents, spaces, reward and keywords of one id."""
    s = _spec_or_exit(args.id)
    if s is None:
        return EXIT_USAGE
    out = sys.stdout
    print(f"{s.id}: {s.description}", file=out)
    print(f"family: {s.family}", file=out)
    core = s.make_core()
    print(f"\nagents ({core.n_agents}): {', '.join(core.agent_names)}", file=out)
    print(f"observation space (per agent): {core.observation_space!r}", file=out)
    print(f"action space (per agent): {core.action_space!r}", file=out)
    if getattr(core, "reward_description", ""):
        print(f"reward: {core.reward_description}", file=out)

    config_cls = core.config_cls
    field_defaults = _config_defaults(config_cls)
    docs = {k: " ".join(v.split()) for k, v in config_cls.field_docs().items()}
    print("\nkeywords (metaenvs.make(id, **kwargs)):", file=out)
    keywords = s.keywords()
    if not keywords:
        print("  (none)", file=out)
    for key in keywords:
        if key in s.defaults:
            default = f"{_fmt_value(s.defaults[key])} (id default; config default "
            default += f"{_fmt_value(field_defaults[key])})"
        elif field_defaults.get(key, dataclasses.MISSING) is dataclasses.MISSING:
            default = "(required)"
        else:
            default = _fmt_value(field_defaults[key])
        print(f"  {key} = {default}", file=out)
        if key in docs:
            print(f"      {docs[key]}", file=out)
    if s.fixed:
        print("fixed by the id (cannot be passed):", file=out)
        for key, value in s.fixed.items():
            print(f"  {key} = {_fmt_value(value)}", file=out)

    version = s.id.rsplit("-v", 1)[1]
    print("\ngymnasium ids:", file=out)
    print(
        f"  {s.gymnasium_id}  (vector: gymnasium.make_vec("
        f"'{NAMESPACE}:{s.gymnasium_id}', num_envs=...))",
        file=out,
    )
    for suffix, entry_point in s.views.items():
        view_id = f"{NAMESPACE}/{s.name}-{suffix}-v{version}"
        print(f"  {view_id}  (single-agent view: gymnasium.make; {entry_point})", file=out)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the core at each batch size, and the PettingZoo and vector faces at B = 1."""
    from metaenvs import bench, threads

    s = _spec_or_exit(args.id)
    if s is None:
        return EXIT_USAGE
    try:
        timing = bench.Timing(steps=args.steps, seconds=args.seconds, repeats=args.repeats)
    except ValueError as err:
        print(f"metaenvs bench: {err}", file=sys.stderr)
        return EXIT_USAGE
    out = sys.stdout
    info = bench.machine_info()
    print(
        f"metaenvs bench {s.id}  (Python {info['python']}, numpy {info['numpy']}, "
        f"numba {info['numba']}, {info['cpu_count']} CPUs)",
        file=out,
    )
    first = bench.time_first_call(s.id)
    print(
        f"compile: {first['compile_s']:.3f} s  (first reset + observe + step in this process: "
        "Numba compile or cache load; not in the throughput below)",
        file=out,
    )
    out.flush()

    n_threads = threads.get_num_threads() if args.threads is None else args.threads
    print(f"threads: {n_threads} (--threads; METAENVS_NUM_THREADS)", file=out)
    if args.contended:
        print("contended: a busy process competes for one core while timing", file=out)
    with bench.busy_process(args.contended):
        results = [bench.time_core(s.id, b, timing=timing, threads=n_threads) for b in args.batch]
        core_b1 = next((r for r in results if r["batch"] == 1), None)
        if core_b1 is None:
            core_b1 = bench.time_core(s.id, 1, timing=timing)
        parallel = bench.time_parallel_face(s.id, timing=timing)
        vector = bench.time_vector_face(s.id, 1, timing=timing)

    rows = [["face", "batch", "steps/run", "copy-steps/s", "agent-steps/s", "us/step"]]
    for r in [*results, parallel, vector]:
        rows.append(
            [
                r["face"],
                str(r["batch"]),
                str(r["steps"]),
                bench.format_rate(r["copy_steps_per_s"]),
                bench.format_rate(r["agent_steps_per_s"]),
                f"{r['us_per_step']:.2f}",
            ]
        )
    print(file=out)
    _table(rows, out, "<>>>>>")
    print(
        f"\nthroughput: {results[0]['statistic']} (copy-steps/s = batch * steps / s; "
        f"agent-steps/s x {results[0]['n_agents']} agents)",
        file=out,
    )
    base = core_b1["copy_steps_per_s"]
    print(
        "face overhead at B=1 (core / face): "
        f"parallel (PettingZoo) {base / parallel['copy_steps_per_s']:.2f}x, "
        f"vector (Gymnasium) {base / vector['copy_steps_per_s']:.2f}x",
        file=out,
    )
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    """Compile the kernels of the given ids (all ids without any) into Numba's cache."""
    from metaenvs.warmup import TABLE_HEADER, format_row, format_table, resolve_specs, warmup

    try:
        specs = resolve_specs(args.ids or None)
    except UnknownEnvError as err:
        print(f"metaenvs warmup: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    what = ", ".join(s.id for s in specs) if args.ids else f"all {len(specs)} ids"
    print(f"metaenvs warmup: compiling the kernels of {what} into Numba's cache", flush=True)
    print(TABLE_HEADER, flush=True)
    notice = logging.getLogger("metaenvs")  # the table says what compiles
    level = notice.level
    notice.setLevel(logging.ERROR)
    try:
        results = warmup(
            [s.id for s in specs],
            plugins=not args.no_plugins,
            report=lambda r: print(format_row(r), flush=True),
        )
    finally:
        notice.setLevel(level)
    print(format_table(results).splitlines()[-1])
    return 0


def experiments() -> dict[str, importlib.metadata.EntryPoint]:
    """The installed experiments: entry points of the group ``metaenvs.experiments`` by name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=EXPERIMENT_GROUP)}


def _experiments_text(found: dict[str, importlib.metadata.EntryPoint]) -> str:
    """The installed experiments, one a line, or how to install them."""
    if not found:
        return (
            f"no experiments are installed (entry-point group {EXPERIMENT_GROUP}); "
            "`pip install metaenvs[baselines]` provides them"
        )
    lines = ["experiments:"]
    lines += [f"  {name:<8} {found[name].value}" for name in sorted(found)]
    return "\n".join(lines)


def cmd_experiment(args: argparse.Namespace) -> int:
    """Hand ``[command, *args]`` to the experiment's entry point; return its exit status."""
    found = experiments()
    if args.experiment is None:
        print(_experiments_text(found), file=sys.stderr)
        print(f"usage: metaenvs {args.command} NAME [ARGS...]", file=sys.stderr)
        return EXIT_USAGE
    if args.experiment not in found:
        if found:
            known = ", ".join(sorted(found))
            msg = f"unknown experiment {args.experiment!r}; known: {known}"
        else:
            msg = (
                f"unknown experiment {args.experiment!r}: no experiments are installed "
                f"(group {EXPERIMENT_GROUP}); `pip install metaenvs[baselines]` provides them"
            )
        print(f"metaenvs {args.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    main_of_experiment = found[args.experiment].load()
    return int(main_of_experiment([args.command, *args.args]) or 0)


# -- entry point ---------------------------------------------------------------------------
def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``metaenvs``."""
    parser = argparse.ArgumentParser(
        prog="metaenvs",
        description="Numba-accelerated, batched multi-agent environments for meta-learning.",
    )
    parser.add_argument("--version", action="version", version=f"metaenvs {metaenvs.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list the environment ids")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="describe one environment")
    p.add_argument("id", help="environment id, e.g. ipd, ipd-v0 or metaenvs/ipd-v0")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "bench",
        help="time one environment",
        description="Time the batched core at each batch size (compile time apart), then "
        "the PettingZoo and Gymnasium vector faces at B=1.",
    )
    p.add_argument("id", help="environment id")
    p.add_argument(
        "--batch",
        type=_positive,
        nargs="+",
        default=[1, 1024, 65536],
        metavar="B",
        help="batch sizes of the core (default: 1 1024 65536)",
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--steps", type=_positive, default=None, help="steps per timed run (default: by --seconds)"
    )
    length.add_argument(
        "--seconds",
        type=_positive_float,
        default=0.5,
        help="target seconds per timed run when --steps is not given (default: 0.5)",
    )
    p.add_argument(
        "--repeats", type=_positive, default=5, help="timed runs; the best is reported (default 5)"
    )
    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="threads of a large batch (default: METAENVS_NUM_THREADS, else the cores)",
    )
    p.add_argument(
        "--contended",
        action="store_true",
        help="time with a busy process competing for one core (a loaded machine)",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "warmup",
        help="compile kernels into Numba's cache",
        description="Compile every kernel signature the ids use (their faces, wrappers and "
        "learners) into Numba's on-disk cache, so that later processes load them instead "
        "of compiling: run it once after an install or an upgrade.  Without ids: every id.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="environment ids (default: all)")
    p.add_argument(
        "--no-plugins",
        action="store_true",
        help="only the environments' own kernels, not those of the installed wrappers "
        "(entry-point group metaenvs.warmup)",
    )
    p.set_defaults(func=cmd_warmup)

    for command, verb in (("train", "train"), ("compare", "compare the runs of")):
        p = sub.add_parser(
            command,
            help=f"{verb} an installed experiment (e.g. comm)",
            description=f"{verb.capitalize()} an experiment plugged in through the entry-point "
            f"group {EXPERIMENT_GROUP}; the remaining arguments go to it "
            f"(`metaenvs {command} NAME --help` shows them).",
            epilog=_experiments_text(experiments()),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "experiment", metavar="NAME", nargs="?", help="experiment name (listed below)"
        )
        p.add_argument("args", nargs=argparse.REMAINDER, help="the experiment's arguments")
        p.set_defaults(func=cmd_experiment)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``metaenvs`` command line; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 2 for an unknown id or experiment (argparse exits with 2 for bad
        usage); ``train`` and ``compare`` return the experiment's status.
    """
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
