"""Numba kernels of Survival: turns, moves, attacks, food, observations, resets.

Shapes (B copies, N agents, F food, S x S grid including its wall border, D observation
width, A = 23 actions):

- ``bufs = (t, rng, grid, pos, orient, hp, alive, food_hp, last_action, last_reward, obs,
  reward, terminated, truncated, final_obs, final_state, food_left, survivors)``:
  ``t (B,)`` int64, ``rng (B,)`` uint64, ``grid (B, S, S)`` int32 (:data:`EMPTY`,
  :data:`WALL`, food ``f`` as ``FOOD - f``, agent ``i`` as ``i``), ``pos (B, N, 2)`` int64
  (row, column), ``orient (B, N)`` int64 (0 north, 1 east, 2 south, 3 west),
  ``hp (B, N)`` float64, ``alive (B, N)`` bool, ``food_hp (B, F)`` float64 (0 once eaten),
  ``last_action (B, N)`` int64 (-1 after a reset), ``last_reward (B, N)`` float32,
  ``obs, final_obs (B, N, D)`` float32, ``reward (B, N)`` float32, ``terminated,
  truncated (B,)`` bool, ``final_state (B, S * S * 4)`` float32, ``food_left,
  survivors (B,)`` int64 (after the step, before an auto-reset), ``cells (B, 4, P, P * CHANNELS)``
  float32 with ``P = S + 2r`` (every cell's view channels in the frame of each facing,
  with a wall margin of the view radius r: :func:`paint_cells`));
- ``sim = (food_start (F, 2) int64, move (12, 2) int64, attack (8, 2) int64)``: the food's
  cells, and the (forward, right) offsets of the move and attack actions;
- ``par``: the scalars listed in :data:`PARAMS`.

Directions: the grid's row 0 is north.  An agent facing ``o`` maps an offset ``(f, s)``
(``f`` cells ahead, ``s`` to its right) to the grid offset ``(ROW_F[o] f + ROW_S[o] s,
COL_F[o] f + COL_S[o] s)``.
"""

from __future__ import annotations

import numba
import numpy as np

from metaenvs._rng import next_uniform

PARAMS = (
    "view_radius",
    "horizon",
    "agent_hp",
    "damage",
    "food_hp",
    "step_reward",
    "dead_penalty",
    "attack_penalty",
    "group_kill_reward",
    "food_reward",
    "id_bits",
)
"""Order of the scalars in ``par``."""

EMPTY, WALL, FOOD = -1, -2, -3
STAY, FIRST_MOVE, FIRST_ATTACK, TURN_LEFT, TURN_RIGHT, N_ACTIONS = 0, 1, 13, 21, 22, 23
N_MOVES, N_ATTACKS = 12, 8
CHANNELS = 5  # wall, food, food hp, agent, agent hp
STATE_CHANNELS = 4  # wall, food hp, agent, agent hp
NON_SPATIAL = N_ACTIONS + 1 + 2 + 4 + 1  # last action, last reward, position, facing, hp
ROW_F = np.array([-1, 0, 1, 0])
ROW_S = np.array([0, 1, 0, -1])
COL_F = np.array([0, 1, 0, -1])
COL_S = np.array([1, 0, -1, 0])


@numba.njit(cache=True, inline="always")
def draw_int(rng, b, n):
    """A uniform int in ``[0, n)`` from copy ``b``'s stream."""
    return min(int(next_uniform(rng, b) * n), n - 1)


@numba.njit(cache=True, inline="always")
def cell_ahead(pos, orient, b, i, f, s):
    """Grid cell (row, column) ``f`` ahead and ``s`` to the right of agent ``i``."""
    o = orient[b, i]
    row = pos[b, i, 0] + ROW_F[o] * f + ROW_S[o] * s
    col = pos[b, i, 1] + COL_F[o] * f + COL_S[o] * s
    return row, col


# -- observations -------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def framed(o, row, col, last):
    """Where cell ``(row, col)`` of the padded grid (side ``last + 1``) lies in the frame of
    facing ``o``: rows run from ahead to behind, columns from left to right."""
    if o == 0:
        return row, col
    if o == 1:
        return last - col, row
    if o == 2:
        return last - row, last - col
    return col, last - row


