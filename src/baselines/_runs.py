"""Pieces every experiment runner shares: the saved config check, checkpoints, metrics files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Collection, Sequence
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
    diffs = _config_diffs(json.loads(path.read_text()), wanted, budget)
    if diffs:
        raise ConfigMismatchError(
            f"{path} differs from the requested config in: {', '.join(diffs)}; {hint}"
        )


def _config_diffs(saved: dict[str, Any], wanted: dict[str, Any], budget: set[str]) -> list[str]:
    """``key (saved X, now Y)`` for every key outside ``budget`` whose values differ."""
    keys = sorted((set(saved) | set(wanted)) - budget)
    missing = "<missing>"
    return [
        f"{k} (saved {saved.get(k, missing)!r}, now {wanted.get(k, missing)!r})"
        for k in keys
        if saved.get(k, missing) != wanted.get(k, missing)
    ]


class CheckpointError(ValueError):
    """A ``checkpoint.pt`` that is not loaded: unverified, corrupt, unsafe or another run's.

    The message names the file and says what is wrong with it.
    """


CHECKPOINT_FORMAT = 1
"""Layout of the payload :func:`save_checkpoint` writes; :func:`read_checkpoint` reads no other."""

_STAMP = ("format", "metaenvs", "config")
"""Payload keys :func:`save_checkpoint` adds: format, metaenvs version, the run's config."""


def checkpoint_sidecar(path: Path) -> Path:
    """The SHA-256 file beside ``path`` (``checkpoint.pt.sha256``, ``sha256sum`` format)."""
    return path.with_name(path.name + ".sha256")


def read_checkpoint(
    path: Path,
    expected_config: dict[str, Any] | None = None,
    budget: Collection[str] = (),
) -> dict[str, Any] | None:
    """The runner's own ``checkpoint.pt``, verified, or None if there is none yet.

    The file's SHA-256 is checked against its sidecar (:func:`checkpoint_sidecar`) before
    anything is unpickled, then it is loaded with ``torch.load(weights_only=True)``, which
    rebuilds tensors, plain containers and primitive values only and calls no other code.

    Parameters
    ----------
    path : Path
        The ``checkpoint.pt`` of a run directory.
    expected_config : dict, optional
        The config of the run about to resume (as it reads back from JSON); the
        checkpoint's must equal it, keys in ``budget`` aside.  Not checked if None.
    budget : collection of str
        Config keys that may differ (how long to train: a run resumes with a larger budget).

    Returns
    -------
    dict or None
        The payload given to :func:`save_checkpoint`, plus ``"format"``, ``"metaenvs"``
        (the version that wrote it) and ``"config"``.

    Raises
    ------
    CheckpointError
        Naming the file: the sidecar is missing or its digest differs (a corrupt or changed
        file), the pickle holds anything but tensors and plain data, the format is not
        :data:`CHECKPOINT_FORMAT`, or the config differs from ``expected_config``.
    """
    if not path.exists():
        return None
    import torch

    data = path.read_bytes()  # hashed and loaded from one read: no change in between
    _verify_digest(path, data)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refusals are UnpicklingError, RuntimeError, ...
        raise CheckpointError(
            f"{path}: refused to load: it holds more than tensors and plain data, or is "
            f"not a checkpoint ({_refusal(err)}); delete the run directory or use another --out"
        ) from err
    _check_stamp(path, payload, expected_config, budget)
    return payload


