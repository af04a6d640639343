"""Iterated matrix games: prisoner's dilemma, rock-paper-scissors (2 to 4 players), any payoff.

Paper: meta-mapg-learning-peers (Kim et al.), Tables 1 and 2.

## Agents
``player_0`` ... ``player_{N-1}``, acting simultaneously every round.

## Action Space
``Discrete(A)`` per player.  IPD: 0 = cooperate, 1 = defect.  RPS: 0 = rock,
1 = paper, 2 = scissors.

## Observation Space
``Box(0, 1, (A**N + 1,), float32)``, the one-hot of the state, identical for every
player: ``s_0 = 0`` and ``s_t = 1 + index(a_{t-1})`` where
``index(a) = sum_i a_i * A**(N - 1 - i)`` (player 0 most significant).  IPD has 5
states, 2-player RPS 10, 3-player RPS 28, 4-player RPS 82.

## Rewards
``payoffs[a_0, ..., a_{N-1}, i]`` to player i.  IPD (Table 1): CC (0.5, 0.5),
CD (-1.5, 1.5), DC (1.5, -1.5), DD (-0.5, -0.5).  RPS (Table 2): win 1, loss -1, tie 0.
For N-player RPS, player i receives the **mean of its pairwise Table 2 payoffs** against
each other player, so rewards stay in [-1, 1] and the game stays zero-sum.

## Starting State
``s_0 = 0`` (no previous actions).  The games are deterministic: the seed only matters
to wrappers and policies that draw random numbers.

## Episode End
Never terminated; truncated after ``horizon`` rounds (IPD 150, RPS 50 by default, as
in the paper's Tables 3 and 4).

## Rules in one place
One round is :func:`play_round` (payoffs and next state of a joint action; a Numba
function, with :func:`move_one_hot` for the observation).  The batched core and every
wrapper that plays a matrix game inside its own kernel (the learning-peer chain of
:mod:`meta_wrappers.peers`) call it, so the rules exist once.  What wrappers and learners
know about a game besides its rules (discount, personas, learning rates) is its profile in
:mod:`metaenvs.games.matrix_profiles`.

## Version History
v0: first release.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from gymnasium import spaces

from metaenvs.config import EnvConfig, check_int
from metaenvs.core import BatchedCore, CoreState, StepResult, step_result
from metaenvs.games._matrix_kernels import move_one_hot as move_one_hot  # re-exported
from metaenvs.games._matrix_kernels import one_hot_obs, step_matrix_game
from metaenvs.games._matrix_kernels import play_round as play_round  # re-exported
from metaenvs.render import AGENT_COLOURS, Canvas

IPD_ACTIONS = ("cooperate", "defect")
RPS_ACTIONS = ("rock", "paper", "scissors")


def ipd_payoffs() -> np.ndarray:
    """Iterated prisoner's dilemma payoffs ``(2, 2, 2)`` from the paper's Table 1."""
    return np.array(
        [[[0.5, 0.5], [-1.5, 1.5]], [[1.5, -1.5], [-0.5, -0.5]]],
        dtype=np.float64,
    )


def rps_row_payoffs() -> np.ndarray:
    """Row player's payoff ``(3, 3)`` of rock-paper-scissors (the paper's Table 2)."""
    return np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])


def pairwise_mean_payoffs(row_payoff: np.ndarray, n_players: int) -> np.ndarray:
    """N-player payoffs where player i gets the mean of ``row_payoff[a_i, a_j]`` over j != i.

    Parameters
    ----------
    row_payoff : np.ndarray
        ``(A, A)`` payoff of the row player of a symmetric two-player game.
    n_players : int
        N >= 2.

    Returns
    -------
    np.ndarray
        ``(A,) * N + (N,)`` payoff tensor.
    """
    if n_players < 2:
        raise ValueError(f"n_players must be >= 2, got {n_players}")
    n_actions = row_payoff.shape[0]
    joint = np.indices((n_actions,) * n_players).reshape(n_players, -1).T  # (A**N, N)
    pair = row_payoff[joint[:, :, None], joint[:, None, :]]  # (A**N, N, N)
    total = pair.sum(axis=2) - np.diagonal(pair, axis1=1, axis2=2)
    return (total / (n_players - 1)).reshape((n_actions,) * n_players + (n_players,))


def rps_payoffs(n_players: int = 2) -> np.ndarray:
    """Rock-paper-scissors payoffs for N players (pairwise mean of Table 2)."""
    return pairwise_mean_payoffs(rps_row_payoffs(), n_players)


@dataclasses.dataclass(frozen=True, eq=False)
class MatrixGameConfig(EnvConfig):
    """Configuration of an iterated matrix game."""

    payoffs: np.ndarray = dataclasses.field(default_factory=ipd_payoffs)
    """Payoff tensor ``(A,) * N + (N,)``: ``payoffs[a_0, ..., a_{N-1}, i]`` is player i's reward."""
    horizon: int = 150
    """Rounds per episode; the episode is truncated (not terminated) after them."""
    action_names: tuple[str, ...] | None = None
    """Optional names of the A actions (for rendering and docs)."""

    def __post_init__(self) -> None:
        payoffs = np.array(self.payoffs, dtype=np.float64)
        n = payoffs.ndim - 1
        if n < 2 or payoffs.shape[-1] != n or len(set(payoffs.shape[:-1])) != 1:
            raise ValueError(
                f"payoffs must have shape (A,) * N + (N,) with N >= 2 players, got {payoffs.shape}"
            )
        if payoffs.shape[0] < 2:
            raise ValueError("each player needs at least 2 actions")
        if not np.isfinite(payoffs).all():
            raise ValueError("payoffs contain NaN or infinity")
        if payoffs.shape[0] ** n > 1_000_000:
            raise ValueError(f"A**N = {payoffs.shape[0] ** n} joint actions is too many")
        payoffs.setflags(write=False)
        object.__setattr__(self, "payoffs", payoffs)
        check_int("horizon", self.horizon, 1)
        if self.action_names is not None:
            names = tuple(self.action_names)
            if len(names) != payoffs.shape[0]:
                raise ValueError(
                    f"action_names has {len(names)} names for {payoffs.shape[0]} actions"
                )
            object.__setattr__(self, "action_names", names)

    @property
    def n_players(self) -> int:
        """Number of players N."""
        return self.payoffs.ndim - 1

    @property
    def n_actions(self) -> int:
        """Actions per player A."""
        return self.payoffs.shape[0]

    @property
    def n_states(self) -> int:
        """Number of states ``A**N + 1``."""
        return self.n_actions**self.n_players + 1