@numba.njit(cache=True, inline="always")
def paint_cells(b, bufs, par, margin):
    """``cells[b]``: the view channels of every cell of copy ``b`` (wall, food, food hp
    fraction, agent, agent hp fraction) in the frame of each facing, so that every row of
    an agent's view is one contiguous run of ``cells``; walls on a margin of the view
    radius around the grid, so no view has bounds to check.  ``margin`` paints the margin
    too (it never changes: at a reset)."""
    grid, hp, food_hp, cells = bufs[2], bufs[5], bufs[7], bufs[18]
    r, agent_hp, food_full = int(par[0]), par[2], par[4]
    side, padded = grid.shape[1], cells.shape[2]
    lo, hi = (0, padded) if margin else (r, r + side)
    for row in range(lo, hi):
        for col in range(lo, hi):
            gr, gc = row - r, col - r
            g = WALL
            if gr >= 0 and gc >= 0 and gr < side and gc < side:
                g = grid[b, gr, gc]
            wall = 1.0 if g == WALL else 0.0
            food = 1.0 if g <= FOOD else 0.0
            food_frac = food_hp[b, FOOD - g] / food_full if g <= FOOD else 0.0
            agent = 1.0 if g >= 0 else 0.0
            agent_frac = hp[b, g] / agent_hp if g >= 0 else 0.0
            for o in range(4):
                u, v = framed(o, row, col, padded - 1)
                at = v * CHANNELS
                cells[b, o, u, at] = wall
                cells[b, o, u, at + 1] = food
                cells[b, o, u, at + 2] = food_frac
                cells[b, o, u, at + 3] = agent
                cells[b, o, u, at + 4] = agent_frac


@numba.njit(cache=True, inline="always")
def observe_agent(b, i, pos, orient, hp, alive, last_action, last_reward, obs, cells, side, par):
    """Observation ``obs[b, i] (D,)`` of agent ``i``: zeros when dead.

    The view: ``(2r + 1) x (2r + 1)`` cells around the agent in its own frame (row 0 the
    farthest ahead, column 0 the farthest left), ``CHANNELS`` per cell: wall (or off the
    map), food, food hp fraction, another agent, its hp fraction.  Then the agent's id in
    ``id_bits`` bits, its last action one-hot, last reward, position (row, column) over
    the grid's side, facing one-hot, hp fraction.  The arrays are those of ``bufs``, taken
    out of the tuple once per kernel call (each take costs an atomic reference count).
    """
    r, agent_hp, id_bits = int(par[0]), par[2], int(par[10])
    width = 2 * r + 1
    if not alive[b, i]:
        for k in range(obs.shape[2]):
            obs[b, i, k] = 0.0
        return
    o = orient[b, i]
    # the agent in its own frame: each row of its view is one contiguous run of cells
    u, v = framed(o, pos[b, i, 0] + r, pos[b, i, 1] + r, cells.shape[2] - 1)
    run, first = width * CHANNELS, (v - r) * CHANNELS
    at = 0
    for a in range(width):
        # 1-d runs indexed from 0: no negative-index wrap, so the copy vectorises
        src = cells[b, o, u - r + a, first : first + run]
        dst = obs[b, i, at : at + run]
        for k in range(run):
            dst[k] = src[k]
        at += run
    centre = (r * width + r) * CHANNELS
    obs[b, i, centre + 3] = 0.0  # not itself
    obs[b, i, centre + 4] = 0.0
    for k in range(at, obs.shape[2]):
        obs[b, i, k] = 0.0
    for k in range(id_bits):
        obs[b, i, at + k] = float((i >> k) & 1)
    at += id_bits
    if last_action[b, i] >= 0:
        obs[b, i, at + last_action[b, i]] = 1.0
    at += N_ACTIONS
    obs[b, i, at] = last_reward[b, i]
    obs[b, i, at + 1] = pos[b, i, 0] / (side - 1)
    obs[b, i, at + 2] = pos[b, i, 1] / (side - 1)
    obs[b, i, at + 3 + o] = 1.0
    obs[b, i, at + 7] = hp[b, i] / agent_hp


@numba.njit(cache=True)
def global_state_copy(b, bufs, par, out):
    """Global state ``out[b] (S * S * 4,)`` of copy ``b``: per cell (row-major) wall, food
    hp fraction, agent, agent hp fraction."""
    grid, hp, food_hp = bufs[2], bufs[5], bufs[7]
    agent_hp, food_full = par[2], par[4]
    side = grid.shape[1]
    at = 0
    for row in range(side):
        for col in range(side):
            g = grid[b, row, col]
            out[b, at] = 1.0 if g == WALL else 0.0
            out[b, at + 1] = food_hp[b, FOOD - g] / food_full if g <= FOOD else 0.0
            out[b, at + 2] = 1.0 if g >= 0 else 0.0
            out[b, at + 3] = hp[b, g] / agent_hp if g >= 0 else 0.0
            at += STATE_CHANNELS


