"""Predator-prey: N predators chase M faster prey among landmarks (MPE ``simple_tag``).

Papers: comm-topology-meta-gradient (section 5: ``predator_prey_N3_M1_l3``,
``predator_prey_N6_M2_l1``, ``predator_prey_N6_M2_l6``, prey controlled by the
environment) and dima-pg-distributed (section 5.3: prey are agents too, 3 vs 1 with prey
30% faster, 12 vs 4 with prey 50% faster, horizon 200).  The physics is mpe2's (see
[Particle world](../particle_world.md)).

## Agents
``predator_0`` ... ``predator_{N-1}`` (size 0.075, acceleration 3, max speed 1.0).  With
``prey="agents"`` also ``prey_0`` ... ``prey_{M-1}`` (size 0.05, acceleration 4, max
speed 1.3 by default).  ``n_landmarks`` obstacles (size 0.2, default N) block everyone.

Who moves the prey (``prey``):

- ``"heuristic"`` (default): a built-in scripted policy. Each prey runs away from the
  predators (the sum of the unit vectors from each predator, weighted by one over the
  distance) and is pushed back once it is farther than 0.8 from the centre on an axis;
  with discrete actions it moves along the dominant axis of that direction.
- ``"pretrained"``: the paper's "fixed policies that are pretrained": one small MLP per
  prey (:mod:`metaenvs.games.pretrained_prey`), trained by MADDPG against co-trained
  predators (for the N = 6 tasks, half of the episodes against scripted chasers;
  ``python -m baselines.comm.prey``, see
  [Pretrained prey](../wrappers/comm.md#pretrained-prey)) and shipped for the
  comm-topology ids (``N, M, L, l`` = 3, 1, 3, 3; 6, 2, 6, 1; 6, 2, 6, 6); other sizes
  raise a ``ValueError`` listing those that exist.  The MLP reads the prey's observation
  (below) up to its neighbour block and outputs a continuous action in ``[0, 1]^5``; with
  discrete actions the prey takes the move along the dominant axis of the force
  ``(a[2] - a[1], a[4] - a[3])`` (no-op for no force).  It is deterministic and runs
  through the callable path.
- a callable ``policy(obs, rng) -> actions``: ``obs`` ``(B, M, D_prey)`` holds the prey's
  observations, exactly those the prey would have with ``prey="agents"`` (the layout
  below with ``o = min(l, max(N, M))`` predator slots and the other prey as neighbours,
  ``d = max(N, M) - 1`` slots with ``neighbours="all"``), so a prey policy trained with
  ``prey="agents"`` plugs in as it is; ``D_prey`` is
  ``core.prey_observation_space.shape[0]``.  ``rng`` is a ``numpy.random.Generator``
  seeded from the copies' streams and step counts; the policy returns ``(B, M)``
  discrete or ``(B, M, 5)`` continuous actions, checked like the agents'.
- ``"agents"``: the prey are agents (competitive mode, as dima-pg and mpe2).

## Action Space
``Discrete(5)``: no-op, -x, +x, -y, +y; with ``continuous_actions=True``,
``Box(0, 1, (5,))`` and force ``accel * (a[2] - a[1], a[4] - a[3])``, as mpe2.

## Observation Space
``Box(-inf, inf, (D,), float32)``, the same layout for predators and prey:

- own velocity (2), own position (2), team (1: 0 predator, 1 prey);
- the nearest ``min(l, L)`` landmarks relative to the agent (2 each), nearest first;
- the nearest ``o`` opponents (prey for a predator, predators for a prey), nearest
  first, each as relative position (2), velocity (2) and a 1 (a 0-filled slot is
  empty); for a predator ``o = min(l, M)``, or ``min(l, max(N, M))`` with
  ``prey="agents"``; for a prey always ``min(l, max(N, M))``;
- the d neighbours (teammates, see ``neighbours``) relative to the agent (2 d), then their
  agent slots as floats, -1 in an empty slot (d).

``l = n_observed`` (default: all).

## Rewards
As mpe2 ``simple_tag``: every predator gets ``+10`` for each (prey, predator) pair in
contact, so the predators share one team reward.  Prey (``prey="agents"``) get ``-10``
per predator touching them minus ``simple_tag``'s out-of-bounds penalty per axis
(``0`` below 0.9, ``10 (x - 0.9)`` below 1, then ``min(exp(2x - 2), 10)``).

## Starting State
Predators and prey uniform in ``[-1, 1]^2``, landmarks uniform in ``[-0.9, 0.9]^2``,
everything at rest.

## Episode End
Never terminated; truncated after ``horizon`` steps (25 for the comm-topology ids, 200
for the dima-pg ids).

## Version History
v0: first release.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numba
import numpy as np
from gymnasium import spaces

from metaenvs.config import check_float, check_int
from metaenvs.core import check_actions
from metaenvs.games import _particle_kernels as pk
from metaenvs.games.particle import (
    Entities,
    ParticleConfig,
    ParticleCore,
    ParticleState,
)
from metaenvs.games.pretrained_prey import PretrainedPrey, check_pretrained

PREY_HEURISTIC, PREY_CALLABLE, PREY_AGENTS = 0, 1, 2
PREY_NAMES = ("heuristic", "pretrained", "agents")
PREDATOR_COLOUR = (220, 80, 80)
PREY_COLOUR = (60, 170, 90)
CATCH_REWARD = 10.0


@dataclasses.dataclass(frozen=True)
class PredatorPreyConfig(ParticleConfig):
    """Configuration of predator-prey."""

    n_predators: int = 3
    """Number of predators N."""
    n_prey: int = 1
    """Number of prey M."""
    n_landmarks: int | None = None
    """Number of landmarks (obstacles) L; default N (the paper does not say)."""
    n_observed: int | None = None
    """l, how many nearest landmarks and nearest opponents an agent observes (default all)."""
    prey: Any = "heuristic"
    """Who moves the prey: ``"heuristic"``, ``"pretrained"``, ``"agents"`` or a callable
    ``policy(obs, rng)``."""
    predator_speed: float = 1.0
    """Max speed of a predator (mpe2: 1.0)."""
    predator_accel: float = 3.0
    """Acceleration of a predator (mpe2: 3.0)."""
    prey_speed: float = 1.3
    """Max speed of a prey (mpe2: 1.3, 30% faster than a predator)."""
    prey_accel: float = 4.0
    """Acceleration of a prey (mpe2: 4.0)."""
    landmark_size: float = 0.2
    """Radius of a landmark (mpe2: 0.2)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("n_predators", self.n_predators, 1)
        check_int("n_prey", self.n_prey, 1)
        if self.n_landmarks is not None:
            check_int("n_landmarks", self.n_landmarks, 0)
        if self.n_observed is not None:
            check_int("n_observed", self.n_observed, 1)
        if not (callable(self.prey) or self.prey in PREY_NAMES):
            raise ValueError(
                f'prey must be "heuristic", "pretrained", "agents" or a callable, got {self.prey!r}'
            )
        for name in ("predator_speed", "predator_accel", "prey_speed", "prey_accel"):
            check_float(name, getattr(self, name))
        check_float("landmark_size", self.landmark_size)
        self.neighbour_slots(self.team_peers)
        if self.prey == "pretrained":
            check_pretrained(self.n_predators, self.n_prey, self.landmarks, self.n_observed)

    @property
    def prey_mode(self) -> int:
        """How the kernels treat the prey (a pretrained policy is a callable one)."""
        if isinstance(self.prey, str) and self.prey == "heuristic":
            return PREY_HEURISTIC
        if isinstance(self.prey, str) and self.prey == "agents":
            return PREY_AGENTS
        return PREY_CALLABLE

    @property
    def landmarks(self) -> int:
        return self.n_predators if self.n_landmarks is None else self.n_landmarks

    @property
    def team_peers(self) -> int:
        """Possible neighbours of an agent: its largest team, less itself."""
        if self.prey_mode == PREY_AGENTS:
            return max(self.n_predators, self.n_prey) - 1
        return self.n_predators - 1

    @property
    def seen_landmarks(self) -> int:
        return self.landmarks if self.n_observed is None else min(self.n_observed, self.landmarks)

    @property
    def seen_opponents(self) -> int:
        most = self.n_prey
        if self.prey_mode == PREY_AGENTS:
            most = max(self.n_predators, self.n_prey)
        return most if self.n_observed is None else min(self.n_observed, most)

    @property
    def prey_seen_opponents(self) -> int:
        """Predator slots of a prey's observation: as with ``prey="agents"`` in every mode."""
        most = max(self.n_predators, self.n_prey)
        return most if self.n_observed is None else min(self.n_observed, most)

    @property
    def prey_neighbour_slots(self) -> int:
        """d of a prey's observation: as with ``prey="agents"`` in every mode."""
        return self.neighbour_slots(max(self.n_predators, self.n_prey) - 1)

    @property
    def prey_observation_size(self) -> int:
        """Width of a prey's observation (the same as with ``prey="agents"``)."""
        return (
            5
            + 2 * self.seen_landmarks
            + 5 * self.prey_seen_opponents
            + 3 * self.prey_neighbour_slots
        )


