"""Learning peers: a Markov chain of joint policies as an environment.

Paper: meta-mapg-learning-peers (Kim et al.), sections 2.1 and 3, appendices C and E.

A chain starts by drawing every peer (players ``1 .. N-1`` of an iterated matrix game)
from a persona population (:mod:`meta_wrappers.personas`).  The meta-agent (player 0)
and the peers play K trajectories of H rounds with the joint policy ``phi_l``; then
every peer takes one policy-gradient step on those K trajectories (tabular softmax
policy, linear feature baseline, discounted returns):

``phi_{l+1} = phi_l + alpha * 1/K sum_k sum_t gamma^t (G_kt - b_kt) grad log pi(a_kt | s_kt)``

for ``l = 0 .. L-1``, so a chain has L + 1 joint policies ``phi_0 .. phi_L`` and
``(L + 1) K`` trajectories; then new peers are drawn.  The meta-agent's own learning
happens outside, in the learner (it sees when a joint policy ends through ``info``).

Two faces:

- :class:`PeerChain`, batched: C chains x K trajectory slots advance in lockstep
  through one Numba kernel; a step takes the meta-agent's actions ``(C, K)``.  When the
  K trajectories of a joint policy end, the step returns them as a
  :class:`TrajectoryBatch` (states, all players' actions and rewards, the peers'
  parameters and baselines) so a learner can replay the peer update differentiably
  (:func:`meta_wrappers.peers_torch.dice_peer_update`).
- :class:`PeerChainEnv`, a single-agent Gymnasium env (``metaenvs/ipd-peers-v0``,
  ``metaenvs/rps-peers-v0``, ``metaenvs/rps_3p-peers-v0``, ``metaenvs/rps_4p-peers-v0``):
  one episode is one trajectory; the K trajectories of a joint policy are played one
  after another, and ``reset()`` without a seed continues the chain.

**Frozen peers** (K = infinity) are the same env with updates off: ``learning=False``
in the config (a chain is then one joint policy of K trajectories, after which new peers
are drawn), or ``k=None`` in :func:`make_peer_env` (K = 1: every episode plays fresh
peers drawn from the split).  Nothing learns but the meta-agent.

**Peer models**: ``peer_model="tabular"`` (the paper's softmax table over the states) or
``"mlp"``, a small neural peer (one tanh hidden layer on the one-hot state) fitted to
each persona's table (:func:`meta_wrappers.personas.fit_mlp_personas`); both take the
same policy-gradient step, the MLP's by backpropagating the table's gradient.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import gymnasium
import numpy as np
from gymnasium import spaces

import metaenvs
from meta_wrappers._peer_kernels import (
    draw_personas,
    fit_baselines,
    mlp_table,
    step_chains,
    update_peers,
)
from meta_wrappers.personas import DISTRIBUTIONS, SPLITS, Population, make_population
from metaenvs.config import EnvConfig, check_choice, check_float, check_int
from metaenvs.core import check_actions, check_agent_action, check_batch_size
from metaenvs.faces import check_reset_options
from metaenvs.games.matrix_profiles import PROFILES, matrix_profile
from metaenvs.rng import check_seed, seed_streams, seeds_for_batch

GAMES = tuple(PROFILES)
"""The games a chain can play: those with a profile (:mod:`metaenvs.games.matrix_profiles`)."""


@dataclasses.dataclass(frozen=True)
class PeerChainConfig(EnvConfig):
    """Configuration of a Markov chain of learning peers."""

    game: str = "ipd"
    """Matrix game: ``"ipd"``, ``"rps"``, ``"rps_3p"``, ``"rps_4p"``; player 0 is the meta-agent."""
    k: int = 64
    """Trajectories per joint policy K (the peers update after every K)."""
    length: int = 7
    """Chain length L: peers update L times, so a chain has L + 1 joint policies."""
    horizon: int | None = None
    """Rounds per trajectory H; None takes the game profile's (the paper's: IPD 150, RPS 50)."""
    gamma: float | None = None
    """Discount of the peers' returns; None takes the game profile's (IPD 0.96, RPS 0.9)."""
    peer_lr: float = 1.0
    """Peers' inner learning rate (the released code's 1.0)."""
    peer_model: str = "tabular"
    """Peers' policy: ``"tabular"`` (softmax table, the paper's) or ``"mlp"`` (small neural)."""
    peer_hidden: int = 8
    """Hidden tanh units of ``"mlp"`` peers (fitted to the personas' tables)."""
    split: str = "train"
    """Persona split the peers are drawn from: ``"train"``, ``"val"``, ``"test"`` or ``"all"``."""
    distribution: str = "in"
    """``"in"`` (random splits) or ``"out"`` (test personas outside the training range)."""
    population_seed: int = 0
    """Seed of the persona population and its splits."""
    learning: bool = True
    """False freezes the peers (K = infinity): no updates, and a chain is one joint policy."""

    def __post_init__(self) -> None:
        profile = matrix_profile(self.game)  # raises for a game without a profile
        check_int("k", self.k, 1)
        check_int("length", self.length, 0)
        horizon = profile.horizon if self.horizon is None else self.horizon
        gamma = profile.gamma if self.gamma is None else self.gamma
        object.__setattr__(self, "horizon", check_int("horizon", horizon, 1))
        check_float("gamma", gamma, 0.0)
        if gamma > 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        object.__setattr__(self, "gamma", float(gamma))
        check_float("peer_lr", self.peer_lr, 0.0, strict=False)
        check_choice("peer_model", self.peer_model, ("tabular", "mlp"))
        check_int("peer_hidden", self.peer_hidden, 1)
        check_choice("split", self.split, (*SPLITS, "all"))
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check_int("population_seed", self.population_seed, 0)
        if not isinstance(self.learning, (bool, np.bool_)):
            raise TypeError(f"learning must be a bool, got {self.learning!r}")
        if not self.learning:
            object.__setattr__(self, "length", 0)

    @property
    def joint_policies(self) -> int:
        """L + 1, the joint policies of one chain."""
        return self.length + 1


@dataclasses.dataclass
class PeerChainState:
    """State of C chains (arrays, leading axis C).

    Attributes
    ----------
    rng : (C,) uint64 stream per chain.
    params : (C, P, D) the peers' current parameters (the flattened table for tabular peers).
    logits : (C, P, S, A) the peers' current logit tables (what they sample from).
    persona : (C, P) the personas the peers started from.
    position : (C,) chain position l of the current joint policy.
    t : (C,) round within the current trajectory.
    slot : (C,) first trajectory slot not yet played at this position (single-env face).
    face : (1,) the face playing the current joint policy: 0 none yet, 1 ``step``,
        2 ``step_slot`` (they cannot be mixed within a joint policy).
    game_state : (C, K) matrix-game state id of every trajectory slot.
    obs : (C, K, S) the meta-agent's one-hot observations.
    hist_states, hist_actions, hist_rewards : (C, K, H), (C, K, H, N), (C, K, H, N)
        the trajectories of the current joint policy.
    """

    rng: np.ndarray
    params: np.ndarray
    logits: np.ndarray
    persona: np.ndarray
    position: np.ndarray
    t: np.ndarray
    slot: np.ndarray
    face: np.ndarray
    game_state: np.ndarray
    obs: np.ndarray
    hist_states: np.ndarray
    hist_actions: np.ndarray
    hist_rewards: np.ndarray

    @property
    def n_chains(self) -> int:
        return self.rng.shape[0]

    def copy(self) -> PeerChainState:
        return PeerChainState(
            **{f.name: getattr(self, f.name).copy() for f in dataclasses.fields(self)}
        )


class TrajectoryBatch(NamedTuple):
    """The K trajectories of one joint policy in every chain, and the peers' update inputs.

    Attributes
    ----------
    position : (C,) chain position l of the joint policy that played them.
    persona : (C, P) persona ids of the peers.
    states : (C, K, H) int64 state ids acted on.
    actions : (C, K, H, N) int64, player 0 is the meta-agent.
    rewards : (C, K, H, N) float64.
    peer_logits : (C, P, S, A) the peers' logit tables during the trajectories.
    peer_params : (C, P, D) their parameters ``phi_l`` (the flattened table if tabular).
    baseline : (C, P, K, H) the linear baselines of the peers' update (zeros if none ran).
    next_peer_logits, next_peer_params : the same after the update (``phi_{l+1}``;
        unchanged at the end of a chain or with frozen peers).
    """

    position: np.ndarray
    persona: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    peer_logits: np.ndarray
    peer_params: np.ndarray
    baseline: np.ndarray
    next_peer_logits: np.ndarray
    next_peer_params: np.ndarray


class ChainStep(NamedTuple):
    """What one batched step returns.

    Attributes
    ----------
    obs : (C, K, S) float32 next observations of the meta-agent (the first round's
        observation of the next trajectory after a trajectory ends).
    reward : (C, K) float32 the meta-agent's rewards.
    peer_actions : (C, K, P) int64.
    trajectory_done : bool, the K trajectories of the joint policy ended this round.
    chain_done : bool, the chain ended (new peers were drawn).
    batch : TrajectoryBatch or None, set when ``trajectory_done``.
    """

    obs: np.ndarray
    reward: np.ndarray
    peer_actions: np.ndarray
    trajectory_done: bool
    chain_done: bool
    batch: TrajectoryBatch | None


class PeerChain:
    """Batched Markov chains of learning peers (see the module docstring).

    Parameters
    ----------
    config : PeerChainConfig
    population : Population, optional
        Personas to draw from; by default ``make_population(game, population_seed)``.

    Examples
    --------
    >>> chain = PeerChain(PeerChainConfig(game="ipd", k=4, length=2, horizon=3))
    >>> state = chain.reset(n_chains=2, seed=0)
    >>> for _ in range(3):
    ...     out = chain.step(state, np.zeros((2, 4), dtype=np.int64))
    >>> out.trajectory_done, out.batch.actions.shape, int(state.position[0])
    (True, (2, 4, 3, 2), 1)
    """

    def __init__(self, config: PeerChainConfig, population: Population | None = None) -> None:
        if not isinstance(config, PeerChainConfig):
            raise TypeError(f"config must be a PeerChainConfig, got {type(config).__name__}")
        self.config = config
        self.game_core = metaenvs.make_core(config.game, horizon=config.horizon)
        game = self.game_core.config
        if population is None:
            population = make_population(config.game, config.population_seed)
        self.population = population
        if self.population.game != config.game:
            raise ValueError(f"population is for {self.population.game!r}, not {config.game!r}")
        self.n_agents = game.n_players
        self.n_peers = game.n_players - 1
        self.n_states = game.n_states
        self.n_actions = game.n_actions
        self.pool = self.population.split(config.split, config.distribution)
        self.persona_tables = np.ascontiguousarray(self.population.logits)
        self.hidden = 0 if config.peer_model == "tabular" else config.peer_hidden
        if self.hidden:
            # a writable copy (the fitted parameters are read-only): the kernels then take
            # the same array types for MLP and tabular peers (one compiled signature)
            self.persona_params = np.array(self.population.mlp_params(self.hidden))
            self.persona_tables = np.stack(
                [
                    mlp_table(w, self.n_states, self.n_actions, self.hidden)
                    for w in self.persona_params
                ]
            )
        else:
            self.persona_params = self.persona_tables.reshape(len(self.population), -1)
        self.n_params = self.persona_params.shape[1]
        self.payoff_flat = game.payoffs.reshape(-1, game.n_players).astype(np.float64)
        self.observation_space = spaces.Box(0.0, 1.0, (self.n_states,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.n_actions)
        self._slot_names = tuple(f"trajectory_{k}" for k in range(config.k))

    def reset(
        self,
        n_chains: int,
        seed: int | list[int] | np.ndarray | None = None,
        personas: Any = None,
    ) -> PeerChainState:
        """Start ``n_chains`` chains; chain c uses seed ``seed + c`` (or ``seed[c]``).

        Parameters
        ----------
        n_chains : int
            C.
        seed : int, sequence of C ints or None
            Ints in ``[0, 2**64)``; ``seed + c`` wraps around modulo ``2**64`` (see
            :mod:`metaenvs.rng`).
        personas : array_like, optional
            ``(C, P)`` persona ids the first chains start from (any ids of the
            population, e.g. every persona of a split once for an evaluation); by
            default they are drawn from the split.  Later chains are always drawn.
        """
        n_chains = check_batch_size(n_chains, "n_chains")
        if personas is not None:
            personas = np.asarray(personas)
            if personas.shape != (n_chains, self.n_peers):
                raise ValueError(
                    f"personas must have shape {(n_chains, self.n_peers)}, got {personas.shape}"
                )
            if not np.issubdtype(personas.dtype, np.integer):
                raise TypeError(f"personas must be integer ids, got dtype {personas.dtype}")
            if personas.size and (personas.min() < 0 or personas.max() >= len(self.population)):
                raise ValueError(f"persona ids must be in [0, {len(self.population)})")
        cfg = self.config
        k, h, n = cfg.k, cfg.horizon, self.n_agents
        state = PeerChainState(
            rng=seed_streams(seeds_for_batch(n_chains, seed)),
            params=np.zeros((n_chains, self.n_peers, self.n_params)),
            logits=np.zeros((n_chains, self.n_peers, self.n_states, self.n_actions)),
            persona=np.zeros((n_chains, self.n_peers), dtype=np.int64),
            position=np.zeros(n_chains, dtype=np.int64),
            t=np.zeros(n_chains, dtype=np.int64),
            slot=np.zeros(n_chains, dtype=np.int64),
            face=np.zeros(1, dtype=np.int64),
            game_state=np.zeros((n_chains, k), dtype=np.int64),
            obs=np.zeros((n_chains, k, self.n_states), dtype=np.float32),
            hist_states=np.zeros((n_chains, k, h), dtype=np.int64),
            hist_actions=np.zeros((n_chains, k, h, n), dtype=np.int64),
            hist_rewards=np.zeros((n_chains, k, h, n)),
        )
        state.obs[:, :, 0] = 1.0
        if personas is None:
            everyone = np.ones(n_chains, dtype=bool)
            self._draw(state, everyone)
        else:
            state.persona[:] = personas
            state.params[:] = self.persona_params[personas]
            state.logits[:] = self.persona_tables[personas]
        return state

    def step(self, state: PeerChainState, actions: Any) -> ChainStep:
        """Play one round of all K trajectories of every chain.

        Parameters
        ----------
        state : PeerChainState
            Updated in place.
        actions : array_like
            ``(C, K)`` integer actions of the meta-agent.

        Raises
        ------
        ValueError, TypeError
            For a wrong shape, dtype or out-of-range action (before any state changes),
            or if the chains were stepped through the single-trajectory face.
        """
        if state.face[0] == 2:
            raise ValueError("this joint policy is being played slot by slot; use step_slot")
        acts = check_actions(self.action_space, actions, state.n_chains, self._slot_names)
        state.face[0] = 1
        return self._advance(state, acts, 0)

    def step_slot(self, state: PeerChainState, actions: Any) -> ChainStep:
        """Play one round of the current trajectory slot only (``(C, 1)`` actions).

        The K trajectories of a joint policy are then played one after another, as in
        the single-agent face.
        """
        if state.face[0] == 1:
            raise ValueError("this joint policy is being played by step(); use step")
        slot = int(state.slot[0])
        acts = check_actions(self.action_space, actions, state.n_chains, self._slot_names[:1])
        state.face[0] = 2
        return self._advance(state, acts, slot)

    def _advance(self, state: PeerChainState, acts: np.ndarray, slot0: int) -> ChainStep:
        cfg = self.config
        n_chains, width = acts.shape
        reward = np.empty((n_chains, width), dtype=np.float32)
        peer_actions = np.empty((n_chains, width, self.n_peers), dtype=np.int64)
        step_chains(
            acts, slot0, state.rng, state.logits, state.game_state, state.t,
            state.hist_states, state.hist_actions, state.hist_rewards, self.payoff_flat,
            self.n_actions, state.obs, reward, peer_actions,
        )  # fmt: skip
        obs = state.obs[:, slot0 : slot0 + width]
        if int(state.t[0]) < cfg.horizon:
            return ChainStep(obs.copy(), reward, peer_actions, False, False, None)
        # the trajectories in these slots ended: restart them
        state.t[:] = 0
        state.obs[:, slot0 : slot0 + width] = 0.0
        state.obs[:, slot0 : slot0 + width, 0] = 1.0
        state.game_state[:, slot0 : slot0 + width] = 0
        obs = state.obs[:, slot0 : slot0 + width].copy()
        if slot0 + width < cfg.k:
            state.slot[:] = slot0 + width
            return ChainStep(obs, reward, peer_actions, True, False, None)
        state.slot[:] = 0
        state.face[0] = 0
        batch = self._end_joint_policy(state)
        chain_done = bool(state.position[0] == 0)
        return ChainStep(obs, reward, peer_actions, True, chain_done, batch)

    def _end_joint_policy(self, state: PeerChainState) -> TrajectoryBatch:
        """Update the peers (or start new chains at the end) and return the batch played."""
        cfg = self.config
        before, before_params = state.logits.copy(), state.params.copy()
        baseline = np.zeros((state.n_chains, self.n_peers, cfg.k, cfg.horizon))
        position = state.position.copy()
        persona = state.persona.copy()
        last = bool(position[0] >= cfg.length)  # every chain is at the same position
        if cfg.learning and not last:
            update_peers(
                state.params, state.logits, self.hidden, state.hist_states, state.hist_actions,
                state.hist_rewards, cfg.gamma, cfg.peer_lr, baseline,
            )  # fmt: skip
        batch = TrajectoryBatch(
            position=position,
            persona=persona,
            states=state.hist_states.copy(),
            actions=state.hist_actions.copy(),
            rewards=state.hist_rewards.copy(),
            peer_logits=before,
            peer_params=before_params,
            baseline=baseline,
            next_peer_logits=state.logits.copy(),
            next_peer_params=state.params.copy(),
        )
        state.position += 1
        if last:
            state.position[:] = 0
            self._draw(state, np.ones(state.n_chains, dtype=bool))
        return batch

    def _draw(self, state: PeerChainState, chains: np.ndarray) -> None:
        draw_personas(
            state.rng, chains, self.pool, self.persona_params, self.persona_tables,
            state.persona, state.params, state.logits,
        )  # fmt: skip


def feature_baselines(
    states: Any, rewards: Any, gamma: float, n_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted returns and linear feature baselines of one player, chain by chain.

    The fit of the peers' own update (:func:`~meta_wrappers._peer_kernels.fit_baselines`,
    one Numba kernel for every chain): discounted returns regressed on
    ``[onehot(s), onehot(s)**2, t/100, (t/100)**2, (t/100)**3, 1]``.  The arrays are
    handed to the kernel as C-contiguous, writable int64 and float64, whatever their
    layout here (a player's rewards are a strided view of a batch's), so every caller
    uses the one compiled signature that ``metaenvs warmup`` caches.

    Parameters
    ----------
    states : array_like
        ``(C, K, H)`` integer state ids.
    rewards : array_like
        ``(C, K, H)`` the player's rewards.
    gamma : float
        Discount.
    n_states : int
        S, the one-hot width.

    Returns
    -------
    returns, baseline : np.ndarray
        ``(C, K, H)`` float64 each.
    """
    states = _kernel_array(states, np.int64)
    rewards = _kernel_array(rewards, np.float64)
    returns, baseline = np.empty(rewards.shape), np.empty(rewards.shape)
    fit_baselines(states, rewards, float(gamma), int(n_states), returns, baseline)
    return returns, baseline


def _kernel_array(values: Any, dtype: type) -> np.ndarray:
    """``values`` as a C-contiguous writable array of ``dtype`` (a copy only if needed):
    the layout and flags Numba compiles a kernel's signature for."""
    out = np.ascontiguousarray(values, dtype=dtype)
    return out if out.flags.writeable else out.copy()


class PeerChainEnv(gymnasium.Env):
    """A chain of learning peers seen by the meta-agent as a single-agent Gymnasium env.

    One episode is one trajectory of H rounds (truncated, never terminated).  After K
    episodes the peers update; after L + 1 joint policies new peers are drawn.
    ``reset()`` without a seed continues the chain (a trajectory cut short is
    discarded); ``reset(seed=s)`` starts a fresh chain.

    ``info`` (at reset and every step) holds ``chain_position`` (l), ``trajectory``
    (k within the joint policy), ``persona`` (ids of the peers' personas) and, with
    ``centralised=True``, ``peer_logits`` (the peers' parameters), all of the joint
    policy that plays the round.  Steps add ``peer_actions``; the last step of a
    trajectory adds ``peers_updated`` (True when the peers just took their update).

    Parameters
    ----------
    config : PeerChainConfig
    centralised : bool
        Put the peers' parameters in ``info`` (for centralised meta-training).
    render_mode : {"rgb_array", None}
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, config: PeerChainConfig, centralised: bool = False, render_mode: str | None = None
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"unknown render_mode {render_mode!r}")
        self.chain = PeerChain(config)
        self.config = config
        self.centralised = bool(centralised)
        self.render_mode = render_mode
        self.observation_space = self.chain.observation_space
        self.action_space = self.chain.action_space
        self._state: PeerChainState | None = None
        self._stepped = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start the next trajectory (a fresh chain with a seed, or at the first reset).

        Parameters
        ----------
        seed : int or None
            An int in ``[0, 2**64)`` (see :func:`metaenvs.rng.check_seed`); None
            continues the chain.
        options : None or {}
            No options are supported; others raise ``ValueError``.

        Raises
        ------
        ValueError, TypeError
            For a bad seed or non-empty options, before anything changes.
        """
        check_reset_options(options, type(self).__name__)
        seed = check_seed(seed)
        super().reset(seed=seed)
        if seed is not None or self._state is None:
            chain_seed = int(self.np_random.integers(2**62))
            self._state = self.chain.reset(1, chain_seed)
        else:
            state, slot = self._state, int(self._state.slot[0])
            state.t[:] = 0
            state.game_state[:, slot] = 0
            state.obs[:, slot] = 0.0
            state.obs[:, slot, 0] = 1.0
        self._stepped = False
        return self._state.obs[0, int(self._state.slot[0])].copy(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play one round with the meta-agent's ``action`` (an int of the action space).

        Raises
        ------
        RuntimeError
            Before :meth:`reset` or after the trajectory ended.
        ValueError, TypeError
            For a bad action (shape other than ``()``, dtype, range), before anything
            changes.
        """
        if self._state is None:
            raise RuntimeError("step() called before reset()")
        if self._stepped:
            raise RuntimeError("the trajectory ended; call reset() to play the next one")
        name = self.chain.game_core.agent_names[0]
        action = check_agent_action(self.action_space, action, name)
        info = self._info()  # the joint policy and trajectory this round belongs to
        out = self.chain.step_slot(self._state, action.reshape(1, 1))
        info["peer_actions"] = out.peer_actions[0, 0].copy()
        truncated = out.trajectory_done
        if truncated:
            self._stepped = True
            batch = out.batch
            info["peers_updated"] = bool(
                batch is not None
                and self.config.learning
                and batch.position[0] < self.config.length
            )
        return out.obs[0, 0], float(out.reward[0, 0]), False, truncated, info

    def _info(self) -> dict[str, Any]:
        state = self._state
        info = {
            "chain_position": int(state.position[0]),
            "trajectory": int(state.slot[0]),
            "persona": state.persona[0].copy(),
        }
        if self.centralised:
            info["peer_logits"] = state.logits[0].copy()
            info["peer_params"] = state.params[0].copy()
        return info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None or self._state is None:
            return None
        game_state = self.chain.game_core.reset(1, 0)
        game_state.state_id[0] = self._state.game_state[0, int(self._state.slot[0])]
        game_state.t[0] = self._state.t[0]
        return self.chain.game_core.render_copy(game_state, 0)


def make_peer_env(
    env_id: str,
    k: int | None = 64,
    centralised: bool = False,
    render_mode: str | None = None,
    **kwargs: Any,
) -> PeerChainEnv:
    """Gymnasium entry point of ``metaenvs/<game>-peers-v0``.

    Parameters
    ----------
    env_id : str
        The matrix game (``"ipd"``, ``"rps"``, ``"rps_3p"``, ``"rps_4p"``).
    k : int or None
        Trajectories per joint policy; None freezes the peers (K = infinity).
    centralised : bool
        Put the peers' parameters in ``info``.
    render_mode : {"rgb_array", None}
    **kwargs
        Other :class:`PeerChainConfig` fields (``length``, ``horizon``, ``gamma``,
        ``peer_lr``, ``split``, ``distribution``, ``population_seed``).

    Examples
    --------
    >>> import gymnasium, metaenvs
    >>> env = gymnasium.make("metaenvs/ipd-peers-v0", k=8, split="test")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["chain_position"]
    ((5,), 0)
    """
    if "game" in kwargs or "learning" in kwargs:
        raise TypeError("pass the game as the id and k=None for frozen peers")
    frozen = k is None
    config = PeerChainConfig.from_kwargs(
        game=metaenvs.registry.spec(env_id).name,
        k=1 if frozen else k,
        learning=not frozen,
        **kwargs,
    )
    return PeerChainEnv(config, centralised=centralised, render_mode=render_mode)
