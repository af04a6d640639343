"""The particle world shared by navigation, predator-prey and push: config, state, spaces.

Every particle task is a :class:`ParticleCore`: entities (agents first, then landmarks,
prey, a ball, ...) with per-entity size, mass, acceleration, max speed and flags, moved
by the kernels of :mod:`metaenvs.games._particle_kernels` (mpe2's physics).  This
module holds what the tasks share: the physics and neighbour keywords, the state arrays,
the action spaces, the neighbour structure read by the communication-topology wrapper,
and rendering.
"""

from __future__ import annotations

import dataclasses
import functools
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from metaenvs.config import EnvConfig, check_choice, check_float, check_int
from metaenvs.core import BatchedCore, CoreState, NeighbourStructure, StepResult, step_result
from metaenvs.games import _particle_kernels as pk
from metaenvs.render import AGENT_COLOURS, Canvas

NEIGHBOUR_MODES = {
    "all": pk.NEIGHBOURS_ALL,
    "k_nearest": pk.NEIGHBOURS_K_NEAREST,
    "radius": pk.NEIGHBOURS_RADIUS,
}
LANDMARK_COLOUR = (110, 110, 110)


@dataclasses.dataclass(frozen=True)
class ParticleConfig(EnvConfig):
    """Keywords every particle task has (physics as mpe2, episode length, neighbours)."""

    horizon: int = 25
    """Steps per episode; the episode is truncated (never terminated) after them."""
    continuous_actions: bool = False
    """False: ``Discrete(5)`` (no-op, -x, +x, -y, +y). True: ``Box(0, 1, (5,))`` as mpe2."""
    neighbours: str = "all"
    """Neighbour structure: ``"all"`` (d = N - 1, by index), ``"k_nearest"`` or ``"radius"``."""
    n_neighbours: int | None = None
    """d, the neighbour slots per agent: k for ``"k_nearest"``, the cap for ``"radius"``."""
    radius: float = 0.5
    """Distance under which another agent is a neighbour when ``neighbours="radius"``."""
    dt: float = 0.1
    """Integration time step (mpe2: 0.1)."""
    damping: float = 0.25
    """Fraction of velocity lost per step (mpe2: 0.25)."""
    contact_force: float = 100.0
    """Stiffness of the soft contact force (mpe2: 1e2)."""
    contact_margin: float = 0.001
    """Softness of the contact force (mpe2: 1e-3)."""
    bound: float | None = None
    """Half-width (>= 1) of a walled arena ``[-bound, bound]^2``; None (mpe2): no walls."""

    def __post_init__(self) -> None:
        check_int("horizon", self.horizon, 1)
        if not isinstance(self.continuous_actions, (bool, np.bool_)):
            raise TypeError(f"continuous_actions must be a bool, got {self.continuous_actions!r}")
        check_choice("neighbours", self.neighbours, tuple(NEIGHBOUR_MODES))
        if self.n_neighbours is not None:
            check_int("n_neighbours", self.n_neighbours, 1)
        elif self.neighbours == "k_nearest":
            raise ValueError('neighbours="k_nearest" needs n_neighbours (k)')
        check_float("radius", self.radius)
        check_float("dt", self.dt)
        check_float("damping", self.damping, strict=False)
        if self.damping >= 1.0:
            raise ValueError(f"damping must be < 1, got {self.damping}")
        check_float("contact_force", self.contact_force, strict=False)
        check_float("contact_margin", self.contact_margin)
        if self.bound is not None and check_float("bound", self.bound) < 1.0:
            raise ValueError(f"bound must be >= 1 (entities start in [-1, 1]^2), got {self.bound}")

    def neighbour_slots(self, n_peers: int) -> int:
        """d for agents that have ``n_peers`` possible neighbours."""
        if self.neighbours == "all" or self.n_neighbours is None:
            return n_peers
        if self.n_neighbours > n_peers:
            raise ValueError(
                f"n_neighbours={self.n_neighbours} but each agent has only {n_peers} others"
            )
        return self.n_neighbours

    def world_params(self) -> np.ndarray:
        """``[dt, damping, contact_force, contact_margin, bound]`` for the kernels."""
        bound = 0.0 if self.bound is None else self.bound
        return np.array([self.dt, self.damping, self.contact_force, self.contact_margin, bound])


@dataclasses.dataclass
class ParticleState(CoreState):
    """State of B copies of a particle task.

    Attributes
    ----------
    pos, vel : np.ndarray
        ``(B, E, 2)`` float64 positions and velocities of all entities, agents first.
    force : np.ndarray
        ``(B, E, 2)`` float64 scratch buffer of the forces of the last step.
    neighbour_ids : np.ndarray
        ``(B, N, d)`` int64, each agent's neighbours (agent slots), -1 in empty slots.
    neighbour_rel : np.ndarray
        ``(B, N, d, 2)`` float64, neighbour position minus own position, 0 in empty slots.
    """

    pos: np.ndarray
    vel: np.ndarray
    force: np.ndarray
    neighbour_ids: np.ndarray
    neighbour_rel: np.ndarray


