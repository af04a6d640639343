"""Pieces every experiment runner shares: the run directory's saved config check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
