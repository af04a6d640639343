"""Meta-MAPG's cooperative experiment: 2-Agent HalfCheetah with a learning teammate.

Paper: meta-mapg-learning-peers, question 8, Figure 2d, Algorithms 1-2, equation 6,
appendices C and E.3, Tables 5, 8 and 11; the authors' code (dkkim93/meta-mapg:
``trainer.py``, ``meta/meta_agent.py``, ``meta/base.py``, ``meta/dice.py``,
``misc/rl_utils.py``, ``config/half_cheetah_dir.yaml``) settles what the text leaves open.

The meta-agent drives the back leg of ``halfcheetah_2x3`` (``agent_0``) with a Gaussian
LSTM policy and has an LSTM value function (appendix C.1); its teammate drives the front
leg (``agent_1``) and starts from a checkpoint of :mod:`baselines.peers.teammates`, a
teammate pre-trained to run *left*.  Both receive the joint reward of running *right*,
divided by 100 (the code's ``reward_scale``).  One meta-training iteration (Algorithm 1)
plays C chains at once, each with a teammate drawn from the train split, in one batched
core of C x K cheetahs:

1. ``phi_0 = theta``; the teammate's ``phi_0^-i`` is its checkpoint.
2. For every chain position ``l = 0 .. L``: play K trajectories of H steps with
   ``(phi_l, phi_l^-i)``.  Unless ``l = L``, both agents learn from them (equation 4):

   - the teammate takes one policy-gradient step ``phi_{l+1}^-i = phi_l^-i + beta grad
     J_DiCE`` (discounted rewards-to-go less the linear feature baseline, plain SGD at
     ``peer_lr``): its own rule, but written as DiCE with the meta-agent's
     log-probabilities among the stochastic nodes, so that for Meta-MAPG the new
     parameters keep their graph to theta (the peer-learning term);
   - the meta-agent takes its inner step ``phi_{l+1} = phi_l + alpha_l grad J_DiCE``
     (the same estimator; ``alpha_l`` learned per position, the code's ``dynamic_lr``).

3. Outer step on theta and alpha from the terms of equation 6, estimated as the code
   does, with ``A_l`` the GAE advantages of position l (value function, lambda):

   ``loss = -1/(L+1) sum_{l=1..L} mean_k sum_t A_l,kt (log pi(tau_0 | theta)
   + sum_{l'=1..l} log pi(tau_l' | phi_l') + sum_{l'=1..l} log pi^-i(tau_l' | phi_l'^-i))``,

   current-policy, own-learning and peer-learning terms; the value function is regressed
   on the discounted returns of positions 1..L (sum / (L+1)).  Each chain's gradient is
   clipped to ``max_grad_norm``, the chains' gradients are projected by PCGrad, and each
   projected gradient is one AMSGrad step (the code's processes each step a shared
   optimiser, :class:`SharedAdam`: eps 1e-3), separately for the policy, the inner rates
   and the value function.

The methods (:data:`METHODS`) keep these terms:

- ``meta_mapg``: all three.  ``meta_pg``: no peer-learning term (the teammate's new
  parameters are data; its update and the meta-agent's DiCE nodes leave out the other's
  log-probabilities, as the code without ``--opponent-shaping``).
- ``reinforce``: the stationary policy gradient: every position trains theta on its own
  advantages, first order through the inner steps, which use the fixed ``inner_lr``.
- ``lola_dice``: trained like ``reinforce``; its inner step in the chain is LOLA-DiCE's:
  the gradient of its DiCE objective after ``lookahead`` DiCE steps of the teammate on the
  same K trajectories.

Meta-testing (Algorithm 2) plays one chain per teammate of the val or test split, the
meta-agent adapting by its inner steps; the result is its mean episode return (unscaled)
at each position ``phi_0 .. phi_L``, the curve of Figure 2d.

Paper (Tables 5, 8, 11) against the code (``config/half_cheetah_dir.yaml``, ``main.py``);
``CheetahArgs``' defaults follow the code:

============================  =====================  ========================  ==========
setting                       paper                  code                      ours
============================  =====================  ========================  ==========
discount                      0.99                   0.95 (yaml)               0.95
K, H, L                       64, 200, 2             64, 200, 2                64, 200, 2
inner rate (meta, initial)    5e-3                   5e-3, learned (Adam)      same
teammate's in-chain rate      (not given)            5e-3 (actor_lr_inner)     5e-3
outer actor / alpha rate      5e-5                   5e-5 AMSGrad, eps 1e-3    same
critic rate                   5.5e-5 (LOLA 1.5e-4)   5.5e-5                    5.5e-5
GAE lambda                    0.95                   0.95                      0.95
parallel chains               5 threads              5 processes, async        C = 5, sync
iterations                    "until convergence"    12,500 per process        12,500
entropy weight                (not given)            0                         0
gradient clip                 (not given)            10 per process            10 per chain
reward                        joint, run right       /100 (reward_scale)       /100
teammate population           checkpoints 50-300,    0-299 (train/val),        the code's
                              475-500                475-499                   (ours)
============================  =====================  ========================  ==========

Other differences, not settings: the code's chains run asynchronously in 5 processes
(each steps the shared optimiser with its own PCGrad-projected gradient, against the
latest gradients of the others); here the C chains of an iteration are synchronous and
projected against each other, then stepped in chain order.  The code initialises with
Xavier-normal weights; here PyTorch's default uniform (as the teammates).  rllab's linear
baseline clips observations to [-10, 10] in its features (:func:`fit_linear_baseline`);
the code's does not.  The code's linear baseline (``meta/linear_baseline.py``) also pairs
its features, flattened time-major (H x K), with the returns flattened batch-major
(K x H), so each step is regressed on another step's return: its fit explains nothing
(on returns with a time trend, about the batch's mean return at every step), and both
agents' in-chain steps in effect use a constant baseline; here each step is fitted to its
own return-to-go (rllab's baseline, as the paper says).  The code's ``LSTMCell`` has two
bias vectors (``b_ih``, ``b_hh``) whose sum acts, so its LSTM bias moves twice as far per
step (inner SGD or outer AMSGrad); here one bias.  The code validates in a process of its
own, again and again on the latest shared parameters while training runs; here every
``eval_every`` iterations.  The 25 validation checkpoints are our own draw from 0-299
(:data:`~baselines.peers.teammates.SPLITS`), not the list of the code's ``val.npy``.
Validation and test sum or plot the meta-agent's return exactly as the code's
``log_performance`` (the mean over trajectories of the unscaled return).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)
from baselines.experiment import Experiment, RunContext
from baselines.experiment import main as experiment_main
from baselines.peers import teammates
from baselines.peers.cheetah_report import adaptation_markdown
from baselines.peers.estimators import (
    discounted_returns,
    fit_linear_baseline,
    gae,
    project_conflicting,
)
from baselines.peers.nets import Params, init_lstm_net
from baselines.peers.optim import SharedAdam
from baselines.peers.state import MetaAgentState, clip_rows, mix_seed, step_each
from baselines.peers.teammates import ChainLSTM, gaussian_logprob, log_std
from meta_wrappers.peers_torch import dice_objective

ENV = teammates.ENV
"""The only env with a teammate population: ``halfcheetah_2x3``."""


@dataclasses.dataclass(frozen=True)
class Method:
    """Which gradient terms a meta-agent keeps and how it adapts inside a chain."""

    outer: str
    """``"meta"`` (equation 6's terms) or ``"stationary"`` (each position on its own)."""
    peer: bool
    """Keep the peer-learning term (the teammate's update replayed differentiably)."""
    inner: str = "pg"
    """Inner step in the chain: ``"pg"`` (policy gradient) or ``"lola"`` (LOLA-DiCE)."""


METHODS: dict[str, Method] = {
    "meta_mapg": Method("meta", peer=True),
    "meta_pg": Method("meta", peer=False),
    "lola_dice": Method("stationary", peer=False, inner="lola"),
    "reinforce": Method("stationary", peer=False),
}


@dataclasses.dataclass
class CheetahArgs:
    """Settings of a meta-agent run on 2-Agent HalfCheetah (defaults: the authors' code)."""

    env: str = ENV
    """The env (only ``halfcheetah_2x3``: the teammate population is trained on it)."""
    method: str = "meta_mapg"
    """One of :data:`METHODS`."""
    population: str = ""
    """Teammate population file (:mod:`baselines.peers.teammates`); empty: the default
    population, trained into the cache first if missing (9-11 min)."""
    k: int = 64
    """Trajectories per joint policy K (Table 5)."""
    length: int = 2
    """Chain length L (L + 1 joint policies; Table 5)."""
    horizon: int = 200
    """Steps per trajectory H (Table 5)."""
    gamma: float = 0.95
    """Discount (the code's half_cheetah_dir.yaml; Table 5 says 0.99)."""
    gae_lambda: float = 0.95
    """GAE lambda of the outer loop (Table 5)."""
    reward_scale: float = 0.01
    """Rewards are multiplied by this for learning (the code's ``reward_scale``: / 100)."""
    direction: float = 1.0
    """Sign of the forward velocity in the reward: +1 runs right (the code's direction)."""
    peer_lr: float = 5e-3
    """The teammate's in-chain SGD rate (the code's ``actor_lr_inner``)."""
    inner_lr: float = 5e-3
    """Initial inner rate alpha_l of the meta-agent (Table 5's inner actor rate)."""
    learn_inner_lr: bool = True
    """Learn one inner rate per chain position (the code's ``dynamic_lr``; meta methods)."""
    actor_lr: float = 5e-5
    """Outer AMSGrad rate of the policy and of alpha (Table 5)."""
    critic_lr: float = 5.5e-5
    """AMSGrad rate of the value function (Table 5)."""
    hidden: int = 64
    """Units of the FC layer and of the LSTM of the policy and value function (C.1)."""
    chains: int = 5
    """Chains per meta-training iteration (the paper's 5 threads)."""
    max_grad_norm: float = 10.0
    """Clip of each chain's outer gradient (the code's ``max_grad_clip``)."""
    pcgrad: bool = True
    """Project the chains' conflicting gradients (PCGrad) before their steps."""
    lookahead: int = 1
    """LOLA-DiCE: DiCE steps of the teammate looked ahead (Table 8)."""
    seed: int = 0
    """Seed of the initial parameters, the teammates drawn, every rollout and PCGrad."""
    iterations: int = 12_500
    """Meta-training iterations (the code's ``max_train_iteration``, per process)."""
    eval_every: int = 250
    """Iterations between validations (and after the last one)."""
    eval_chains: int | None = None
    """Validate on this many teammates spread over the val split (None: all 25)."""

    def __post_init__(self) -> None:
        if self.env != ENV:
            raise ValueError(f"env must be {ENV!r} (the teammate population's), got {self.env!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, got {self.method!r}")
        for name in ("k", "length", "horizon", "hidden", "chains", "lookahead", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.iterations, int) or self.iterations < 0:
            raise ValueError(f"iterations must be an int >= 0, got {self.iterations!r}")
        if self.eval_chains is not None and self.eval_chains < 1:
            raise ValueError(f"eval_chains must be >= 1 or None, got {self.eval_chains}")
        if not (0.0 < self.gamma <= 1.0 and 0.0 <= self.gae_lambda <= 1.0):
            got = f"{self.gamma}, {self.gae_lambda}"
            raise ValueError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {got}")
        rates = ("reward_scale", "peer_lr", "inner_lr", "actor_lr", "critic_lr", "max_grad_norm")
        bad = [f"{n}={getattr(self, n)}" for n in rates if not getattr(self, n) > 0]
        if bad:
            raise ValueError(f"these must be > 0: {', '.join(bad)}")
        if self.direction not in (-1.0, 1.0):
            raise ValueError(f"direction must be +1 (right) or -1 (left), got {self.direction}")
        if self.population and not Path(self.population).is_file():
            raise ValueError(f"no teammate population file at {self.population!r}")


def chain_logprob(params: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``(C, K, H)`` log-densities of ``actions`` ``(C, K, H, A)`` given ``obs`` (C, K, H, D)."""
    policy = ChainLSTM(params, obs.shape[1])
    means = torch.stack([policy(obs[:, :, t]) for t in range(obs.shape[2])], dim=2)
    return gaussian_logprob(means, log_std(params), actions)


# -- one joint policy: K trajectories of every chain ---------------------------------------
class Position(NamedTuple):
    """The trajectories of one joint policy ``(phi_l, phi_l^-i)`` of C chains."""

    obs: torch.Tensor  # (C, K, H, D) the state both agents observe
    rewards: torch.Tensor  # (C, K, H) the joint reward, times reward_scale
    returns: torch.Tensor  # (C,) mean undiscounted episode return, unscaled
    meta_actions: torch.Tensor  # (C, K, H, 3) unclipped samples
    peer_actions: torch.Tensor  # (C, K, H, 3)
    meta_lp: torch.Tensor  # (C, K, H) log-densities under phi_l (with its graph)
    peer_lp: torch.Tensor  # (C, K, H) under phi_l^-i (with its graph)


def play(
    core: Any,
    meta: Params,
    peer: Params,
    seed: int,
    gen: torch.Generator,
    k: int,
    horizon: int,
    reward_scale: float,
) -> Position:
    """Play K trajectories per chain with per-chain parameters, in one core of C x K copies.

    Actions are the means plus Gaussian noise (detached samples, clipped to [-1, 1] for the
    env); the log-densities of the unclipped samples are taken once over the stacked means.
    """
    n_chains = meta["fc_b"].shape[0]
    if not all(torch.isfinite(v).all() for v in (*meta.values(), *peer.values())):
        raise FloatingPointError("non-finite policy parameters in the chain; lower the rates")
    state = core.reset(n_chains * k, seed)
    obs = torch.tensor(state.obs, dtype=torch.float32).reshape(n_chains, k, 2, -1)  # a copy
    policies, sds = (ChainLSTM(meta, k), ChainLSTM(peer, k)), (log_std(meta), log_std(peer))
    means: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    acts: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    seen, rewards = [], []
    for _ in range(horizon):
        for i, (policy, sd) in enumerate(zip(policies, sds)):
            mean = policy(obs[:, :, i])
            noise = torch.randn(mean.shape, generator=gen)
            means[i].append(mean)
            acts[i].append(mean.detach() + sd[:, 0].detach().exp() * noise)
        seen.append(obs[:, :, 0])
        joint = torch.stack([acts[0][-1], acts[1][-1]], dim=2).clamp(-1.0, 1.0)
        result = core.step(state, joint.reshape(n_chains * k, 2, -1).numpy())
        rewards.append(torch.tensor(result.reward[:, 0], dtype=torch.float32))  # a copy
        obs = torch.tensor(result.obs, dtype=torch.float32).reshape(n_chains, k, 2, -1)
    raw = torch.stack(rewards, dim=1).reshape(n_chains, k, horizon)
    actions = [torch.stack(a, dim=2) for a in acts]
    lps = [gaussian_logprob(torch.stack(m, dim=2), sd, a) for m, sd, a in zip(means, sds, actions)]
    return Position(
        obs=torch.stack(seen, dim=2),
        rewards=raw * reward_scale,
        returns=raw.sum(-1).mean(-1),
        meta_actions=actions[0],
        peer_actions=actions[1],
        meta_lp=lps[0],
        peer_lp=lps[1],
    )


def linear_baseline(pos: Position, gamma: float) -> torch.Tensor:
    """``(C, K, H)`` rllab's linear feature baseline of the rewards-to-go, one fit per chain.

    Both agents observe the same state and get the same reward, so one fit serves both
    (the code fits each agent's on the same numbers).
    """
    returns = discounted_returns(pos.rewards.double(), gamma)
    valid = torch.ones(returns.shape, dtype=torch.bool)
    return fit_linear_baseline(pos.obs, returns, valid).float()


def pg_step(
    params: Params,
    nodes: torch.Tensor,
    rewards: torch.Tensor,
    baseline: torch.Tensor,
    lr: torch.Tensor | float,
    gamma: float,
    create_graph: bool,
) -> Params:
    """``params + lr * grad J_DiCE``: one policy-gradient step of every chain's parameters.

    ``nodes`` are the ``(C, K, H)`` log-densities of every stochastic node the rewards
    depend on (the agent's own, plus the other agent's to keep the dependence on its
    parameters).  Their first derivative is the score-function estimator
    ``mean_k sum_t grad log pi_kt (sum_{t' >= t} gamma^t' r_kt' - gamma^t b_kt)``; with
    ``create_graph`` the result keeps its graph (second derivatives for the outer loss),
    else it is a new leaf.  ``lr`` is a float or ``(C,)``.
    """
    objective = dice_objective(nodes, nodes, rewards, baseline, gamma)
    grads = torch.autograd.grad(
        objective.sum(), list(params.values()), create_graph=create_graph, retain_graph=True
    )
    rate = torch.as_tensor(lr, dtype=rewards.dtype)
    new = {}
    for (name, value), grad in zip(params.items(), grads):
        step = rate.reshape(-1, *[1] * (value.dim() - 1)) * grad if rate.dim() else rate * grad
        new[name] = value + step if create_graph else (value + step).detach().requires_grad_()
    return new


# -- the learner -------------------------------------------------------------------------
class Evaluation(NamedTuple):
    """Meta-test of one split: the meta-agent's return along the chain."""

    returns: np.ndarray  # (L + 1,) mean episode return (unscaled) at phi_0 .. phi_L
    per_teammate: np.ndarray  # (n, L + 1) the same per teammate
    checkpoints: list[int]  # the teammates' checkpoints, in row order


class CheetahLearner(MetaAgentState):
    """A meta-agent of one of :data:`METHODS` on 2-Agent HalfCheetah (module docstring).

    Parameters
    ----------
    args : CheetahArgs

    Raises
    ------
    ValueError
        If the population has no checkpoint in the train split, or its teammates' shapes
        do not fit the env.
    """

    def __init__(self, args: CheetahArgs) -> None:
        import metaenvs

        self.args = args
        self.method = METHODS[args.method]
        if args.population:
            self.population = teammates.Population(args.population)
        else:
            self.population = teammates.population()
        self.splits = {s: self.population.split(s) for s in ("train", "val", "test")}
        if not self.splits["train"]:
            raise ValueError("the teammate population has no checkpoint of the train split")
        # threads: the package's default (``metaenvs train``'s --threads sets it)
        self.core = metaenvs.make_core(
            ENV, horizon=args.horizon, forward_reward_weight=args.direction
        )
        n_obs, n_act = self.core.observation_space.shape[-1], self.core.action_space.shape[-1]
        shapes = self.population.shapes
        if shapes["fc_w"][0] != n_obs or shapes["out_w"][1] != n_act:
            raise ValueError(f"the teammates' shapes {shapes} do not fit {ENV}")
        gen = torch.Generator().manual_seed(args.seed)
        actor = teammates.init_policy(n_obs, n_act, args.hidden, gen)
        value = init_lstm_net(n_obs, 1, args.hidden, gen)
        self.actor = {k: v.requires_grad_() for k, v in actor.items()}
        self.value = {k: v.requires_grad_() for k, v in value.items()}
        self.inner_lr = torch.full((args.length,), float(args.inner_lr), requires_grad=True)
        self.learns_inner_lr = args.learn_inner_lr and self.method.outer == "meta"
        # the code: SharedAdam (AMSGrad, eps 1e-3), alpha at the actor's outer rate
        self.actor_opt = SharedAdam(self.actor.values(), lr=args.actor_lr)
        self.lr_opt = SharedAdam([self.inner_lr], lr=args.actor_lr)
        self.value_opt = SharedAdam(self.value.values(), lr=args.critic_lr)
        self.iteration = 0

    def teammates_of(self, checkpoints: Sequence[int]) -> Params:
        """The teammates' parameters ``phi_0^-i`` stacked along a chain axis (leaves)."""
        each = [self.population.params(int(c)) for c in checkpoints]
        return {k: torch.stack([p[k] for p in each]).requires_grad_() for k in each[0]}

    # -- Algorithm 1, lines 4-8 (and Algorithm 2): play the chains --------------------------
    def play_chain(
        self, checkpoints: Sequence[int], seed: int, train: bool
    ) -> tuple[list[Position], Params]:
        """Play one chain per teammate checkpoint; both agents learn after every position.

        A pure function of the parameters and ``seed``.  With ``train`` the positions keep
        the graph the outer loss needs, and the returned leaves (theta repeated per chain,
        and ``"inner_lr"``) receive the per-chain gradients.
        """
        args, method = self.args, self.method
        n_chains = len(checkpoints)
        leaves = {k: v.detach().repeat(n_chains, *[1] * v.dim()) for k, v in self.actor.items()}
        leaves["inner_lr"] = self.inner_lr.detach().repeat(n_chains, 1)
        for v in leaves.values():
            v.requires_grad_(train)
        theta = {k: v for k, v in leaves.items() if k != "inner_lr"}
        phi = theta if train else {k: v.detach().requires_grad_() for k, v in theta.items()}
        peer = self.teammates_of(checkpoints)
        peer_term = train and method.peer
        gen = torch.Generator().manual_seed(seed)
        positions: list[Position] = []
        for position in range(args.length + 1):
            env_seed = mix_seed(seed, position)
            pos = play(self.core, phi, peer, env_seed, gen, args.k, args.horizon, args.reward_scale)
            if position < args.length:
                baseline = linear_baseline(pos, args.gamma)
                lr = leaves["inner_lr"][:, position]
                new_phi = self.inner_step(phi, theta, lr, peer, pos, baseline, train)
                # the teammate's own rule; with the peer-learning term, replayed with the
                # meta-agent's log-densities among DiCE's nodes (keeps the graph to theta)
                nodes = pos.peer_lp + pos.meta_lp if peer_term else pos.peer_lp
                peer = pg_step(
                    peer, nodes, pos.rewards, baseline, args.peer_lr, args.gamma, peer_term
                )
                phi = new_phi
            if not train:  # only the returns are read: free the graph
                pos = pos._replace(meta_lp=pos.meta_lp.detach(), peer_lp=pos.peer_lp.detach())
            positions.append(pos)
        return positions, leaves

    def inner_step(
        self,
        phi: Params,
        theta: Params,
        lr: torch.Tensor,
        peer: Params,
        pos: Position,
        baseline: torch.Tensor,
        train: bool,
    ) -> Params:
        """``phi_{l+1} = phi_l + alpha_l grad J_DiCE(tau_l)`` (LOLA-DiCE: after a lookahead)."""
        args, method = self.args, self.method
        nodes = pos.meta_lp
        if method.inner == "lola":  # the teammate's lookahead steps, functions of phi_l
            ahead, ahead_lp = peer, pos.peer_lp
            for _ in range(args.lookahead):
                nodes_ahead = ahead_lp + pos.meta_lp
                ahead = pg_step(
                    ahead, nodes_ahead, pos.rewards, baseline, args.peer_lr, args.gamma, True
                )
                ahead_lp = chain_logprob(ahead, pos.obs, pos.peer_actions)
            nodes = nodes + ahead_lp
        elif train and method.peer:
            nodes = nodes + pos.peer_lp
        if train and method.outer == "meta":
            return pg_step(phi, nodes, pos.rewards, baseline, lr, args.gamma, create_graph=True)
        new = pg_step(phi, nodes, pos.rewards, baseline, lr.detach(), args.gamma, False)
        if train:  # first order: theta + stop_gradient(phi_{l+1} - theta)
            return {k: theta[k] + (new[k] - theta[k]).detach() for k in new}
        return new

    # -- Algorithm 1, line 10: the outer step ------------------------------------------------
    def outer_losses(
        self, positions: list[Position], value: Params
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-chain policy loss ``(C,)`` (equation 6 or stationary) and value loss ``(C,)``.

        ``value``: per-chain copies of the value function's parameters (leading axis C).
        """
        args, method = self.args, self.method
        n_pos = len(positions)
        rewards = torch.stack([p.rewards for p in positions], dim=1)  # (C, L + 1, K, H)
        obs = torch.stack([p.obs for p in positions], dim=1)
        n_chains, _, n_traj, horizon, n_obs = obs.shape
        critic = ChainLSTM(value, n_pos * n_traj)
        flat = obs.reshape(n_chains, n_pos * n_traj, horizon, n_obs)
        values = torch.stack([critic(flat[:, :, t])[..., 0] for t in range(horizon)], dim=2)
        values = values.reshape(rewards.shape)
        advantages = gae(rewards, values.detach(), args.gamma, args.gae_lambda)
        returns = discounted_returns(rewards, args.gamma)
        value_loss = (values - returns)[:, 1:].square().mean(dim=(2, 3)).sum(1) / n_pos
        terms = torch.zeros(n_chains)
        if method.outer == "meta":
            score = positions[0].meta_lp  # current policy
            for step, pos in enumerate(positions[1:], start=1):
                score = score + pos.meta_lp  # own learning
                if method.peer:
                    score = score + pos.peer_lp  # peer learning: phi_l^-i(theta)
                terms = terms - (score * advantages[:, step]).sum(-1).mean(-1)
        else:
            for step, pos in enumerate(positions):
                terms = terms - (pos.meta_lp * advantages[:, step]).sum(-1).mean(-1)
        return terms / n_pos, value_loss

    def train_iteration(self) -> dict[str, float]:
        """One outer update from ``args.chains`` chains; returns training metrics."""
        args = self.args
        seed = mix_seed(args.seed, self.iteration)
        rng = np.random.default_rng(seed)
        drawn = rng.choice(self.splits["train"], size=args.chains, replace=True)
        positions, leaves = self.play_chain(drawn.tolist(), seed, train=True)
        # per-chain copies of the value function: per-chain gradients, like the policy's
        value = {
            k: v.detach().repeat(args.chains, *[1] * v.dim()).requires_grad_()
            for k, v in self.value.items()
        }
        loss, value_loss = self.outer_losses(positions, value)
        names = list(self.actor) + ["inner_lr"]
        grads = torch.autograd.grad(loss.sum(), [leaves[n] for n in names], allow_unused=True)
        per_chain = {
            n: (torch.zeros_like(leaves[n]) if g is None else g).reshape(args.chains, -1)
            for n, g in zip(names, grads)
        }
        actor_grads = torch.cat([per_chain[n] for n in self.actor], dim=1)
        gen = torch.Generator().manual_seed(seed)
        self._outer_step(self.actor_opt, list(self.actor.values()), actor_grads, gen)
        if self.learns_inner_lr:
            self._outer_step(self.lr_opt, [self.inner_lr], per_chain["inner_lr"], gen)
        value_grads = torch.autograd.grad(value_loss.sum(), list(value.values()))
        flat_value = torch.cat([g.reshape(args.chains, -1) for g in value_grads], dim=1)
        self._outer_step(self.value_opt, list(self.value.values()), flat_value, gen)
        self.iteration += 1
        returns = torch.stack([p.returns for p in positions], dim=1).mean(0)
        return {
            **{f"train_return_{i}": float(r) for i, r in enumerate(returns)},
            "train_score": float(returns[1:].sum()),
            "train_return_first": float(returns[0]),
            "train_return_last": float(returns[-1]),
            "policy_loss": float(loss.detach().mean()),
            "value_loss": float(value_loss.detach().mean()),
            "grad_norm": float(actor_grads.norm(dim=1).mean()),
            "inner_lr_mean": float(self.inner_lr.detach().mean()),
        }

    def _outer_step(
        self,
        optimizer: torch.optim.Optimizer,
        targets: list[torch.Tensor],
        per_chain: torch.Tensor,
        gen: torch.Generator,
    ) -> None:
        """The code's update from per-chain gradients ``(C, D)``: clip each chain's to
        ``max_grad_norm``, project them (PCGrad), then one optimiser step per chain."""
        args = self.args
        if not torch.isfinite(per_chain).all():
            raise FloatingPointError(
                f"non-finite outer gradient at iteration {self.iteration}; lower the rates"
            )
        per_chain = clip_rows(per_chain, args.max_grad_norm)
        step_each(
            optimizer, targets, project_conflicting(per_chain, gen) if args.pcgrad else per_chain
        )

    # -- Algorithm 2: meta-testing -----------------------------------------------------------
    def evaluate(self, split: str, seed: int = 0, max_chains: int | None = None) -> Evaluation:
        """Meta-test against every teammate of ``split`` once, ``args.chains`` chains a batch.

        Raises
        ------
        ValueError
            If the split is unknown or has no checkpoint in the population.
        """
        if split not in self.splits:
            raise ValueError(f"split must be one of {tuple(self.splits)}, got {split!r}")
        ids = list(self.splits[split])
        if not ids:
            raise ValueError(f"the teammate population has no checkpoint of the {split} split")
        if max_chains is not None and max_chains < len(ids):
            picks = np.round(np.linspace(0, len(ids) - 1, max_chains)).astype(int)
            ids = [ids[i] for i in picks]
        size = self.args.chains
        rows = []
        for start in range(0, len(ids), size):  # batches of chains (memory), not copies
            positions, _ = self.play_chain(ids[start : start + size], mix_seed(seed, start), False)
            rows.append(torch.stack([p.returns for p in positions], dim=1))
        per = torch.cat(rows).numpy().astype(float)
        return Evaluation(returns=per.mean(0), per_teammate=per, checkpoints=ids)


# -- the experiment: `metaenvs train cheetah` ----------------------------------------------
VAL_SEED = 0
"""Seed of every validation (common random numbers across validations)."""
TEST_SEED = 1
"""Seed of the meta-test."""
METHOD_ORDER = ("meta_mapg", "meta_pg", "lola_dice", "reinforce")
"""Order of the methods in figures and tables (Figure 2d's)."""


def env_steps(learner: CheetahLearner) -> int:
    """Env steps of meta-training (chains x joint policies x K trajectories x H)."""
    a = learner.args
    return learner.iteration * a.chains * (a.length + 1) * a.k * a.horizon


def evaluate(learner: CheetahLearner, args: CheetahArgs, row: int) -> dict[str, float]:
    """Validation: ``val_score`` (the code's: the return summed over phi_1..phi_L) and
    ``val_r0 .. val_rL``, the mean episode return at each joint policy."""
    result = learner.evaluate("val", seed=VAL_SEED, max_chains=args.eval_chains)
    returns = result.returns
    per_position = {f"val_r{i}": float(r) for i, r in enumerate(returns)}
    return {"val_score": float(returns[1:].sum()), **per_position}


def eval_columns(args: CheetahArgs) -> tuple[str, ...]:
    """``val_score`` and ``val_r0`` .. ``val_rL``."""
    return ("val_score", *(f"val_r{i}" for i in range(args.length + 1)))


TRAIN_COLUMNS = (
    "train_score",
    "train_return_first",
    "train_return_last",
    "policy_loss",
    "value_loss",
    "grad_norm",
    "inner_lr_mean",
)
"""Train metrics of ``metrics.csv`` (means since the previous row; TensorBoard also gets
``train_return_<l>`` for every position): the return summed over phi_1..phi_L, at phi_0
and at phi_L, the losses, the mean per-chain gradient norm and the mean inner rate."""


def meta_test(context: RunContext) -> None:
    """Meta-test the best-by-validation state on the test teammates: ``test.json``
    (``returns`` per joint policy, ``per_teammate``, ``checkpoints``, ``best_iteration``,
    ``iterations``, ``wall_s``, ``test_s``), redone only when stale; ``chain.png``."""
    state, args, path = context.state, context.args, context.run_dir / "test.json"
    best, done = state.best, int(state.rows[-1]["iteration"])
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("iterations") == done and saved.get("best_iteration") == best["x"]:
            return
    learner = context.learner
    learner.load_state_dict(best["learner"])
    tick = time.perf_counter()
    result = learner.evaluate("test", seed=TEST_SEED)
    test = {
        "method": args.method,
        "seed": args.seed,
        "returns": result.returns.tolist(),
        "score": float(result.returns[1:].sum()),
        "per_teammate": result.per_teammate.tolist(),
        "checkpoints": [int(c) for c in result.checkpoints],
        "best_iteration": int(best["x"]),
        "best_val_score": float(best["value"]),
        "iterations": done,
        "wall_s": float(state.wall_s),
        "test_s": time.perf_counter() - tick,
        "test_seed": TEST_SEED,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(test, indent=2) + "\n")
    os.replace(tmp, path)
    plot_chain({args.method: [test]}, context.run_dir / "chain.png")


def plot_chain(results: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Figure 2d: the meta-agent's test return at each joint policy, mean and 95% t
    interval over seeds, one line per method."""
    from baselines._runs import figure, mean_ci95

    fig = figure(5.0, 3.6)
    ax = fig.subplots()
    methods = [m for m in METHOD_ORDER if m in results]
    for i, method in enumerate(methods + [m for m in results if m not in METHOD_ORDER]):
        seeds = results[method]
        mean, ci = mean_ci95(np.array([s["returns"] for s in seeds], dtype=float))
        x = np.arange(len(mean))
        ax.plot(
            x,
            mean,
            "o-",
            color=f"C{i}",
            label=f"{method} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})",
        )
        if len(seeds) > 1:
            ax.fill_between(x, mean - ci, mean + ci, color=f"C{i}", alpha=0.2, lw=0)
        ax.set_xticks(x, [rf"$\phi_{{{j}}}$" for j in x])
    ax.set_xlabel("joint policy")
    ax.set_ylabel("meta-agent's episode return (running right)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def last_validation(run: Any) -> dict[str, Any] | None:
    """A run's (``compare``'s ``RunResult``) last validation row in the form of
    ``test.json`` (``seed``, ``returns``, ``score``, ``iterations``, ``best_iteration``:
    the row's iteration); None before its first."""
    metrics = run.metrics
    rows = np.flatnonzero(np.isfinite(metrics.get("val_score", np.array([]))))
    if len(rows) == 0:
        return None
    row = rows[-1]
    length = sum(1 for c in metrics if c.startswith("val_r"))
    return {
        "seed": int(run.config["seed"]),
        "returns": [float(metrics[f"val_r{i}"][row]) for i in range(length)],
        "score": float(metrics["val_score"][row]),
        "iterations": int(metrics["iteration"][row]),
        "best_iteration": int(metrics["iteration"][row]),
    }


def report_test(exp_dir: Path, runs: dict[str, list[Any]]) -> list[Path]:
    """``compare``: ``adaptation.png`` (Figure 2d over every run with a ``test.json``) and
    ``adaptation.md`` (its numbers and the paper's claims,
    :mod:`baselines.peers.cheetah_report`)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for method, seeds in runs.items():
        files = [r.seed_dir / "test.json" for r in seeds]
        done = [json.loads(f.read_text()) for f in files if f.is_file()]
        if done:
            results[method] = done
    if not results:
        return []
    path = exp_dir / "adaptation.png"
    plot_chain(results, path)
    last = {}
    for method, seeds in runs.items():
        rows = [v for v in map(last_validation, seeds) if v is not None]
        if rows:
            last[method] = rows
    table = exp_dir / "adaptation.md"
    table.write_text(adaptation_markdown(results, METHOD_ORDER, last))
    return [path, table]


EXPERIMENT = Experiment(
    name="cheetah",
    description="Meta-MAPG, Meta-PG, LOLA-DiCE and REINFORCE with a learning teammate on "
    "2-Agent HalfCheetah (meta-mapg-learning-peers, Figure 2d).",
    args_cls=CheetahArgs,
    make_learner=CheetahLearner,
    methods=METHOD_ORDER,
    group_field="env",
    budget_field="iterations",
    every_field="eval_every",
    x_column="iteration",
    progress=lambda learner: learner.iteration,
    counters=lambda learner: {"iteration": learner.iteration, "env_steps": env_steps(learner)},
    train=lambda learner: learner.train_iteration(),
    evaluate=evaluate,
    train_columns=TRAIN_COLUMNS,
    eval_columns=eval_columns,
    score="val_score",
    score_label="validation return, phi_1..phi_L",
    env_steps=env_steps,
    cadence="multiples",
    best_by="val_score",
    finish=meta_test,
    report_hook=report_test,
    env_ids=lambda args: [args.env],
)


def main(argv: Sequence[str] | None = None) -> int:
    """``metaenvs train cheetah ...`` / ``metaenvs compare cheetah DIR``."""
    return experiment_main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
