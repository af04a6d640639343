"""Communication topology: each agent chooses which neighbours' observations it receives.

Paper: comm-topology-meta-gradient.  Any core that declares a neighbour structure
(inherits :class:`metaenvs.core.NeighbourStructure`: ``neighbour_slots`` d and
``neighbours_in(obs)``, as every particle task does) can be wrapped.  :class:`CommCore` is
itself a batched core, so every face (PettingZoo, Gymnasium vector, SB3), the conformance
suite and SuperSuit work on it unchanged.

Observation of agent i (float32, one row)::

    [ o^i (D) | o^{j_1} ... o^{j_d} (d x D) | valid (d) | sender ids (d) | phase (1) ]

Slot ``s`` holds the observation of the neighbour in agent i's neighbour slot ``s`` if i
requested it and the slot is filled (then ``valid[s] = 1`` and the id is the sender's
agent slot), else zeros with id -1.  The phase flag exists only in the two-phase mode.

Topologies (``topology=``):

- ``"learned"``: the agents choose.  Each agent's action gains a binary request mask
  over its d slots: ``MultiDiscrete([n_moves, 2, ..., 2])`` for discrete moves, or a
  ``Box`` with d extra entries in ``[0, 1]`` for continuous moves (an entry > 0.5
  requests).
- ``"none"``, ``"full"``, ``"k_nearest"`` (``k`` closest filled slots), ``"radius"``
  (filled slots within ``radius``), or any callable ``rule(obs, ids, rel) -> mask``
  (``(B, N, D)``, ``(B, N, d)``, ``(B, N, d, 2)`` -> bool ``(B, N, d)``): a fixed rule
  chooses; the action space is the inner one.

Timing (``timing=``):

- ``"same_step"`` (the paper's): requests are made from o_t and answered with o_t,
  before the agents act at t.  With ``"learned"`` this takes two phases per env step:
  phase 0 (request: only the mask part of the action is read; the answer comes back as
  the next observation with reward 0 and phase flag 1), then phase 1 (act: only the
  move part is read; the env steps).  An episode of H env steps is 2H wrapper steps.
  Learners that drive the core directly call :meth:`CommCore.request` and
  :meth:`CommCore.act`.
- ``"next_step"``: the requests made with the action at t are answered with the
  neighbours' o_t, delivered in the observation of t + 1 (one step of latency, one
  wrapper step per env step).

Bandwidth: ``info["messages"]`` ``(B, N)`` counts the messages each agent received for
the step's decision (``"next_step"``: requested at this step) and
``info["messages_total"]`` ``(B,)`` their sum; ``message_cost`` times an agent's count is
subtracted from that agent's reward at the same step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

import metaenvs
from meta_wrappers import _comm_kernels as ck
from metaenvs.config import EnvConfig, check_choice, check_float, check_int
from metaenvs.core import BatchedCore, CoreState, NeighbourStructure, StepResult
from metaenvs.faces.parallel import BatchedParallelEnv
from metaenvs.faces.vector import BatchedVectorEnv

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

RULES = {
    "none": ck.RULE_NONE,
    "full": ck.RULE_FULL,
    "k_nearest": ck.RULE_K_NEAREST,
    "radius": ck.RULE_RADIUS,
}
TOPOLOGIES = ("learned", *RULES)
TIMINGS = ("same_step", "next_step")
#: a continuous request entry above this asks for the neighbour's observation
REQUEST_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class CommConfig(EnvConfig):
    """Keywords of the communication-topology wrapper."""

    topology: str | Rule = "learned"
    """``"learned"`` (requests are actions), ``"none"``, ``"full"``, ``"k_nearest"``,
    ``"radius"`` or a callable ``rule(obs, ids, rel) -> mask``."""
    timing: str = "same_step"
    """``"same_step"`` (request, receive, act within one env step) or ``"next_step"``."""
    k: int = 1
    """Neighbours requested by ``topology="k_nearest"``."""
    radius: float = 0.5
    """Distance within which ``topology="radius"`` requests."""
    message_cost: float = 0.0
    """Subtracted from an agent's reward per message it receives."""

    def __post_init__(self) -> None:
        if not callable(self.topology):
            check_choice("topology", self.topology, TOPOLOGIES)
        check_choice("timing", self.timing, TIMINGS)
        check_int("k", self.k, 1)
        check_float("radius", self.radius)
        check_float("message_cost", self.message_cost, strict=False)

    @property
    def learned(self) -> bool:
        return isinstance(self.topology, str) and self.topology == "learned"

    @property
    def two_phase(self) -> bool:
        """Learned requests answered in the same env step: request and act are two steps."""
        return self.learned and self.timing == "same_step"