# -- kernels ---------------------------------------------------------------------------
# ``task`` is ``(prey_obs, *params)``: ``prey_obs`` ``(B, M, D_prey)``, ``params`` the
# ints ``(n_predators, n_prey, n_landmarks, seen_landmarks, seen_opponents, prey_mode,
# continuous_actions, prey_seen_opponents, prey_neighbour_slots)``; entities are
# predators, then prey, then landmarks.  Helpers get ``params`` only (a tuple of ints is
# cheap to pass around; one holding an array is not).  Every phase runs over copies
# ``lo..hi-1`` of the batched arrays (see :mod:`metaenvs.games._particle_kernels`).


@numba.njit(cache=True)
def _observe(lo, hi, pos, vel, task, r_lo, r_hi, team, seen_opp, ids, rel, off, obs, row0, scratch):
    """Observations of entities ``r_lo..r_hi-1`` (team 0 predators, 1 prey) into rows
    ``row0..`` of ``obs``, showing the nearest ``seen_opp`` opponents; their neighbour
    rows are ``ids[b - off, row0..]`` (see :func:`~._particle_kernels.write_neighbours`)."""
    n_pred, n_prey, n_lm, seen_lm = task[0], task[1], task[2], task[3]
    movers = n_pred + n_prey
    for b in range(lo, hi):
        for i in range(r_lo, r_hi):
            row = row0 + i - r_lo
            obs[b, row, 0], obs[b, row, 1] = vel[b, i, 0], vel[b, i, 1]
            obs[b, row, 2], obs[b, row, 3] = pos[b, i, 0], pos[b, i, 1]
            obs[b, row, 4] = team
    at = pk.write_nearest(
        lo, hi, pos, r_lo, r_hi, movers, movers + n_lm, seen_lm, obs, row0, 5, scratch
    )
    o_lo, o_hi = (n_pred, movers) if team == 0.0 else (0, n_pred)
    count = pk.nearest_table(lo, hi, pos, r_lo, r_hi, o_lo, o_hi, False, seen_opp, scratch)
    table = scratch[0]
    for b in range(lo, hi):
        for i in range(r_lo, r_hi):
            row = row0 + i - r_lo
            for s in range(seen_opp):
                c = at + 5 * s
                if s < count:
                    e = table[b - lo, i - r_lo, s]
                    obs[b, row, c] = pos[b, e, 0] - pos[b, i, 0]
                    obs[b, row, c + 1] = pos[b, e, 1] - pos[b, i, 1]
                    obs[b, row, c + 2], obs[b, row, c + 3] = vel[b, e, 0], vel[b, e, 1]
                    obs[b, row, c + 4] = 1.0
                else:
                    for k in range(5):
                        obs[b, row, c + k] = 0.0
    pk.write_neighbours(lo, hi, ids, rel, off, row0, r_hi - r_lo, obs, row0, at + 5 * seen_opp)


