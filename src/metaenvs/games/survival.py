"""Survival: hundreds of agents on a grid with a little food, in batched Numba.

Paper: dima-pg-distributed (section 5.4 and appendix C.3; its Survival is adapted from
MAgent, Zheng et al. 2017).  ``survival_N230`` and ``survival_N630`` are the paper's two
populations; the family id ``survival`` takes any ``n_agents``.

## Agents
``agent_0`` ... ``agent_{N-1}``, all alike (one shared observation and action space).  An
agent whose hp reaches 0 dies and leaves the episode (PettingZoo face: terminated, then gone
from ``agents``); in the batched faces its slot stays, with a zero observation, zero
reward, and its actions ignored.

## Action Space
``Discrete(23)``, relative to the agent's facing: 0 stay; 1-12 move to one of the 12 cells
within two steps (``|ahead| + |right| <= 2``: 1-4 the four adjacent cells ahead, behind,
right, left; 5-12 the eight two steps away), if that cell is empty when the agent's turn
comes (moves resolve one agent at a time in a random order each step); 13-20 attack one of
the 8 neighbouring cells (ahead, ahead-right, right, behind-right, behind, behind-left,
left, ahead-left); 21 turn left, 22 turn right.

## Observation Space
``Box((D,), float32)``, zero for a dead agent:

- the local view, ``(2r + 1) x (2r + 1)`` cells (``view_radius`` r = 7: 15 x 15) in the
  agent's own frame (row 0 farthest ahead, column 0 farthest left), 5 channels per cell
  (cell-major, ``(H, W, C)`` flattened; :attr:`SurvivalCore.view_shape`): wall or off the
  map, food, food hp fraction, another agent, its hp fraction;
- the non-spatial part: the agent's id in binary (``ceil(log2 N)`` bits), its last action
  one-hot (23; zeros after a reset), last reward, position (row, column) over the grid's
  side, facing one-hot (north, east, south, west), hp fraction.

The global state (``core.global_state``) is the whole grid, 4 channels per cell
(row-major): wall, food hp fraction, agent, agent hp fraction.

## Rewards
Per agent and step: ``step_reward`` -0.01 while alive; ``attack_penalty`` -0.1 for each
attack on another agent; ``group_kill_reward`` +1 to each attacker of an agent that dies
this step under the attacks of two or more agents (a kill made as a group; a kill alone
earns nothing); ``dead_penalty`` -1 to an agent that dies; ``food_reward`` +5 for a food
particle eaten, shared equally by the agents whose attacks this step finished it.
``infos["food_left"]`` and ``infos["survivors"]`` count the uneaten food and the living
agents after each step (on an episode's last step: at its end, before the auto-reset).

## Combat and food
Attacks resolve at once, on the cells after the moves: each attack on an agent takes
``damage`` (6) of its ``agent_hp`` (3: one attack kills), each attack on food takes
``damage`` of its ``food_hp`` (25: five attacks eat it); an attack on an empty cell or a
wall does nothing.

## Starting State
A ``map_size`` x ``map_size`` grid whose border cells are walls; the ``n_food`` (160)
food particles on the cells nearest the centre; every agent on a uniformly drawn empty
cell, facing a uniformly drawn direction, at full hp.

## Episode End
Terminated when no agent is alive; truncated after ``horizon`` (200) steps.

## Choices where the paper is silent
The paper gives the actions, the rewards, the 160 food at the centre worth +5, the
horizon and the observation's contents.  The rest follows MAgent's ``gather`` (the food
game of MAgent2's ``gather_v5``): agent hp 3, damage 6, food hp 25 (food is eaten by
attacking it), view range 7; the view is a square (MAgent: a circle of radius 7 in a 15 x
15 box); ids in binary (MAgent's id embedding is binary too).  Ours: the grid's side,
``ceil(sqrt(5 (N + F))) + 2`` (about a fifth of the interior occupied: 47 for N = 230, 65
for N = 630; MAgent's gather map is 200, its population 495 plus about 1,600 food), random
starting cells (MAgent's gather puts agents on squares near the walls), the view turning
with the agent (the paper's agents have an orientation and turn actions, which only mean
something if the view or moves depend on it), the group-kill rule above, the food reward
split between the attackers that finish a particle, and an attack penalty only for
attacks on agents (the paper's wording).

## Version History
v0: first release.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
from gymnasium import spaces

from metaenvs.config import EnvConfig, check_float, check_int
from metaenvs.core import BatchedCore, CoreState, StepResult, step_result
from metaenvs.games import _survival_kernels as sv
from metaenvs.render import Canvas
from metaenvs.threads import run_copies

MOVE_OFFSETS = np.array(
    [(1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (-2, 0), (0, 2), (0, -2),
     (1, 1), (1, -1), (-1, 1), (-1, -1)],
    dtype=np.int64,
)  # fmt: skip
"""(ahead, right) offsets of the move actions 1-12."""
ATTACK_OFFSETS = np.array(
    [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)], dtype=np.int64
)
"""(ahead, right) offsets of the attack actions 13-20."""
ACTION_NAMES = (
    ("stay",)
    + tuple(f"move_{f:+d}_{s:+d}" for f, s in MOVE_OFFSETS)
    + tuple(f"attack_{f:+d}_{s:+d}" for f, s in ATTACK_OFFSETS)
    + ("turn_left", "turn_right")
)
"""Names of the 23 actions (moves and attacks by their (ahead, right) offsets)."""


@dataclasses.dataclass(frozen=True)
class SurvivalConfig(EnvConfig):
    """Configuration of a Survival world."""

    n_agents: int = 20
    """Number of agents N (the paper: 230 and 630)."""
    n_food: int = 160
    """Food particles at the centre (the paper: 160)."""
    map_size: int | None = None
    """Side of the square grid, its wall border included (default ``ceil(sqrt(5 (N +
    n_food))) + 2``)."""
    view_radius: int = 7
    """Cells seen in each direction: a ``(2 r + 1)`` square view (MAgent gather: 7)."""
    horizon: int = 200
    """Steps before truncation (the paper: 200)."""
    agent_hp: float = 3.0
    """Hit points of an agent (MAgent gather: 3)."""
    damage: float = 6.0
    """Hit points one attack takes (MAgent gather: 6)."""
    food_hp: float = 25.0
    """Hit points of a food particle (MAgent gather: 25, five attacks)."""
    step_reward: float = -0.01
    """Reward of every living agent at every step."""
    dead_penalty: float = -1.0
    """Reward of an agent when it dies."""
    attack_penalty: float = -0.1
    """Reward of an agent for each attack on another agent."""
    group_kill_reward: float = 1.0
    """Reward of each attacker of an agent killed by two or more attackers in one step."""
    food_reward: float = 5.0
    """Reward for a food particle eaten (shared by the attackers that finish it)."""

    def __post_init__(self) -> None:
        check_int("n_agents", self.n_agents, 1)
        check_int("n_food", self.n_food, 0)
        check_int("view_radius", self.view_radius, 1)
        check_int("horizon", self.horizon, 1)
        for name in ("agent_hp", "damage", "food_hp"):
            check_float(name, getattr(self, name))
        for name in ("step_reward", "dead_penalty", "attack_penalty"):
            check_float(name, getattr(self, name), low=-math.inf, strict=False)
        for name in ("group_kill_reward", "food_reward"):
            check_float(name, getattr(self, name), low=-math.inf, strict=False)
        if self.map_size is not None:
            check_int("map_size", self.map_size, 3)
            interior = (self.map_size - 2) ** 2
            if self.n_agents + self.n_food > interior // 2:
                raise ValueError(
                    f"map_size {self.map_size} has {interior} free cells: too few for "
                    f"{self.n_agents} agents and {self.n_food} food (at most half of them "
                    f"occupied; the default side for these is {default_side(self)})"
                )

    @property
    def side(self) -> int:
        """The grid's side, its wall border included."""
        return self.map_size if self.map_size is not None else default_side(self)