@dataclasses.dataclass
class CommState(CoreState):
    """State of B wrapped copies: the inner state plus the messages.

    ``t`` and ``rng`` are the inner state's arrays (env steps, per-copy streams).

    Attributes
    ----------
    inner : CoreState
        The wrapped game's state.
    phase : np.ndarray
        ``(B,)`` int64, 0 = request, 1 = act (two-phase mode; always 0 otherwise).
    mask : np.ndarray
        ``(B, N, d)`` bool, the last requests.
    sent : np.ndarray
        ``(B, N, d, D)`` float32, the last answered observations.
    sent_ids : np.ndarray
        ``(B, N, d)`` int64, their senders (-1: no message).
    messages : np.ndarray
        ``(B, N)`` int64, messages of the last answer per agent.
    """

    inner: CoreState
    phase: np.ndarray
    mask: np.ndarray
    sent: np.ndarray
    sent_ids: np.ndarray
    messages: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "inner"}
        return own | {f"inner.{k}": v for k, v in self.inner.arrays().items()}

    def copy(self) -> CommState:
        inner = self.inner.copy()
        own = {
            f.name: getattr(self, f.name).copy()
            for f in dataclasses.fields(self)
            if f.name not in ("inner", "t", "rng")
        }
        return CommState(inner=inner, t=inner.t, rng=inner.rng, **own)