@numba.njit(cache=True)
def global_state(bufs, par, out):
    """Global states ``out (B, S * S * 4)`` of every copy."""
    for b in range(out.shape[0]):
        global_state_copy(b, bufs, par, out)


# -- episodes -----------------------------------------------------------------------------
@numba.njit(cache=True)
def start_copy(b, bufs, sim, par):
    """A fresh episode in copy ``b``: walls on the border, the food at its cells, every
    agent on a uniformly drawn empty cell, facing a uniformly drawn direction, full hp."""
    t, rng, grid, pos, orient, hp, alive, food_hp = bufs[:8]
    last_action, last_reward = bufs[8], bufs[9]
    food_start = sim[0]
    agent_hp, food_full = par[2], par[4]
    side = grid.shape[1]
    t[b] = 0
    for row in range(side):
        for col in range(side):
            edge = row == 0 or col == 0 or row == side - 1 or col == side - 1
            grid[b, row, col] = WALL if edge else EMPTY
    for f in range(food_start.shape[0]):
        grid[b, food_start[f, 0], food_start[f, 1]] = FOOD - f
        food_hp[b, f] = food_full
    for i in range(pos.shape[1]):
        while True:
            row, col = 1 + draw_int(rng, b, side - 2), 1 + draw_int(rng, b, side - 2)
            if grid[b, row, col] == EMPTY:
                break
        grid[b, row, col] = i
        pos[b, i, 0], pos[b, i, 1] = row, col
        orient[b, i] = draw_int(rng, b, 4)
        hp[b, i] = agent_hp
        alive[b, i] = True
        last_action[b, i] = -1
        last_reward[b, i] = 0.0
    paint_cells(b, bufs, par, True)
    observe_copy(b, bufs, par)


@numba.njit(cache=True)
def reset_survival(bufs, sim, par):
    """Fresh episodes in every copy."""
    for b in range(bufs[0].shape[0]):
        start_copy(b, bufs, sim, par)