def default_side(config: SurvivalConfig) -> int:
    """``ceil(sqrt(5 (N + F))) + 2``: about a fifth of the interior occupied at the start."""
    return math.ceil(math.sqrt(5 * (config.n_agents + config.n_food))) + 2


def food_cells(side: int, n_food: int) -> np.ndarray:
    """The ``n_food`` interior cells nearest the grid's centre ``(F, 2)`` (row, column),
    nearest first (ties by row, then column)."""
    rows, cols = np.mgrid[1 : side - 1, 1 : side - 1]
    centre = (side - 1) / 2.0
    dist = (rows - centre) ** 2 + (cols - centre) ** 2
    order = np.lexsort((cols.ravel(), rows.ravel(), dist.ravel()))[:n_food]
    return np.stack([rows.ravel()[order], cols.ravel()[order]], axis=1).astype(np.int64)


@dataclasses.dataclass
class SurvivalState(CoreState):
    """Batched Survival state; shapes in :mod:`metaenvs.games._survival_kernels`."""

    grid: np.ndarray
    pos: np.ndarray
    orient: np.ndarray
    hp: np.ndarray
    alive: np.ndarray
    food_hp: np.ndarray
    last_action: np.ndarray
    last_reward: np.ndarray
    final_state: np.ndarray
    """``(B, S * S * 4)`` float32, the global state at the end of the episodes the last
    step finished (rows of the copies in ``terminated | truncated``)."""
    food_left: np.ndarray
    """``(B,)`` int64, uneaten food after the last step (before an auto-reset)."""
    survivors: np.ndarray
    """``(B,)`` int64, living agents after the last step (before an auto-reset)."""
    cells: np.ndarray
    """``(B, 4, S + 2r, (S + 2r) * 5)`` float32, the view channels of every cell in the frame of
    each facing (a wall margin of the view radius r around the grid), from which the views
    are copied."""

    def buffers(self) -> tuple:
        """The kernels' ``bufs`` tuple."""
        return (
            self.t, self.rng, self.grid, self.pos, self.orient, self.hp, self.alive,
            self.food_hp, self.last_action, self.last_reward, self.obs, self.reward,
            self.terminated, self.truncated, self.final_obs, self.final_state,
            self.food_left, self.survivors, self.cells,
        )  # fmt: skip