@numba.njit(cache=True)
def _sense(lo, hi, pos, vel, task, nb_mode, radius, nb_ids, nb_rel, obs, prey_obs, scratch):
    """Neighbours and observations of copies ``lo..hi-1`` (and the prey's, for a callable
    policy).

    A callable policy's prey observations are those the prey would have as agents: the
    nearest ``task[7]`` predators and the other prey as neighbours (``task[8]`` slots,
    in the scratch arrays ``scratch[2:4]`` of the block that starts at copy ``lo``).
    """
    n_pred, n_prey, seen_opp, mode = task[0], task[1], task[4], task[5]
    movers = n_pred + n_prey
    pk.find_neighbours(lo, hi, pos, 0, n_pred, nb_mode, radius, nb_ids, nb_rel, 0, 0, scratch)
    _observe(lo, hi, pos, vel, task, 0, n_pred, 0.0, seen_opp, nb_ids, nb_rel, 0, obs, 0, scratch)
    if mode == PREY_AGENTS:
        pk.find_neighbours(
            lo, hi, pos, n_pred, movers, nb_mode, radius, nb_ids, nb_rel, 0, n_pred, scratch
        )
        _observe(
            lo, hi, pos, vel, task, n_pred, movers, 1.0, seen_opp, nb_ids, nb_rel, 0, obs,
            n_pred, scratch,
        )  # fmt: skip
    elif mode == PREY_CALLABLE:
        prey_ids, prey_rel = scratch[2], scratch[3]
        pk.find_neighbours(
            lo, hi, pos, n_pred, movers, nb_mode, radius, prey_ids, prey_rel, lo, 0, scratch
        )
        _observe(
            lo, hi, pos, vel, task, n_pred, movers, 1.0, task[7], prey_ids, prey_rel, lo,
            prey_obs, 0, scratch,
        )  # fmt: skip