@dataclasses.dataclass(frozen=True)
class Entities:
    """Static properties of the E entities of a task, agents first; arrays ``(E,)``."""

    size: np.ndarray
    mass: np.ndarray
    accel: np.ndarray
    max_speed: np.ndarray
    movable: np.ndarray
    collide: np.ndarray
    colour: np.ndarray

    @classmethod
    def build(cls, groups: list[dict[str, Any]]) -> Entities:
        """Entities from groups ``{"count", "size", "mass", "accel", "max_speed", ...}``."""
        rows: dict[str, list] = {f.name: [] for f in dataclasses.fields(cls)}
        for g in groups:
            n = g["count"]
            rows["size"] += [g["size"]] * n
            rows["mass"] += [g.get("mass", 1.0)] * n
            rows["accel"] += [g.get("accel", 5.0)] * n
            max_speed = g.get("max_speed")
            rows["max_speed"] += [np.inf if max_speed is None else max_speed] * n
            rows["movable"] += [g.get("movable", True)] * n
            rows["collide"] += [g.get("collide", True)] * n
            colours = g.get("colours") or [g.get("colour", LANDMARK_COLOUR)]
            rows["colour"] += [colours[k % len(colours)] for k in range(n)]
        return cls(
            size=np.array(rows["size"], dtype=np.float64),
            mass=np.array(rows["mass"], dtype=np.float64),
            accel=np.array(rows["accel"], dtype=np.float64),
            max_speed=np.array(rows["max_speed"], dtype=np.float64),
            movable=np.array(rows["movable"], dtype=np.bool_),
            collide=np.array(rows["collide"], dtype=np.bool_),
            colour=np.array(rows["colour"], dtype=np.uint8).reshape(-1, 3),
        )

    @property
    def count(self) -> int:
        return int(self.size.shape[0])


