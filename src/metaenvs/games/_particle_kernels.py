"""Numba kernels shared by the particle-world tasks: MPE physics, actions, neighbours.

The physics is mpe2's ``World.step`` (``mpe2/_mpe_utils/core.py``) for one copy:

1. every agent's force is its action ``u`` times its acceleration;
2. every pair of colliding entities adds the soft contact force
   ``contact_force * delta / dist * k * log(1 + exp(-(dist - size_a - size_b) / k))``
   (``k = contact_margin``) to the movable ones;
3. every movable entity integrates ``pos += vel * dt`` (with the old velocity), then
   ``vel = vel * (1 - damping) + force / mass * dt``, and its speed is clipped to
   ``max_speed``.

Arrays of one copy are ``(E, 2)`` float64 with the agents first; entity properties are
``(E,)`` arrays shared by all copies.

A task's kernels take the same three arguments: the state's arrays in the order of
:data:`Buffers`, the entity properties, physics, horizon and neighbour rule in the order
of :data:`Sim` (both plain tuples), and the task's own tuple.  The kernels unpack them
into local arrays first: Numba dispatches plain tuples about 1.5 us faster than
namedtuples, and a hot loop that reads arrays out of a namedtuple runs about 25% slower
than one over local arrays.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from metaenvs._rng import next_uniform

NEIGHBOURS_ALL, NEIGHBOURS_K_NEAREST, NEIGHBOURS_RADIUS = 0, 1, 2
#: Gaps beyond ``CONTACT_CUTOFF * contact_margin`` give a contact force below
#: ``exp(-37) * contact_force * contact_margin`` (1e-17 with mpe2's numbers): skipped.
CONTACT_CUTOFF = 37.0


#: The state's arrays, batched: ``pos, vel, force (B, E, 2)``, ``t (B,)``, ``rng (B,)``,
#: ``nb_ids (B, N, d)``, ``nb_rel (B, N, d, 2)``, ``obs (B, N, D)``, ``reward (B, N)``,
#: ``terminated, truncated (B,)``, ``final_obs (B, N, D)``.
Buffers = namedtuple(
    "Buffers",
    "pos vel force t rng nb_ids nb_rel obs reward terminated truncated final_obs",
)
#: What does not change during an episode: entity properties ``(E,)``, the ``world``
#: array of :func:`physics_step`, the horizon and the neighbour rule (mode, radius).
Sim = namedtuple("Sim", "size mass accel max_speed movable collide world horizon nb_mode radius")


# -- actions ---------------------------------------------------------------------------
@numba.njit(cache=True)
def discrete_action_forces(
    actions: np.ndarray, accel: np.ndarray, force: np.ndarray, first: int
) -> None:
    """Forces from discrete actions ``(B, n)``: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y.

    Entity ``first + i`` gets ``accel * direction`` of action ``i`` in ``force`` ``(B, E, 2)``.
    """
    for b in range(actions.shape[0]):
        for i in range(actions.shape[1]):
            e = first + i
            a = actions[b, i]
            force[b, e, 0] = 0.0
            force[b, e, 1] = 0.0
            if a == 1:
                force[b, e, 0] = -accel[e]
            elif a == 2:
                force[b, e, 0] = accel[e]
            elif a == 3:
                force[b, e, 1] = -accel[e]
            elif a == 4:
                force[b, e, 1] = accel[e]


@numba.njit(cache=True)
def continuous_action_forces(
    actions: np.ndarray, accel: np.ndarray, force: np.ndarray, first: int
) -> None:
    """Forces from continuous actions ``(B, n, 5)`` in [0, 1], as mpe2.

    Entity ``first + i`` gets ``accel * (a[2] - a[1], a[4] - a[3])``; ``a[0]`` (no-op)
    is ignored.
    """
    for b in range(actions.shape[0]):
        for i in range(actions.shape[1]):
            e = first + i
            force[b, e, 0] = accel[e] * (np.float64(actions[b, i, 2]) - actions[b, i, 1])
            force[b, e, 1] = accel[e] * (np.float64(actions[b, i, 4]) - actions[b, i, 3])


# -- physics ---------------------------------------------------------------------------
@numba.njit(cache=True)
def softplus(x: float) -> float:
    """``log(1 + exp(x))`` without overflow (numpy's ``logaddexp(0, x)``)."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@numba.njit(cache=True)
def physics_step(
    pos: np.ndarray,
    vel: np.ndarray,
    force: np.ndarray,
    size: np.ndarray,
    mass: np.ndarray,
    max_speed: np.ndarray,
    movable: np.ndarray,
    collide: np.ndarray,
    world: np.ndarray,
) -> None:
    """Advance one copy by ``dt``; ``force`` holds the action forces and gains contacts.

    Parameters
    ----------
    pos, vel, force : np.ndarray
        ``(E, 2)`` float64 of one copy, updated in place.
    size, mass, max_speed : np.ndarray
        ``(E,)`` float64; ``max_speed`` is ``inf`` where there is no limit.
    movable, collide : np.ndarray
        ``(E,)`` bool.
    world : np.ndarray
        ``[dt, damping, contact_force, contact_margin, bound]``; ``bound <= 0`` means no
        walls, else positions are kept in ``[-bound, bound]`` and the velocity into a
        wall is zeroed.
    """
    dt, damping, contact_force, margin, bound = world[0], world[1], world[2], world[3], world[4]
    n = pos.shape[0]
    for a in range(n):
        if not collide[a]:
            continue
        for b in range(a + 1, n):
            if not collide[b] or not (movable[a] or movable[b]):
                continue
            dx = pos[a, 0] - pos[b, 0]
            dy = pos[a, 1] - pos[b, 1]
            reach = size[a] + size[b] + CONTACT_CUTOFF * margin
            if dx * dx + dy * dy > reach * reach:
                continue  # the force would be below 1e-16 of the contact force: skip it
            dist = math.sqrt(dx * dx + dy * dy)
            if dist == 0.0:
                continue  # coincident centres: no direction (mpe2 would produce NaN)
            penetration = softplus(-(dist - (size[a] + size[b])) / margin) * margin
            fx = contact_force * dx / dist * penetration
            fy = contact_force * dy / dist * penetration
            if movable[a]:
                force[a, 0] += fx
                force[a, 1] += fy
            if movable[b]:
                force[b, 0] -= fx
                force[b, 1] -= fy
    for e in range(n):
        if not movable[e]:
            continue
        pos[e, 0] += vel[e, 0] * dt
        pos[e, 1] += vel[e, 1] * dt
        vel[e, 0] = vel[e, 0] * (1.0 - damping) + force[e, 0] / mass[e] * dt
        vel[e, 1] = vel[e, 1] * (1.0 - damping) + force[e, 1] / mass[e] * dt
        speed = math.sqrt(vel[e, 0] ** 2 + vel[e, 1] ** 2)
        if speed > max_speed[e]:
            vel[e, 0] = vel[e, 0] / speed * max_speed[e]
            vel[e, 1] = vel[e, 1] / speed * max_speed[e]
        if bound > 0.0:
            for k in range(2):
                if pos[e, k] > bound:
                    pos[e, k] = bound
                    vel[e, k] = min(vel[e, k], 0.0)
                elif pos[e, k] < -bound:
                    pos[e, k] = -bound
                    vel[e, k] = max(vel[e, k], 0.0)


@numba.njit(cache=True)
def place_uniform(
    pos: np.ndarray, vel: np.ndarray, rng: np.ndarray, b: int, lo: int, hi: int, half: float
) -> None:
    """Entities ``lo..hi-1`` of copy ``b`` at uniform positions in ``[-half, half]^2``, at rest."""
    for e in range(lo, hi):
        for k in range(2):
            pos[b, e, k] = (2.0 * next_uniform(rng, b) - 1.0) * half
            vel[b, e, k] = 0.0


@numba.njit(cache=True)
def is_collision(pos: np.ndarray, size: np.ndarray, a: int, b: int) -> bool:
    """mpe2's ``is_collision``: centres closer than the sum of the sizes."""
    dx = pos[a, 0] - pos[b, 0]
    dy = pos[a, 1] - pos[b, 1]
    return math.sqrt(dx * dx + dy * dy) < size[a] + size[b]


@numba.njit(cache=True)
def distance(pos: np.ndarray, a: int, b: int) -> float:
    """Euclidean distance between entities ``a`` and ``b`` of one copy."""
    return math.sqrt((pos[a, 0] - pos[b, 0]) ** 2 + (pos[a, 1] - pos[b, 1]) ** 2)


@numba.njit(cache=True)
def bound_penalty(x: float) -> float:
    """mpe2 simple_tag's penalty for leaving the arena along one axis (``x = |coordinate|``)."""
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10.0
    return min(math.exp(2.0 * x - 2.0), 10.0)


@numba.njit(cache=True)
def tick(b, t, horizon, terminated, truncated, obs, final_obs) -> bool:
    """Count copy ``b``'s step; at the horizon truncate, keep the final observations and
    return True (the caller then starts the copy's next episode)."""
    t[b] += 1
    terminated[b] = False
    truncated[b] = t[b] >= horizon
    if truncated[b]:
        final_obs[b] = obs[b]
        t[b] = 0
        return True
    return False


# -- neighbours and nearest entities ---------------------------------------------------
#: ``(indices (E,) int64, distances (E,), no_ids (E,) = -1, no_rel (E, 2) = 0)``: scratch
#: for :func:`nearest` and :func:`find_neighbours` and an empty neighbour block,
#: allocated once per kernel call.
Scratch = tuple


@numba.njit(cache=True)
def scratch_space(n_entities: int) -> Scratch:
    """Scratch arrays for one kernel call over ``n_entities`` entities (see :data:`Scratch`)."""
    no_ids = np.full(n_entities, -1, dtype=np.int64)
    return (
        np.empty(n_entities, dtype=np.int64),
        np.empty(n_entities),
        no_ids,
        np.zeros((n_entities, 2)),
    )


@numba.njit(cache=True)
def nearest(
    pos: np.ndarray, ref: int, lo: int, hi: int, skip: int, out: np.ndarray, dists: np.ndarray
) -> int:
    """Fill ``out`` with the indices in ``lo..hi-1`` (except ``skip``) nearest to ``ref``.

    Ties go to the lower index.  ``dists`` is scratch space at least as long as ``out``.
    Returns how many were written (``<= len(out)``).
    """
    k = out.shape[0]
    count = 0
    if k == 0:
        return 0
    for e in range(lo, hi):
        if e == skip:
            continue
        d = (pos[e, 0] - pos[ref, 0]) ** 2 + (pos[e, 1] - pos[ref, 1]) ** 2
        if count < k:
            j = count
            count += 1
        elif d < dists[k - 1]:
            j = k - 1
        else:
            continue
        while j > 0 and dists[j - 1] > d:  # insertion keeps the list sorted and stable
            dists[j] = dists[j - 1]
            out[j] = out[j - 1]
            j -= 1
        dists[j] = d
        out[j] = e
    return count


@numba.njit(cache=True)
def find_neighbours(
    pos: np.ndarray,
    lo: int,
    hi: int,
    mode: int,
    radius: float,
    ids: np.ndarray,
    rel: np.ndarray,
    scratch: Scratch,
) -> None:
    """Neighbours of each agent ``lo..hi-1`` of one copy among the same agents.

    Parameters
    ----------
    pos : np.ndarray
        ``(E, 2)`` positions of one copy.
    lo, hi : int
        The agents that are each other's neighbours.
    mode : int
        ``NEIGHBOURS_ALL`` (all others in index order), ``NEIGHBOURS_K_NEAREST`` (the d
        nearest, nearest first) or ``NEIGHBOURS_RADIUS`` (those closer than ``radius``,
        nearest first, at most d).
    ids : np.ndarray
        ``(hi - lo, d)`` int64 output: neighbour agent slots (entity indices; agents come
        first), -1 in empty slots.
    rel : np.ndarray
        ``(hi - lo, d, 2)`` output: neighbour position minus own position, 0 in empty slots.
    scratch : tuple
        From :func:`scratch_space`.
    """
    d = ids.shape[1]
    order, dists = scratch[0][:d], scratch[1]
    for i in range(lo, hi):
        row = i - lo
        if mode == NEIGHBOURS_ALL:
            count = 0
            for j in range(lo, hi):
                if j != i and count < d:
                    order[count] = j
                    count += 1
        else:
            count = nearest(pos, i, lo, hi, i, order, dists)
            if mode == NEIGHBOURS_RADIUS:
                kept = 0
                for s in range(count):
                    if distance(pos, i, order[s]) < radius:
                        kept += 1
                count = kept
        for s in range(d):
            if s < count:
                j = order[s]
                ids[row, s] = j
                rel[row, s, 0] = pos[j, 0] - pos[i, 0]
                rel[row, s, 1] = pos[j, 1] - pos[i, 1]
            else:
                ids[row, s] = -1
                rel[row, s, 0] = 0.0
                rel[row, s, 1] = 0.0


@numba.njit(cache=True)
def write_relative(
    pos: np.ndarray, ref: int, entities: np.ndarray, count: int, out: np.ndarray, at: int
) -> int:
    """Write ``pos[e] - pos[ref]`` for the first ``count`` ``entities`` into ``out[at:]``.

    Returns the index after the block.
    """
    for s in range(count):
        e = entities[s]
        out[at + 2 * s] = pos[e, 0] - pos[ref, 0]
        out[at + 2 * s + 1] = pos[e, 1] - pos[ref, 1]
    return at + 2 * count


@numba.njit(cache=True)
def write_neighbours(ids: np.ndarray, rel: np.ndarray, out: np.ndarray, at: int) -> int:
    """Write one agent's neighbour block: ``d`` relative positions, then ``d`` ids."""
    d = ids.shape[0]
    for s in range(d):
        out[at + 2 * s] = rel[s, 0]
        out[at + 2 * s + 1] = rel[s, 1]
        out[at + 2 * d + s] = ids[s]
    return at + 3 * d