class CommCore(BatchedCore):
    """A core whose agents choose (or are given) whom they receive observations from.

    Parameters
    ----------
    inner : BatchedCore
        A core that declares a :class:`~metaenvs.core.NeighbourStructure`, with a 1-D
        observation space.
    config : CommConfig
        Topology, timing, rule parameters and message cost.

    Raises
    ------
    TypeError
        If ``inner`` is not a :class:`~metaenvs.core.NeighbourStructure`.
    ValueError
        If its observations are not 1-D.

    Examples
    --------
    >>> from meta_wrappers.comm import make_comm_core
    >>> core = make_comm_core("navigation_N3_l3", topology="learned")
    >>> state = core.reset(batch=4, seed=0)
    >>> core.observe(state).shape  # D=16, d=2: 16 + 2*16 + 2 + 2 + phase
    (4, 3, 53)
    """

    config_cls = CommConfig
    config: CommConfig

    def __init__(self, inner: BatchedCore, config: CommConfig) -> None:
        super().__init__(config)
        if not isinstance(inner, NeighbourStructure):
            raise TypeError(
                f"{type(inner).__name__} declares no neighbour structure: the communication "
                "wrapper needs a core that implements the metaenvs.core.NeighbourStructure "
                "protocol (neighbour_slots and neighbours_in)"
            )
        if len(inner.observation_space.shape) != 1:
            raise ValueError("the communication wrapper needs 1-D observations")
        self.inner = inner
        self.d = int(inner.neighbour_slots)
        self.obs_size = int(inner.observation_space.shape[0])
        self.observation_space = self._wrapped_observation_space()
        self.action_space = self._wrapped_action_space()
        self.reward_description = inner.reward_description + (
            f" Minus {config.message_cost} per message received." if config.message_cost else ""
        )

    # -- description -------------------------------------------------------------------
    @property
    def threads(self) -> int | None:
        """The wrapped core's threads (:attr:`metaenvs.core.BatchedCore.threads`): the
        wrapped core is what steps the copies."""
        return self.inner.threads

    @threads.setter
    def threads(self, value: int | None) -> None:
        self.inner.threads = value

    @property
    def agent_names(self) -> tuple[str, ...]:
        return self.inner.agent_names

    def describe(self) -> dict[str, str]:
        cfg = self.config
        topology = cfg.topology if isinstance(cfg.topology, str) else "user rule"
        return super().describe() | {"topology": topology, "timing": cfg.timing}

    def _wrapped_observation_space(self) -> spaces.Box:
        d, n_d, n = self.d, self.obs_size, self.n_agents
        inner = self.inner.observation_space
        low = np.concatenate(
            [inner.low, np.tile(np.minimum(inner.low, 0.0), d), np.zeros(d), np.full(d, -1.0)]
        )
        high = np.concatenate(
            [inner.high, np.tile(np.maximum(inner.high, 0.0), d), np.ones(d), np.full(d, n - 1.0)]
        )
        if self.config.two_phase:
            low, high = np.append(low, 0.0), np.append(high, 1.0)
        assert low.shape == (n_d * (d + 1) + 2 * d + self.config.two_phase,)
        return spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    def _wrapped_action_space(self) -> spaces.Space:
        inner = self.inner.action_space
        if not self.config.learned:
            return inner
        if isinstance(inner, spaces.Discrete):
            nvec = np.array([inner.n] + [2] * self.d)
            start = np.array([inner.start] + [0] * self.d)
            return spaces.MultiDiscrete(nvec, dtype=np.int64, start=start)
        if isinstance(inner, spaces.Box) and len(inner.shape) == 1:
            low = np.concatenate([inner.low, np.zeros(self.d, dtype=inner.dtype)])
            high = np.concatenate([inner.high, np.ones(self.d, dtype=inner.dtype)])
            return spaces.Box(low, high, dtype=inner.dtype)
        raise TypeError(f"cannot add requests to a {inner} action space")

    def split_observation(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Views of wrapped observations ``(..., F)`` by part.

        Returns
        -------
        dict
            ``own (..., D)``, ``received (..., d, D)``, ``valid (..., d)``,
            ``ids (..., d)`` and, in the two-phase mode, ``phase (...)``.
        """
        d, n_d = self.d, self.obs_size
        lead = obs.shape[:-1]
        parts = {
            "own": obs[..., :n_d],
            "received": obs[..., n_d : n_d * (d + 1)].reshape(*lead, d, n_d),
            "valid": obs[..., n_d * (d + 1) : n_d * (d + 1) + d],
            "ids": obs[..., n_d * (d + 1) + d : n_d * (d + 1) + 2 * d],
        }
        if self.config.two_phase:
            parts["phase"] = obs[..., -1]
        return parts

    # -- state -------------------------------------------------------------------------
    def _init_state(self, batch: int, rng: np.ndarray) -> CommState:
        inner = self.inner.start(batch, rng)
        n, d = self.n_agents, self.d
        state = CommState(
            t=inner.t,
            rng=inner.rng,
            inner=inner,
            phase=np.zeros(batch, dtype=np.int64),
            mask=np.zeros((batch, n, d), dtype=np.bool_),
            sent=np.zeros((batch, n, d, self.obs_size), dtype=np.float32),
            sent_ids=np.full((batch, n, d), -1, dtype=np.int64),
            messages=np.zeros((batch, n), dtype=np.int64),
            **self.output_buffers(batch),
        )
        first = self.inner.observe(inner)
        if self.config.learned:  # nothing requested yet
            self._observe(state, first, np.zeros(batch, dtype=np.bool_), state.obs)
        else:
            self._answer_rule(state, first, state.obs, np.ones(batch, dtype=np.bool_))
        return state

    # -- dynamics ----------------------------------------------------------------------
    def request(self, state: CommState, mask: Any) -> np.ndarray:
        """Phase 0 of the two-phase mode: send requests ``mask (B, N, d)``, get answers.

        Returns the observations with the received block filled (phase flag 1); call
        :meth:`act` next.  The cost of the messages is in ``state.reward``.
        """
        if not self.config.two_phase:
            raise RuntimeError("request() is the first phase of topology='learned', same_step")
        mask = self._check_mask(mask, state.batch)
        if (state.phase != 0).any():
            raise RuntimeError("request() called twice: call act() for the pending requests")
        self._request(state, mask)
        return state.obs

    def act(self, state: CommState, actions: Any) -> StepResult:
        """Phase 1 of the two-phase mode: the inner actions ``(B, N, ...)``; the env steps."""
        if not self.config.two_phase:
            raise RuntimeError("act() is the second phase of topology='learned', same_step")
        if (state.phase != 1).any():
            raise RuntimeError("act() called before request()")
        # C-contiguous, as step() hands them on: the kernels' cached signatures
        actions = np.ascontiguousarray(self.inner.validate_actions(state.batch, actions))
        return self._act(state, actions)

    def _step(self, state: CommState, actions: np.ndarray) -> StepResult:
        cfg = self.config
        if cfg.two_phase:
            if state.phase[0] == 0:
                self._request(state, self._mask_part(actions))
                return self._result(state)
            return self._act(state, self._move_part(actions))
        if cfg.learned:
            mask = self._mask_part(actions)
            moves = self._move_part(actions)
        else:
            mask = state.mask
            moves = actions
        if cfg.timing == "next_step":
            if not cfg.learned:
                self._rule_mask(self.inner.observe(state.inner), mask)
            ck.send(self.inner.observe(state.inner), self._ids(state), mask, state.sent,
                    state.sent_ids, state.messages)  # fmt: skip
            cost = state.messages.copy()
            result = self.inner.step_validated(state.inner, moves)
            done = result.terminated | result.truncated
            self._observe(state, result.obs, ~done, state.obs)
            self._observe(state, result.final_obs, done, state.final_obs)
        else:  # a rule answers every new observation at once
            cost = state.messages.copy()  # the messages of the observation acted on
            result = self.inner.step_validated(state.inner, moves)
            done = result.terminated | result.truncated
            if done.any():
                self._answer_rule(state, result.final_obs, state.final_obs, done)
            self._answer_rule(state, result.obs, state.obs, np.ones(state.batch, dtype=np.bool_))
        return self._finish(state, result, cost)

    def _request(self, state: CommState, mask: np.ndarray) -> None:
        state.mask[:] = mask
        inner_obs = self.inner.observe(state.inner)
        ck.send(inner_obs, self._ids(state), mask, state.sent, state.sent_ids, state.messages)
        self._observe(state, inner_obs, np.ones(state.batch, dtype=np.bool_), state.obs, phase=1)
        np.multiply(state.messages, -self.config.message_cost, out=state.reward, casting="unsafe")
        state.terminated[:] = False
        state.truncated[:] = False
        state.phase[:] = 1

    def _act(self, state: CommState, moves: np.ndarray) -> StepResult:
        result = self.inner.step_validated(state.inner, moves)
        nothing = np.zeros(state.batch, dtype=np.bool_)
        self._observe(state, result.obs, nothing, state.obs, phase=0)
        self._observe(state, result.final_obs, nothing, state.final_obs, phase=0)
        state.phase[:] = 0
        return self._finish(state, result, np.zeros_like(state.messages))

    def _finish(self, state: CommState, result: StepResult, cost: np.ndarray) -> StepResult:
        state.reward[:] = result.reward - self.config.message_cost * cost
        state.terminated[:] = result.terminated
        state.truncated[:] = result.truncated
        info = dict(result.info) | {"messages": cost, "messages_total": cost.sum(axis=1)}
        return StepResult(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, info,
            result.final_state, result.final_mask,  # the inner step's (messages are no state)
        )  # fmt: skip

    def _result(self, state: CommState) -> StepResult:
        messages = state.messages.copy()
        info = {"messages": messages, "messages_total": messages.sum(axis=1)}
        return StepResult(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, info
        )

    # -- pieces ------------------------------------------------------------------------
    def _ids(self, state: CommState) -> np.ndarray:
        return self.inner.neighbours_in(self.inner.observe(state.inner))[0]

    def _observe(
        self, state: CommState, inner_obs: np.ndarray, keep: np.ndarray, out: np.ndarray,
        phase: int = 0,
    ) -> None:  # fmt: skip
        phase = phase if self.config.two_phase else -1
        ck.observe(inner_obs, state.sent, state.sent_ids, keep, phase, out)

    def _answer_rule(
        self, state: CommState, inner_obs: np.ndarray, out: np.ndarray, keep: np.ndarray
    ) -> None:
        """Same-step rule: requests from ``inner_obs``, answered from it, written to ``out``.

        The requests and answers land in the state's message buffers (the last call, on the
        live observation, leaves them there); copies not in ``keep`` get no answers.
        """
        self._rule_mask(inner_obs, state.mask)
        ids = self.inner.neighbours_in(inner_obs)[0]
        ck.send(inner_obs, ids, state.mask, state.sent, state.sent_ids, state.messages)
        ck.observe(inner_obs, state.sent, state.sent_ids, keep, -1, out)

    def _rule_mask(self, inner_obs: np.ndarray, out: np.ndarray) -> None:
        """Write the fixed rule's requests for ``inner_obs`` into ``out (B, N, d)``."""
        ids, rel = self.inner.neighbours_in(inner_obs)
        topology = self.config.topology
        if callable(topology):
            mask = np.asarray(topology(inner_obs, ids, rel))
            if mask.shape != out.shape or mask.dtype != np.bool_:
                raise ValueError(
                    f"the topology rule must return a bool mask of shape {out.shape}, "
                    f"got {mask.dtype} {mask.shape}"
                )
            out[:] = mask
        else:
            cfg = self.config
            ck.select_by_rule(ids, rel, RULES[topology], cfg.k, float(cfg.radius), out)

    def _mask_part(self, actions: np.ndarray) -> np.ndarray:
        requests = actions[..., -self.d :]
        if isinstance(self.action_space, spaces.Box):
            return requests > REQUEST_THRESHOLD
        return requests.astype(np.bool_)

    def _move_part(self, actions: np.ndarray) -> np.ndarray:
        if isinstance(self.action_space, spaces.Box):
            return np.ascontiguousarray(actions[..., : -self.d])
        return np.ascontiguousarray(actions[..., 0])

    def _check_mask(self, mask: Any, batch: int) -> np.ndarray:
        arr = np.asarray(mask)
        expected = (batch, self.n_agents, self.d)
        if arr.shape != expected:
            raise ValueError(f"request mask must have shape {expected} (B, N, d), got {arr.shape}")
        if arr.dtype != np.bool_:
            if not np.issubdtype(arr.dtype, np.integer) or ((arr != 0) & (arr != 1)).any():
                raise TypeError(f"request mask must be bool or 0/1 integers, got {arr.dtype}")
        return arr.astype(np.bool_)

    # -- the rest of the core protocol -------------------------------------------------
    def global_state(self, state: CommState) -> np.ndarray:
        return self.inner.global_state(state.inner)

    @property
    def global_state_space(self) -> spaces.Box:
        return self.inner.global_state_space

    def final_global_state(self, state: CommState) -> np.ndarray:
        """The inner core's final global states (the messages are not part of the state)."""
        return self.inner.final_global_state(state.inner)

    def final_action_mask(self, state: CommState) -> np.ndarray | None:
        """The inner core's final masks (None: the wrapped cores have no masks)."""
        return self.inner.final_action_mask(state.inner)

    def render_copy(self, state: CommState, index: int = 0) -> np.ndarray:
        """The inner picture with the last answered requests drawn as links."""
        slots = np.argwhere(state.sent_ids[index] >= 0)
        links = np.stack([slots[:, 0], state.sent_ids[index][tuple(slots.T)]], axis=1)
        try:
            return self.inner.render_copy(state.inner, index, links=links)
        except TypeError:  # an inner core without link drawing
            return self.inner.render_copy(state.inner, index)


