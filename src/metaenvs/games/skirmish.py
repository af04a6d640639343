"""Skirmish: StarCraft-style unit micromanagement, SMAC's interface, in batched Numba.

Paper: mnmpg-exercise-moves (experiments on SMAC, Samvelyan et al. 2019).  StarCraft II
cannot run here, so Skirmish re-implements the micromanagement task in the spirit of
SMAC, **not** StarCraft II: the unit numbers are in the unit table of the Skirmish page
and of :mod:`metaenvs.games.skirmish_units`; maps are data
(:mod:`metaenvs.games.skirmish_maps`).
Our team of N agents fights a team driven by a built-in AI: by default SMAC's (attack-move
toward our formation, sticky nearest targets), or a scripted level that sees the whole map.

## Agents
One agent per allied unit, named by unit type: ``marine_0``, ``marine_1``, ...
(MMM2: ``medivac_0``, ``marauder_0``, ``marauder_1``, ``marine_0``, ...).  A unit that
dies leaves the episode (PettingZoo face: terminated, then gone from ``agents``); in the
batched faces its slot stays, with a zeroed observation, a mask that allows only no-op
and zero reward.

## Action Space
``Discrete(6 + M)`` with M the number of enemies (or of allies, if that is larger and
the allies have a healer): 0 no-op (only for the dead), 1 stop, 2-5 move north, south,
east, west, ``6 + j`` attack enemy j (a healer: heal ally j).  An attack order is
available when the target lives and is within 6 (SMAC's shoot range) or the unit's own
longer range; if it is farther than the unit's weapon range the unit walks up.  A move is
available when the cell it leads to is open.  The masks are the core's
``action_mask(state)`` ``(B, N, A)`` int8, ``obs["action_mask"]`` and
``infos[agent]["action_mask"]`` on the PettingZoo face, ``infos["action_mask"]`` on the
vector face and ``action_masks()`` on the SB3 face (for sb3-contrib's MaskablePPO).
**A masked action raises ``ValueError``** before the state changes.

## Observation Space
``Box(-1, 1, (D,), float32)``, SMAC's layout, zero for a dead agent:

- move feasibility north, south, east, west (4);
- for every enemy, then every other ally (in slot order): for an enemy "available to
  attack" (its attack order is in the mask: alive and within reach), for an ally
  "visible"; then distance, relative x, relative y (over the sight range), health
  fraction, shield fraction, unit type one-hot (if the map has more than one type); all
  zero when not visible (dead, or beyond the sight range 9);
- own health fraction, shield fraction, unit type one-hot.

The global state (``state()``, ``core.global_state``) has, per ally, health, cooldown,
x and y (centred, over half the arena), shield and type; per enemy the same without
cooldown; zeros for the dead; then every agent's last action one-hot (SMAC's
``state_last_action``; zeros right after a reset).

## Rewards
``reward="shaped"`` (SMAC's default): net damage dealt to enemy hp and shields (less what
they regain by shield regeneration or healing, so a step can be slightly negative), plus 10
per enemy killed, plus 200 for a win, scaled so that the maximum return of an episode is
``reward_scale`` (20); damage taken is not subtracted.  ``reward="sparse"``: +1 win, -1
loss, 0 otherwise.  Every agent alive at the start of a step gets the team reward, which
``infos["team_reward"]`` also holds (for the dead too).  ``infos["battle_won"]`` is True on
the last step of a won battle, ``infos["battle_draw"]`` on the last step of a battle both
sides lost; ``dead_allies`` and ``dead_enemies`` count the dead.

## Combat
Each step (``STEP_SECONDS``, SMAC's 8 game frames) decisions read the state at its start,
moves apply, then hits: by default (``hit_order="random"``) the attackers fire one by one
in a random order, and a unit killed earlier in the step, or whose target was, holds its
fire, so that, as in StarCraft's real-time combat, two units trading last shots do not
both die; ``hit_order="simultaneous"`` (v0) lets every order fire before deaths apply.

## Starting State
Each team in a block formation facing the other (see the maps), every coordinate jittered
by ``+-spawn_jitter``, full health and shields, each weapon's cooldown uniform in
``[0, cooldown)`` (armies do not fire in lockstep).

## Episode End
Terminated when a team has no fighter left (a team of healers alone has lost; both
teams dead is a draw: not a win, and 0 under ``reward="sparse"``); truncated after the
map's time limit.

## Version History
v1: the ``smac`` enemy AI (the default), hits in a random order per step (draws rare;
``battle_draw`` reported), SMAC's enemy feature 0 (available to attack), no own weapon
cooldown in the observation, last actions in the global state.
v0: first release (``very_hard`` scripted AI, simultaneous hits).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from gymnasium import spaces

from metaenvs.config import EnvConfig, check_choice, check_float, check_int
from metaenvs.core import BatchedCore, CoreState, StepResult, sample_available, step_result
from metaenvs.games import _skirmish_kernels as sk
from metaenvs.games.skirmish_maps import MapSpec, get_map
from metaenvs.games.skirmish_units import SIGHT_RANGE, STEP_SECONDS, UNITS, unit_table
from metaenvs.render import Canvas

DIFFICULTIES = {
    "smac": (0, 1.0, 1),
    "easy": (0, 0.5, 0),
    "medium": (0, 0.8, 0),
    "hard": (1, 0.9, 0),
    "very_hard": (1, 1.0, 0),
}
"""Enemy AI levels: (focus fire, probability that a unit acts this step, else it stops;
SMAC's built-in AI: attack-move with sticky targets, :func:`~._skirmish_kernels.smac_order`)."""
REWARDS = ("shaped", "sparse")
HIT_ORDERS = ("random", "simultaneous")


@dataclasses.dataclass(frozen=True)
class SkirmishConfig(EnvConfig):
    """Configuration of a Skirmish battle."""

    horizon_field: ClassVar[str | None] = "time_limit"

    map_name: str = "3m"
    """A map of :data:`metaenvs.games.skirmish_maps.MAPS` (built-in or added)."""
    difficulty: str = "smac"
    """The enemy AI: ``smac`` (SMAC's built-in AI: attack-move toward our formation, the
    nearest unit within reach (6) as a sticky target, no chase beyond), or the scripted levels
    that see the whole map and re-pick a target every step: ``easy``, ``medium`` (nearest
    target), ``hard``, ``very_hard`` (focus fire on the weakest in range); the easier levels
    make units idle now and then."""
    hit_order: str = "random"
    """How the hits of one step resolve: ``"random"`` (one by one in a random order; a unit
    killed earlier in the step, or whose target was, holds its fire, so battles rarely end
    in a draw) or ``"simultaneous"`` (everyone fires, then deaths: Skirmish v0, mirror
    battles often end in a draw)."""
    reward: str = "shaped"
    """``"shaped"`` (SMAC's default) or ``"sparse"`` (+1 win, -1 loss)."""
    reward_scale: float = 20.0
    """The shaped reward's maximum episode return (SMAC's reward_scale_rate)."""
    time_limit: int | None = None
    """Steps before truncation (default: the map's)."""
    spawn_jitter: float = 0.5
    """Uniform jitter of every start coordinate, in map units."""

    def __post_init__(self) -> None:
        if not isinstance(self.map_name, str):
            raise TypeError(f"map_name must be a str, got {self.map_name!r}")
        get_map(self.map_name)
        check_choice("difficulty", self.difficulty, tuple(DIFFICULTIES))
        check_choice("reward", self.reward, REWARDS)
        check_choice("hit_order", self.hit_order, HIT_ORDERS)
        check_float("reward_scale", self.reward_scale)
        check_float("spawn_jitter", self.spawn_jitter, strict=False)
        if self.time_limit is not None:
            check_int("time_limit", self.time_limit, 1)

    @property
    def map(self) -> MapSpec:
        """The :class:`MapSpec` named ``map_name``."""
        return get_map(self.map_name)


@dataclasses.dataclass
class SkirmishState(CoreState):
    """Batched battle state; shapes in :mod:`metaenvs.games._skirmish_kernels`."""

    pos: np.ndarray
    hp: np.ndarray
    shield: np.ndarray
    cooldown: np.ndarray
    calm: np.ndarray
    alive: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    won: np.ndarray
    team_reward: np.ndarray
    dead_allies: np.ndarray
    dead_enemies: np.ndarray
    draw: np.ndarray
    """``(B,)`` bool, True on the last step of a battle that both sides lost."""
    aim: np.ndarray
    """``(B, U)`` int64, the sticky target of each unit under the ``smac`` AI (-1: none)."""
    last_action: np.ndarray
    """``(B, N)`` int64, our agents' actions of the last step (-1 after a reset)."""
    final_state: np.ndarray
    """``(B, S)`` float32, the global state at the end of the episodes the last step
    finished (rows of the copies in ``terminated | truncated``)."""
    final_mask: np.ndarray
    """``(B, N, A)`` int8, the action masks of those episodes' last observations."""

    def buffers(self) -> tuple:
        """The kernels' ``bufs`` tuple."""
        return (
            self.t, self.rng, self.pos, self.hp, self.shield, self.cooldown, self.calm,
            self.alive, self.target, self.obs, self.reward, self.terminated, self.truncated,
            self.final_obs, self.mask, self.won, self.dead_allies, self.dead_enemies,
            self.team_reward, self.final_state, self.final_mask, self.aim, self.last_action,
            self.draw,
        )  # fmt: skip


class SkirmishCore(BatchedCore):
    """Batched Skirmish battles (see the module docstring for the spec)."""

    config_cls = SkirmishConfig
    config: SkirmishConfig
    masked_actions: ClassVar[bool] = True
    agents_can_die: ClassVar[bool] = True
    min_parallel = 1024  # benchmarks/bench_threads.py: 2 threads gain from 1024 copies
    reward_description: ClassVar[str] = "damage dealt, kills and victory (SMAC's shaped reward)"
    render_size: ClassVar[int] = 384

    def __init__(self, config: SkirmishConfig) -> None:
        super().__init__(config)
        m = config.map
        self.map = m
        allies, enemies = m.ally_units, m.enemy_units
        self.n_allies, self.n_enemies = len(allies), len(enemies)
        self.unit_names = allies + enemies
        self.type_names = list(dict.fromkeys(self.unit_names))
        counts: dict[str, int] = {}
        names = []
        for unit in allies:
            names.append(f"{unit}_{counts.get(unit, 0)}")
            counts[unit] = counts.get(unit, 0) + 1
        self._agents = tuple(names)
        n_bits = len(self.type_names) if len(self.type_names) > 1 else 0
        unit_width = 6 + n_bits
        ally_healer = any(UNITS[u].healer for u in allies)
        self.n_actions = sk.FIRST_TARGET + max(self.n_enemies, self.n_allies if ally_healer else 0)
        obs_width = sk.N_MOVES + (self.n_allies + self.n_enemies - 1) * unit_width + 2 + n_bits
        state_width = (
            self.n_allies * (5 + n_bits)
            + self.n_enemies * (4 + n_bits)
            + self.n_allies * self.n_actions
        )
        self.observation_space = spaces.Box(-1.0, 1.0, (obs_width,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.n_actions)
        self.state_space = spaces.Box(-1.0, 1.0, (state_width,), dtype=np.float32)
        table = unit_table(self.type_names)
        utype = np.array([self.type_names.index(u) for u in self.unit_names], dtype=np.int64)
        team = np.array([0] * self.n_allies + [1] * self.n_enemies, dtype=np.int64)
        self.sim = (utype, team, table, m.pathable(), m.start_positions())
        enemy_max = sum(UNITS[u].hp + UNITS[u].shield for u in enemies)
        max_reward = enemy_max + 10.0 * self.n_enemies + 200.0
        focus, act_prob, ai = DIFFICULTIES[config.difficulty]
        self.params = {
            "n_allies": self.n_allies,
            "time_limit": config.time_limit or m.time_limit,
            "jitter": config.spawn_jitter,
            "dt": STEP_SECONDS,
            "sight": SIGHT_RANGE,
            "focus": focus,
            "act_prob": act_prob,
            "reward_mode": REWARDS.index(config.reward),
            "reward_scale": config.reward_scale,
            "max_reward": max_reward,
            "n_bits": n_bits,
            "ai": ai,
            "hit_order": HIT_ORDERS.index(config.hit_order),
        }
        """The kernels' scalars by name; ``par`` is them in :data:`~._skirmish_kernels.PARAMS`
        order."""
        self.par = params_tuple(self.params)

    @property
    def agent_names(self) -> tuple[str, ...]:
        """``<unit>_<k>`` for every allied unit, in slot order."""
        return self._agents

    @property
    def time_limit(self) -> int:
        """Steps before an episode is truncated."""
        return int(self.params["time_limit"])

    def describe(self) -> dict[str, str]:
        """:meth:`BatchedCore.describe` plus the map."""
        out = super().describe()
        out["map"] = f"{self.map.name}: {self.map.description}"
        return out

    # -- dynamics --------------------------------------------------------------------------
    def _init_state(self, batch: int, rng: np.ndarray) -> SkirmishState:
        u, n = len(self.unit_names), self.n_allies
        state = SkirmishState(
            t=np.zeros(batch, dtype=np.int64),
            rng=rng,
            pos=np.zeros((batch, u, 2)),
            hp=np.zeros((batch, u)),
            shield=np.zeros((batch, u)),
            cooldown=np.zeros((batch, u)),
            calm=np.zeros((batch, u)),
            alive=np.zeros((batch, u), dtype=np.bool_),
            target=np.full((batch, u), -1, dtype=np.int64),
            mask=np.zeros((batch, n, self.n_actions), dtype=np.int8),
            won=np.zeros(batch, dtype=np.bool_),
            team_reward=np.zeros(batch, dtype=np.float32),
            dead_allies=np.zeros(batch, dtype=np.int64),
            dead_enemies=np.zeros(batch, dtype=np.int64),
            draw=np.zeros(batch, dtype=np.bool_),
            aim=np.full((batch, u), -1, dtype=np.int64),
            last_action=np.full((batch, n), -1, dtype=np.int64),
            final_state=np.zeros((batch, *self.state_space.shape), dtype=np.float32),
            final_mask=np.zeros((batch, n, self.n_actions), dtype=np.int8),
            **self.output_buffers(batch),
        )
        sk.reset_skirmish(state.buffers(), self.sim, self.par)
        return state

    def _step(self, state: SkirmishState, actions: np.ndarray) -> StepResult:
        args = (state.buffers(), self.sim, self.par, actions)
        self.step_copies(sk.step_skirmish, args, state.batch)
        info = {
            "battle_won": state.won,
            "battle_draw": state.draw,
            "team_reward": state.team_reward,
            "dead_allies": state.dead_allies,
            "dead_enemies": state.dead_enemies,
        }
        return step_result(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, info
        )

    def action_mask(self, state: SkirmishState) -> np.ndarray:
        """Available actions ``(B, N, A)`` int8 (1 = available), for the current observation."""
        return state.mask

    def final_action_mask(self, state: SkirmishState) -> np.ndarray:
        """Masks ``(B, N, A)`` int8 of the last observations of the episodes the last step
        finished (the kernel keeps them before the auto-reset)."""
        return state.final_mask

    def final_global_state(self, state: SkirmishState) -> np.ndarray:
        """Global states ``(B, S)`` at the end of the episodes the last step finished (the
        kernel keeps them before the auto-reset)."""
        return state.final_state

    def alive(self, state: SkirmishState) -> np.ndarray:
        """``(B, N)`` bool, which agents are alive."""
        return state.alive[:, : self.n_allies]

    def global_state(self, state: SkirmishState) -> np.ndarray:
        out = np.empty((state.batch, *self.state_space.shape), dtype=np.float32)
        width, height = self.map.size
        sk.global_state(state.buffers(), self.sim, self.par, float(width), float(height), out)
        return out

    def scripted_actions(
        self,
        state: SkirmishState,
        difficulty: str = "smac",
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """The scripted AI's actions ``(B, N)`` for our agents: the enemy's AI on our side.

        Parameters
        ----------
        difficulty : str
            A level of :data:`DIFFICULTIES`.  Under ``"smac"`` the units' sticky targets are
            kept in ``state.aim`` (the call updates them, as the enemy's AI does; the
            battle's dynamics never read our units' ``aim``).
        rng : numpy.random.Generator, optional
            Draws the idle steps of the easier levels (required for them).
        """
        check_choice("difficulty", difficulty, tuple(DIFFICULTIES))
        focus, act_prob, ai = DIFFICULTIES[difficulty]
        if act_prob < 1.0 and rng is None:
            raise ValueError(f"difficulty {difficulty!r} needs an rng for its idle steps")
        uniforms = (
            np.zeros((state.batch, self.n_allies))
            if act_prob >= 1.0
            else rng.random((state.batch, self.n_allies))
        )
        par = params_tuple({**self.params, "focus": focus, "act_prob": act_prob, "ai": ai})
        out = np.empty((state.batch, self.n_allies), dtype=np.int64)
        sk.scripted_orders(state.buffers(), self.sim, par, 0, uniforms, out)
        return out

    def random_legal_actions(self, state: SkirmishState, rng: np.random.Generator) -> np.ndarray:
        """Uniformly random available actions ``(B, N)`` (random play)."""
        return sample_available(self.action_mask(state), rng.random((state.batch, self.n_allies)))

    # -- rendering -------------------------------------------------------------------------
    def render_copy(self, state: SkirmishState, index: int = 0) -> np.ndarray:
        """Top-down picture of the fight, zoomed on the living units (at least 12 x 12 map
        units): walls grey, allies blue, enemies red (dots: the unit type's index), health
        (green) and shield (cyan) bars, this step's attacks (yellow) and heals (green)."""
        width, height = self.map.size
        utype, team, table = self.sim[0], self.sim[1], self.sim[2]
        pos, alive, target = state.pos[index], state.alive[index], state.target[index]
        shown = pos[alive] if alive.any() else pos
        lo = np.maximum(shown.min(axis=0) - 3.0, 0.0)
        hi = np.minimum(shown.max(axis=0) + 3.0, [width, height])
        side = max(12.0, float((hi - lo).max()))
        centre = (lo + hi) / 2
        x0 = float(np.clip(centre[0] - side / 2, 0.0, max(width - side, 0.0)))
        y0 = float(np.clip(centre[1] - side / 2, 0.0, max(height - side, 0.0)))
        size = self.render_size
        scale = size / side
        canvas = Canvas(size, size, background=(236, 230, 214))

        def pixel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (y0 + side - y) * scale, (x - x0) * scale  # (row, column)

        cell = int(np.ceil(scale))
        for cy, cx in np.argwhere(~self.sim[3]):
            row, col = pixel(cx, cy + 1.0)
            canvas.rect(int(row), int(col), cell, cell, (90, 90, 90))
        py, px = pixel(pos[:, 0], pos[:, 1])
        for u in np.flatnonzero(alive & (target >= 0)):
            v = target[u]
            colour = (60, 200, 60) if team[u] == team[v] else (240, 200, 20)
            canvas.line(py[u], px[u], py[v], px[v], colour, width=2)
        for u in np.flatnonzero(alive):
            row = utype[u]
            radius = max(table[row, sk.RADIUS] * scale, 4.0)
            canvas.disc(py[u], px[u], radius, (52, 101, 196) if team[u] == 0 else (200, 55, 55))
            canvas.glyph(int(py[u]), int(px[u]), int(row), (255, 255, 255))
            bar, top, left = int(2 * radius), int(py[u] - radius - 7), int(px[u] - radius)
            canvas.rect(top, left, 3, bar, (60, 60, 60))
            canvas.rect(top, left, 3, int(bar * state.hp[index, u] / table[row, sk.HP]),
                        (40, 190, 60))  # fmt: skip
            if table[row, sk.SHIELD] > 0:
                full = int(bar * state.shield[index, u] / table[row, sk.SHIELD])
                canvas.rect(top - 4, left, 3, full, (40, 200, 230))
        return canvas.image


def params_tuple(params: dict[str, float]) -> tuple[float, ...]:
    """The kernels' ``par`` tuple from named scalars (every name of ``PARAMS``, no other)."""
    if set(params) != set(sk.PARAMS):
        raise ValueError(f"kernel parameters must be exactly {sk.PARAMS}, got {sorted(params)}")
    return tuple(float(params[name]) for name in sk.PARAMS)