@numba.njit(cache=True)
def _scratch_space(n_entities, task):
    """:func:`~metaenvs.games._particle_kernels.scratch_space` plus the prey's neighbour
    ids ``(K, M, task[8])`` and relative positions ``(K, M, task[8], 2)`` of a block of
    ``K`` copies (for a callable policy)."""
    table, dists = pk.scratch_space(n_entities)
    block = table.shape[0]
    prey_ids = np.empty((block, task[1], task[8]), dtype=np.int64)
    return table, dists, prey_ids, np.empty((block, task[1], task[8], 2))


@numba.njit(cache=True)
def _reward(lo, hi, pos, size, task, reward):
    """mpe2 simple_tag rewards of copies ``lo..hi-1`` (prey rows only when the prey are
    agents)."""
    n_pred, n_prey = task[0], task[1]
    for b in range(lo, hi):
        catches = 0
        for q in range(n_pred, n_pred + n_prey):
            caught = 0
            for p in range(n_pred):
                dx, dy = pos[b, p, 0] - pos[b, q, 0], pos[b, p, 1] - pos[b, q, 1]
                if math.sqrt(dx * dx + dy * dy) < size[p] + size[q]:  # mpe2's is_collision
                    caught += 1
            catches += caught
            if task[5] == PREY_AGENTS:
                penalty = pk.bound_penalty(abs(pos[b, q, 0])) + pk.bound_penalty(abs(pos[b, q, 1]))
                reward[b, q] = -CATCH_REWARD * caught - penalty
        for p in range(n_pred):
            reward[b, p] = CATCH_REWARD * catches