@dataclasses.dataclass
class MatrixGameState(CoreState):
    """State of B copies of an iterated matrix game.

    Attributes
    ----------
    state_id : np.ndarray
        ``(B,)`` int64: 0 at the start, else ``1 + index(last joint action)``.
    """

    state_id: np.ndarray


class MatrixGameCore(BatchedCore):
    """Batched iterated matrix game (see the module docstring for the spec)."""

    config_cls = MatrixGameConfig
    config: MatrixGameConfig
    reward_description: ClassVar[str] = "payoffs[a_0, ..., a_{N-1}, i] every round"

    def __init__(self, config: MatrixGameConfig) -> None:
        super().__init__(config)
        self._agents = tuple(f"player_{i}" for i in range(config.n_players))
        self._payoff_flat = config.payoffs.reshape(-1, config.n_players).astype(np.float32)
        low, high = float(self._payoff_flat.min()), float(self._payoff_flat.max())
        self.reward_range = (low, high)
        self.observation_space = spaces.Box(0.0, 1.0, (config.n_states,), dtype=np.float32)
        self.action_space = spaces.Discrete(config.n_actions)
        self.state_space = self.observation_space
        # this class's final global state is a view: handed out by _step, unless overridden
        self._final_view = type(self).final_global_state is MatrixGameCore.final_global_state
        self._final_obs: np.ndarray | None = None  # the buffer of the last view made
        self._final_state: np.ndarray | None = None

    @property
    def agent_names(self) -> tuple[str, ...]:
        return self._agents

    def _init_state(self, batch: int, rng: np.ndarray) -> MatrixGameState:
        zeros = np.zeros(batch, dtype=np.int64)
        state = MatrixGameState(
            t=zeros.copy(), rng=rng, state_id=zeros, **self.output_buffers(batch)
        )
        one_hot_obs(state.state_id, state.obs)
        return state

    def global_state(self, state: MatrixGameState) -> np.ndarray:
        return state.obs[:, 0].copy()

    def final_global_state(self, state: MatrixGameState) -> np.ndarray:
        """Player 0's final observation (every player sees the same state): a view of
        ``final_obs``, valid until the next step like it."""
        return state.final_obs[:, 0]

    def _step(self, state: MatrixGameState, actions: np.ndarray) -> StepResult:
        step_matrix_game(
            state.state_id,
            state.t,
            actions,
            self._payoff_flat,
            self.config.n_actions,
            self.config.horizon,
            state.obs,
            state.reward,
            state.terminated,
            state.truncated,
            state.final_obs,
        )
        final = None
        if self._final_view:
            if self._final_obs is not state.final_obs:  # a view per buffer, not per step
                self._final_obs, self._final_state = state.final_obs, state.final_obs[:, 0]
            final = self._final_state
        return step_result(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, {}, final
        )

    def last_actions(self, state: MatrixGameState, index: int = 0) -> np.ndarray | None:
        """The joint action that led to copy ``index``'s state, or None at the start."""
        sid = int(state.state_id[index])
        if sid == 0:
            return None
        shape = (self.config.n_actions,) * self.n_agents
        return np.array(np.unravel_index(sid - 1, shape))

    def render_copy(self, state: MatrixGameState, index: int = 0) -> np.ndarray:
        """One row per player, one cell per action; the last action of each player is lit."""
        cfg = self.config
        cell, pad = 48, 8
        canvas = Canvas(
            height=pad * 3 + 10 + self.n_agents * (cell + pad),
            width=pad * 2 + cfg.n_actions * (cell + pad),
        )
        progress = int(state.t[index]) / cfg.horizon
        canvas.rect(pad, pad, 10, int((canvas.width - 2 * pad) * progress), (200, 200, 200))
        last = self.last_actions(state, index)
        for i in range(self.n_agents):
            y = 2 * pad + 10 + i * (cell + pad)
            for a in range(cfg.n_actions):
                x = pad + a * (cell + pad)
                lit = last is not None and last[i] == a
                colour = AGENT_COLOURS[i % len(AGENT_COLOURS)] if lit else (70, 70, 70)
                canvas.rect(y, x, cell, cell, colour)
                canvas.glyph(y + cell // 2, x + cell // 2, a, (255, 255, 255))
        return canvas.image
