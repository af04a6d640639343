"""DiMA-PG: one central policy for many agents by distributed policy gradients.

Paper: dima-pg-distributed, sections 3-4 (equations 6-14, Algorithm 1), section 5 and
appendix C.  One training iteration of ``method="dimapg"`` is Algorithm 1, for every
sampled agent at once on the batched core:

1. Sample ``agents_per_update`` agents n (default: all of them).
2. Collect tau_n^theta (equation 6): ``trajectories`` episodes per sampled agent in
   which every agent acts with the central policy theta of its population.
3. Adapt theta to theta_n by k REINFORCE steps (equations 9-10):
   ``theta_n^[j+1] = theta_n^[j] + alpha grad L_n``, the gradient estimated on fresh
   episodes tau_n^{theta, theta_n^[j]} where agent n acts with theta_n^[j] and every
   other agent with theta (the frozen-peers case; ``theta_n^[0] = theta``, so the first
   batch is tau_n^theta).  Advantages: discounted rewards-to-go less a linear feature
   baseline fitted per agent.
4. Collect tau_n^{theta, theta_n} (equation 8) with the adapted theta_n.
5. Central step on the mean over the sampled agents n of equation 14's surrogate
   (below).  ``central_step="trpo"`` (the paper's choice for Cooperative Navigation and
   the default on ``navigation_*`` ids): a TRPO step with epsilon as the maximum mean KL
   between the old and new central policy (:meth:`DimaLearner.trpo_step`).
   ``central_step="gradient"`` (the paper's REINFORCE for predator-prey and Survival,
   the default there): equation 11, ``theta <- theta + epsilon * grad``, or an Adam step
   of size epsilon (``central_optimizer="adam"``).  The surrogate of agent n is

   ``L_n = E[ R_n(tau^{theta,theta_n}) * log pi_{theta_n(theta)}(tau^{theta,theta_n})
   + R_n(tau^{theta,theta_n}) * log pi_theta(tau_n^theta) ]``.

   These are the two terms of equation 14, and only these (the estimator drops two
   terms of the true gradient of equation 13, see below):

   - term 1, agent n's log-probabilities of its actions in tau^{theta,theta_n} under
     theta_n, differentiated through the k inner steps (theta_n is a function of theta:
     the inner gradients are taken with ``create_graph``, so the Hessian-vector products
     of MAML are in it; ``first_order=True`` drops them, the paper's "approximations for
     the second derivative" of section 6).  The inner batches are data: their sampling
     distribution's dependence on theta is not differentiated (the derivation of the
     appendix integrates those terms out, equations 19-21);
   - term 2, the score of agent n's actions in tau_n^theta (the batch of the first inner
     step, sampled with theta) weighted by agent n's return after adaptation, times
     ``term2_weight`` (1: equation 14; 0 drops it, as first-order MAML-TRPO does).

   The other agents' log-probabilities (they act with theta in every batch) are in
   neither term, although tau_n^theta's probability (equation 6) includes a_{-n}:
   equation 14 treats them as part of agent n's environment.  With k = 1 its
   expectation is the exact gradient of equation 13 with the other agents' action
   probabilities held fixed (``tests/baselines/test_dimapg.py`` checks this on an
   enumerable game); with k > 1 the scores of inner batches 2..k (sampled with
   theta_n^[j], a function of theta) are dropped as well, a second bias.

   Each population (predators, prey: agents whose names differ only by their index, see
   ``populations``) has its own theta and is updated from its own sampled agents.

The estimator (:func:`inner_step`, :func:`dimapg_objective`) is written in two scales.
``normalize=False`` is the plain Monte-Carlo estimate of equations 10 and 14 (term 1 a
mean over trajectories of per-trajectory sums of ``log pi * A``, A the rewards-to-go less
the linear baseline; term 2 the score of the whole inner batch times the mean return).
``normalize=True`` (default): the inner steps (equation 10) average over time steps and
standardise the advantages per agent (rllab's VPG); the central surrogate is the same
plain estimate of equation 14 with term 2's weight centred on its population's running
mean return (over earlier iterations: a baseline independent of tau_n^theta, so the
expectation is unchanged), and both terms divided by the same factor ``T * sigma``, T the
horizon and sigma the population's running spread of the post-adaptation returns over
earlier iterations.  So from a population's second iteration on the central gradient
is equation 14's estimate with that baseline, times a positive constant per population;
at the first iteration the mean and spread are that iteration's own.  For TRPO the
factor does not matter (the step is scaled to the KL); for the gradient step it sets the
step's length.

Other methods (:data:`METHODS`), each playing the same env steps per iteration as
``dimapg`` (``(k + 1) * trajectories`` episodes per sampled agent):

- ``finetune``: theta trained by REINFORCE on every agent's trajectories (all agents act
  with theta; no meta-objective), ``k + 1`` steps per iteration; evaluated as theta and
  after the same k-step adaptation (the paper's "fine tune" row of Table 1).
- ``independent``: one policy per agent, each trained by REINFORCE on its own
  trajectories (independent learners).
- ``kitchen_sink``: one centralised actor-critic per population over the joint
  observation (the global state) with a product of per-agent softmax heads, trained as
  A2C on Monte-Carlo returns of the minimum reward over the population's agents
  (section 5.2.1: "they are setup to maximize the minimum reward across all agents").

Agents that die (``core.agents_can_die``) are masked out of every loss from the step
they die on (their slot stays, with zero observation and reward).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces

import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)
import metaenvs
from baselines.dimapg.nets import (
    Params,
    action_log_probs,
    detached,
    entropy,
    init_mlp,
    masked_log_softmax,
    mlp,
    select,
)
from baselines.peers.estimators import discounted_returns, fit_linear_baseline
from metaenvs.core import BatchedCore

METHODS = ("dimapg", "finetune", "independent", "kitchen_sink")
"""Values of ``DimaArgs.method``, in the order of the figures and tables."""
ADAPTING = ("dimapg", "finetune", "independent")
"""Methods whose policies are evaluated after the k-step adaptation as well."""
POPULATIONS = ("names", "one")
BASELINES = ("linear", "none")
OPTIMIZERS = ("sgd", "adam")
CENTRAL_STEPS = ("trpo", "gradient")
"""First ridge term of the linear baseline's normal equations (grows tenfold on failure)."""
RUNNING_DECAY = 0.9
"""Decay of the running mean and scale of the returns after adaptation (``normalize``)."""