@numba.njit(cache=True)
def heuristic_prey_forces(lo, hi, pos, force, accel, n_pred, n_prey, continuous):
    """The built-in prey policy of copies ``lo..hi-1``: flee the predators, stay near the
    centre."""
    for b in range(lo, hi):
        for q in range(n_pred, n_pred + n_prey):
            ux, uy = 0.0, 0.0
            for p in range(n_pred):
                dx, dy = pos[b, q, 0] - pos[b, p, 0], pos[b, q, 1] - pos[b, p, 1]
                d2 = dx * dx + dy * dy + 1e-9
                ux += dx / d2
                uy += dy / d2
            for k in range(2):
                x = pos[b, q, k]
                push = -20.0 * (abs(x) - 0.8) * np.sign(x) if abs(x) > 0.8 else 0.0
                if k == 0:
                    ux += push
                else:
                    uy += push
            if not continuous:  # move along the dominant axis only, like a discrete action
                if abs(ux) >= abs(uy):
                    uy = 0.0
                else:
                    ux = 0.0
            norm = np.sqrt(ux * ux + uy * uy)
            if norm > 0.0:
                force[b, q, 0] = accel[q] * ux / norm
                force[b, q, 1] = accel[q] * uy / norm


@numba.njit(cache=True)
def _start(b, pos, vel, rng, nb_ids, nb_rel, obs, prey_obs, task, nb_mode, radius, scratch):
    """Start copy ``b`` and write its first observations."""
    movers = task[0] + task[1]
    pk.place_uniform(pos, vel, rng, b, 0, movers, 1.0)
    pk.place_uniform(pos, vel, rng, b, movers, movers + task[2], 0.9)
    _sense(b, b + 1, pos, vel, task, nb_mode, radius, nb_ids, nb_rel, obs, prey_obs, scratch)


@numba.njit(cache=True)
def reset_predator_prey(bufs, sim, task):
    """Start every copy."""
    pos, vel, force, t, rng, nb_ids, nb_rel, obs, reward, terminated, truncated, final_obs = bufs
    size, mass, accel, max_speed, movable, collide, world, horizon, nb_mode, radius = sim
    prey_obs, params = task[0], task[1:]
    scratch = _scratch_space(pos.shape[1], params)
    for b in range(pos.shape[0]):
        t[b] = 0
        _start(b, pos, vel, rng, nb_ids, nb_rel, obs, prey_obs, params, nb_mode, radius, scratch)


@numba.njit(cache=True, nogil=True)
def step_predator_prey(bufs, sim, task, lo, hi):
    """Advance copies ``lo..hi-1``: prey policy, physics, rewards, observations, auto-reset."""
    pos, vel, force, t, rng, nb_ids, nb_rel, obs, reward, terminated, truncated, final_obs = bufs
    size, mass, accel, max_speed, movable, collide, world, horizon, nb_mode, radius = sim
    prey_obs, params = task[0], task[1:]
    n_pred, n_prey, prey_mode, continuous = params[0], params[1], params[5], params[6]
    scratch = _scratch_space(pos.shape[1], params)
    block = scratch[0].shape[0]
    for first in range(lo, hi, block):
        last = min(first + block, hi)
        if prey_mode == PREY_HEURISTIC:
            heuristic_prey_forces(first, last, pos, force, accel, n_pred, n_prey, continuous)
        pk.physics(first, last, pos, vel, force, size, mass, max_speed, movable, collide, world)
        _reward(first, last, pos, size, params, reward)
        _sense(
            first, last, pos, vel, params, nb_mode, radius, nb_ids, nb_rel, obs, prey_obs, scratch
        )
        pk.tick(first, last, t, horizon, terminated, truncated, obs, final_obs)
        for b in range(first, last):
            if truncated[b]:
                _start(
                    b, pos, vel, rng, nb_ids, nb_rel, obs, prey_obs, params, nb_mode, radius,
                    scratch,
                )  # fmt: skip


