"""The one command line of every experiment, built from its Args dataclass.

``metaenvs train NAME --methods M [M ...] --seeds S [S ...] --<field> VALUE ...`` trains
methods x seeds one after the other; every Args field is a flag whose help is the field's
docstring (``--help`` lists them with their defaults).  ``metaenvs compare NAME DIR``
tabulates and plots the runs of one experiment folder (``OUT/GROUP``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baselines._runs import ConfigMismatchError, one_thread_per_run, parse_value
from baselines.experiment.spec import Experiment
from metaenvs.config import field_docs

OWN = ("method", "seed")
"""Args fields set by ``--methods`` and ``--seeds`` (lists: one run per combination)."""


def field_type(cls: type, name: str) -> type:
    """The type a field's value is parsed as: its annotation without ``None``."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0]
    return typing.get_origin(hint) or hint


def parse_field(cls: type, field: dataclasses.Field, text: str) -> Any:
    """``text`` as the value of ``field``: ``none`` for an optional field, else by its type.

    Raises
    ------
    ValueError
        Naming the field, for text that is not a value of its type.
    """
    kind = field_type(cls, field.name)
    optional = field.default is None or "None" in str(field.type)
    if optional and text.strip().lower() in ("none", "null"):
        return None
    prototypes = {bool: False, int: 0, float: 0.0, str: "", tuple: ("",)}
    if kind is tuple and isinstance(field.default, tuple) and field.default:
        proto: Any = field.default
    else:
        proto = prototypes.get(kind, field.default)
    try:
        return parse_value(text, proto)
    except ValueError as err:
        raise ValueError(f"--{field.name.replace('_', '-')}: {err}") from None


def _help(doc: str, default: Any) -> str:
    text = " ".join(doc.split()) if doc else ""
    return f"{text} (default: {default!r})".strip().replace("%", "%%")