@dataclasses.dataclass
class DimaArgs:
    """Settings of a DiMA-PG run (defaults: the paper's appendix C.2)."""

    env: str = "navigation_dimapg_N3"
    """Registered env id (every agent with the same observation and Discrete action space)."""
    method: str = "dimapg"
    """One of ``dimapg``, ``finetune``, ``independent``, ``kitchen_sink``."""
    seed: int = 0
    """Seed of the initial parameters, the agent draws and every rollout."""
    iterations: int = 200
    """Budget of a run: training iterations (central updates of Algorithm 1)."""
    eval_every: int = 10
    """Iterations between evaluations (at every multiple, and at the budget)."""
    hidden: tuple[int, ...] = (100, 100)
    """Hidden ReLU layers of the policy (the paper: two of 100 units)."""
    inner_steps: int = 3
    """k, REINFORCE steps that adapt theta to theta_n (the paper: 3)."""
    inner_lr: float = 0.01
    """alpha, step size of the inner (agent-specific) updates (the paper: 0.01)."""
    central_lr: float = 0.05
    """epsilon (the paper: 0.05): with ``central_step="trpo"`` the maximum mean KL
    divergence between the old and the new central policy (TRPO's step size); with
    ``"gradient"`` the step size of the central update of theta.  The same for the
    ``finetune`` and ``independent`` updates (each a TRPO step, or a gradient step)."""
    central_step: str | None = None
    """``trpo`` (natural gradient by conjugate gradient, step scaled to KL epsilon,
    backtracking line search) or ``gradient`` (equation 11's plain step, see
    ``central_optimizer``).  None: the paper's choice per task (section 5.2), ``trpo`` for
    ``navigation_*`` ids with ``method="dimapg"``, ``gradient`` otherwise.  ``finetune``
    and ``independent`` take either (each of their k + 1 updates is then one such step);
    ``kitchen_sink`` only ``gradient`` (its A2C steps with Adam, ``ks_lr``)."""
    central_optimizer: str = "sgd"
    """``central_step="gradient"`` only: ``sgd`` is the plain gradient step of equation
    11; ``adam`` Adam with step size epsilon (rllab's VPG steps with Adam)."""
    cg_iters: int = 10
    """TRPO: conjugate-gradient iterations (rllab: 10)."""
    cg_damping: float = 1e-5
    """TRPO: ``damping * x`` added to the Fisher-vector product (rllab's reg_coeff: 1e-5)."""
    backtrack_ratio: float = 0.8
    """TRPO: line-search shrink factor of the step (rllab: 0.8)."""
    max_backtracks: int = 15
    """TRPO: line-search candidates at most before the step is rejected (rllab: 15)."""
    fisher_subsample: int = 1
    """TRPO: the Fisher-vector products use every n-th state of the batch (rllab: 1, all
    of them; OpenAI Baselines' TRPO: 5); the line search's KL uses all.  Their cost grows
    with the states, which are many for ``finetune``: k + 1 TRPO steps per iteration on
    every agent's episodes."""
    trajectories: int = 25
    """Episodes per sampled agent for each inner step and for the central step (the paper: 25)."""
    agents_per_update: int | None = None
    """Agents sampled per iteration, without replacement (None: every agent)."""
    populations: str = "names"
    """Who shares a central policy: ``names`` (agents whose names differ only by their
    trailing index: predators and prey apart) or ``one`` (every agent)."""
    discount: float = 0.99
    """Discount of the returns (the paper does not give one; rllab's default)."""
    baseline: str = "linear"
    """``linear`` (rllab's linear feature baseline, fitted per agent and batch) or ``none``."""
    normalize: bool = True
    """Average over time steps and standardise advantages (rllab); False: the plain
    Monte-Carlo estimate of equations 10 and 14."""
    first_order: bool = False
    """Do not differentiate through the inner steps (theta_n's Jacobian taken as identity)."""
    term2_weight: float = 1.0
    """The weight of equation 14's second term (the score of agent n's actions in
    tau_n^theta times its post-adaptation return), in the central gradient and in the
    TRPO line search's surrogate.  1 is the paper's estimator; 0 drops the term, as
    first-order MAML-TRPO implementations do; any other value is a deviation from
    equation 14."""
    eval_episodes: int = 100
    """Episodes of each evaluation (the paper's Table 1: 100)."""
    eval_adapted: bool = True
    """Also evaluate after adapting every agent by k steps (costs N * trajectories * k
    episodes; turn off for very many agents)."""
    max_steps: int | None = None
    """Steps per episode at most (None: the env's horizon)."""
    ks_hidden: tuple[int, ...] = (256, 256)
    """kitchen_sink: hidden ELU layers of the centralised actor-critic."""
    ks_lr: float = 1e-4
    """kitchen_sink: Adam learning rate (the paper's A3C: 1e-4)."""
    ks_entropy: float = 0.01
    """kitchen_sink: entropy bonus weight."""
    ks_value_weight: float = 0.5
    """kitchen_sink: weight of the value loss."""

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        self.ks_hidden = tuple(self.ks_hidden)
        _choice("method", self.method, METHODS)
        _choice("populations", self.populations, POPULATIONS)
        _choice("baseline", self.baseline, BASELINES)
        _choice("central_optimizer", self.central_optimizer, OPTIMIZERS)
        if self.central_step is None:
            paper = self.method == "dimapg" and self.env.startswith("navigation")
            self.central_step = "trpo" if paper else "gradient"
        _choice("central_step", self.central_step, CENTRAL_STEPS)
        if self.method == "kitchen_sink" and self.central_step != "gradient":
            raise ValueError(
                "central_step: kitchen_sink trains by A2C with Adam (ks_lr); "
                f"central_step={self.central_step!r} applies to the other methods only"
            )
        if not 0.0 < self.backtrack_ratio < 1.0:
            raise ValueError(f"backtrack_ratio must be in (0, 1), got {self.backtrack_ratio}")
        if not self.cg_damping >= 0:
            raise ValueError(f"cg_damping must be >= 0, got {self.cg_damping}")
        for name in ("inner_lr", "central_lr", "ks_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not (math.isfinite(self.term2_weight) and self.term2_weight >= 0):
            raise ValueError(f"term2_weight must be finite and >= 0, got {self.term2_weight}")
        for name in ("ks_entropy", "ks_value_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {self.discount}")
        if self.inner_steps < 0 or (self.method == "dimapg" and self.inner_steps < 1):
            raise ValueError(
                f"inner_steps must be >= 1 for dimapg (tau^theta is the first inner batch) "
                f"and >= 0 otherwise, got {self.inner_steps}"
            )
        for name in ("trajectories", "eval_episodes", "eval_every", "cg_iters", "max_backtracks",
                     "fisher_subsample"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        for name in ("agents_per_update", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        for name in ("hidden", "ks_hidden"):
            if any(int(h) < 1 for h in getattr(self, name)):
                raise ValueError(
                    f"{name} must hold positive layer widths, got {getattr(self, name)}"
                )
        try:
            metaenvs.spec(self.env)
        except ValueError as err:
            raise ValueError(f"env: {err}") from None


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


# -- populations ---------------------------------------------------------------------
def population_of(names: tuple[str, ...], how: str) -> tuple[list[str], np.ndarray]:
    """Populations (names, in order of first appearance) and each agent's population index.

    ``how="names"``: an agent's population is its name less a trailing ``_<index>``
    (``predator_2`` -> ``predator``); ``how="one"``: a single population ``all``.
    """
    if how == "one":
        return ["all"], np.zeros(len(names), dtype=np.int64)
    prefixes = [re.sub(r"_?\d+$", "", name) or name for name in names]
    pops = list(dict.fromkeys(prefixes))
    return pops, np.array([pops.index(p) for p in prefixes], dtype=np.int64)


def check_core(core: BatchedCore, env: str) -> None:
    """Raise a ``ValueError`` naming ``env`` if its core is not one these learners play."""
    if not isinstance(core.action_space, spaces.Discrete):
        raise ValueError(
            f"env: {env!r} has action space {core.action_space}; the DiMA-PG learners "
            "need Discrete actions"
        )
    if len(core.observation_space.shape) != 1:
        raise ValueError(
            f"env: {env!r} has observations of shape {core.observation_space.shape}; the "
            "DiMA-PG learners need flat vectors"
        )


# -- random numbers: a pure function of (seed, agent, copy, step) ---------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wraps around, as intended)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def copy_keys(seed: int, agents: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """``(B,)`` uint64 key of each env copy from the rollout seed, its agent and its index.

    A copy's env seed and action noise depend on these three only, so an agent's
    episodes are the same whichever other agents are sampled with it.
    """
    base = _mix(np.full(len(agents), seed % 2**64, dtype=np.uint64))
    return _mix(_mix(base ^ agents.astype(np.uint64)) ^ copies.astype(np.uint64))


def uniforms(keys: np.ndarray, step: int, n_agents: int) -> np.ndarray:
    """``(B, N)`` uniforms in [0, 1) for the action draws of step ``step``."""
    counter = np.uint64(step * n_agents) + np.arange(n_agents, dtype=np.uint64)
    bits = _mix(keys[:, None] ^ _mix(counter)[None, :]) >> np.uint64(11)
    return bits.astype(np.float64) * 2.0**-53


def derive_seed(*parts: int) -> int:
    """A non-negative 63-bit seed from a run seed and counters (distinct per tuple)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)


def sample_actions(logits: torch.Tensor, u: np.ndarray, mask: torch.Tensor | None) -> torch.Tensor:
    """Inverse-CDF draws from softmax(``logits``) ``(B, N, A)`` with the uniforms ``u``
    ``(B, N)``; a masked action has probability 0 and is never drawn."""
    probs = masked_log_softmax(logits.double(), mask).exp()
    cdf = probs.cumsum(-1)
    cdf = cdf / cdf[..., -1:]
    u_t = torch.from_numpy(u).unsqueeze(-1)
    return torch.searchsorted(cdf, u_t, right=True).squeeze(-1).clamp_(max=logits.shape[-1] - 1)


# -- trajectories --------------------------------------------------------------------
class Trajectories(NamedTuple):
    """One batched rollout: B copies, T steps, one episode per copy.

    ``record="focal"`` keeps the observations, actions and masks of one agent per copy
    (its focal agent); ``record="all"`` of every agent.
    """

    obs: torch.Tensor  # (B, T, D) focal or (B, T, N, D) all, float32
    actions: torch.Tensor  # (B, T) or (B, T, N) int64
    masks: torch.Tensor | None  # (B, T, A) or (B, T, N, A) int8 action masks, or None
    rewards: torch.Tensor  # (B, T, N) float32, every agent (0 once its episode ended)
    alive: torch.Tensor  # (B, T, N) bool: the agent acted in its copy's episode at step t
    states: torch.Tensor | None  # (B, T, S) global states (kitchen sink), or None
    env_steps: int  # B * steps run
    episode_info: dict[str, torch.Tensor]  # (B,) float64 per core.episode_info key, at the end


class FocalBatch(NamedTuple):
    """What the estimator needs of S agents' C episodes each (leading axes ``(S, C)``)."""

    obs: torch.Tensor  # (S, C, T, D)
    actions: torch.Tensor  # (S, C, T) int64
    masks: torch.Tensor | None  # (S, C, T, A) or None
    valid: torch.Tensor  # (S, C, T) bool: agent alive and episode running
    advantages: torch.Tensor  # (S, C, T), 0 where not valid
    returns: torch.Tensor  # (S, C) discounted return of each episode
    episode_reward: torch.Tensor  # (S, C) undiscounted return of each episode


def episode_returns(traj: Trajectories) -> torch.Tensor:
    """``(B, N)`` undiscounted episode reward of every agent (what Table 1 reports)."""
    return traj.rewards.sum(1)


def returns_to_go(rewards: torch.Tensor, valid: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted rewards-to-go along the last axis T, invalid steps counted as 0."""
    return discounted_returns(rewards * valid, gamma)


def advantages(
    obs: torch.Tensor,
    rewards: torch.Tensor,
    valid: torch.Tensor,
    gamma: float,
    baseline: str,
    normalize: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages ``(P, C, T)`` (float32, 0 where not valid) and discounted returns ``(P, C)``.

    Rewards-to-go less the baseline, fitted per leading index P (per agent); with
    ``normalize`` centred and scaled over each agent's valid steps.
    """
    rtg = returns_to_go(rewards.double(), valid, gamma)
    adv = rtg - fit_linear_baseline(obs, rtg, valid) if baseline == "linear" else rtg
    if normalize:
        v = valid.double()
        count = v.sum((1, 2), keepdim=True).clamp(min=1.0)
        mean = (adv * v).sum((1, 2), keepdim=True) / count
        var = (((adv - mean) * v) ** 2).sum((1, 2), keepdim=True) / count
        adv = (adv - mean) / (var.sqrt() + 1e-8)
    return (adv * valid).float(), rtg[..., 0].float()


def log_probs(params: Params, batch: FocalBatch) -> torch.Tensor:
    """``(S, C, T)`` log-probabilities of the batch's actions under policies ``params`` (S)."""
    s, c, t, d = batch.obs.shape
    logits = mlp(params, batch.obs.reshape(s, c * t, d).to(params["w0"].dtype))
    masks = None if batch.masks is None else batch.masks.reshape(s, c * t, -1)
    return action_log_probs(logits, batch.actions.reshape(s, c * t), masks).reshape(s, c, t)


def surrogate(logp: torch.Tensor, batch: FocalBatch, normalize: bool) -> torch.Tensor:
    """``(S,)`` policy-gradient surrogate: its gradient is the REINFORCE estimate.

    ``normalize``: mean over each agent's valid steps of ``log pi * A``; otherwise the
    mean over its C episodes of ``sum_t log pi * A``.
    """
    terms = logp * batch.advantages.to(logp.dtype) * batch.valid
    if normalize:
        return terms.sum((1, 2)) / batch.valid.sum((1, 2)).clamp(min=1)
    return terms.sum((1, 2)) / batch.obs.shape[1]


def inner_step(
    phi: Params, batch: FocalBatch, alpha: float, normalize: bool, create_graph: bool
) -> Params:
    """Equation 10: ``theta_n^[j+1] = theta_n^[j] + alpha * grad L_n`` for S agents at once.

    ``phi`` holds the S agents' ``theta_n^[j]`` stacked (leading axis S); the gradient
    of the sum of their surrogates is each agent's own gradient (one backward pass).
    With ``create_graph`` the step stays differentiable in ``phi`` (second order).
    """
    objective = surrogate(log_probs(phi, batch), batch, normalize).sum()
    grads = torch.autograd.grad(objective, list(phi.values()), create_graph=create_graph)
    return {k: v + alpha * g for (k, v), g in zip(phi.items(), grads)}


def dimapg_objective(
    theta: Params,
    phi: Params,
    pre: FocalBatch,
    post: FocalBatch,
    weights: torch.Tensor,
    scale: torch.Tensor | None = None,
    old: tuple[torch.Tensor, torch.Tensor] | None = None,
    term2_weight: float = 1.0,
) -> torch.Tensor:
    """``(S,)`` surrogate whose gradient in theta is equation 14, per sampled agent.

    ``(term 1 + term2_weight * term 2) / scale`` with the plain Monte-Carlo terms

    - term 1: ``1/C sum_{c,t} log pi_{theta_n}(a | o) A`` over tau_n^{theta,theta_n}
      (the mean over its C episodes of the per-episode sum);
    - term 2: ``weight * sum_{c,t} log pi_theta(a | o)`` over tau_n^theta: the score of
      the whole first inner batch (theta_n depends on all C of its episodes).

    Parameters
    ----------
    theta : Params
        ``(S, ...)`` each sampled agent's central policy, with its graph to theta.
    phi : Params
        ``(S, ...)`` the adapted theta_n, with their graph to theta through the inner steps.
    pre : FocalBatch
        tau_n^theta (the first inner batch, every agent acting with theta).
    post : FocalBatch
        tau_n^{theta, theta_n}; its advantages enter term 1 as they are (for equation 14
        they must not be standardised per batch: :meth:`DimaLearner.focal_batch` with
        ``normalize=False``).
    weights : torch.Tensor
        ``(S,)`` the weight of the score of tau_n^theta: the return after adaptation,
        less a baseline that does not depend on tau_n^theta (or none).
    scale : torch.Tensor, optional
        ``(S,)`` positive divisor of both terms alike (None: 1).
    old : tuple of torch.Tensor, optional
        ``(post_logp, pre_logp)``, ``(S, C, T)`` log-probabilities under the policies
        the batches were scored with.  Given, ``log pi`` becomes the likelihood ratio
        ``pi / pi_old`` (TRPO's surrogate): the same gradient where the policies equal
        the old ones, and a value that measures a step's improvement.
    term2_weight : float
        Factor of term 2 (:attr:`DimaArgs.term2_weight`): 1 is equation 14; 0 leaves
        term 1 alone (term 2 is then not computed at all).
    """
    with_term2 = term2_weight != 0
    post_logp = log_probs(phi, post)
    pre_logp = log_probs(theta, pre) if with_term2 else None
    if old is not None:
        post_logp = torch.exp(post_logp - old[0])
        pre_logp = torch.exp(pre_logp - old[1]) if with_term2 else None
    adv = post.advantages.to(post_logp.dtype)
    out = (post_logp * adv * post.valid).sum((1, 2)) / post.obs.shape[1]  # term 1
    if with_term2:
        term2 = weights.to(pre_logp.dtype) * (pre_logp * pre.valid).sum((1, 2))
        out = out + (term2 if term2_weight == 1 else term2_weight * term2)
    return out if scale is None else out / scale.to(out.dtype)


def categorical_kl(old_logp: torch.Tensor, new_logp: torch.Tensor) -> torch.Tensor:
    """``KL(old || new)`` of categorical distributions given as log-probabilities (last
    axis); masked actions (``-inf`` in both) contribute 0."""
    terms = old_logp.exp() * (old_logp - new_logp)
    return torch.where(torch.isfinite(old_logp), terms, torch.zeros_like(terms)).sum(-1)


def conjugate_gradient(
    fvp: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iters: int,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Solve ``F x = b`` for each row of ``b`` ``(P, n)`` by ``iters`` conjugate-gradient steps.

    ``fvp(v)`` must act on each row alone (a block-diagonal F, one block per central
    policy), so the rows are P independent solves with their own step sizes; a row stops
    moving once its squared residual is below ``residual_tol`` (rllab's rule).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = (r * r).sum(1)
    for _ in range(iters):
        active = rr > residual_tol
        if not active.any():
            break
        z = fvp(p)
        pz = (p * z).sum(1)
        alpha = torch.where(active & (pz > 0), rr / pz.clamp(min=1e-30), torch.zeros_like(rr))
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * z
        rr_new = (r * r).sum(1)
        beta = torch.where(active, rr_new / rr.clamp(min=1e-30), torch.zeros_like(rr))
        p = torch.where(active[:, None], r + beta[:, None] * p, p)
        rr = torch.where(active, rr_new, rr)
    return x


def flat(params: Params | list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """``(P, n)``: each policy's parameters (leading axis P) as one row."""
    values = params.values() if isinstance(params, dict) else params
    return torch.cat([v.reshape(v.shape[0], -1) for v in values], 1)


def unflat(x: torch.Tensor, like: Params) -> Params:
    """Inverse of :func:`flat`: rows ``(P, n)`` back to tensors shaped as ``like``'s."""
    out, i = {}, 0
    for k, v in like.items():
        size = v[0].numel()
        out[k] = x[:, i : i + size].reshape(v.shape)
        i += size
    return out


def _concat_states(*batches: FocalBatch) -> FocalBatch:
    """The batches' states (obs, masks, valid) as one batch ``(S, 1, sum M, ...)``."""
    s = batches[0].obs.shape[0]
    obs = torch.cat([b.obs.reshape(s, -1, b.obs.shape[-1]) for b in batches], 1)
    valid = torch.cat([b.valid.reshape(s, -1) for b in batches], 1)
    masks = None
    if batches[0].masks is not None:
        masks = torch.cat([b.masks.reshape(s, -1, b.masks.shape[-1]) for b in batches], 1)
        masks = masks.unsqueeze(1)
    empty, per_episode = torch.zeros((s, 1, 0)), torch.zeros((s, 1))
    return FocalBatch(
        obs.unsqueeze(1), empty.long(), masks, valid.unsqueeze(1), empty, per_episode, per_episode
    )


def _every_nth_state(states: FocalBatch, n: int) -> FocalBatch:
    """Every ``n``-th state of a :func:`_concat_states` batch (``states`` itself for 1)."""
    if n == 1:
        return states
    masks = None if states.masks is None else states.masks[:, :, ::n]
    return states._replace(obs=states.obs[:, :, ::n], masks=masks, valid=states.valid[:, :, ::n])


# -- the learner ---------------------------------------------------------------------
class DimaLearner:
    """A learner of one of :data:`METHODS` on one env (see the module docstring).

    Parameters
    ----------
    args : DimaArgs
    """

    def __init__(self, args: DimaArgs) -> None:
        self.args = args
        self.core = core = metaenvs.make_core(args.env)
        check_core(core, args.env)
        horizon = getattr(core.config, "horizon", None)
        if args.max_steps is None and horizon is None:
            raise ValueError(f"max_steps: {args.env!r} has no horizon; give max_steps")
        self.steps = int(args.max_steps if args.max_steps is not None else horizon)
        self.n_agents = core.n_agents
        self.obs_dim = int(core.observation_space.shape[0])
        self.n_actions = int(core.action_space.n)
        self.population_names, pop = population_of(core.agent_names, args.populations)
        self.population = torch.from_numpy(pop)
        self.pop_slots = [
            torch.nonzero(self.population == g).squeeze(1)
            for g in range(len(self.population_names))
        ]
        gen = torch.Generator().manual_seed(args.seed)
        sizes = (self.obs_dim, *args.hidden, self.n_actions)
        if args.method == "independent":  # one policy per agent
            self.slot_policy = torch.arange(self.n_agents)
            n_policies = self.n_agents
        else:  # one central theta per population
            self.slot_policy = self.population.clone()
            n_policies = len(self.population_names)
        self.n_policies = n_policies  # rows of theta
        self.theta = {k: v.requires_grad_() for k, v in init_mlp(n_policies, sizes, gen).items()}
        optimizer = torch.optim.Adam if args.central_optimizer == "adam" else torch.optim.SGD
        self.optimizer = optimizer(self.theta.values(), lr=args.central_lr)
        self.ks: list[Params] = []
        if args.method == "kitchen_sink":
            state_dim = int(np.prod(core.global_state_space.shape))
            for slots in self.pop_slots:
                out = len(slots) * self.n_actions + 1  # joint logits and the value
                net = init_mlp(1, (state_dim, *args.ks_hidden, out), gen, out_scale=0.01)
                self.ks.append({k: v.requires_grad_() for k, v in net.items()})
            self.ks_optimizer = torch.optim.Adam(
                [v for net in self.ks for v in net.values()], lr=args.ks_lr
            )
        self.running_return = torch.full((len(self.population_names),), float("nan"))
        self.running_scale = torch.full((len(self.population_names),), float("nan"))
        self.iteration = 0
        self.episodes = 0
        self.env_steps = 0

    # -- acting ------------------------------------------------------------------------
    def central_logits(self, params: Params, per_agent: bool, obs: torch.Tensor) -> torch.Tensor:
        """``(B, N, A)`` logits of every slot: one policy per agent (``per_agent``, P = N),
        else the policy of the slot's population."""
        if per_agent:
            return mlp(params, obs.transpose(0, 1)).transpose(0, 1)
        b = obs.shape[0]
        if len(self.pop_slots) == 1:  # one population of every slot: no gather, no scatter
            x = obs.reshape(1, b * self.n_agents, self.obs_dim)
            return mlp(params, x).reshape(b, self.n_agents, self.n_actions)
        logits = obs.new_empty((b, self.n_agents, self.n_actions))
        for slots in self.pop_slots:
            x = obs[:, slots].reshape(1, b * len(slots), self.obs_dim)
            logits[:, slots] = mlp(select(params, self.slot_policy[slots[:1]]), x).reshape(
                b, len(slots), self.n_actions
            )
        return logits

    def play(
        self,
        logits_fn: Callable[[torch.Tensor, np.ndarray | None], torch.Tensor],
        keys: np.ndarray,
        focal_slot: torch.Tensor | None = None,
        states: bool = False,
    ) -> Trajectories:
        """One episode in each of ``len(keys)`` copies, each seeded by its key.

        Parameters
        ----------
        logits_fn : callable
            ``logits_fn(obs (B, N, D) tensor, global_state or None) -> (B, N, A)``.
        keys : np.ndarray
            ``(B,)`` uint64 keys (:func:`copy_keys`): env seed and action noise of each copy.
        focal_slot : torch.Tensor, optional
            ``(B,)`` the slot whose observations and actions are recorded per copy
            (default: every slot's).
        states : bool
            Record the global states too.
        """
        core, b = self.core, len(keys)
        state = core.reset(b, _mix(keys ^ np.uint64(0x5EED)))
        rows = torch.arange(b)
        done = np.zeros(b, dtype=bool)
        ending = {key: np.full(b, np.nan) for key in core.episode_info}
        obs_l, act_l, mask_l, rew_l, alive_l, state_l = [], [], [], [], [], []
        with torch.no_grad():
            for t in range(self.steps):
                obs = torch.from_numpy(np.asarray(core.observe(state), dtype=np.float32))
                alive_np = core.alive(state)
                alive = np.ones((b, self.n_agents), bool) if alive_np is None else alive_np.copy()
                alive &= ~done[:, None]
                mask_np = core.action_mask(state)
                mask = None if mask_np is None else torch.from_numpy(mask_np.copy())
                gs = np.asarray(core.global_state(state), dtype=np.float32) if states else None
                actions = sample_actions(logits_fn(obs, gs), uniforms(keys, t, self.n_agents), mask)
                if focal_slot is None:  # a copy: the core reuses its observation buffer
                    obs_l.append(obs.clone())
                    act_l.append(actions)
                    mask_l.append(mask)
                else:
                    obs_l.append(obs[rows, focal_slot])
                    act_l.append(actions[rows, focal_slot])
                    mask_l.append(None if mask is None else mask[rows, focal_slot])
                if gs is not None:
                    state_l.append(torch.from_numpy(gs.copy()))
                result = core.step(state, actions.numpy())
                rew_l.append(torch.from_numpy(result.reward * alive))
                alive_l.append(torch.from_numpy(alive))
                ended = (result.terminated | result.truncated) & ~done
                if t == self.steps - 1:  # the learner's horizon: every copy ends here
                    ended = ~done
                for key, values in ending.items():
                    values[ended] = result.info[key][ended]
                done |= ended
                if done.all():
                    break
        steps = len(obs_l)
        return Trajectories(
            obs=torch.stack(obs_l, 1),
            actions=torch.stack(act_l, 1),
            masks=None if mask_l[0] is None else torch.stack(mask_l, 1),
            rewards=torch.stack(rew_l, 1).float(),
            alive=torch.stack(alive_l, 1),
            states=torch.stack(state_l, 1) if states else None,
            env_steps=b * steps,
            episode_info={key: torch.from_numpy(v) for key, v in ending.items()},
        )

    def play_focal(self, phi: Params, agents: np.ndarray, seed: int) -> Trajectories:
        """tau_n^{theta, phi_n}: ``trajectories`` episodes per agent n of ``agents`` (S),
        agent n acting with ``phi[n]`` and every other agent with its central policy.

        Copies are laid out agent-major (copy ``s * C + c``), each keyed by
        ``(seed, agents[s], c)``.
        """
        c = self.args.trajectories
        s = len(agents)
        theta, focal = detached(self.theta), detached(phi)
        per_agent = self.args.method == "independent"
        slot = torch.from_numpy(np.repeat(agents, c))
        rows = torch.arange(s * c)

        def logits_fn(obs: torch.Tensor, _: Any) -> torch.Tensor:
            logits = self.central_logits(theta, per_agent, obs)
            x = obs[rows, slot].reshape(s, c, self.obs_dim)
            logits[rows, slot] = mlp(focal, x).reshape(s * c, self.n_actions)
            return logits

        keys = copy_keys(seed, np.repeat(agents, c), np.tile(np.arange(c), s))
        traj = self.play(logits_fn, keys, focal_slot=slot)
        self._count(traj)
        return traj

    def focal_batch(
        self, traj: Trajectories, agents: np.ndarray, normalize: bool | None = None
    ) -> FocalBatch:
        """The sampled agents' view of a :meth:`play_focal` rollout, with advantages
        (standardised per agent if ``normalize``, default ``args.normalize``)."""
        normalize = self.args.normalize if normalize is None else normalize
        s, c = len(agents), self.args.trajectories
        steps = traj.obs.shape[1]
        slot = torch.from_numpy(np.repeat(agents, c))
        rows = torch.arange(s * c)
        rewards = traj.rewards[rows, :, slot].reshape(s, c, steps)
        valid = traj.alive[rows, :, slot].reshape(s, c, steps)
        obs = traj.obs.reshape(s, c, steps, self.obs_dim)
        adv, ret = advantages(
            obs, rewards, valid, self.args.discount, self.args.baseline, normalize
        )
        masks = None if traj.masks is None else traj.masks.reshape(s, c, steps, -1)
        actions = traj.actions.reshape(s, c, steps)
        return FocalBatch(obs, actions, masks, valid, adv, ret, rewards.sum(-1))

    def all_agents_batch(self, traj: Trajectories) -> FocalBatch:
        """Every agent's view of a rollout recorded with ``focal_slot=None``: leading axes
        ``(N, B)`` (agent, episode), advantages fitted per agent."""
        obs = traj.obs.permute(2, 0, 1, 3)
        rewards = traj.rewards.permute(2, 0, 1)
        valid = traj.alive.permute(2, 0, 1)
        adv, ret = advantages(
            obs, rewards, valid, self.args.discount, self.args.baseline, self.args.normalize
        )
        masks = None if traj.masks is None else traj.masks.permute(2, 0, 1, 3)
        actions = traj.actions.permute(2, 0, 1)
        return FocalBatch(obs, actions, masks, valid, adv, ret, rewards.sum(-1))

    def _count(self, traj: Trajectories) -> None:
        self.env_steps += traj.env_steps
        self.episodes += int(traj.obs.shape[0])

    # -- Algorithm 1 -------------------------------------------------------------------
    def sample_agents(self) -> np.ndarray:
        """Line 2: ``agents_per_update`` agents without replacement (sorted), or all."""
        n, m = self.n_agents, self.args.agents_per_update
        if m is None or m >= n:
            return np.arange(n)
        rng = np.random.default_rng(derive_seed(self.args.seed, self.iteration, 1))
        return np.sort(rng.choice(n, size=m, replace=False))

    def adapt(
        self, agents: np.ndarray, seed: int, train: bool
    ) -> tuple[Params, list[FocalBatch], Params]:
        """Lines 3-5: collect tau_n^theta and adapt theta to theta_n by k inner steps,
        for every agent of ``agents`` in one batched rollout and one backward per step.

        Returns
        -------
        phi : Params
            ``(S, ...)`` the adapted theta_n (with ``train`` and second order: with their
            graph to theta).
        batches : list of FocalBatch
            The k inner batches; the first is tau_n^theta.
        theta0 : Params
            ``(S, ...)`` each agent's starting policy (its population's theta), with its
            graph to theta when ``train``.
        """
        index = self.slot_policy[torch.from_numpy(agents)]
        theta0 = select(self.theta, index)
        if not train:
            theta0 = {k: v.detach().clone().requires_grad_() for k, v in theta0.items()}
        create_graph = train and not self.args.first_order
        phi, batches = theta0, []
        for j in range(self.args.inner_steps):
            batch = self.focal_batch(self.play_focal(phi, agents, derive_seed(seed, j)), agents)
            batches.append(batch)
            phi = inner_step(phi, batch, self.args.inner_lr, self.args.normalize, create_graph)
        if not train:
            phi = detached(phi)
        return phi, batches, theta0

    def train_dimapg(self) -> dict[str, float]:
        """One iteration of Algorithm 1 (see the module docstring)."""
        args = self.args
        seed = derive_seed(args.seed, self.iteration, 0)
        agents = self.sample_agents()  # line 2
        phi, batches, theta0 = self.adapt(agents, seed, train=True)  # lines 3-5
        post = self.focal_batch(  # line 6: tau_n^{theta, theta_n}, advantages unscaled
            self.play_focal(phi, agents, derive_seed(seed, args.inner_steps)),
            agents,
            normalize=False,
        )
        weights, scale = self.central_weights(post, agents)
        metrics = {
            "train_focal_pre": float(batches[0].episode_reward.mean()),
            "train_focal_post": float(post.episode_reward.mean()),
        }
        if args.central_step == "trpo":  # lines 7-8 as a TRPO step
            metrics.update(self.trpo_dimapg(agents, phi, theta0, batches, post, weights, scale))
            return metrics
        objective = dimapg_objective(
            theta0, phi, batches[0], post, weights, scale, term2_weight=args.term2_weight
        )
        loss = self.policy_mean(-objective, agents)  # line 7: equation 14 per agent
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()  # line 8: theta <- theta + epsilon grad (equation 11)
        return metrics

    def central_weights(
        self, post: FocalBatch, agents: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weights ``(S,)`` of term 2 of equation 14 and the common scale of both terms.

        Without ``normalize``: each agent's mean discounted return after adaptation, and
        no scale (the plain estimate).  With ``normalize``: that return less its
        population's running mean over earlier iterations, and the scale ``T * sigma``
        with T the horizon and sigma the population's running spread (std over episodes)
        of those returns over earlier iterations.  At a population's first iteration
        both running values are this iteration's.  Updates the running values after use.
        """
        mean_return = post.returns.mean(1)
        if not self.args.normalize:
            return mean_return, None
        pops = self.population[torch.from_numpy(agents)]
        weights = torch.zeros_like(mean_return)
        scale = torch.ones_like(mean_return)
        for g in torch.unique(pops).tolist():
            here = pops == g
            batch_mean = float(mean_return[here].mean())
            batch_std = float(post.returns[here].std(unbiased=False)) + 1e-8
            if np.isnan(float(self.running_return[g])):
                self.running_return[g] = batch_mean
                self.running_scale[g] = batch_std
            weights[here] = mean_return[here] - self.running_return[g]
            scale[here] = self.steps * self.running_scale[g]
            decay = RUNNING_DECAY
            self.running_return[g] = decay * self.running_return[g] + (1 - decay) * batch_mean
            self.running_scale[g] = decay * self.running_scale[g] + (1 - decay) * batch_std
        return weights, scale

    def policy_means(self, values: torch.Tensor, agents: np.ndarray) -> torch.Tensor:
        """``(P,)`` the mean of ``values`` (S,) over the sampled agents that follow each
        policy of theta (0 for a policy without one); the populations' means but for
        ``independent``, where every agent has its own policy."""
        pols = self.slot_policy[torch.from_numpy(agents)]
        total = values.new_zeros(self.n_policies).index_add(0, pols, values)
        count = torch.bincount(pols, minlength=self.n_policies).clamp(min=1)
        return total / count.to(values.dtype)

    def policy_mean(self, values: torch.Tensor, agents: np.ndarray) -> torch.Tensor:
        """Sum over policies of :meth:`policy_means` (equation 13's 1/N, per central
        policy; each agent's own value for ``independent``)."""
        return self.policy_means(values, agents).sum()

    def state_log_probs(
        self, theta: Params, index: torch.Tensor, states: FocalBatch
    ) -> torch.Tensor:
        """``(S, M, A)`` action log-probabilities of policies ``index`` (S) of ``theta`` at
        the states of a :func:`_concat_states` batch (masked actions at -inf)."""
        s, m = states.valid.shape[0], states.valid[0].numel()
        masks = None if states.masks is None else states.masks.reshape(s, m, -1)
        return masked_log_softmax(mlp(select(theta, index), states.obs.reshape(s, m, -1)), masks)

    def central_kl(
        self, theta: Params, agents: np.ndarray, states: FocalBatch, old_logp: torch.Tensor
    ) -> torch.Tensor:
        """``(P,)`` mean over the valid states in ``states`` of the agents following each
        policy of ``KL(pi_old || pi_theta)``; ``old_logp`` ``(S, M, A)`` the old
        log-probabilities."""
        index = self.slot_policy[torch.from_numpy(agents)]
        kl = categorical_kl(old_logp, self.state_log_probs(theta, index, states))
        valid = states.valid.reshape(kl.shape)
        total = kl.new_zeros(self.n_policies).index_add(0, index, (kl * valid).sum(1))
        count = kl.new_zeros(self.n_policies).index_add(0, index, valid.sum(1).to(kl.dtype))
        return total / count.clamp(min=1)

    def trpo_dimapg(
        self,
        agents: np.ndarray,
        phi: Params,
        theta0: Params,
        batches: list[FocalBatch],
        post: FocalBatch,
        weights: torch.Tensor,
        scale: torch.Tensor | None,
    ) -> dict[str, float]:
        """Lines 7-8 as TRPO: maximise equation 14's surrogate s.t. mean KL <= epsilon.

        The surrogate is the likelihood-ratio form of :func:`dimapg_objective` (equal to
        equation 14's gradient at theta), differentiated through the k inner steps unless
        ``first_order``; the KL is over the focal agents' valid states of tau_n^theta
        (where theta acts) and of tau_n^{theta, theta_n}.  The line search re-evaluates
        the surrogate through the inner steps: for each candidate theta' it recomputes
        theta_n(theta') by the k inner steps on the stored inner batches (the same
        episodes and advantages; no new env steps), as rllab's MAML-TRPO does with its
        symbolic graph.  Only the dependence of the batches' sampling distribution on
        theta is ignored (as in the gradient).  The step itself: :meth:`trpo_step`.
        """
        args = self.args
        pre = batches[0]
        old = (log_probs(phi, post).detach(), log_probs(theta0, pre).detach())
        objective = dimapg_objective(theta0, phi, pre, post, weights, scale, old, args.term2_weight)
        surr_before = self.policy_means(objective, agents).detach()
        g = flat(torch.autograd.grad(self.policy_mean(objective, agents),
                                     list(self.theta.values())))  # fmt: skip
        del objective, phi, theta0

        def surrogate_at(candidate: Params) -> torch.Tensor:
            theta = {k: v.detach().requires_grad_() for k, v in candidate.items()}
            theta0 = select(theta, self.slot_policy[torch.from_numpy(agents)])
            phi = theta0
            for batch in batches:
                phi = inner_step(phi, batch, args.inner_lr, args.normalize, False)
            with torch.no_grad():
                objective = dimapg_objective(
                    theta0, phi, pre, post, weights, scale, old, args.term2_weight
                )
                return self.policy_means(objective, agents)

        return self.trpo_step(agents, g, surr_before, surrogate_at, _concat_states(pre, post))

    def trpo_reinforce(self, batch: FocalBatch) -> dict[str, float]:
        """``finetune`` / ``independent`` with ``central_step="trpo"``: one TRPO step on
        every agent's batch, maximising the likelihood-ratio form of :func:`surrogate`
        (each policy's mean over the agents that follow it) s.t. its mean KL over those
        agents' valid states is at most epsilon; the step itself: :meth:`trpo_step`."""
        agents = np.arange(self.n_agents)
        old = log_probs(select(detached(self.theta), self.slot_policy), batch)

        def ratio_surrogate(theta: Params) -> torch.Tensor:
            logp = log_probs(select(theta, self.slot_policy), batch)
            return self.policy_means(
                surrogate(torch.exp(logp - old), batch, self.args.normalize), agents
            )

        objective = ratio_surrogate(self.theta)
        g = flat(torch.autograd.grad(objective.sum(), list(self.theta.values())))

        def surrogate_at(candidate: Params) -> torch.Tensor:
            with torch.no_grad():
                return ratio_surrogate(candidate)

        return self.trpo_step(agents, g, objective.detach(), surrogate_at, _concat_states(batch))

    def trpo_step(
        self,
        agents: np.ndarray,
        g: torch.Tensor,
        surr_before: torch.Tensor,
        surrogate_at: Callable[[Params], torch.Tensor],
        states: FocalBatch,
    ) -> dict[str, float]:
        """One TRPO step of every policy of theta that ``agents`` follow (rllab's rules).

        1. ``g`` ``(P, n)``: each policy's surrogate gradient at theta.
        2. x ~ F^-1 g by ``cg_iters`` conjugate-gradient steps, F the Fisher of the
           policy: the Hessian of the mean KL between the old and the new policy over
           ``states`` (the valid states of the agents that follow it; every
           ``fisher_subsample``-th of them), plus ``cg_damping`` (one block per policy,
           each solved and stepped on its own).
        3. Step ``beta x`` with ``beta = sqrt(2 epsilon / x^T F x)`` (the quadratic KL
           estimate equals epsilon), shrunk by ``backtrack_ratio`` until the surrogate
           ``surrogate_at(theta')`` ``(P,)`` improves on ``surr_before`` and the exact
           mean KL is at most epsilon, at most ``max_backtracks`` times; a policy with
           no such step keeps its parameters.
        """
        args = self.args
        index = self.slot_policy[torch.from_numpy(agents)]
        few = _every_nth_state(states, args.fisher_subsample)
        with torch.no_grad():
            old_logp = self.state_log_probs(self.theta, index, states)
            few_logp = old_logp if few is states else self.state_log_probs(self.theta, index, few)
        theta = list(self.theta.values())
        kl = self.central_kl(self.theta, agents, few, few_logp).sum()
        kl_grad = flat(torch.autograd.grad(kl, theta, create_graph=True))

        def fvp(v: torch.Tensor) -> torch.Tensor:
            hv = torch.autograd.grad((kl_grad * v.detach()).sum(), theta, retain_graph=True)
            return flat(hv) + args.cg_damping * v

        x = conjugate_gradient(fvp, g, args.cg_iters)
        xfx = (x * fvp(x)).sum(1)
        ok_dir = xfx > 0
        beta = torch.where(ok_dir, torch.sqrt(2.0 * args.central_lr / xfx.clamp(min=1e-30)), 0.0)
        full_step = beta[:, None] * x
        start = flat(detached(self.theta)).clone()
        n = self.n_policies
        sampled = torch.zeros(n, dtype=torch.bool)
        sampled[index] = True
        sampled &= ok_dir
        accepted = torch.zeros(n, dtype=torch.bool)
        fraction = torch.zeros(n, dtype=start.dtype)
        kl_after = torch.zeros(n, dtype=torch.float64)
        gain = torch.zeros(n, dtype=torch.float64)
        backtracks = torch.full((n,), float(args.max_backtracks), dtype=torch.float64)
        for j in range(args.max_backtracks):
            trial = torch.where(accepted, fraction, args.backtrack_ratio**j)
            candidate = unflat(start + trial[:, None] * full_step, self.theta)
            surr = surrogate_at(candidate)
            with torch.no_grad():
                kl_j = self.central_kl(candidate, agents, states, old_logp)
            ok = ~accepted & sampled & (surr > surr_before) & (kl_j <= args.central_lr)
            fraction = torch.where(ok, trial, fraction)
            kl_after = torch.where(ok, kl_j.double(), kl_after)
            gain = torch.where(ok, (surr - surr_before).double(), gain)
            backtracks = torch.where(ok, float(j), backtracks)
            accepted |= ok
            if bool(accepted[sampled].all()):
                break
        with torch.no_grad():
            new = unflat(start + fraction[:, None] * full_step, self.theta)
            for k, v in self.theta.items():
                v.copy_(new[k])
        here = index.unique()
        return {
            "train_central_kl": float(kl_after[here].mean()),
            "train_backtracks": float(backtracks[here].mean()),
            "train_surrogate_gain": float(gain[here].mean()),
        }

    # -- the baselines -----------------------------------------------------------------
    def play_all(self, keys: np.ndarray, states: bool = False) -> Trajectories:
        """Every agent with its own (``independent``) or its population's policy."""
        theta = detached(self.theta)
        per_agent = self.args.method == "independent"
        traj = self.play(
            lambda obs, _: self.central_logits(theta, per_agent, obs), keys, states=states
        )
        self._count(traj)
        return traj

    def iteration_keys(self, step: int) -> np.ndarray:
        """Keys of the ``S * C`` copies of update ``step`` of a baseline's iteration."""
        b = len(self.sample_agents()) * self.args.trajectories
        seed = derive_seed(self.args.seed, self.iteration, 2, step)
        return copy_keys(seed, np.zeros(b, dtype=np.int64), np.arange(b))

    def train_reinforce(self) -> dict[str, float]:
        """``finetune`` / ``independent``: ``k + 1`` REINFORCE steps, each on ``S * C``
        episodes of every agent acting with its policy; a policy's surrogate is the mean
        over the agents that follow it.  With ``central_step="trpo"`` each step is a TRPO
        step (:meth:`trpo_reinforce`) instead of the optimiser's."""
        rewards, steps = [], []
        for step in range(self.args.inner_steps + 1):
            traj = self.play_all(self.iteration_keys(step))
            batch = self.all_agents_batch(traj)
            rewards.append(episode_returns(traj))
            if self.args.central_step == "trpo":
                steps.append(self.trpo_reinforce(batch))
                continue
            per_agent = surrogate(
                log_probs(select(self.theta, self.slot_policy), batch), batch, self.args.normalize
            )
            loss = self.policy_mean(-per_agent, np.arange(self.n_agents))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        returns = torch.cat(rewards)
        metrics = {"train_min_reward": float(returns.min(1).values.mean()),
                   "train_mean_reward": float(returns.mean())}  # fmt: skip
        for key in steps[0] if steps else ():
            metrics[key] = float(np.mean([m[key] for m in steps]))
        return metrics

    def ks_logits(self, obs: torch.Tensor, gs: np.ndarray | None) -> torch.Tensor:
        """Kitchen sink: each population's joint logits from the global state."""
        x = torch.from_numpy(gs).unsqueeze(0)
        logits = obs.new_empty((obs.shape[0], self.n_agents, self.n_actions))
        for net, slots in zip(self.ks, self.pop_slots):
            out = mlp(net, x, activation="elu")[0]
            logits[:, slots] = out[:, :-1].reshape(-1, len(slots), self.n_actions)
        return logits

    def train_kitchen_sink(self) -> dict[str, float]:
        """``k + 1`` A2C updates per iteration on ``S * C`` episodes each: per population,
        ``- mean_t (sum_i log pi_i) (R_t - V_t) + w_v (V_t - R_t)^2 - w_e H``, where
        ``R_t`` is the discounted return of the population's minimum reward."""
        args, rewards = self.args, []
        for step in range(args.inner_steps + 1):
            with torch.no_grad():
                traj = self.play(
                    lambda o, gs: self.ks_logits(o, gs), self.iteration_keys(step), states=True
                )
            self._count(traj)
            b, steps = traj.rewards.shape[:2]
            loss = torch.zeros(())
            for net, slots in zip(self.ks, self.pop_slots):
                out = mlp(net, traj.states.reshape(1, b * steps, -1), activation="elu")[0]
                logits = out[:, :-1].reshape(b, steps, len(slots), self.n_actions)
                value = out[:, -1].reshape(b, steps)
                masks = None if traj.masks is None else traj.masks[:, :, slots]
                alive = traj.alive[:, :, slots]
                logp = action_log_probs(logits, traj.actions[:, :, slots], masks) * alive
                ent = (entropy(logits, masks) * alive).sum(-1)
                valid = alive.any(-1)
                team = traj.rewards[:, :, slots].masked_fill(~alive, float("inf")).min(-1).values
                team = torch.where(valid, team, torch.zeros_like(team))
                ret = returns_to_go(team.double(), valid, args.discount).float()
                adv = (ret - value).detach()
                count = valid.sum().clamp(min=1)
                loss = (
                    loss
                    + (
                        -(logp.sum(-1) * adv * valid).sum()
                        + args.ks_value_weight * (((value - ret) ** 2) * valid).sum()
                        - args.ks_entropy * (ent * valid).sum()
                    )
                    / count
                )
            self.ks_optimizer.zero_grad()
            loss.backward()
            self.ks_optimizer.step()
            rewards.append(episode_returns(traj))
        returns = torch.cat(rewards)
        return {"train_min_reward": float(returns.min(1).values.mean()),
                "train_mean_reward": float(returns.mean())}  # fmt: skip

    # -- the experiment's hooks --------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        """One training iteration of ``args.method``; returns its metrics."""
        method = self.args.method
        if method == "dimapg":
            metrics = self.train_dimapg()
        elif method == "kitchen_sink":
            metrics = self.train_kitchen_sink()
        else:
            metrics = self.train_reinforce()
        self.iteration += 1
        return metrics

    def evaluate(self, episodes: int, seed: int) -> dict[str, float]:
        """Table 1's numbers: the minimum over agents of the episode reward, averaged over
        ``episodes`` episodes, with theta (``*_theta``) and, for :data:`ADAPTING`
        methods with ``eval_adapted``, after every agent adapted its policy by the k
        inner steps with the others on theta (``*_adapted``: all agents then act with
        their own theta_n together).  Also the mean over agents, each population's mean
        when there are several, and the mean at the episodes' end of each of the core's
        ``episode_info`` (Survival's Table 2: ``food_left``, ``survivors``).  Counts no
        training steps or episodes.
        """
        counters = (self.episodes, self.env_steps)
        keys = copy_keys(
            derive_seed(seed, 0), np.zeros(episodes, dtype=np.int64), np.arange(episodes)
        )
        if self.args.method == "kitchen_sink":
            traj = self.play(lambda o, gs: self.ks_logits(o, gs), keys, states=True)
        else:
            traj = self.play_all(keys)
        out = self._table(traj, "theta")
        nan = {k.replace("_theta", "_adapted"): float("nan") for k in out}
        if self.args.method in ADAPTING and self.args.eval_adapted:
            agents = np.arange(self.n_agents)
            phi, _, _ = self.adapt(agents, derive_seed(seed, 1), train=False)
            traj = self.play(lambda obs, _: self.central_logits(phi, True, obs), keys)
            out.update(self._table(traj, "adapted"))
        else:
            out.update(nan)
        self.episodes, self.env_steps = counters
        return out

    def _table(self, traj: Trajectories, label: str) -> dict[str, float]:
        returns = episode_returns(traj)
        out = {
            f"eval_min_{label}": float(returns.min(1).values.mean()),
            f"eval_mean_{label}": float(returns.mean()),
        }
        if len(self.pop_slots) > 1:
            for name, slots in zip(self.population_names, self.pop_slots):
                out[f"eval_{name}_{label}"] = float(returns[:, slots].mean())
        for key, values in traj.episode_info.items():
            out[f"eval_{key}_{label}"] = float(values.mean())
        return out

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (rollouts are functions of seed and counters)."""
        state: dict[str, Any] = {
            "theta": {k: v.detach().clone() for k, v in self.theta.items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "running_return": self.running_return.clone(),
            "running_scale": self.running_scale.clone(),
            "iteration": self.iteration,
            "episodes": self.episodes,
            "env_steps": self.env_steps,
        }
        if self.ks:
            state["ks"] = [{k: v.detach().clone() for k, v in net.items()} for net in self.ks]
            state["ks_optimizer"] = copy.deepcopy(self.ks_optimizer.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; checked before anything changes.

        Raises
        ------
        ValueError
            If a tensor's name or shape differs from this learner's.
        """
        nets = [(self.theta, state["theta"])] + list(zip(self.ks, state.get("ks", [])))
        if len(state.get("ks", [])) != len(self.ks):
            raise ValueError("checkpoint's kitchen-sink networks do not fit this learner")
        for mine, theirs in nets:
            if set(mine) != set(theirs) or any(mine[k].shape != theirs[k].shape for k in mine):
                raise ValueError("checkpoint's parameters do not fit this learner")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ks:
            self.ks_optimizer.load_state_dict(state["ks_optimizer"])
        with torch.no_grad():
            for mine, theirs in nets:
                for k, v in theirs.items():
                    mine[k].copy_(v)
        self.running_return = state["running_return"].clone()
        nan = torch.full_like(self.running_return, float("nan"))
        self.running_scale = state.get("running_scale", nan).clone()
        self.iteration = int(state["iteration"])
        self.episodes = int(state["episodes"])
        self.env_steps = int(state["env_steps"])
