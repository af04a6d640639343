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

Speed (issue 19): every call of a compiled function that takes arrays, and every view
``pos[b]``, costs an atomic reference-count increment and decrement per array, and
``inline="always"`` does not remove them.  Per copy and per agent that was half of a
step, so no hot loop here calls a function with arrays or takes a view: each phase
(:func:`physics`, :func:`find_neighbours`, :func:`write_nearest`, a task's rewards and
observations, :func:`tick`) is one call over a block of copies that indexes the batched
arrays directly (``pos[b, e, k]``).  A step kernel runs its phases block by block
(:func:`block_size` copies: their arrays stay in cache between phases).  Results are
those of the per-copy code bit for bit: every copy does the same arithmetic in the same
order (``tests/metaenvs/test_particle.py`` checks them against mpe2).
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
#: ``(x, y)`` direction of each discrete action: no-op, -x, +x, -y, +y.
DIRECTIONS = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


@numba.njit(cache=True)
def discrete_action_forces(
    actions: np.ndarray, accel: np.ndarray, force: np.ndarray, first: int
) -> None:
    """Forces from discrete actions ``(B, n)``: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y.

    Entity ``first + i`` gets ``accel * direction`` of action ``i`` in ``force`` ``(B, E, 2)``
    (a table look-up: branching on random actions mispredicts most of the time).
    """
    for b in range(actions.shape[0]):
        for i in range(actions.shape[1]):
            e = first + i
            a = actions[b, i]
            force[b, e, 0] = accel[e] * DIRECTIONS[a, 0]
            force[b, e, 1] = accel[e] * DIRECTIONS[a, 1]


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
def physics(
    lo: int,
    hi: int,
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
    """Advance copies ``lo..hi-1`` by ``dt``; ``force`` holds the action forces and gains
    contacts.

    Parameters
    ----------
    lo, hi : int
        The copies to advance.
    pos, vel, force : np.ndarray
        ``(B, E, 2)`` float64, updated in place.
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
    n = pos.shape[1]
    for b in range(lo, hi):
        for a in range(n):
            if not collide[a]:
                continue
            for c in range(a + 1, n):
                if not collide[c] or not (movable[a] or movable[c]):
                    continue
                dx = pos[b, a, 0] - pos[b, c, 0]
                dy = pos[b, a, 1] - pos[b, c, 1]
                reach = size[a] + size[c] + CONTACT_CUTOFF * margin
                if dx * dx + dy * dy > reach * reach:
                    continue  # the force would be below 1e-16 of the contact force: skip it
                dist = math.sqrt(dx * dx + dy * dy)
                if dist == 0.0:
                    continue  # coincident centres: no direction (mpe2 would produce NaN)
                penetration = softplus(-(dist - (size[a] + size[c])) / margin) * margin
                fx = contact_force * dx / dist * penetration
                fy = contact_force * dy / dist * penetration
                if movable[a]:
                    force[b, a, 0] += fx
                    force[b, a, 1] += fy
                if movable[c]:
                    force[b, c, 0] -= fx
                    force[b, c, 1] -= fy
        for e in range(n):
            if not movable[e]:
                continue
            pos[b, e, 0] += vel[b, e, 0] * dt
            pos[b, e, 1] += vel[b, e, 1] * dt
            vx = vel[b, e, 0] * (1.0 - damping) + force[b, e, 0] / mass[e] * dt
            vy = vel[b, e, 1] * (1.0 - damping) + force[b, e, 1] / mass[e] * dt
            speed = math.sqrt(vx**2 + vy**2)
            if speed > max_speed[e]:
                vx = vx / speed * max_speed[e]
                vy = vy / speed * max_speed[e]
            vel[b, e, 0] = vx
            vel[b, e, 1] = vy
            if bound > 0.0:
                for k in range(2):
                    if pos[b, e, k] > bound:
                        pos[b, e, k] = bound
                        vel[b, e, k] = min(vel[b, e, k], 0.0)
                    elif pos[b, e, k] < -bound:
                        pos[b, e, k] = -bound
                        vel[b, e, k] = max(vel[b, e, k], 0.0)


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
def is_collision(pos: np.ndarray, size: np.ndarray, b: int, e: int, f: int) -> bool:
    """mpe2's ``is_collision`` of entities ``e`` and ``f`` of copy ``b``: centres closer
    than the sum of the sizes (symmetric in ``e`` and ``f``, bit for bit).  For code
    outside hot loops; the kernels write the test out."""
    dx = pos[b, e, 0] - pos[b, f, 0]
    dy = pos[b, e, 1] - pos[b, f, 1]
    return math.sqrt(dx * dx + dy * dy) < size[e] + size[f]


@numba.njit(cache=True)
def bound_penalty(x: float) -> float:
    """mpe2 simple_tag's penalty for leaving the arena along one axis (``x = |coordinate|``)."""
    if x < 0.9:
        return 0.0
    if x < 1.0:
        return (x - 0.9) * 10.0
    return min(math.exp(2.0 * x - 2.0), 10.0)


@numba.njit(cache=True)
def tick(lo, hi, t, horizon, terminated, truncated, obs, final_obs) -> None:
    """Count the step of copies ``lo..hi-1``; those at the horizon are truncated and keep
    their final observations (the caller then starts their next episode)."""
    for b in range(lo, hi):
        t[b] += 1
        terminated[b] = False
        truncated[b] = t[b] >= horizon
        if truncated[b]:
            final_obs[b] = obs[b]
            t[b] = 0


# -- neighbours and nearest entities ---------------------------------------------------
#: ``(table (K, E, E) int64, dists (E,), ...)``: scratch for :func:`nearest_table` (the
#: ``K`` = :func:`block_size` copies of a block) and the phases that use it, allocated
#: once per kernel call.
Scratch = tuple


@numba.njit(cache=True)
def block_size(n_entities: int) -> int:
    """Copies per block of a step kernel (their nearest-entity table stays about 128 kB)."""
    return max(1, min(128, 16384 // (n_entities * n_entities)))


@numba.njit(cache=True)
def scratch_space(n_entities: int) -> Scratch:
    """Scratch arrays for one kernel call over ``n_entities`` entities (see :data:`Scratch`)."""
    table = np.empty((block_size(n_entities), n_entities, n_entities), dtype=np.int64)
    return table, np.empty(n_entities)


@numba.njit(cache=True)
def nearest_table(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, skip_self, k, scratch) -> int:
    """For copies ``lo..hi-1`` and each entity ``i`` in ``r_lo..r_hi-1``, the ``k``
    entities of ``c_lo..c_hi-1`` (without ``i`` itself when ``skip_self``, which needs
    the two ranges to be the same) nearest to ``i``, nearest first, ties to the lower
    index.

    They go to ``scratch[0][b - lo, i - r_lo, :count]``; returns ``count``, at most
    ``k`` (the same for every copy and entity).
    """
    table, dists = scratch[0], scratch[1]
    n_cand = c_hi - c_lo - skip_self
    count = min(k, n_cand)
    if count <= 0:
        return 0
    if n_cand <= 3 or k == 1:  # few branches to mispredict: insertion
        _nearest_insertion(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, skip_self, k, table, dists)
    else:
        _nearest_rank(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, skip_self, count, table, dists)
    return count


@numba.njit(cache=True)
def _nearest_insertion(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, skip_self, k, table, dists):
    """:func:`nearest_table` by insertion into a sorted list (stable)."""
    for b in range(lo, hi):
        for i in range(r_lo, r_hi):
            row = i - r_lo
            rx, ry = pos[b, i, 0], pos[b, i, 1]
            got = 0
            for e in range(c_lo, c_hi):
                if skip_self and e == i:
                    continue
                d = (pos[b, e, 0] - rx) ** 2 + (pos[b, e, 1] - ry) ** 2
                if got < k:
                    j = got
                    got += 1
                elif d < dists[k - 1]:
                    j = k - 1
                else:
                    continue
                while j > 0 and dists[j - 1] > d:  # insertion keeps the list sorted and stable
                    dists[j] = dists[j - 1]
                    table[b - lo, row, j] = table[b - lo, row, j - 1]
                    j -= 1
                dists[j] = d
                table[b - lo, row, j] = e


@numba.njit(cache=True)
def _nearest_rank(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, skip_self, count, table, dists):
    """:func:`nearest_table` by counting each candidate's place in the order by
    (distance, index): more comparisons than insertion, but none is a branch that the
    processor mispredicts (about 2.5 times faster for 6 candidates)."""
    for b in range(lo, hi):
        for i in range(r_lo, r_hi):
            row = i - r_lo
            rx, ry = pos[b, i, 0], pos[b, i, 1]
            for e in range(c_lo, c_hi):
                dists[e - c_lo] = (pos[b, e, 0] - rx) ** 2 + (pos[b, e, 1] - ry) ** 2
            for e in range(c_lo, c_hi):
                if skip_self and e == i:
                    continue
                d = dists[e - c_lo]
                rank = 0  # place in the order by (distance, index): a count, no branches
                for f in range(c_lo, e):
                    rank += dists[f - c_lo] <= d
                for f in range(e + 1, c_hi):
                    rank += dists[f - c_lo] < d
                if skip_self:
                    rank -= (i < e) & (dists[i - c_lo] <= d) | (i > e) & (dists[i - c_lo] < d)
                if rank < count:
                    table[b - lo, row, rank] = e


@numba.njit(cache=True)
def find_neighbours(lo, hi, pos, a_lo, a_hi, mode, radius, ids, rel, off, row0, scratch):
    """Neighbours of each agent ``a_lo..a_hi-1`` among the same agents, copies ``lo..hi-1``.

    Parameters
    ----------
    lo, hi : int
        The copies.
    pos : np.ndarray
        ``(B, E, 2)`` positions.
    a_lo, a_hi : int
        The agents that are each other's neighbours.
    mode : int
        ``NEIGHBOURS_ALL`` (all others in index order), ``NEIGHBOURS_K_NEAREST`` (the d
        nearest, nearest first) or ``NEIGHBOURS_RADIUS`` (those closer than ``radius``,
        nearest first, at most d).
    ids : np.ndarray
        ``(B', N', d)`` int64 output; copy ``b``'s agent ``i`` has row
        ``ids[b - off, row0 + i - a_lo]``: neighbour agent slots (entity indices;
        agents come first), -1 in empty slots.
    rel : np.ndarray
        ``(B', N', d, 2)`` output in the same rows: neighbour position minus own
        position, 0 in empty slots.
    off, row0 : int
        Where the rows go (``0, a_lo`` for the state's arrays).
    scratch : tuple
        From :func:`scratch_space`.
    """
    d = ids.shape[2]
    table = scratch[0]
    count = 0
    if mode != NEIGHBOURS_ALL:
        count = nearest_table(lo, hi, pos, a_lo, a_hi, a_lo, a_hi, True, d, scratch)
    for b in range(lo, hi):
        for i in range(a_lo, a_hi):
            row = row0 + i - a_lo
            kept = count
            if mode == NEIGHBOURS_ALL:
                kept = min(d, a_hi - a_lo - 1)
            elif mode == NEIGHBOURS_RADIUS:
                kept = 0
                for s in range(count):
                    j = table[b - lo, i - a_lo, s]
                    dist = math.sqrt(
                        (pos[b, i, 0] - pos[b, j, 0]) ** 2 + (pos[b, i, 1] - pos[b, j, 1]) ** 2
                    )
                    if dist < radius:
                        kept += 1
            for s in range(d):
                if s < kept:
                    if mode == NEIGHBOURS_ALL:
                        j = a_lo + s + (a_lo + s >= i)  # the others in index order
                    else:
                        j = table[b - lo, i - a_lo, s]
                    ids[b - off, row, s] = j
                    rel[b - off, row, s, 0] = pos[b, j, 0] - pos[b, i, 0]
                    rel[b - off, row, s, 1] = pos[b, j, 1] - pos[b, i, 1]
                else:
                    ids[b - off, row, s] = -1
                    rel[b - off, row, s, 0] = 0.0
                    rel[b - off, row, s, 1] = 0.0


@numba.njit(cache=True)
def write_nearest(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, k, obs, row0, col, scratch) -> int:
    """Write, for copies ``lo..hi-1`` and each entity ``i`` in ``r_lo..r_hi-1``, the ``k``
    entities of ``c_lo..c_hi-1`` nearest to ``i``, relative to it and nearest first, into
    ``obs[b, row0 + i - r_lo, col:]``.  Returns the column after them."""
    count = nearest_table(lo, hi, pos, r_lo, r_hi, c_lo, c_hi, False, k, scratch)
    table = scratch[0]
    for b in range(lo, hi):
        for i in range(r_lo, r_hi):
            row = row0 + i - r_lo
            rx, ry = pos[b, i, 0], pos[b, i, 1]
            for s in range(count):
                e = table[b - lo, i - r_lo, s]
                obs[b, row, col + 2 * s] = pos[b, e, 0] - rx
                obs[b, row, col + 2 * s + 1] = pos[b, e, 1] - ry
    return col + 2 * count


@numba.njit(cache=True)
def write_neighbours(lo, hi, ids, rel, off, first, n_rows, obs, row0, col) -> None:
    """Write the neighbour blocks ``ids[b - off, first + r], rel[b - off, first + r]`` of
    rows ``r < n_rows`` into ``obs[b, row0 + r, col:]`` (copies ``lo..hi-1``): ``d``
    relative positions, then ``d`` ids."""
    d = ids.shape[2]
    for b in range(lo, hi):
        for r in range(n_rows):
            for s in range(d):
                obs[b, row0 + r, col + 2 * s] = rel[b - off, first + r, s, 0]
                obs[b, row0 + r, col + 2 * s + 1] = rel[b - off, first + r, s, 1]
                obs[b, row0 + r, col + 2 * d + s] = ids[b - off, first + r, s]