@dataclasses.dataclass
class PredatorPreyState(ParticleState):
    """Particle state plus the prey's observations ``(B, M, D_prey)`` (for a callable policy;
    ``D_prey`` is ``PredatorPreyCore.prey_observation_space``'s width)."""

    prey_obs: np.ndarray


class PredatorPreyCore(ParticleCore):
    """Batched predator-prey (see the module docstring for the spec)."""

    config_cls = PredatorPreyConfig
    state_cls = PredatorPreyState
    kernels = (reset_predator_prey, step_predator_prey)
    config: PredatorPreyConfig
    reward_description: ClassVar[str] = "+10 per predator-prey contact, shared by the predators"

    def __init__(self, config: PredatorPreyConfig) -> None:
        super().__init__(config)
        n, m = config.n_predators, config.n_prey
        self._prey_names = tuple(f"prey_{j}" for j in range(m))
        self._agents = tuple(f"predator_{i}" for i in range(n))
        if config.prey_mode == PREY_AGENTS:
            self._agents += self._prey_names
        self.neighbour_agents = config.team_peers + 1
        self.entities = Entities.build(
            [
                {
                    "count": n,
                    "size": 0.075,
                    "accel": config.predator_accel,
                    "max_speed": config.predator_speed,
                    "colour": PREDATOR_COLOUR,
                },
                {
                    "count": m,
                    "size": 0.05,
                    "accel": config.prey_accel,
                    "max_speed": config.prey_speed,
                    "colour": PREY_COLOUR,
                },
                {"count": config.landmarks, "size": config.landmark_size, "movable": False},
            ]
        )
        width = 5 + 2 * config.seen_landmarks + 5 * config.seen_opponents + 3 * self.neighbour_slots
        self.observation_space = spaces.Box(-np.inf, np.inf, (width,), dtype=np.float32)
        self.prey_observation_space = spaces.Box(
            -np.inf, np.inf, (config.prey_observation_size,), dtype=np.float32
        )
        self._task = (
            n, m, config.landmarks, config.seen_landmarks, config.seen_opponents,
            config.prey_mode, int(config.continuous_actions), config.prey_seen_opponents,
            config.prey_neighbour_slots,
        )  # fmt: skip
        self.prey_policy: Callable | None = None
        """The prey's policy when it is a callable (``prey="pretrained"``: the
        :class:`~metaenvs.games.pretrained_prey.PretrainedPrey` of the task)."""
        if config.prey == "pretrained":
            self.prey_policy = PretrainedPrey.for_task(
                n, m, config.landmarks, config.n_observed, config.continuous_actions
            )
        elif config.prey_mode == PREY_CALLABLE:
            self.prey_policy = config.prey

    def _extra_buffers(self, batch: int) -> dict[str, np.ndarray]:
        shape = (batch, self.config.n_prey, *self.prey_observation_space.shape)
        return {"prey_obs": np.zeros(shape, dtype=np.float32)}

    def task_params(self, state: PredatorPreyState) -> tuple:
        return (state.prey_obs, *self._task)

    def _scripted_forces(self, state: PredatorPreyState) -> None:
        """Forces of the prey from the user's prey policy (if the prey follow one)."""
        if self.prey_policy is None:
            return
        if self.config.prey == "pretrained":  # deterministic: no Generator to seed (O(B))
            actions = self.prey_policy(state.prey_obs.copy(), None)
        else:
            entropy = np.concatenate([state.rng, state.t.astype(np.uint64)])
            actions = self.prey_policy(state.prey_obs.copy(), np.random.default_rng(entropy))
        actions = check_actions(
            self.action_space, actions, state.batch, self._prey_names, "prey policy actions"
        )
        self.action_forces(actions, state.force, first=self.config.n_predators)
