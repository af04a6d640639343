"""Numba kernels of Skirmish: orders, combat, the scripted AI, observations and masks.

Shapes (U units = N allies then the enemies; A actions; D observation width):

- ``bufs = (t, rng, pos, hp, shield, cooldown, calm, alive, target, obs, reward, terminated,
  truncated, final_obs, mask, won, dead_allies, dead_enemies, team_reward, final_state,
  final_mask, aim, last_action, draw)``: ``t (B,)``, ``rng (B,)``, ``pos (B, U, 2)``,
  ``hp, shield, cooldown, calm (B, U)`` float64 (``calm``: seconds since the unit last
  took damage), ``alive (B, U)`` bool, ``target (B, U)`` int64 (unit hit or healed this
  step, -1), ``obs, final_obs (B, N, D)`` float32, ``reward (B, N)`` float32,
  ``terminated, truncated, won (B,)`` bool, ``mask, final_mask (B, N, A)`` int8,
  ``dead_allies, dead_enemies (B,)`` int64, ``team_reward (B,)`` float32, ``final_state
  (B, S)`` float32 (the global state of a finished episode's last step, written with
  ``final_obs`` and ``final_mask``), ``aim (B, U)`` int64 (the sticky target of the
  ``smac`` AI, -1), ``last_action (B, N)`` int64 (the allies' actions of the last step, -1
  after a reset), ``draw (B,)`` bool;
- ``sim = (utype, team, table, grid, start)``: ``utype (U,)`` row of each unit in the
  unit ``table (T, C)`` (columns in :mod:`metaenvs.games.skirmish_units`), ``team (U,)``
  0 or 1, ``grid (H, W)`` bool pathing (H, W: the map's height and width), ``start (U, 2)``
  formation;
- ``par``: the scalars listed in :data:`PARAMS`.

Actions (per unit, relative to its team): 0 no-op, 1 stop, 2-5 move north / south / east /
west, ``6 + j`` attack unit ``j`` of the other team (heal unit ``j`` of its own team).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from metaenvs._rng import next_uniform
from metaenvs.games import skirmish_units as su

PARAMS = (
    "n_allies",
    "time_limit",
    "jitter",
    "dt",
    "sight",
    "focus",
    "act_prob",
    "reward_mode",
    "reward_scale",
    "max_reward",
    "n_bits",
    "ai",
    "hit_order",
)
"""Order of the scalars in ``par``; ``reward_mode`` 0 shaped, 1 sparse; ``ai`` 0 the
scripted levels, 1 SMAC's built-in AI (:func:`smac_order`); ``hit_order`` 0 random per
step, 1 simultaneous."""

NOOP, STOP, N_MOVES, FIRST_TARGET = 0, 1, 4, 6
RANGE_SLACK = 1e-6  # a unit that walked up to its range is in range, whatever the rounding
APPROACH = 0.1  # how far inside its range a unit walking up to a target stops
OVERLAP_SLACK = 1e-9  # units closer than touching by less than this are not pushed
ARRIVED = 1.0  # how close to its attack-move point a smac unit with no target stops
_DX = np.array([0.0, 0.0, 1.0, -1.0])  # north, south, east, west
_DY = np.array([1.0, -1.0, 0.0, 0.0])

HP, SHIELD, ARMOUR, DAMAGE, HITS = su.HP, su.SHIELD, su.ARMOUR, su.DAMAGE, su.HITS
BONUS, BONUS_VS, COOLDOWN, RANGE, SPEED = su.BONUS, su.BONUS_VS, su.COOLDOWN, su.RANGE, su.SPEED
RADIUS, ATTRS, HEAL, SPLASH, SUICIDE, REACH = (
    su.RADIUS, su.ATTRS, su.HEAL, su.SPLASH, su.SUICIDE, su.REACH,
)  # fmt: skip
BIOLOGICAL = su.BIOLOGICAL


@numba.njit(cache=True, inline="always")
def pathable(grid, x, y):
    """True where a unit may stand: inside the arena and on an open cell."""
    if x < 0.0 or y < 0.0:
        return False
    cx, cy = int(x), int(y)
    return cy < grid.shape[0] and cx < grid.shape[1] and grid[cy, cx]


@numba.njit(cache=True, inline="always")
def path_open(grid, x0, y0, x1, y1):
    """True when a straight move from ``(x0, y0)`` to ``(x1, y1)`` stays on open cells,
    checked every quarter of the way (moves are under 2 map units: no wall is skipped)."""
    for k in range(1, 5):
        f = k / 4.0
        if not pathable(grid, x0 + f * (x1 - x0), y0 + f * (y1 - y0)):
            return False
    return True


@numba.njit(cache=True, inline="always")
def team_range(n_allies, n_units, side):
    """``(first, end)`` unit indices of team ``side`` (0 allies, 1 enemies)."""
    return (0, n_allies) if side == 0 else (n_allies, n_units)


@numba.njit(cache=True, inline="always")
def order_target(u, j, team, table, utype, n_allies, n_units):
    """Global index of the unit that order ``6 + j`` of unit ``u`` aims at."""
    own = team[u]
    side = own if table[utype[u], HEAL] > 0.0 else 1 - own
    first, _ = team_range(n_allies, n_units, side)
    return first + j


# -- the scripted AI ------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def move_toward(b, u, x, y, pos, table, utype, grid, dt):
    """The cardinal move that closes most of the gap to ``(x, y)`` and is open, else stop."""
    dx, dy = x - pos[b, u, 0], y - pos[b, u, 1]
    step = table[utype[u], SPEED] * dt
    horizontal = 2 + (0 if dx > 0 else 1) + 2  # east 4, west 5
    vertical = 2 + (0 if dy > 0 else 1)  # north 2, south 3
    first, second = (horizontal, vertical) if abs(dx) >= abs(dy) else (vertical, horizontal)
    for a in (first, second):
        k = a - 2
        x, y = pos[b, u, 0], pos[b, u, 1]
        if path_open(grid, x, y, x + _DX[k] * step, y + _DY[k] * step):
            return a
    return STOP


@numba.njit(cache=True)
def scripted_order(b, u, pos, hp, shield, alive, team, table, utype, grid, n_allies, dt, focus):
    """The scripted AI's order for live unit ``u``: attack-move with (optional) focus fire.

    A fighter attacks, among the enemies it may target, the nearest, or with ``focus`` the
    one with the least hp + shield among those in weapon range (the nearest if none is);
    with none in reach it walks toward the nearest enemy.  A
    healer heals the most damaged biological team mate in reach, else follows the nearest
    team mate that fights.
    """
    n_units = team.shape[0]
    healer = table[utype[u], HEAL] > 0.0
    reach = table[utype[u], REACH]
    side = team[u] if healer else 1 - team[u]
    first, end = team_range(n_allies, n_units, side)
    best, best_key = -1, np.inf
    nearest, nearest_d = -1, np.inf
    xu, yu = pos[b, u, 0], pos[b, u, 1]
    for v in range(first, end):
        if not alive[b, v] or v == u:
            continue
        dx, dy = pos[b, v, 0] - xu, pos[b, v, 1] - yu
        d = math.sqrt(dx * dx + dy * dy)
        vrow = utype[v]
        if healer:  # who may be targeted: the rules of observe_copy's masks
            if table[vrow, HEAL] > 0.0:
                continue
            if d < nearest_d:
                nearest, nearest_d = v, d
            frac = hp[b, v] / table[vrow, HP]
            biological = (int(table[vrow, ATTRS]) & BIOLOGICAL) != 0
            if frac < 1.0 and frac < best_key and biological and d <= reach:
                best, best_key = v, frac
            continue
        if d < nearest_d:
            nearest, nearest_d = v, d
        if d <= reach:
            key = d
            if focus:  # the weakest of those in weapon range, else the nearest
                in_range = (
                    d - table[utype[u], RADIUS] - table[vrow, RADIUS] <= table[utype[u], RANGE]
                )
                key = hp[b, v] + shield[b, v] if in_range else 1e6 + d
            if key < best_key:
                best, best_key = v, key
    if best >= 0:
        return FIRST_TARGET + best - first
    if nearest < 0 or (healer and nearest_d < 3.0):
        return STOP
    return move_toward(b, u, pos[b, nearest, 0], pos[b, nearest, 1], pos, table, utype, grid, dt)


@numba.njit(cache=True, inline="always")
def smac_order(b, u, bufs, sim, par):
    """SMAC's built-in AI for live unit ``u``: attack-move toward the other team's starting
    centre, with a sticky target.

    A fighter keeps its target (``aim``) while the target lives and stays within reach
    (SMAC's shoot range 6, or the unit's longer range: the rule of the attack masks);
    otherwise it acquires the nearest live enemy within reach and attacks it (walking up
    when it is beyond weapon range); with none, it walks on toward the attack-move point
    (and stops there).  No unit sees or chases enemies beyond reach.  A healer behaves as in
    :func:`scripted_order`.
    """
    pos, hp, shield, alive, aim = bufs[2], bufs[3], bufs[4], bufs[7], bufs[21]
    utype, team, table, grid, start = sim[0], sim[1], sim[2], sim[3], sim[4]
    n_allies, dt = int(par[0]), par[3]
    n_units = team.shape[0]
    row = utype[u]
    if table[row, HEAL] > 0.0:
        return scripted_order(
            b, u, pos, hp, shield, alive, team, table, utype, grid, n_allies, dt, False
        )
    first, end = team_range(n_allies, n_units, 1 - team[u])
    reach = table[row, REACH]
    v = aim[b, u]
    if v < 0 or not alive[b, v] or centre_gap(b, u, v, pos) > reach:
        v, best = -1, reach
        for w in range(first, end):
            if alive[b, w]:
                d = centre_gap(b, u, w, pos)
                if d <= best:
                    v, best = w, d
        aim[b, u] = v
    if v >= 0:
        return FIRST_TARGET + v - first
    gx, gy = 0.0, 0.0  # the attack-move point: the centre of the other team's formation
    for w in range(first, end):
        gx += start[w, 0] / (end - first)
        gy += start[w, 1] / (end - first)
    dx, dy = gx - pos[b, u, 0], gy - pos[b, u, 1]
    if dx * dx + dy * dy <= ARRIVED * ARRIVED:
        return STOP
    return move_toward(b, u, gx, gy, pos, table, utype, grid, dt)


@numba.njit(cache=True)
def scripted_orders(bufs, sim, par, side, uniforms, out):
    """The scripted AI's actions ``out (B, n_side)`` for team ``side`` of every copy.

    ``uniforms (B, n_side)``: a unit stops instead when its number is ``>= act_prob``.
    """
    pos, hp, shield, alive = bufs[2], bufs[3], bufs[4], bufs[7]
    utype, team, table, grid = sim[0], sim[1], sim[2], sim[3]
    n_allies, dt, focus, act_prob = int(par[0]), par[3], par[5] > 0, par[6]
    smac = par[11] > 0
    first, end = team_range(n_allies, team.shape[0], side)
    for b in range(pos.shape[0]):
        for u in range(first, end):
            if not alive[b, u]:
                out[b, u - first] = NOOP
            elif uniforms[b, u - first] >= act_prob:
                out[b, u - first] = STOP
            elif smac:
                out[b, u - first] = smac_order(b, u, bufs, sim, par)
            else:
                out[b, u - first] = scripted_order(
                    b, u, pos, hp, shield, alive, team, table, utype, grid, n_allies, dt, focus
                )


# -- combat -----------------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def land_hit(b, attacker, v, hp, shield, calm, table, utype, team, dealt):
    """One hit of ``attacker`` on ``v``: shields first, then hp less armour (>= 0.5).

    Adds the hp + shield removed from an enemy of the allies to ``dealt[0]``.
    """
    if hp[b, v] <= 0.0:
        return
    row, trow = utype[attacker], utype[v]
    damage = table[row, DAMAGE]
    if (int(table[trow, ATTRS]) & int(table[row, BONUS_VS])) != 0:
        damage += table[row, BONUS]
    for _ in range(int(table[row, HITS])):
        absorbed = min(shield[b, v], damage)
        through = damage - absorbed
        lost = absorbed
        shield[b, v] -= absorbed
        if through > 0.0:
            through = min(max(through - table[trow, ARMOUR], 0.5), hp[b, v])
            hp[b, v] -= through
            lost += through
        if team[v] == 1:
            dealt[0] += lost
        if hp[b, v] <= 0.0:
            break
    calm[b, v] = 0.0


@numba.njit(cache=True, inline="always")
def edge_gap(b, u, v, pos, table, utype):
    """Distance between the edges of units ``u`` and ``v`` (negative when they overlap)."""
    dx, dy = pos[b, v, 0] - pos[b, u, 0], pos[b, v, 1] - pos[b, u, 1]
    return math.sqrt(dx * dx + dy * dy) - table[utype[u], RADIUS] - table[utype[v], RADIUS]


@numba.njit(cache=True, inline="always")
def centre_gap(b, u, v, pos):
    """Distance between the centres of units ``u`` and ``v``."""
    dx, dy = pos[b, v, 0] - pos[b, u, 0], pos[b, v, 1] - pos[b, u, 1]
    return math.sqrt(dx * dx + dy * dy)


@numba.njit(cache=True, inline="always")
def walk(b, u, x, y, limit, pos, table, utype, grid, dt, newpos):
    """Walk ``u`` up to ``limit`` toward ``(x, y)``, sliding along walls; into ``newpos``."""
    dx, dy = x - pos[b, u, 0], y - pos[b, u, 1]
    d = math.sqrt(dx * dx + dy * dy)
    step = min(table[utype[u], SPEED] * dt, max(limit, 0.0))
    if d <= 1e-9 or step <= 0.0:
        return
    sx, sy = dx / d * step, dy / d * step
    px, py = pos[b, u, 0], pos[b, u, 1]
    if path_open(grid, px, py, px + sx, py + sy):
        newpos[u, 0], newpos[u, 1] = px + sx, py + sy
    elif abs(sx) >= abs(sy) and path_open(grid, px, py, px + sx, py):
        newpos[u, 0] = px + sx
    elif path_open(grid, px, py, px, py + sy):
        newpos[u, 1] = py + sy
    elif path_open(grid, px, py, px + sx, py):
        newpos[u, 0] = px + sx


@numba.njit(cache=True, inline="always")
def separate(b, newpos, pos, alive, table, utype, grid, push):
    """Push overlapping live units apart (one simultaneous pass, each takes half of every
    overlap, a push into a wall is dropped): units do not stack, so a corridor is a
    choke point.  Units that overlap exactly are left as they are.  ``push (U, 2)`` is
    scratch space."""
    n_units = newpos.shape[0]
    for u in range(n_units):
        push[u, 0], push[u, 1] = 0.0, 0.0
    for u in range(n_units):
        if not alive[b, u]:
            continue
        for v in range(u + 1, n_units):
            if not alive[b, v]:
                continue
            dx, dy = newpos[v, 0] - newpos[u, 0], newpos[v, 1] - newpos[u, 1]
            d = math.sqrt(dx * dx + dy * dy)
            overlap = table[utype[u], RADIUS] + table[utype[v], RADIUS] - d
            if overlap > OVERLAP_SLACK and d > 1e-9:
                sx, sy = 0.5 * overlap * dx / d, 0.5 * overlap * dy / d
                push[u, 0] -= sx
                push[u, 1] -= sy
                push[v, 0] += sx
                push[v, 1] += sy
    for u in range(n_units):
        x, y = newpos[u, 0] + push[u, 0], newpos[u, 1] + push[u, 1]
        moved = push[u, 0] != 0.0 or push[u, 1] != 0.0
        if moved and path_open(grid, newpos[u, 0], newpos[u, 1], x, y):
            newpos[u, 0], newpos[u, 1] = x, y


@numba.njit(cache=True, inline="always")
def fight(b, orders, bufs, sim, par, scratch):
    """Carry out every live unit's order at once; returns (net damage to the enemies: hp and
    shields removed less those they regained, enemies killed).  ``scratch`` holds the
    work arrays (:func:`fight_scratch`), allocated once per kernel call.

    Decisions read the state at the start of the step; then moves apply (overlapping
    units pushed apart), then hits, then deaths, then heals to the living.  With
    ``hit_order`` 0 (random) the attackers fire one by one in a fresh random order (drawn
    from the copy's generator), and an attacker killed earlier in the step, or whose target
    is, holds its fire: as in StarCraft's real-time combat, two units trading their last
    shots do not both die.  With ``hit_order`` 1 (simultaneous, Skirmish v0) everyone
    fires (in unit order, overkill wasted) and deaths come after.
    """
    pos, hp, shield, cooldown, calm, alive, target = bufs[2:9]
    rng = bufs[1]
    utype, team, table, grid = sim[0], sim[1], sim[2], sim[3]
    n_allies, dt, sequential = int(par[0]), par[3], par[12] == 0
    n_units = team.shape[0]
    newpos, push, fire, order, was_alive, dealt = scratch
    for u in range(n_units):
        newpos[u, 0], newpos[u, 1] = pos[b, u, 0], pos[b, u, 1]
        fire[u] = -1
        target[b, u] = -1
        a = orders[u]
        if not alive[b, u] or a <= STOP:
            continue
        row = utype[u]
        if a < FIRST_TARGET:
            k = a - 2
            step = table[row, SPEED] * dt
            nx, ny = pos[b, u, 0] + _DX[k] * step, pos[b, u, 1] + _DY[k] * step
            if path_open(grid, pos[b, u, 0], pos[b, u, 1], nx, ny):
                newpos[u, 0], newpos[u, 1] = nx, ny
            continue
        v = order_target(u, a - FIRST_TARGET, team, table, utype, n_allies, n_units)
        gap = edge_gap(b, u, v, pos, table, utype)
        if gap <= table[row, RANGE] + RANGE_SLACK:
            if table[row, HEAL] > 0.0 or cooldown[b, u] <= 0.0:
                fire[u] = v
        else:
            # close to APPROACH inside the range, so that a push does not put it out again
            limit = gap - table[row, RANGE] + min(APPROACH, table[row, RANGE])
            walk(b, u, pos[b, v, 0], pos[b, v, 1], limit, pos, table, utype, grid, dt, newpos)
    separate(b, newpos, pos, alive, table, utype, grid, push)
    dealt[0] = 0.0
    for u in range(n_units):
        pos[b, u, 0], pos[b, u, 1] = newpos[u, 0], newpos[u, 1]
        was_alive[u] = alive[b, u]
        order[u] = u
    n_order = n_units
    if sequential:  # Fisher-Yates over the attackers only (healers heal after deaths)
        n_fire = 0
        for u in range(n_units):
            if fire[u] >= 0 and table[utype[u], HEAL] <= 0.0:
                order[n_fire] = u
                n_fire += 1
        for k in range(n_fire - 1, 0, -1):
            j = min(int(next_uniform(rng, b) * (k + 1)), k)
            order[k], order[j] = order[j], order[k]
        n_order = n_fire
    for k in range(n_order):
        u = order[k]
        v = fire[u]
        row = utype[u]
        if v < 0 or table[row, HEAL] > 0.0:
            continue
        if sequential and (hp[b, u] <= 0.0 or hp[b, v] <= 0.0):
            continue  # killed before its turn, or its target was: it holds its fire
        target[b, u] = v
        cooldown[b, u] += table[row, COOLDOWN]
        if table[row, SUICIDE] > 0.0:  # a baneling bursts on everything around it
            for w in range(n_units):
                if (
                    team[w] != team[u]
                    and was_alive[w]
                    and edge_gap(b, u, w, pos, table, utype) <= (su.BANELING_RADIUS)
                ):
                    land_hit(b, u, w, hp, shield, calm, table, utype, team, dealt)
            if team[u] == 1:  # an enemy baneling's own hp is lost to it, as SMAC counts
                dealt[0] += hp[b, u] + shield[b, u]
            hp[b, u] = 0.0
            continue
        land_hit(b, u, v, hp, shield, calm, table, utype, team, dealt)
        if table[row, SPLASH] > 0.0:
            for w in range(n_units):
                if w != v and team[w] == team[v] and was_alive[w]:
                    dx, dy = pos[b, w, 0] - pos[b, v, 0], pos[b, w, 1] - pos[b, v, 1]
                    if math.sqrt(dx * dx + dy * dy) <= su.SPLASH_RADIUS:
                        land_hit(b, u, w, hp, shield, calm, table, utype, team, dealt)
    kills = 0
    for u in range(n_units):
        if was_alive[u] and hp[b, u] <= 0.0:
            alive[b, u] = False
            hp[b, u], shield[b, u], cooldown[b, u] = 0.0, 0.0, 0.0
            if team[u] == 1:
                kills += 1
    for u in range(n_units):
        v = fire[u]
        if v >= 0 and table[utype[u], HEAL] > 0.0 and alive[b, u] and alive[b, v]:
            target[b, u] = v
            healed = min(hp[b, v] + table[utype[u], HEAL] * dt, table[utype[v], HP])
            if team[v] == 1:  # health the enemy regains is damage undone
                dealt[0] -= healed - hp[b, v]
            hp[b, v] = healed
    for u in range(n_units):
        if alive[b, u]:
            # a weapon ready part-way through the step keeps that part: the average rate
            # of fire is 1 / cooldown although a unit fires at most once per step
            cooldown[b, u] = max(cooldown[b, u] - dt, -dt)
            calm[b, u] += dt
            if calm[b, u] >= su.SHIELD_DELAY:
                regen = min(shield[b, u] + su.SHIELD_REGEN * dt, table[utype[u], SHIELD])
                if team[u] == 1:
                    dealt[0] -= regen - shield[b, u]
                shield[b, u] = regen
    return dealt[0], kills


@numba.njit(cache=True, inline="always")
def fight_scratch(n_units):
    """Work arrays of :func:`fight` for ``n_units`` units: new positions and pushes
    ``(U, 2)``, fire targets and firing order ``(U,)`` int64, who lived at the start of
    the step ``(U,)`` bool, the damage dealt ``(1,)``."""
    return (
        np.empty((n_units, 2)),
        np.empty((n_units, 2)),
        np.empty(n_units, dtype=np.int64),
        np.empty(n_units, dtype=np.int64),
        np.empty(n_units, dtype=np.bool_),
        np.empty(1),
    )


@numba.njit(cache=True, inline="always")
def team_lost(b, side, alive, team, table, utype):
    """A team has lost when none of its fighters lives (healers alone cannot win)."""
    for u in range(team.shape[0]):
        if team[u] == side and alive[b, u] and table[utype[u], HEAL] <= 0.0:
            return False
    return True


# -- observations ---------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def observe_copy(b, bufs, sim, par):
    """Observations ``obs[b] (N, D)`` and action masks ``mask[b] (N, A)`` of copy ``b``.

    Per ally ``i``: the mask (no-op only when dead; stop; a move when its destination is
    open; ``6 + j`` when unit j of the targeted team lives and is within reach, for a
    healer only a biological team mate), then the features of every enemy and every other ally
    (SMAC's: for an enemy "available to attack", i.e. its attack order is in the mask, for
    an ally "visible"; then distance, dx, dy over the sight range, hp and shield fractions,
    type one-hot; all zero when dead or out of sight), then its own (hp and shield
    fractions, type one-hot).
    """
    pos, hp, shield, alive = bufs[2], bufs[3], bufs[4], bufs[7]
    obs, mask = bufs[9], bufs[14]
    utype, team, table, grid = sim[0], sim[1], sim[2], sim[3]
    n_allies, dt, sight, n_bits = int(par[0]), par[3], par[4], int(par[10])
    n_units = team.shape[0]
    n_actions, n_features = mask.shape[2], obs.shape[2]
    width = 6 + n_bits
    for i in range(n_allies):
        for k in range(n_actions):
            mask[b, i, k] = 0
        if not alive[b, i]:
            mask[b, i, NOOP] = 1
            for k in range(n_features):
                obs[b, i, k] = 0.0
            continue
        row = utype[i]
        xi, yi = pos[b, i, 0], pos[b, i, 1]
        step = table[row, SPEED] * dt
        mask[b, i, STOP] = 1
        for k in range(N_MOVES):
            ok = path_open(grid, xi, yi, xi + _DX[k] * step, yi + _DY[k] * step)
            mask[b, i, 2 + k] = ok
            obs[b, i, k] = 1.0 if ok else 0.0
        healer = table[row, HEAL] > 0.0
        reach = table[row, REACH]
        at = N_MOVES
        for n in range(n_units - 1):
            v = n_allies + n if n < n_units - n_allies else n - (n_units - n_allies)
            if v >= i and v < n_allies:
                v += 1  # other allies, skipping i
            dx, dy = pos[b, v, 0] - xi, pos[b, v, 1] - yi
            d = math.sqrt(dx * dx + dy * dy)
            live = alive[b, v]
            attackable = False
            if live and d <= reach:
                if healer and v < n_allies:
                    if int(table[utype[v], ATTRS]) & BIOLOGICAL:
                        mask[b, i, FIRST_TARGET + v] = 1
                elif not healer and v >= n_allies:
                    mask[b, i, FIRST_TARGET + v - n_allies] = 1
                    attackable = True
            for k in range(width):
                obs[b, i, at + k] = 0.0
            if live and d < sight:
                vrow = utype[v]
                obs[b, i, at] = 1.0 if v < n_allies or attackable else 0.0
                obs[b, i, at + 1] = d / sight
                obs[b, i, at + 2], obs[b, i, at + 3] = dx / sight, dy / sight
                obs[b, i, at + 4] = hp[b, v] / table[vrow, HP]
                if table[vrow, SHIELD] > 0.0:
                    obs[b, i, at + 5] = shield[b, v] / table[vrow, SHIELD]
                if n_bits > 0:
                    obs[b, i, at + 6 + vrow] = 1.0
            at += width
        obs[b, i, at] = hp[b, i] / table[row, HP]
        obs[b, i, at + 1] = shield[b, i] / table[row, SHIELD] if table[row, SHIELD] > 0.0 else 0.0
        for k in range(n_bits):
            obs[b, i, at + 2 + k] = 1.0 if k == row else 0.0


@numba.njit(cache=True)
def global_state(bufs, sim, par, width, height, out):
    """Global states ``out (B, S)`` of every copy (see :func:`global_state_copy`)."""
    for b in range(out.shape[0]):
        global_state_copy(b, bufs, sim, par, width, height, out)


@numba.njit(cache=True)
def global_state_copy(b, bufs, sim, par, width, height, out):
    """Global state ``out[b] (S,)`` of copy ``b``: per ally hp, cooldown, x, y (centred,
    over half the ``width`` x ``height`` arena), shield, type; per enemy hp, x, y, shield,
    type; zeros for the dead; then every ally's last action one-hot (SMAC's
    ``state_last_action``; zeros after a reset)."""
    pos, hp, shield, cooldown, alive = bufs[2], bufs[3], bufs[4], bufs[5], bufs[7]
    last_action = bufs[22]
    utype, team, table = sim[0], sim[1], sim[2]
    n_allies, n_bits = int(par[0]), int(par[10])
    n_actions = bufs[14].shape[2]
    hx, hy = width / 2.0, height / 2.0
    at = 0
    for u in range(team.shape[0]):
        ally = u < n_allies
        width_u = (5 if ally else 4) + n_bits
        for k in range(width_u):
            out[b, at + k] = 0.0
        if alive[b, u]:
            row = utype[u]
            out[b, at] = hp[b, u] / table[row, HP]
            k = at + 1
            if ally:
                if table[row, COOLDOWN] > 0.0:
                    out[b, k] = max(cooldown[b, u], 0.0) / table[row, COOLDOWN]
                k += 1
            out[b, k] = (pos[b, u, 0] - hx) / hx
            out[b, k + 1] = (pos[b, u, 1] - hy) / hy
            if table[row, SHIELD] > 0.0:
                out[b, k + 2] = shield[b, u] / table[row, SHIELD]
            if n_bits > 0:
                out[b, k + 3 + row] = 1.0
        at += width_u
    for i in range(n_allies):
        for k in range(n_actions):
            out[b, at + k] = 0.0
        if last_action[b, i] >= 0:
            out[b, at + last_action[b, i]] = 1.0
        at += n_actions


# -- episodes -------------------------------------------------------------------------------
@numba.njit(cache=True)
def start_copy(b, bufs, sim, par):
    """A fresh episode in copy ``b``: full health, formation plus jitter, weapon cooldowns
    uniform in ``[0, cooldown)``, observations."""
    t, rng, pos, hp, shield, cooldown, calm, alive, target = bufs[:9]
    utype, table, grid, start = sim[0], sim[2], sim[3], sim[4]
    jitter = par[2]
    t[b] = 0
    for u in range(utype.shape[0]):
        row = utype[u]
        for k in range(2):
            pos[b, u, k] = start[u, k] + jitter * (2.0 * next_uniform(rng, b) - 1.0)
        if not pathable(grid, pos[b, u, 0], pos[b, u, 1]):
            pos[b, u, 0], pos[b, u, 1] = start[u, 0], start[u, 1]
        hp[b, u], shield[b, u] = table[row, HP], table[row, SHIELD]
        # weapons start out of step, as armies that did not fire together
        cooldown[b, u] = table[row, COOLDOWN] * next_uniform(rng, b)
        calm[b, u] = 0.0
        alive[b, u], target[b, u] = True, -1
        bufs[21][b, u] = -1
    bufs[22][b, :] = -1
    observe_copy(b, bufs, sim, par)


@numba.njit(cache=True)
def reset_skirmish(bufs, sim, par):
    """Fresh episodes in every copy."""
    for b in range(bufs[0].shape[0]):
        start_copy(b, bufs, sim, par)


@numba.njit(cache=True, nogil=True)
def step_skirmish(bufs, sim, par, actions, lo, hi):
    """One step of copies ``lo..hi``: the allies act ``actions (B, N)``, the scripted AI
    the enemies; combat; rewards, ends, observations and masks; a finished copy keeps its
    last observation, masks and global state in ``final_*``, then restarts."""
    t, alive = bufs[0], bufs[7]
    obs, reward, terminated, truncated, final_obs, mask = bufs[9:15]
    won, dead_allies, dead_enemies, team_reward = bufs[15], bufs[16], bufs[17], bufs[18]
    final_state, final_mask, last_action, draw = bufs[19], bufs[20], bufs[22], bufs[23]
    team, grid = sim[1], sim[3]
    n_allies, time_limit, act_prob = int(par[0]), int(par[1]), par[6]
    reward_mode, scale, max_reward = int(par[7]), par[8], par[9]
    n_units = team.shape[0]
    orders = np.empty(n_units, dtype=np.int64)
    enemy = np.empty((1, n_units - n_allies), dtype=np.int64)
    was_alive = np.empty(n_allies, dtype=np.bool_)
    scratch = fight_scratch(n_units)
    for b in range(lo, hi):
        for i in range(n_allies):
            orders[i] = actions[b, i]
            last_action[b, i] = actions[b, i]
        enemy_orders(b, bufs, sim, par, act_prob, enemy)
        for u in range(n_allies, n_units):
            orders[u] = enemy[0, u - n_allies]
        for i in range(n_allies):
            was_alive[i] = alive[b, i]
        dealt, kills = fight(b, orders, bufs, sim, par, scratch)
        t[b] += 1
        allies_lost = team_lost(b, 0, alive, team, sim[2], sim[0])
        enemies_lost = team_lost(b, 1, alive, team, sim[2], sim[0])
        terminated[b] = allies_lost or enemies_lost
        truncated[b] = (not terminated[b]) and t[b] >= time_limit
        won[b] = enemies_lost and not allies_lost
        draw[b] = enemies_lost and allies_lost
        if reward_mode == 0:
            r = (dealt + 10.0 * kills + (200.0 if won[b] else 0.0)) * scale / max_reward
        else:
            r = 1.0 if won[b] else (-1.0 if allies_lost and not enemies_lost else 0.0)
        for i in range(n_allies):
            reward[b, i] = r if was_alive[i] else 0.0
        team_reward[b] = r
        dead_allies[b], dead_enemies[b] = 0, 0
        for u in range(n_units):
            if not alive[b, u]:
                if u < n_allies:
                    dead_allies[b] += 1
                else:
                    dead_enemies[b] += 1
        observe_copy(b, bufs, sim, par)
        if terminated[b] or truncated[b]:
            final_obs[b] = obs[b]
            final_mask[b] = mask[b]
            height, width = grid.shape
            global_state_copy(b, bufs, sim, par, float(width), float(height), final_state)
            start_copy(b, bufs, sim, par)


@numba.njit(cache=True, inline="always")
def enemy_orders(b, bufs, sim, par, act_prob, out):
    """The scripted AI's orders for the enemies of copy ``b`` into ``out[0]``."""
    pos, hp, shield, alive, rng = bufs[2], bufs[3], bufs[4], bufs[7], bufs[1]
    utype, team, table, grid = sim[0], sim[1], sim[2], sim[3]
    n_allies, dt, focus, smac = int(par[0]), par[3], par[5] > 0, par[11] > 0
    for u in range(n_allies, team.shape[0]):
        k = u - n_allies
        if not alive[b, u]:
            out[0, k] = NOOP
        elif act_prob < 1.0 and next_uniform(rng, b) >= act_prob:
            out[0, k] = STOP
        elif smac:
            out[0, k] = smac_order(b, u, bufs, sim, par)
        else:
            out[0, k] = scripted_order(
                b, u, pos, hp, shield, alive, team, table, utype, grid, n_allies, dt, focus
            )