class SurvivalCore(BatchedCore):
    """Batched Survival worlds (see the module docstring for the spec)."""

    config_cls = SurvivalConfig
    config: SurvivalConfig
    agents_can_die: ClassVar[bool] = True
    episode_info: ClassVar[tuple[str, ...]] = ("food_left", "survivors")
    min_parallel = 4  # the dynamics of a copy of hundreds of agents: 10-30 microseconds
    min_parallel_agents = 1024
    """Observations are made per agent, over threads from this many agents in the batch
    (a copy's agents too; one view is about 0.2 microseconds, and waking a thread costs
    tens: at 630 agents one copy is faster on one thread)."""
    reward_description: ClassVar[str] = (
        "food eaten (+5), group kills (+1), attacks (-0.1), death (-1), -0.01 per step"
    )
    render_size: ClassVar[int] = 390

    def __init__(self, config: SurvivalConfig) -> None:
        super().__init__(config)
        n, side, r = config.n_agents, config.side, config.view_radius
        self.side = side
        self.id_bits = max(1, math.ceil(math.log2(n))) if n > 1 else 1
        width = 2 * r + 1
        self.view_shape = (width, width, sv.CHANNELS)
        """Shape of the local view at the start of an observation, ``(H, W, C)``."""
        dim = width * width * sv.CHANNELS + self.id_bits + sv.NON_SPATIAL
        low = np.zeros(dim, dtype=np.float32)
        high = np.ones(dim, dtype=np.float32)
        at_reward = width * width * sv.CHANNELS + self.id_bits + sv.N_ACTIONS
        low[at_reward], high[at_reward] = self.reward_bounds()
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(sv.N_ACTIONS)
        self.state_space = spaces.Box(0.0, 1.0, (side * side * sv.STATE_CHANNELS,), np.float32)
        self._agents = tuple(f"agent_{i}" for i in range(n))
        self.sim = (food_cells(side, config.n_food), MOVE_OFFSETS, ATTACK_OFFSETS)
        self.params = {
            "view_radius": r,
            "horizon": config.horizon,
            "agent_hp": config.agent_hp,
            "damage": config.damage,
            "food_hp": config.food_hp,
            "step_reward": config.step_reward,
            "dead_penalty": config.dead_penalty,
            "attack_penalty": config.attack_penalty,
            "group_kill_reward": config.group_kill_reward,
            "food_reward": config.food_reward,
            "id_bits": self.id_bits,
        }
        """The kernels' scalars by name; ``par`` is them in :data:`~._survival_kernels.PARAMS`
        order."""
        self.par = tuple(float(self.params[name]) for name in sv.PARAMS)

    @property
    def agent_names(self) -> tuple[str, ...]:
        """``agent_<i>`` for every agent, in slot order."""
        return self._agents

    def reward_bounds(self) -> tuple[float, float]:
        """Bounds of the reward of one agent in one step (each term at its extreme)."""
        c = self.config
        terms = (c.dead_penalty, c.attack_penalty, c.group_kill_reward, c.food_reward)
        low = c.step_reward + sum(min(0.0, x) for x in terms)
        high = c.step_reward + sum(max(0.0, x) for x in terms)
        return min(low, 0.0), max(high, 0.0)

    def describe(self) -> dict[str, str]:
        """:meth:`BatchedCore.describe` plus the grid."""
        out = super().describe()
        c = self.config
        out["grid"] = f"{self.side} x {self.side} (walls on the border), {c.n_food} food"
        return out

    # -- dynamics --------------------------------------------------------------------------
    def _init_state(self, batch: int, rng: np.ndarray) -> SurvivalState:
        n, side = self.n_agents, self.side
        padded = side + 2 * self.config.view_radius
        state = SurvivalState(
            t=np.zeros(batch, dtype=np.int64),
            rng=rng,
            grid=np.zeros((batch, side, side), dtype=np.int32),
            pos=np.zeros((batch, n, 2), dtype=np.int64),
            orient=np.zeros((batch, n), dtype=np.int64),
            hp=np.zeros((batch, n)),
            alive=np.zeros((batch, n), dtype=np.bool_),
            food_hp=np.zeros((batch, self.config.n_food)),
            last_action=np.full((batch, n), -1, dtype=np.int64),
            last_reward=np.zeros((batch, n), dtype=np.float32),
            final_state=np.zeros((batch, *self.state_space.shape), dtype=np.float32),
            food_left=np.zeros(batch, dtype=np.int64),
            survivors=np.zeros(batch, dtype=np.int64),
            cells=np.zeros((batch, 4, padded, padded * sv.CHANNELS), dtype=np.float32),
            **self.output_buffers(batch),
        )
        sv.reset_survival(state.buffers(), self.sim, self.par)
        state.food_left[:] = self.config.n_food
        state.survivors[:] = n
        return state

    def _step(self, state: SurvivalState, actions: np.ndarray) -> StepResult:
        bufs = state.buffers()
        self.step_copies(sv.step_survival, (bufs, self.sim, self.par, actions), state.batch)
        agents = state.batch * self.n_agents
        run_copies(
            sv.observe_agents, (bufs, self.par), agents, self.min_parallel_agents, self.threads
        )
        sv.finish_survival(bufs, self.sim, self.par)
        info = {"food_left": state.food_left, "survivors": state.survivors}
        return step_result(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, info,
            state.final_state,
        )  # fmt: skip

    def alive(self, state: SurvivalState) -> np.ndarray:
        """``(B, N)`` bool, which agents are alive."""
        return state.alive

    def global_state(self, state: SurvivalState) -> np.ndarray:
        """The whole grid ``(B, S * S * 4)``: wall, food hp fraction, agent, agent hp
        fraction per cell (row-major)."""
        out = np.empty((state.batch, *self.state_space.shape), dtype=np.float32)
        sv.global_state(state.buffers(), self.par, out)
        return out

    def final_global_state(self, state: SurvivalState) -> np.ndarray:
        """Global states ``(B, S * S * 4)`` at the end of the episodes the last step
        finished (the kernel keeps them before the auto-reset)."""
        return state.final_state

    # -- rendering -------------------------------------------------------------------------
    def render_copy(self, state: SurvivalState, index: int = 0) -> np.ndarray:
        """Top-down picture of copy ``index``: walls grey, food green (paler as it is
        eaten), agents as discs from blue (full hp) to red, with a tick toward their
        facing."""
        side = self.side
        cell = max(1, self.render_size // side)
        canvas = Canvas(side * cell, side * cell, background=(245, 243, 236))
        grid = state.grid[index]
        for row, col in np.argwhere(grid == sv.WALL):
            canvas.rect(int(row) * cell, int(col) * cell, cell, cell, (110, 110, 110))
        food = state.food_hp[index] / self.config.food_hp
        for f, (row, col) in enumerate(self.sim[0]):
            if food[f] > 0:
                shade = int(200 - 120 * food[f])
                canvas.rect(int(row) * cell, int(col) * cell, cell, cell, (shade, 190, shade))
        hp = state.hp[index] / self.config.agent_hp
        for i in np.flatnonzero(state.alive[index]):
            row, col = state.pos[index, i]
            cy, cx = (row + 0.5) * cell, (col + 0.5) * cell
            h = float(np.clip(hp[i], 0.0, 1.0))
            colour = (int(200 * (1 - h) + 40 * h), 60, int(200 * h + 40 * (1 - h)))
            canvas.disc(cy, cx, max(cell * 0.45, 1.0), colour)
            o = state.orient[index, i]
            dy, dx = sv.ROW_F[o] * cell * 0.5, sv.COL_F[o] * cell * 0.5
            canvas.line(cy, cx, cy + dy, cx + dx, (250, 250, 250), width=1)
        return canvas.image
