"""Cooperative navigation: N agents cover N landmarks without colliding (MPE ``simple_spread``).

Papers: comm-topology-meta-gradient (section 5: ``navigation_N3_l3``,
``navigation_N6_l1``, ``navigation_N6_l6``) and dima-pg-distributed (section 5.2.1:
individual rewards, horizon 200, N = 3 and 10).  The physics is mpe2's (see
[Particle world](../particle_world.md)).

## Agents
``agent_0`` ... ``agent_{N-1}`` (size 0.15, acceleration 5, no speed limit, colliding).
``n_landmarks`` landmarks (default N) are points that do not collide.

## Action Space
``Discrete(5)``: no-op, -x, +x, -y, +y; with ``continuous_actions=True``,
``Box(0, 1, (5,))`` and force ``5 * (a[2] - a[1], a[4] - a[3])``, as mpe2.

## Observation Space
``Box(-inf, inf, (D,), float32)``, in this order:

- own velocity (2) and position (2);
- ``reward="individual"`` only: own goal (landmark i) relative to the agent (2);
- the nearest ``l = n_observed_landmarks`` landmarks relative to the agent, nearest first
  (2 l);
- the d neighbours (the other agents, see ``neighbours``) relative to the agent (2 d),
  then their agent indices as floats, -1 in an empty slot (d).

## Rewards
With ``g = -sum over landmarks of the distance to the nearest agent`` (coverage) and
``c_i = -(number of other agents touching agent i)`` (collisions):

- ``"mpe2"``: ``(1 - local_ratio) * g + local_ratio * c_i``, mpe2 ``simple_spread``
  exactly (``local_ratio`` 0.5);
- ``"shared"`` (the paper ids): every agent gets the team mean of the ``"mpe2"`` reward,
  ``(1 - local_ratio) * g + local_ratio * mean_i c_i``;
- ``"individual"`` (dima-pg): agent i's goal is landmark i; it gets
  ``clip(-|p_i - goal_i|^2 + c_i - out_i, -1, 1)`` where ``out_i`` is 1 when the agent
  is outside ``[-1, 1]^2``.  dima-pg reports the minimum over agents, so rewards stay
  per agent.

## Starting State
Agents and landmarks uniform in ``[-1, 1]^2``, at rest.

## Episode End
Never terminated; truncated after ``horizon`` steps (25, as the comm-topology paper and
mpe2; 200 for the dima-pg ids).

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

from metaenvs.config import check_choice, check_float, check_int
from metaenvs.games import _particle_kernels as pk
from metaenvs.games.particle import (
    Entities,
    ParticleConfig,
    ParticleCore,
    ParticleState,
    agent_colours,
)

REWARDS = ("mpe2", "shared", "individual")


@dataclasses.dataclass(frozen=True)
class NavigationConfig(ParticleConfig):
    """Configuration of cooperative navigation."""

    n_agents: int = 3
    """Number of agents N."""
    n_landmarks: int | None = None
    """Number of landmarks (default N)."""
    n_observed_landmarks: int | None = None
    """l, the nearest landmarks each agent observes (default all)."""
    reward: str = "shared"
    """``"shared"`` (paper), ``"mpe2"`` (simple_spread) or ``"individual"`` (dima-pg)."""
    local_ratio: float = 0.5
    """Weight of the collision term against coverage (mpe2's ``local_ratio``)."""
    agent_size: float = 0.15
    """Radius of an agent (mpe2: 0.15)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("n_agents", self.n_agents, 2)
        check_choice("reward", self.reward, REWARDS)
        if self.n_landmarks is not None:
            check_int("n_landmarks", self.n_landmarks, 1)
        if self.reward == "individual" and self.landmarks < self.n_agents:
            raise ValueError('reward="individual" needs a landmark (goal) per agent')
        if self.n_observed_landmarks is not None:
            check_int("n_observed_landmarks", self.n_observed_landmarks, 1)
            if self.n_observed_landmarks > self.landmarks:
                raise ValueError(
                    f"n_observed_landmarks={self.n_observed_landmarks} > "
                    f"n_landmarks={self.landmarks}"
                )
        check_float("local_ratio", self.local_ratio, strict=False)
        if self.local_ratio > 1.0:
            raise ValueError(f"local_ratio must be in [0, 1], got {self.local_ratio}")
        check_float("agent_size", self.agent_size)
        self.neighbour_slots(self.n_agents - 1)

    @property
    def landmarks(self) -> int:
        return self.n_agents if self.n_landmarks is None else self.n_landmarks

    @property
    def observed_landmarks(self) -> int:
        return self.landmarks if self.n_observed_landmarks is None else self.n_observed_landmarks


# -- kernels ---------------------------------------------------------------------------
# ``task`` is ``(n_agents, n_landmarks, n_observed_landmarks, reward_mode, local_ratio)``;
# ``reward_mode`` indexes ``REWARDS``.  Arrays are the batched ones of ``Buffers``; see
# :mod:`metaenvs.games._particle_kernels` for why they are indexed, not sliced.


@numba.njit(cache=True)
def _observe(lo, hi, pos, vel, task, nb_ids, nb_rel, obs, scratch):
    """Observations ``(N, D)`` of copies ``lo..hi-1`` (layout in the module docstring)."""
    n, n_landmarks, n_seen, mode, _ = task
    for b in range(lo, hi):
        for i in range(n):
            obs[b, i, 0], obs[b, i, 1] = vel[b, i, 0], vel[b, i, 1]
            obs[b, i, 2], obs[b, i, 3] = pos[b, i, 0], pos[b, i, 1]
            if mode == 2:  # individual: own goal first
                obs[b, i, 4] = pos[b, n + i, 0] - pos[b, i, 0]
                obs[b, i, 5] = pos[b, n + i, 1] - pos[b, i, 1]
    at = 6 if mode == 2 else 4
    at = pk.write_nearest(lo, hi, pos, 0, n, n, n + n_landmarks, n_seen, obs, 0, at, scratch)
    pk.write_neighbours(lo, hi, nb_ids, nb_rel, 0, 0, n, obs, 0, at)


@numba.njit(cache=True)
def _reward(lo, hi, pos, size, task, reward, hits):
    """Rewards ``(N,)`` of copies ``lo..hi-1``; ``hits`` is scratch ``(N,)``.

    Each pair's contact is tested once for both agents and each landmark's coverage
    takes one square root (of the smallest squared distance): the same numbers as
    testing both ways and taking the smallest root (both are exact under symmetry and
    the monotone, correctly rounded ``sqrt``).
    """
    n, n_landmarks, _, mode, local_ratio = task
    for b in range(lo, hi):
        for i in range(n):
            hits[i] = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                dx, dy = pos[b, i, 0] - pos[b, j, 0], pos[b, i, 1] - pos[b, j, 1]
                if math.sqrt(dx * dx + dy * dy) < size[i] + size[j]:  # mpe2's is_collision
                    hits[i] -= 1.0
                    hits[j] -= 1.0
        if mode == 2:  # individual (dima-pg)
            for i in range(n):
                r = -(
                    (pos[b, i, 0] - pos[b, n + i, 0]) ** 2 + (pos[b, i, 1] - pos[b, n + i, 1]) ** 2
                )
                for _ in range(int(-hits[i])):  # one rounding per contact, as mpe2
                    r -= 1.0
                if abs(pos[b, i, 0]) > 1.0 or abs(pos[b, i, 1]) > 1.0:
                    r -= 1.0
                reward[b, i] = min(max(r, -1.0), 1.0)
            continue
        coverage = 0.0
        for lm in range(n, n + n_landmarks):
            best = np.inf
            for i in range(n):
                best = min(
                    best, (pos[b, i, 0] - pos[b, lm, 0]) ** 2 + (pos[b, i, 1] - pos[b, lm, 1]) ** 2
                )
            coverage -= math.sqrt(best)
        total = 0.0
        for i in range(n):
            reward[b, i] = (1.0 - local_ratio) * coverage + local_ratio * hits[i]
            total += reward[b, i]
        if mode == 1:  # shared: the team mean
            for i in range(n):
                reward[b, i] = total / n


@numba.njit(cache=True)
def _start(b, pos, vel, rng, nb_ids, nb_rel, obs, task, nb_mode, radius, scratch):
    """Start copy ``b``: agents and landmarks uniform in [-1, 1]^2, first observations."""
    pk.place_uniform(pos, vel, rng, b, 0, task[0] + task[1], 1.0)
    pk.find_neighbours(b, b + 1, pos, 0, task[0], nb_mode, radius, nb_ids, nb_rel, 0, 0, scratch)
    _observe(b, b + 1, pos, vel, task, nb_ids, nb_rel, obs, scratch)


@numba.njit(cache=True)
def reset_navigation(bufs, sim, task):
    """Start every copy."""
    pos, vel, force, t, rng, nb_ids, nb_rel, obs, reward, terminated, truncated, final_obs = bufs
    size, mass, accel, max_speed, movable, collide, world, horizon, nb_mode, radius = sim
    scratch = pk.scratch_space(pos.shape[1])
    for b in range(pos.shape[0]):
        t[b] = 0
        _start(b, pos, vel, rng, nb_ids, nb_rel, obs, task, nb_mode, radius, scratch)


@numba.njit(cache=True, nogil=True)
def step_navigation(bufs, sim, task, lo, hi):
    """Advance copies ``lo..hi-1``: physics, rewards, neighbours, observations, auto-reset."""
    pos, vel, force, t, rng, nb_ids, nb_rel, obs, reward, terminated, truncated, final_obs = bufs
    size, mass, accel, max_speed, movable, collide, world, horizon, nb_mode, radius = sim
    n = task[0]
    scratch = pk.scratch_space(pos.shape[1])
    for first in range(lo, hi, scratch[0].shape[0]):
        last = min(first + scratch[0].shape[0], hi)
        pk.physics(first, last, pos, vel, force, size, mass, max_speed, movable, collide, world)
        _reward(first, last, pos, size, task, reward, scratch[1])
        pk.find_neighbours(first, last, pos, 0, n, nb_mode, radius, nb_ids, nb_rel, 0, 0, scratch)
        _observe(first, last, pos, vel, task, nb_ids, nb_rel, obs, scratch)
        pk.tick(first, last, t, horizon, terminated, truncated, obs, final_obs)
        for b in range(first, last):
            if truncated[b]:
                _start(b, pos, vel, rng, nb_ids, nb_rel, obs, task, nb_mode, radius, scratch)


class NavigationCore(ParticleCore):
    """Batched cooperative navigation (see the module docstring for the spec)."""

    config_cls = NavigationConfig
    kernels = (reset_navigation, step_navigation)
    config: NavigationConfig
    reward_description: ClassVar[str] = "coverage of the landmarks minus collisions"

    def __init__(self, config: NavigationConfig) -> None:
        super().__init__(config)
        n, n_lm = config.n_agents, config.landmarks
        self._agents = tuple(f"agent_{i}" for i in range(n))
        self.neighbour_agents = n
        self.entities = Entities.build(
            [
                {"count": n, "size": config.agent_size, "colours": agent_colours(n)},
                {"count": n_lm, "size": 0.05, "movable": False, "collide": False},
            ]
        )
        d = self.neighbour_slots
        individual = config.reward == "individual"
        width = 4 + 2 * individual + 2 * config.observed_landmarks + 3 * d
        self.observation_space = spaces.Box(-np.inf, np.inf, (width,), dtype=np.float32)
        reward_mode = REWARDS.index(config.reward)
        self._task = (n, n_lm, config.observed_landmarks, reward_mode, config.local_ratio)

    def task_params(self, state: ParticleState) -> tuple:
        return self._task
