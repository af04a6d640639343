"""Small pieces the faces share."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from metaenvs.core import BatchedCore, CoreState


def check_render_mode(render_mode: str | None, allowed: list[str]) -> str | None:
    """Raise ``ValueError`` for a render mode the face does not support."""
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(f"unknown render_mode {render_mode!r}; valid: {allowed} or None")
    return render_mode


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
