"""Pieces every experiment runner shares: the saved config check, checkpoints, metrics files."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ConfigMismatchError(ValueError):
    """A run directory holds a ``config.json`` that differs from the requested args."""


def check_saved_config(path: Path, wanted: dict[str, Any], budget: set[str], hint: str) -> None:
    """Raise if the ``config.json`` at ``path`` exists and differs from ``wanted``.

    Keys in ``budget`` (how long to train) may differ: a run resumes with a larger budget.

    Raises
    ------
    ConfigMismatchError
        Naming every differing field with its saved and its requested value, then ``hint``.
    """
    if not path.exists():
        return
    saved = json.loads(path.read_text())
    keys = sorted((set(saved) | set(wanted)) - budget)
    missing = "<missing>"
    diffs = [
        f"{k} (saved {saved.get(k, missing)!r}, now {wanted.get(k, missing)!r})"
        for k in keys
        if saved.get(k, missing) != wanted.get(k, missing)
    ]
    if diffs:
        raise ConfigMismatchError(
            f"{path} differs from the requested config in: {', '.join(diffs)}; {hint}"
        )


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The runner's own ``checkpoint.pt``, or None if there is none yet."""
    if not path.exists():
        return None
    import torch

    # optimiser and RNG states and runner rows: a full unpickle of the runner's own file
    return torch.load(path, map_location="cpu", weights_only=False)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` atomically (a temporary file, then a rename): a kill keeps the last."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def write_rows(path: Path, rows: Sequence[dict[str, float]], header: Sequence[str]) -> None:
    """Write ``metrics.csv`` anew: the header, then ``rows``."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def append_row(path: Path, row: dict[str, float], header: Sequence[str]) -> None:
    """Append one row to ``metrics.csv``."""
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, fieldnames=header).writerow(row)


def mean_or_nan(values: Sequence[float]) -> float:
    """The mean, NaN for no values (a metrics row with no iterations behind it)."""
    return float(np.mean(values)) if len(values) else float("nan")


def seed_number(path: Path) -> tuple[int, str]:
    """Sort key of ``.../seedS/<file>`` paths: by the number S, other names after."""
    name = path.parent.name
    digits = name.removeprefix("seed")
    return (int(digits), name) if digits.isdigit() else (sys.maxsize, name)


def one_thread_per_run(threads: int) -> None:
    """Torch and Numba threads of a training process.

    One per run by default: with several runs side by side, more threads oversubscribe
    the cores (measured here: two runs with default threads on 2 cores were 20x slower).
    """
    import numba
    import torch

    torch.set_num_threads(max(1, threads))
    numba.set_num_threads(min(max(1, threads), numba.config.NUMBA_NUM_THREADS))


class NullWriter:
    """Stands in for SummaryWriter when TensorBoard is not installed."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def summary_writer(logdir: Path, purge_step: int | None) -> Any:
    """A SummaryWriter that hides events past ``purge_step`` (left by a killed run)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        warnings.warn(f"TensorBoard logging skipped ({err})", stacklevel=3)
        return NullWriter()
    return SummaryWriter(str(logdir), purge_step=purge_step)


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure outside pyplot: no backend switch, nothing left open."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


_T975 = (
    *(12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228),
    *(2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086),
    *(2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042),
)
"""Two-sided 95% t quantiles for 1..30 degrees of freedom (fallback without SciPy)."""


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    try:
        from scipy import stats
    except ImportError:
        if df <= len(_T975):
            return _T975[df - 1]
        z = 1.959964  # Cornish-Fisher expansion: within 1e-4 from df = 31 on
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    return float(stats.t.ppf(0.975, df))


def mean_ci95(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the half-width of its 95% t confidence interval.

    ``t_{0.975, n-1} * std(ddof=1) / sqrt(n)`` over the ``n`` rows; NaN for one row.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, t_quantile_975(n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)


def parse_value(text: str, default: Any) -> Any:
    """Parse ``text`` as the type of a field whose default is ``default``.

    bool takes true/false/yes/no/on/off/1/0; int also takes an integral float (``1e4``);
    tuple takes comma-separated items (or a JSON list) of its first item's type; a field
    defaulting to None takes JSON, else the plain string.
    """
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a bool: {text!r}")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            number = float(text)
            if not number.is_integer():
                raise ValueError(f"not an int: {text!r}") from None
            return int(number)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, str):
        return text
    if isinstance(default, tuple):
        items = json.loads(text) if text.strip().startswith("[") else text.split(",")
        items = [i for i in items if not (isinstance(i, str) and not i.strip())]
        proto = default[0] if default else None
        return tuple(parse_value(str(i).strip(), proto) for i in items)
    try:
        return json.loads(text)
    except ValueError:
        return text