def add_field_flags(
    group: Any, cls: type, skip: Sequence[str] = (), aliases: dict[str, Sequence[str]] | None = None
) -> None:
    """One flag per field of the dataclass ``cls`` (``--lr-comm``, dest ``field_lr_comm``),
    its docstring and default as the help; read them back with :func:`given_fields`."""
    defaults, docs = cls(), field_docs(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        group.add_argument(
            f"--{field.name.replace('_', '-')}",
            *(aliases or {}).get(field.name, ()),
            dest=f"field_{field.name}",
            metavar=field_type(cls, field.name).__name__.upper(),
            help=_help(docs.get(field.name, ""), getattr(defaults, field.name)),
        )


def given_fields(cls: type, ns: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` given as flags (:func:`add_field_flags`), parsed to their types.

    Raises
    ------
    ValueError
        Naming the flag whose text does not parse.
    """
    return {
        field.name: parse_field(cls, field, text)
        for field in dataclasses.fields(cls)
        if (text := getattr(ns, f"field_{field.name}", None)) is not None
    }


def build_parser(experiment: Experiment) -> argparse.ArgumentParser:
    """``train`` (every Args field a flag) and ``compare`` for ``experiment``."""
    parser = argparse.ArgumentParser(
        prog=f"metaenvs {{train,compare}} {experiment.name}", description=experiment.description
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser(
        "train",
        prog=f"metaenvs train {experiment.name}",
        help="train methods x seeds, one run after the other (resumes)",
        description=f"{experiment.description} Every field of "
        f"{experiment.args_cls.__name__} is a flag.",
    )
    defaults = experiment.args_cls()
    train.add_argument(
        "--methods",
        "--method",
        nargs="+",
        metavar="METHOD",
        help=f"methods, one run each: {', '.join(experiment.methods)} (default: {defaults.method})",
    )
    train.add_argument(
        "--seeds",
        "--seed",
        type=int,
        nargs="+",
        default=[defaults.seed],
        metavar="SEED",
        help=f"seeds, one run each (default: {defaults.seed})",
    )
    train.add_argument("--out", default=f"runs/{experiment.name}", help="root of the runs")
    train.add_argument(
        "--name",
        help=f"folder under --out (default: the {experiment.group_field.replace('_', '-')})",
    )
    train.add_argument(
        "--threads", type=int, default=1, help="torch and numba threads per run (default 1)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--workers",
        type=int,
        default=1,
        help="run the methods x seeds as Ray tasks on a local Ray instance with this many "
        "CPUs (default 1: one run after the other here, without Ray)",
    )
    train.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="run them as Ray tasks on this Ray cluster ('auto', 'ray://host:10001')",
    )
    fields = train.add_argument_group(f"{experiment.args_cls.__name__} fields")
    add_field_flags(fields, experiment.args_cls, skip=OWN, aliases=experiment.aliases)
    compare = sub.add_parser(
        "compare",
        prog=f"metaenvs compare {experiment.name}",
        help="summary table and figures of one experiment",
    )
    compare.add_argument("exp_dir", type=Path, metavar="DIR", help="OUT/GROUP of the runs")
    compare.add_argument("--methods", nargs="+", metavar="METHOD", help="default: all")
    compare.add_argument(
        "--until",
        type=float,
        metavar="X",
        help=f"only the rows up to this {experiment.x_column} (compare runs at one budget)",
    )
    return parser


def train_args(
    experiment: Experiment, ns: argparse.Namespace, parser: argparse.ArgumentParser
) -> list[Any]:
    """Every run's args, built (and so validated) before the first run starts."""
    cls = experiment.args_cls
    try:
        changes = given_fields(cls, ns)
    except ValueError as err:
        parser.error(str(err))
    methods = list(dict.fromkeys(ns.methods or [cls().method]))
    unknown = [m for m in methods if m not in experiment.methods]
    if unknown:
        parser.error(
            f"unknown method(s) {', '.join(unknown)}; valid: {', '.join(experiment.methods)}"
        )
    seeds = list(dict.fromkeys(ns.seeds))
    if any(s < 0 for s in seeds):
        parser.error(f"--seeds must be >= 0, got {' '.join(map(str, ns.seeds))}")
    if ns.threads < 1:
        parser.error(f"--threads must be >= 1, got {ns.threads}")
    if ns.workers < 1:
        parser.error(f"--workers must be >= 1, got {ns.workers}")
    try:
        return [cls(**{**changes, "method": m, "seed": s}) for m in methods for s in seeds]
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    return []  # unreachable: parser.error exits


def main(experiment: Experiment, argv: Sequence[str] | None = None) -> int:
    """Command line of ``experiment``: ``train`` or ``compare``.

    Returns
    -------
    int
        0 on success, 1 if there is nothing to compare, 2 for bad usage or a run folder
        holding another config.
    """
    from baselines.experiment.loop import run, warm_kernels
    from baselines.experiment.report import compare

    parser = build_parser(experiment)
    ns = parser.parse_args(argv)
    if ns.command == "compare":
        try:
            if ns.until is not None and ns.until < 0:
                parser.error(f"--until must be >= 0, got {ns.until}")
            paths = compare(experiment, ns.exp_dir, methods=ns.methods, until=ns.until)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        tables = [paths[1], *(p for p in paths[3:] if p.suffix == ".md")]  # and the hook's
        print("\n".join(p.read_text() for p in tables), end="")
        print("wrote", *paths, sep="\n  ")
        return 0
    all_args = train_args(experiment, ns, parser)
    one_thread_per_run(ns.threads)
    warm_kernels(experiment, all_args)
    if ns.workers > 1 or ns.ray_address:
        from baselines.experiment.workers import run_on_ray

        try:
            run_on_ray(experiment, all_args, ns.out, ns.name, ns.threads, ns.workers,
                       ns.ray_address, on_done=lambda d: print(
                           f"{d}: {_last_row_text(experiment, d)}", flush=True))  # fmt: skip
        except (ConfigMismatchError, ImportError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    for args in [] if ns.workers > 1 or ns.ray_address else all_args:
        try:
            run_dir = run(experiment, args, ns.out, name=ns.name, progress=not ns.no_progress)
        except ConfigMismatchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{run_dir}: {_last_row_text(experiment, run_dir)}")
    group = ns.name or getattr(all_args[0], experiment.group_field)
    print(f"compare: metaenvs compare {experiment.name} {Path(ns.out) / str(group)}")
    return 0


def _last_row_text(experiment: Experiment, run_dir: Path) -> str:
    from baselines.experiment.report import read_metrics

    rows = read_metrics(run_dir / "metrics.csv")
    x, score = rows[experiment.x_column], rows[experiment.score]
    return f"{experiment.score_label} {score[-1]:.4g} at {experiment.x_column} {int(x[-1])}"