class ParticleCore(BatchedCore, NeighbourStructure):
    """Base of the particle tasks; declares a :class:`~metaenvs.core.NeighbourStructure`.

    A task builds ``self._agents``, ``self.entities``, ``self.neighbour_agents`` and
    ``self.observation_space`` in ``__init__``, names its Numba ``kernels``
    ``(reset, step)`` and returns its own kernel parameters from
    :meth:`task_params`.  The kernels take ``(buffers, sim, task_params)``: the state's
    arrays and the static properties as plain tuples in the field order of ``Buffers`` and
    ``Sim`` (see :mod:`metaenvs.games._particle_kernels`); ``step`` also takes the copies ``lo, hi``
    it advances, compiled ``nogil=True`` (the core runs it on its threads, see
    :mod:`metaenvs.threads`).  The agents' action forces are in ``state.force`` when
    ``step`` runs.
    """

    config: ParticleConfig
    entities: Entities
    state_cls: ClassVar[type[ParticleState]] = ParticleState
    kernels: ClassVar[tuple[Any, Any]]
    min_parallel = 4096  # benchmarks/bench_threads.py: 2 threads gain from 4096 copies
    #: agents that are each other's neighbours: slots ``[0, n_neighbour_agents)``.
    neighbour_agents: int
    _agents: tuple[str, ...]

    def __init__(self, config: ParticleConfig) -> None:
        super().__init__(config)
        if config.continuous_actions:
            self.action_space = spaces.Box(0.0, 1.0, (5,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(5)

    # -- description -------------------------------------------------------------------
    @property
    def agent_names(self) -> tuple[str, ...]:
        return self._agents

    @property
    def neighbour_slots(self) -> int:
        """d, the neighbour slots per agent (:class:`~metaenvs.core.NeighbourStructure`)."""
        return self.config.neighbour_slots(self.neighbour_agents - 1)

    def neighbours(self, state: ParticleState) -> tuple[np.ndarray, np.ndarray]:
        """This step's neighbour structure: ids ``(B, N, d)`` and relative positions.

        Ids are agent slots (-1 in empty slots); relative positions ``(B, N, d, 2)`` are
        neighbour minus own position.  Both are the state's buffers (valid until the
        next step).
        """
        return state.neighbour_ids, state.neighbour_rel

    def neighbours_in(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The neighbour structure an observation carries: ids ``(..., d)`` and relative
        positions ``(..., d, 2)``, read from ``obs (..., D)`` (which ends with them).

        Works on any observation, a finished episode's ``final_obs`` included; this is
        what the communication-topology wrapper reads
        (:class:`~metaenvs.core.NeighbourStructure`).
        """
        d = self.neighbour_slots
        ids = obs[..., -d:].astype(np.int64)
        rel = obs[..., -3 * d : -d].reshape(*obs.shape[:-1], d, 2)
        return ids, rel

    # -- dynamics ----------------------------------------------------------------------
    @functools.cached_property
    def sim(self) -> tuple:
        """Entity properties, physics, horizon and neighbour rule, as the kernels take them
        (the fields of :data:`~metaenvs.games._particle_kernels.Sim`, as a plain tuple)."""
        cfg, ent = self.config, self.entities
        return tuple(pk.Sim(
            ent.size, ent.mass, ent.accel, ent.max_speed, ent.movable, ent.collide,
            cfg.world_params(), cfg.horizon, NEIGHBOUR_MODES[cfg.neighbours], float(cfg.radius),
        ))  # fmt: skip

    @staticmethod
    def buffers(state: ParticleState) -> tuple:
        """The state's arrays, as the kernels take them (the fields of
        :data:`~metaenvs.games._particle_kernels.Buffers`, as a plain tuple)."""
        return (
            state.pos, state.vel, state.force, state.t, state.rng, state.neighbour_ids,
            state.neighbour_rel, state.obs, state.reward, state.terminated, state.truncated,
            state.final_obs,
        )  # fmt: skip

    @abstractmethod
    def task_params(self, state: ParticleState) -> tuple:
        """The task's own kernel parameters (a tuple the task's kernels unpack)."""

    def _init_state(self, batch: int, rng: np.ndarray) -> ParticleState:
        n_e, d = self.entities.count, self.neighbour_slots
        state = self.state_cls(
            t=np.zeros(batch, dtype=np.int64),
            rng=rng,
            pos=np.zeros((batch, n_e, 2)),
            vel=np.zeros((batch, n_e, 2)),
            force=np.zeros((batch, n_e, 2)),
            neighbour_ids=np.full((batch, self.n_agents, d), -1, dtype=np.int64),
            neighbour_rel=np.zeros((batch, self.n_agents, d, 2)),
            **self.output_buffers(batch),
            **self._extra_buffers(batch),
        )
        reset = self.kernels[0]
        reset(self.buffers(state), self.sim, self.task_params(state))
        return state

    def _extra_buffers(self, batch: int) -> dict[str, np.ndarray]:
        """Arrays of a task's state beyond :class:`ParticleState` (none by default)."""
        return {}

    def _step(self, state: ParticleState, actions: np.ndarray) -> StepResult:
        state.force.fill(0.0)
        self.action_forces(actions, state.force, first=0)
        self._scripted_forces(state)
        args = (self.buffers(state), self.sim, self.task_params(state))
        self.step_copies(self.kernels[1], args, state.batch)
        # the default global state is the observations: its final one is a view (a task
        # with its own global state gets it from step_validated)
        fo = state.final_obs
        final = fo.reshape(fo.shape[0], -1) if self.default_global_state else None
        return step_result(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, {}, final
        )

    def _scripted_forces(self, state: ParticleState) -> None:
        """Add forces of entities moved by Python callables (none by default)."""

    def action_forces(self, actions: np.ndarray, force: np.ndarray, first: int) -> None:
        """Write the forces of validated actions ``(B, n, ...)`` for entities ``first...``."""
        if self.config.continuous_actions:
            pk.continuous_action_forces(actions, self.entities.accel, force, first)
        else:
            pk.discrete_action_forces(actions, self.entities.accel, force, first)

    # -- rendering ---------------------------------------------------------------------
    render_size: ClassVar[int] = 400

    def render_copy(
        self, state: ParticleState, index: int = 0, links: np.ndarray | None = None
    ) -> np.ndarray:
        """Top-down picture of copy ``index``: entities as discs, the arena as a frame.

        ``links`` ``(L, 2)`` agent slot pairs ``(i, j)`` are drawn as lines from ``i``
        towards ``j`` in ``i``'s colour (the communication-topology wrapper's requests).
        """
        pos = state.pos[index]
        ent = self.entities
        extent = max(1.0, float(np.abs(pos).max() + ent.size.max())) * 1.05
        size = self.render_size
        scale = size / (2.0 * extent)
        canvas = Canvas(size, size, background=(250, 250, 250))
        lo, hi = int((extent - 1.0) * scale), int((extent + 1.0) * scale)
        canvas.rect(lo, lo, hi - lo, hi - lo, (236, 236, 236))  # the [-1, 1]^2 spawn area
        px = (pos[:, 0] + extent) * scale
        py = (extent - pos[:, 1]) * scale
        order = np.argsort(~ent.movable, kind="stable")[::-1]  # static entities underneath
        for e in order:
            canvas.disc(py[e], px[e], max(ent.size[e] * scale, 2.0), tuple(map(int, ent.colour[e])))
        for i, j in [] if links is None else links:
            # from i's centre to the midpoint: two requests i<-j and j<-i make one full line
            my, mx = (py[i] + py[j]) / 2, (px[i] + px[j]) / 2
            canvas.line(py[i], px[i], my, mx, tuple(map(int, ent.colour[i])), width=3)
        return canvas.image


def agent_colours(n: int) -> list[tuple[int, int, int]]:
    """The first ``n`` agent colours (cycling)."""
    return [AGENT_COLOURS[k % len(AGENT_COLOURS)] for k in range(n)]
