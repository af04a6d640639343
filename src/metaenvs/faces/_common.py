"""Small pieces the faces share."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from metaenvs.core import BatchedCore, CoreState


def check_render_mode(render_mode: str | None, allowed: list[str]) -> str | None:
    """Raise ``ValueError`` for a render mode the face does not support."""
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(f"unknown render_mode {render_mode!r}; valid: {allowed} or None")
    return render_mode


def check_reset_options(options: Any, face: str, warn_only: bool = False) -> None:
    """Accept ``options`` None or ``{}``; raise (or warn) for others: no face honours any.

    Every face and view calls this first in ``reset``, so ignored options never pass
    silently and a rejected call changes nothing.

    Parameters
    ----------
    options : mapping or None
        The ``options`` given to ``reset``.
    face : str
        The face, named in the message (e.g. ``"BatchedVectorEnv"``).
    warn_only : bool
        Warn (``UserWarning``) instead of raising for a non-empty mapping.  Only the
        PettingZoo face uses it: PettingZoo's own ``parallel_api_test`` and ``api_test``
        call ``reset(seed=0, options={"options": 1})`` and fail on an exception.

    Raises
    ------
    TypeError
        If ``options`` is neither None nor a mapping.
    ValueError
        If ``options`` is a non-empty mapping (and not ``warn_only``); the message lists
        its keys.
    """
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise TypeError(
            f"{face}.reset options must be a dict or None, got {type(options).__name__}"
        )
    if not options:
        return
    if warn_only:
        warnings.warn(
            f"{face} ignores reset options {list(options)} (it has none; PettingZoo's API "
            "requires reset to accept them); pass game settings as keywords when making "
            "the env",
            UserWarning,
            stacklevel=3,
        )
        return
    raise ValueError(
        f"{face} takes no reset options, got {list(options)} (only None or {{}} are "
        "accepted); pass game settings as keywords when making the env"
    )


def stacked_action_space(core: BatchedCore) -> spaces.Space:
    """The joint action space of one copy: N agents' actions stacked on axis 0."""
    space = core.action_space
    if isinstance(space, spaces.Discrete):
        return spaces.MultiDiscrete(
            np.full(core.n_agents, space.n),
            dtype=np.int64,
            start=np.full(core.n_agents, space.start),
        )
    if isinstance(space, spaces.MultiDiscrete):
        return spaces.MultiDiscrete(
            np.broadcast_to(space.nvec, (core.n_agents, *space.shape)),
            dtype=np.int64,
            start=np.broadcast_to(space.start, (core.n_agents, *space.shape)),
        )
    low = np.broadcast_to(space.low, (core.n_agents, *space.shape))
    high = np.broadcast_to(space.high, (core.n_agents, *space.shape))
    return spaces.Box(low, high, dtype=space.dtype)


def stacked_observation_space(core: BatchedCore) -> spaces.Box:
    """The joint observation space of one copy: ``(N, *obs_shape)``."""
    space = core.observation_space
    low = np.broadcast_to(space.low, (core.n_agents, *space.shape))
    high = np.broadcast_to(space.high, (core.n_agents, *space.shape))
    return spaces.Box(low, high, dtype=space.dtype)


def render_copies(
    core: BatchedCore, state: CoreState | None, render_mode: str | None, copies: range
) -> list[np.ndarray] | None:
    """Frames of ``copies`` for ``render()``; warns and returns None without a render mode."""
    if render_mode is None:
        gymnasium.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
        return None
    if state is None:
        raise RuntimeError("render() called before reset()")
    return [core.render_copy(state, b) for b in copies]