def save_checkpoint(path: Path, payload: dict[str, Any], config: dict[str, Any]) -> None:
    """Write ``payload`` and its SHA-256 sidecar, each atomically: a kill keeps the last.

    Both go to temporary files flushed to disk first; then the checkpoint is renamed into
    place, then its sidecar.  A kill between the two renames leaves ``<sidecar>.tmp``
    holding the new digest, which :func:`read_checkpoint` accepts and puts in place.

    Parameters
    ----------
    path : Path
        The ``checkpoint.pt`` to write.
    payload : dict
        What the runner resumes from: tensors, plain containers and primitive values only
        (anything else would not load under ``weights_only``).
    config : dict
        The run's config, as it reads back from JSON, stored under ``"config"``.

    Raises
    ------
    ValueError
        If ``payload`` already has a key :func:`save_checkpoint` adds.
    """
    import torch

    import metaenvs

    taken = sorted(set(_STAMP) & set(payload))
    if taken:
        raise ValueError(f"checkpoint payload keys {taken} are reserved")
    stamped = {
        "format": CHECKPOINT_FORMAT,
        "metaenvs": metaenvs.__version__,
        "config": config,
        **payload,
    }
    buffer = io.BytesIO()
    torch.save(stamped, buffer)
    data = buffer.getvalue()
    sidecar = checkpoint_sidecar(path)
    digest_line = f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode()
    data_tmp, sidecar_tmp = _write_temporary(path, data), _write_temporary(sidecar, digest_line)
    os.replace(data_tmp, path)
    os.replace(sidecar_tmp, sidecar)


def _write_temporary(path: Path, data: bytes) -> Path:
    """``data`` into ``<path>.tmp``, flushed to disk; that file's path."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _read_digest(sidecar: Path) -> str | None:
    """The hex digest a sidecar names (its first field), None if it has none."""
    fields = sidecar.read_text(errors="replace").split()
    return fields[0].lower() if fields else None


def _verify_digest(path: Path, data: bytes) -> None:
    """Raise unless ``data`` (the bytes of ``path``) has the digest its sidecar names."""
    sidecar = checkpoint_sidecar(path)
    if not sidecar.exists():
        raise CheckpointError(
            f"{path}: no {sidecar.name} beside it, so it cannot be verified and is not "
            "loaded (written by an older metaenvs, or copied without it); delete the run "
            "directory or use another --out"
        )
    actual = hashlib.sha256(data).hexdigest()
    expected = _read_digest(sidecar)
    if expected == actual:
        return
    pending = sidecar.with_name(sidecar.name + ".tmp")  # a save killed between its renames
    if pending.exists() and _read_digest(pending) == actual:
        os.replace(pending, sidecar)
        return
    raise CheckpointError(
        f"{path}: its SHA-256 is {actual} but {sidecar.name} says {expected or '(nothing)'}: "
        "the file is corrupt or was changed, and is not loaded; delete the run directory "
        "or use another --out"
    )


def _refusal(err: Exception) -> str:
    """The gist of a ``torch.load`` error: what the weights-only unpickler refused."""
    text = str(err)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed|\n|$)", text)
    if found and found.group(1).strip():
        return found.group(1).strip()
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _check_stamp(
    path: Path,
    payload: Any,
    expected_config: dict[str, Any] | None,
    budget: Collection[str],
) -> None:
    """Raise unless ``payload`` has this format and, if given, ``expected_config``."""
    import metaenvs

    found = payload.get("format") if isinstance(payload, dict) else None
    if found != CHECKPOINT_FORMAT:
        written = payload.get("metaenvs", "unknown") if isinstance(payload, dict) else "unknown"
        raise CheckpointError(
            f"{path}: checkpoint format {found!r} (written by metaenvs {written}), but "
            f"metaenvs {metaenvs.__version__} reads format {CHECKPOINT_FORMAT} only; "
            "delete the run directory or use another --out"
        )
    if expected_config is None:
        return
    diffs = _config_diffs(payload.get("config") or {}, expected_config, set(budget))
    if diffs:
        raise CheckpointError(
            f"{path}: written by a run with another config, differing in: "
            f"{', '.join(diffs)}; delete the run directory or use another --out"
        )


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

    import metaenvs.threads

    torch.set_num_threads(max(1, threads))
    numba.set_num_threads(min(max(1, threads), numba.config.NUMBA_NUM_THREADS))
    metaenvs.threads.set_num_threads(max(1, threads))


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
