"""Cooperative push: N agents push a large, heavy ball to a target.

Paper: comm-topology-meta-gradient (section 5: ``push_N3``, ``push_N6``).  The paper
gives no sizes or masses; the defaults below are ours (a ball 2.5 times an agent's
radius and twice its mass).  The physics is mpe2's (see
[Particle world](../particle_world.md)).

## Agents
``agent_0`` ... ``agent_{N-1}`` (size 0.1, acceleration 5, no speed limit, colliding).
The ball (size ``ball_size``, mass ``ball_mass``) is moved only by contact forces; the
target is a point that does not collide.

## Action Space
``Discrete(5)``: no-op, -x, +x, -y, +y; with ``continuous_actions=True``,
``Box(0, 1, (5,))`` and force ``5 * (a[2] - a[1], a[4] - a[3])``, as mpe2.

## Observation Space
``Box(-inf, inf, (D,), float32)``: own velocity (2) and position (2), the ball and the
target relative to the agent (2 + 2), then the d neighbours (the other agents, see
``neighbours``) relative to the agent (2 d) and their indices as floats, -1 in an empty
slot (d).

## Rewards
Shared by all agents: ``-|ball - target|`` every step.

## Starting State
Agents and target uniform in ``[-1, 1]^2``, the ball uniform in ``[-0.5, 0.5]^2``, at
rest.

## Episode End
Never terminated; truncated after ``horizon`` steps (25, as the paper).

## Version History
v0: first release.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numba
import numpy as np
from gymnasium import spaces

from metaenvs.config import check_float, check_int
from metaenvs.games import _particle_kernels as pk
from metaenvs.games.particle import (
    Entities,
    ParticleConfig,
    ParticleCore,
    ParticleState,
    agent_colours,
)

BALL_COLOUR = (90, 90, 200)
TARGET_COLOUR = (40, 40, 40)


@dataclasses.dataclass(frozen=True)
class PushConfig(ParticleConfig):
    """Configuration of cooperative push."""

    n_agents: int = 3
    """Number of agents N."""
    ball_size: float = 0.25
    """Radius of the ball."""
    ball_mass: float = 2.0
    """Mass of the ball (an agent's is 1)."""
    agent_size: float = 0.1
    """Radius of an agent."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("n_agents", self.n_agents, 1)
        for name in ("ball_size", "ball_mass", "agent_size"):
            check_float(name, getattr(self, name))
        self.neighbour_slots(self.n_agents - 1)


# -- kernels ---------------------------------------------------------------------------
# Entities: agents 0..n-1, the ball n, the target n + 1; ``task`` is ``(n,)``.


@numba.njit(cache=True)
def _sense(lo, hi, pos, vel, n, nb_mode, radius, nb_ids, nb_rel, obs, reward, scratch):
    """Neighbours, observations and the shared reward of copies ``lo..hi-1`` (batched
    arrays, see :mod:`metaenvs.games._particle_kernels`)."""
    ball, target = n, n + 1
    pk.find_neighbours(lo, hi, pos, 0, n, nb_mode, radius, nb_ids, nb_rel, 0, 0, scratch)
    for b in range(lo, hi):
        dx, dy = pos[b, ball, 0] - pos[b, target, 0], pos[b, ball, 1] - pos[b, target, 1]
        shared = -math.sqrt(dx**2 + dy**2)
        for i in range(n):
            px, py = pos[b, i, 0], pos[b, i, 1]
            obs[b, i, 0], obs[b, i, 1] = vel[b, i, 0], vel[b, i, 1]
            obs[b, i, 2], obs[b, i, 3] = px, py
            obs[b, i, 4], obs[b, i, 5] = pos[b, ball, 0] - px, pos[b, ball, 1] - py
            obs[b, i, 6], obs[b, i, 7] = pos[b, target, 0] - px, pos[b, target, 1] - py
            reward[b, i] = shared
    pk.write_neighbours(lo, hi, nb_ids, nb_rel, 0, 0, n, obs, 0, 8)


@numba.njit(cache=True)
def _start(b, pos, vel, rng, nb_ids, nb_rel, obs, reward, n, nb_mode, radius, scratch):
    """Start copy ``b``: agents and target in [-1, 1]^2, the ball in [-0.5, 0.5]^2.  Its
    reward row is scratch here (no reward at the start): the caller restores it."""
    pk.place_uniform(pos, vel, rng, b, 0, n, 1.0)
    pk.place_uniform(pos, vel, rng, b, n, n + 1, 0.5)
    pk.place_uniform(pos, vel, rng, b, n + 1, n + 2, 1.0)
    _sense(b, b + 1, pos, vel, n, nb_mode, radius, nb_ids, nb_rel, obs, reward, scratch)


@numba.njit(cache=True)
def reset_push(bufs, sim, task):
    """Start every copy."""
    pos, vel, force, t, rng, nb_ids, nb_rel, obs, reward, terminated, truncated, final_obs = bufs
    size, mass, accel, max_speed, movable, collide, world, horizon, nb_mode, radius = sim
    scratch = pk.scratch_space(pos.shape[1])
    for b in range(pos.shape[0]):
        t[b] = 0
        _start(b, pos, vel, rng, nb_ids, nb_rel, obs, reward, task[0], nb_mode, radius, scratch)
        for i in range(task[0]):
            reward[b, i] = 0.0


@numba.njit(cache=True, nogil=True)
def step_push(bufs, sim, task, lo, hi):
    """Advance copies ``lo..hi-1``: physics, reward, observations, auto-reset."""
    pos, vel, force, t, rng, nb_ids, nb_rel, obs, reward, terminated, truncated, final_obs = bufs
    size, mass, accel, max_speed, movable, collide, world, horizon, nb_mode, radius = sim
    n = task[0]
    scratch = pk.scratch_space(pos.shape[1])
    block = scratch[0].shape[0]
    for first in range(lo, hi, block):
        last = min(first + block, hi)
        pk.physics(first, last, pos, vel, force, size, mass, max_speed, movable, collide, world)
        _sense(first, last, pos, vel, n, nb_mode, radius, nb_ids, nb_rel, obs, reward, scratch)
        pk.tick(first, last, t, horizon, terminated, truncated, obs, final_obs)
        for b in range(first, last):
            if truncated[b]:
                shared = reward[b, 0]  # the finished episode's last reward
                _start(b, pos, vel, rng, nb_ids, nb_rel, obs, reward, n, nb_mode, radius, scratch)
                for i in range(n):
                    reward[b, i] = shared


class PushCore(ParticleCore):
    """Batched cooperative push (see the module docstring for the spec)."""

    config_cls = PushConfig
    kernels = (reset_push, step_push)
    config: PushConfig
    reward_description: ClassVar[str] = "minus the ball's distance to the target, shared"

    def __init__(self, config: PushConfig) -> None:
        super().__init__(config)
        n = config.n_agents
        self._agents = tuple(f"agent_{i}" for i in range(n))
        self.neighbour_agents = n
        self.entities = Entities.build(
            [
                {"count": n, "size": config.agent_size, "colours": agent_colours(n)},
                {
                    "count": 1,
                    "size": config.ball_size,
                    "mass": config.ball_mass,
                    "accel": 0.0,
                    "colour": BALL_COLOUR,
                },
                {
                    "count": 1,
                    "size": 0.05,
                    "movable": False,
                    "collide": False,
                    "colour": TARGET_COLOUR,
                },
            ]
        )
        width = 8 + 3 * self.neighbour_slots
        self.observation_space = spaces.Box(-np.inf, np.inf, (width,), dtype=np.float32)

    def task_params(self, state: ParticleState) -> tuple:
        return (self.config.n_agents,)