# -- the step -----------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def step_survival(bufs, sim, par, actions, lo, hi):
    """The dynamics of one step of copies ``lo..hi``: turns, then moves (agents in a random
    order, each to its cell if that is empty when its turn comes), then attacks (all at
    once, on the cells after the moves), deaths, food eaten, rewards, ends.  A step is
    this, then :func:`observe_agents` over every agent, then :func:`finish_survival`."""
    t, rng, grid, pos, orient, hp, alive, food_hp = bufs[:8]
    last_action, last_reward = bufs[8], bufs[9]
    reward, terminated, truncated = bufs[11], bufs[12], bufs[13]
    food_left, survivors = bufs[16], bufs[17]
    move, attack = sim[1], sim[2]
    horizon, damage = int(par[1]), par[3]
    step_reward, dead_penalty, attack_penalty = par[5], par[6], par[7]
    group_kill_reward, food_reward = par[8], par[9]
    n_agents, n_food, side = pos.shape[1], food_hp.shape[1], grid.shape[1]
    order = np.empty(n_agents, dtype=np.int64)
    hits = np.empty(n_agents, dtype=np.int64)
    dealt = np.empty(n_agents)
    aim = np.empty(n_agents, dtype=np.int64)  # agent j >= 0, food as FOOD - f, else EMPTY
    food_hits = np.empty(n_food, dtype=np.int64)
    food_dealt = np.empty(n_food)
    was_alive = np.empty(n_agents, dtype=np.bool_)
    for b in range(lo, hi):
        for i in range(n_agents):
            was_alive[i] = alive[b, i]
            reward[b, i] = step_reward if alive[b, i] else 0.0
            hits[i], dealt[i], aim[i] = 0, 0.0, EMPTY
        for f in range(n_food):
            food_hits[f], food_dealt[f] = 0, 0.0
        # turns
        for i in range(n_agents):
            if alive[b, i]:
                if actions[b, i] == TURN_LEFT:
                    orient[b, i] = (orient[b, i] + 3) % 4
                elif actions[b, i] == TURN_RIGHT:
                    orient[b, i] = (orient[b, i] + 1) % 4
        # moves, in a random order (Fisher-Yates)
        for i in range(n_agents):
            order[i] = i
        for k in range(n_agents - 1, 0, -1):
            j = draw_int(rng, b, k + 1)
            order[k], order[j] = order[j], order[k]
        for k in range(n_agents):
            i = order[k]
            a = actions[b, i]
            if not alive[b, i] or a < FIRST_MOVE or a >= FIRST_ATTACK:
                continue
            k = a - FIRST_MOVE
            row, col = cell_ahead(pos, orient, b, i, move[k, 0], move[k, 1])
            inside = row > 0 and col > 0 and row < side - 1 and col < side - 1
            if inside and grid[b, row, col] == EMPTY:
                grid[b, pos[b, i, 0], pos[b, i, 1]] = EMPTY
                grid[b, row, col] = i
                pos[b, i, 0], pos[b, i, 1] = row, col
        # attacks, all on the cells after the moves
        for i in range(n_agents):
            a = actions[b, i]
            if not alive[b, i] or a < FIRST_ATTACK or a >= TURN_LEFT:
                continue
            k = a - FIRST_ATTACK
            row, col = cell_ahead(pos, orient, b, i, attack[k, 0], attack[k, 1])
            g = grid[b, row, col]
            if g >= 0:
                aim[i] = g
                hits[g] += 1
                dealt[g] += damage
                reward[b, i] += attack_penalty
            elif g <= FOOD:
                aim[i] = g
                food_hits[FOOD - g] += 1
                food_dealt[FOOD - g] += damage
        # deaths and food eaten
        for j in range(n_agents):
            if dealt[j] > 0.0:
                hp[b, j] -= dealt[j]
                if hp[b, j] <= 0.0:
                    hp[b, j] = 0.0
                    alive[b, j] = False
                    reward[b, j] += dead_penalty
                    grid[b, pos[b, j, 0], pos[b, j, 1]] = EMPTY
        for i in range(n_agents):
            g = aim[i]
            if g >= 0:
                if not alive[b, g] and hits[g] >= 2:
                    reward[b, i] += group_kill_reward
            elif g <= FOOD:
                f = FOOD - g
                if food_hp[b, f] > 0.0 and food_hp[b, f] <= food_dealt[f]:
                    reward[b, i] += food_reward / food_hits[f]
        for f in range(n_food):
            if food_dealt[f] > 0.0 and food_hp[b, f] > 0.0:
                food_hp[b, f] = max(food_hp[b, f] - food_dealt[f], 0.0)
                if food_hp[b, f] == 0.0:
                    grid[b, sim[0][f, 0], sim[0][f, 1]] = EMPTY
        # bookkeeping, observations, ends
        n_alive, n_left = 0, 0
        for i in range(n_agents):
            if was_alive[i]:
                last_action[b, i] = actions[b, i]
                last_reward[b, i] = reward[b, i]
            n_alive += alive[b, i]
        for f in range(n_food):
            n_left += food_hp[b, f] > 0.0
        food_left[b], survivors[b] = n_left, n_alive
        t[b] += 1
        terminated[b] = n_alive == 0
        truncated[b] = n_alive > 0 and t[b] >= horizon
        paint_cells(b, bufs, par, False)


@numba.njit(cache=True, nogil=True)
def observe_agents(bufs, par, lo, hi):
    """Observations of the agents ``lo..hi`` of the flattened ``(B, N)`` slots (agent
    ``k`` is agent ``k % N`` of copy ``k // N``): observations are per agent, so one copy's
    agents can be spread over threads."""
    pos, orient, hp, alive = bufs[3], bufs[4], bufs[5], bufs[6]
    last_action, last_reward, obs, cells = bufs[8], bufs[9], bufs[10], bufs[18]
    side, n_agents = bufs[2].shape[1], pos.shape[1]
    for k in range(lo, hi):
        b, i = k // n_agents, k % n_agents
        observe_agent(b, i, pos, orient, hp, alive, last_action, last_reward, obs, cells, side, par)


@numba.njit(cache=True)
def observe_copy(b, bufs, par):
    """Observations of every agent of copy ``b``."""
    n_agents = bufs[3].shape[1]
    observe_agents(bufs, par, b * n_agents, (b + 1) * n_agents)


@numba.njit(cache=True)
def finish_survival(bufs, sim, par):
    """After the observations: a finished copy keeps its last observations and global
    state in ``final_obs`` and ``final_state``, then restarts."""
    obs, terminated, truncated, final_obs, final_state = (
        bufs[10],
        bufs[12],
        bufs[13],
        bufs[14],
        bufs[15],
    )
    for b in range(obs.shape[0]):
        if terminated[b] or truncated[b]:
            final_obs[b] = obs[b]
            global_state_copy(b, bufs, par, final_state)
            start_copy(b, bufs, sim, par)