def make_comm_core(
    env_id: str, *, env_kwargs: dict | None = None, threads: int | None = None, **kwargs: Any
) -> CommCore:
    """The batched core of ``env_id`` wrapped with a communication topology.

    Parameters
    ----------
    env_id : str
        A registered id whose core has a neighbour structure (every particle task).
    env_kwargs : dict, optional
        Keywords of the game (e.g. ``continuous_actions=True``).
    threads : int, optional
        Threads of the game's core (see :func:`metaenvs.make_core`); every ``make_comm_*``
        takes it.
    **kwargs
        Keywords of :class:`CommConfig` (``topology``, ``timing``, ``k``, ``radius``,
        ``message_cost``); unknown ones raise ``TypeError``.
    """
    return CommCore(
        metaenvs.make_core(env_id, threads=threads, **(env_kwargs or {})),
        CommConfig.from_kwargs(**kwargs),
    )


def make_comm_env(
    env_id: str, *, render_mode: str | None = None, env_kwargs: dict | None = None, **kwargs: Any
) -> BatchedParallelEnv:
    """A PettingZoo ``ParallelEnv`` of ``env_id`` with a communication topology."""
    core = make_comm_core(env_id, env_kwargs=env_kwargs, **kwargs)
    return BatchedParallelEnv(core, render_mode=render_mode, name=f"{env_id}+comm")


def make_comm_vec(
    env_id: str, num_envs: int, *, env_kwargs: dict | None = None, **kwargs: Any
) -> BatchedVectorEnv:
    """A Gymnasium ``VectorEnv`` of ``num_envs`` copies with a communication topology."""
    return BatchedVectorEnv(make_comm_core(env_id, env_kwargs=env_kwargs, **kwargs), num_envs)
