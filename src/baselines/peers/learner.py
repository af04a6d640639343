"""Meta-agents against learning peers: Meta-MAPG, Meta-PG, LOLA-DiCE, REINFORCE and ablations.

Paper: meta-mapg-learning-peers, Algorithms 1-3, Theorem 1 (equation 6), appendices B-D, H.

One meta-training iteration (Algorithm 1), for C chains at once (the paper's parallel
threads), each with peers drawn from the train split:

1. Start from the meta-agent's initial parameters ``theta = phi_0``.
2. For every chain position ``l = 0 .. L``: play K trajectories with ``(phi_l, phi_l^-i)``
   (:class:`~meta_wrappers.peers.PeerChain`); the peers update themselves in the env;
   the meta-agent takes its inner step ``phi_{l+1} = phi_l + alpha_l grad J_DiCE(tau_l)``
   (policy gradient, linear feature baseline, learned ``alpha_l``).
3. Outer step on ``theta`` (and ``alpha``) from the terms of equation 6, estimated as in
   the authors' code: with GAE advantages ``A_l`` of the trajectories at position l,

   ``loss = - sum_{l=1..L} mean_k sum_t A_l,kt (log pi(tau_0 | theta)
   + sum_{l'=1..l} log pi(tau_l' | phi_l') + sum_{l'=1..l} log pi^-i(tau_l' | phi_l'^-i))``,
   the current-policy, own-learning and peer-learning terms,

   where ``phi_l'`` keeps its graph to theta through the inner steps, and
   ``phi_l'^-i`` is the peers' update replayed differentiably
   (:func:`~meta_wrappers.peers_torch.dice_peer_update`) with the meta-agent's
   log-probabilities among DiCE's stochastic nodes.  The per-chain gradients of the
   policy and of the inner rates are combined with PCGrad (separately) and clipped to
   ``max_grad_norm``; the value function (LSTM) is regressed on the discounted returns.
   How the terms are averaged, where the clip goes, whether each chain takes its own
   Adam step, which positions fit the value function and the entropy bonus are the
   :data:`PRESETS` ``"ours"`` and ``"paper"`` (the authors' code).
   ``estimator="sampled_chain"`` replaces this estimator by the score-function gradient
   of the chain as played (each earlier batch's whole log-probability times the later
   positions' discounted return less V(s_0), each round weighted by gamma^t; inner
   steps differentiated with their samples held fixed), unbiased with ``gae_lambda=1``;
   the authors' estimator is biased for that meta-value.

The methods are the terms they keep (:data:`METHODS`):

- ``meta_mapg``: all three terms.  ``meta_pg``: no peer-learning term (the peers'
  parameters are data).  ``no_own``: no own-learning term (the meta-agent's later
  log-probabilities leave the score; everything else, the learned inner rates included,
  is Meta-MAPG's).
- ``meta_mapg_om``: Meta-MAPG with opponent modelling (appendix B): the peers'
  parameters are not read; at each position they are the maximum-likelihood table of
  the peers' actions, and the peer-learning term differentiates one DiCE update of that
  model (the peers' learning rate is assumed known).
- ``reinforce``: the stationary policy gradient: every position's trajectories train
  ``theta`` on their own advantages, first-order through the inner steps
  (``phi_l = theta + stop_gradient(phi_l - theta)``), so neither learning process is
  modelled; adapts in the chain by the same inner step with a fixed rate.
- ``lola_dice``: trained like ``reinforce``, but its inner step in the chain is LOLA-DiCE
  (Foerster et al. 2018c): the gradient of its DiCE objective after ``lookahead`` DiCE
  updates of the peers (true parameters), evaluated on the same K trajectories.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import numpy as np
import torch

import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)
from baselines.peers.estimators import (
    discounted_returns,
    gae,
    model_opponent,
    pcgrad,
    project_conflicting,
)
from baselines.peers.nets import LSTMRunner, Params, init_lstm_net, per_chain, run_sequence
from baselines.peers.optim import OUTER_OPTIMIZERS, outer_optimizer
from baselines.peers.state import MetaAgentState, clip_rows, mix_seed, step_each
from meta_wrappers.peers import GAMES, PeerChain, PeerChainConfig, TrajectoryBatch
from meta_wrappers.peers_torch import (
    dice_objective,
    dice_peer_update,
    fit_baselines,
    mlp_tables,
    peer_baselines,
    score_surrogate,
    tabular_logprobs,
)
from metaenvs.config import check_choice
from metaenvs.games.matrix_profiles import matrix_profile


@dataclasses.dataclass(frozen=True)
class Method:
    """Which gradient terms a meta-agent keeps and how it adapts inside a chain."""

    outer: str
    """``"meta"`` (equation 6 terms) or ``"stationary"`` (each position on its own advantage)."""
    own: bool
    """Keep the own-learning term (the meta-agent's adapted log-probabilities in the score)."""
    peer: str | None
    """Peer-learning term from the ``"true"`` peers' parameters, a ``"modelled"`` one, or None."""
    inner: str = "pg"
    """Inner step in the chain: ``"pg"`` (policy gradient) or ``"lola"`` (LOLA-DiCE)."""


METHODS: dict[str, Method] = {
    "meta_mapg": Method("meta", own=True, peer="true"),
    "meta_pg": Method("meta", own=True, peer=None),
    "no_own": Method("meta", own=False, peer="true"),
    "meta_mapg_om": Method("meta", own=True, peer="modelled"),
    "lola_dice": Method("stationary", own=False, peer=None, inner="lola"),
    "reinforce": Method("stationary", own=False, peer=None),
}


PRESETS: dict[str, dict[str, Any]] = {
    "ours": {
        "entropy_weight": 0.0,
        "value_from": 0,
        "clip": "after_pcgrad",
        "averaging": "length",
        "outer_steps": "mean",
        "auc_from": 0,
    },
    "paper": {
        "entropy_weight": None,  # by game: IPD 0.5 (main.py's default), RPS 0 (rps.yaml)
        "value_from": 1,
        "clip": "before_pcgrad",
        "averaging": "positions",
        "outer_steps": "per_chain",
        "auc_from": 1,
    },
}
"""The outer loop's choices as this package makes them (``"ours"``) and as the authors'
code does (``"paper"``: ``meta/meta_agent.py``, ``trainer.py``, ``validator.py``,
``main.py`` and ``config/*.yaml`` of dkkim93/meta-mapg).  A field set explicitly
overrides its preset."""
_CHOICES: dict[str, tuple[Any, ...]] = {
    "value_from": (0, 1),
    "clip": ("before_pcgrad", "after_pcgrad"),
    "averaging": ("length", "positions"),
    "outer_steps": ("mean", "per_chain"),
    "auc_from": (0, 1),
}


@dataclasses.dataclass
class PeerArgs:
    """Settings of a meta-agent run (defaults: the paper's Tables 3 and 4)."""

    game: str = "ipd"
    """``"ipd"``, ``"rps"``, ``"rps_3p"`` or ``"rps_4p"``."""
    method: str = "meta_mapg"
    """One of :data:`METHODS`."""
    k: int = 64
    """Trajectories per joint policy K."""
    length: int = 7
    """Chain length L (L + 1 joint policies)."""
    horizon: int | None = None
    """Rounds per trajectory H (None: IPD 150, RPS 50)."""
    gamma: float | None = None
    """Discount of everyone (None: IPD 0.96, RPS 0.9)."""
    peer_lr: float = 1.0
    """The peers' inner learning rate."""
    distribution: str = "in"
    """Persona splits: ``"in"`` or ``"out"`` of distribution."""
    population_seed: int = 0
    """Seed of the persona population."""
    inner_lr: float | None = None
    """Initial inner learning rate alpha_l of the meta-agent (None: IPD 0.1, RPS 0.01)."""
    learn_inner_lr: bool = True
    """Learn one inner learning rate per chain position (methods with the own-learning term)."""
    actor_lr: float | None = None
    """Outer learning rate of the policy and of alpha (None: IPD 1e-4, RPS 1e-5)."""
    critic_lr: float | None = None
    """Learning rate of the value function (None: IPD 1.5e-4, RPS 1.5e-5)."""
    outer_optimizer: str = "shared_adam"
    """Optimiser of the policy, the inner rates and the value function (AMSGrad either
    way): ``"shared_adam"`` (the authors' ``SharedAdam``: eps 1e-3 added before the bias
    correction) or ``"adam"`` (PyTorch's Adam, eps 1e-8, which made this package's results
    before the authors' optimiser was adopted)."""
    gae_lambda: float = 0.95
    """GAE lambda of the outer loop."""
    hidden: int = 64
    """Units of the FC layer and of the LSTM (policy and value function)."""
    chains: int = 5
    """Chains (peers drawn from the train split) per meta-training iteration."""
    preset: str = "ours"
    """Fills the fields below left at None: ``"ours"`` (this package's choices) or
    ``"paper"`` (the authors' code, dkkim93/meta-mapg); see :data:`PRESETS`."""
    entropy_weight: float | None = None
    """Entropy bonus on the first joint policy's trajectories (paper: IPD 0.5, RPS 0)."""
    value_from: int | None = None
    """First chain position whose trajectories fit the value function (0 or 1)."""
    clip: str | None = None
    """Per-chain gradient-norm clip ``"before_pcgrad"`` or of the combined gradient
    ``"after_pcgrad"``."""
    averaging: str | None = None
    """Outer loss normalisation: ``"length"`` (the L policy terms / L, the value loss a
    mean over its fitted positions, the entropy term added as is) or ``"positions"``
    (the authors: every term, entropy and value included, summed over the L + 1
    positions and divided by L + 1)."""
    outer_steps: str | None = None
    """``"mean"``: one Adam step on the combined (PCGrad) gradient of all chains;
    ``"per_chain"``: each chain's projected gradient is its own Adam step, in chain
    order, for the policy, the inner rates and the value function (the authors'
    processes each step the shared optimiser)."""
    auc_from: int | None = None
    """First joint policy summed in the validation AUC that selects the checkpoint
    (0: phi_0..phi_L; 1: the paper's phi_1..phi_L)."""
    estimator: str = "authors"
    """Outer gradient of the ``"meta"`` methods: ``"authors"`` (the authors' code: DiCE
    inner steps, whose second derivatives carry the earlier trajectories' and the peers'
    dependence on theta, plus the per-round current-policy term; biased for the
    meta-value of the chain as played, see the docs) or ``"sampled_chain"`` (that
    meta-value's score-function gradient: every earlier batch's log-probability times
    the later positions' discounted return less V(s_0), each round of a batch weighted
    by gamma^t, the inner steps differentiated with their samples held fixed; unbiased
    with ``gae_lambda=1`` (an exact enumeration checks it); the peers' learning enters
    through the earlier batches' scores, so it is one method: ``meta_mapg`` only)."""
    max_grad_norm: float = 10.0
    """Gradient-norm clip of every outer update."""
    pcgrad: bool = True
    """Combine the chains' gradients of the policy and the inner rates (and, with
    ``outer_steps="per_chain"``, of the value function) with PCGrad (else their mean)."""
    lookahead: int = 1
    """LOLA-DiCE: DiCE updates of the peers looked ahead."""
    peer_model: str = "tabular"
    """The peers' policy: ``"tabular"`` or ``"mlp"`` (see :class:`PeerChainConfig`)."""
    peer_hidden: int = 8
    """Hidden units of ``"mlp"`` peers."""
    seed: int = 0
    """Seed of the initial parameters, of every rollout and of PCGrad's order."""
    iterations: int = 200
    """Budget of a run: meta-training iterations (the paper trains to convergence)."""
    eval_every: int = 20
    """Iterations between validations (at every multiple, and after the last iteration)."""
    eval_chains: int | None = None
    """Validate on this many personas spread evenly over the split (so over its kinds):
    faster, noisier model selection (None: all of them; the meta-test always uses all)."""

    def __post_init__(self) -> None:
        check_choice("outer_optimizer", self.outer_optimizer, OUTER_OPTIMIZERS)
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {self.preset!r}")
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"{name} must be one of {allowed} or None, got {value!r}")
        if self.entropy_weight is not None and self.entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {self.entropy_weight}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, got {self.method!r}")
        if self.estimator not in ("authors", "sampled_chain"):
            raise ValueError(
                f"estimator must be 'authors' or 'sampled_chain', got {self.estimator!r}"
            )
        if self.estimator == "sampled_chain" and self.method != "meta_mapg":
            raise ValueError(
                "estimator 'sampled_chain' estimates the gradient of the chain's meta-value, "
                "peer learning included (through the earlier batches' scores): use it with "
                f"method 'meta_mapg', not {self.method!r}"
            )
        if self.game not in GAMES:
            raise ValueError(f"game must be one of {GAMES}, got {self.game!r}")
        if self.chains < 1 or self.k < 1 or self.lookahead < 1:
            raise ValueError("chains, k and lookahead must be >= 1")
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.eval_chains is not None and self.eval_chains < 1:
            raise ValueError(f"eval_chains must be >= 1 or None, got {self.eval_chains}")
        self.chain_config("train")  # the env's own checks (horizon, gamma, peer_model, ...)

    def resolved(self) -> PeerArgs:
        """A copy with every None replaced by the paper's value for the game."""
        chain = PeerChainConfig(game=self.game, horizon=self.horizon, gamma=self.gamma)
        rates = matrix_profile(self.game).paper_rates  # Tables 3 and 4, one table per game
        preset = dict(PRESETS[self.preset])
        if preset["entropy_weight"] is None:  # the authors' main.py 0.5, rps.yaml 0
            preset["entropy_weight"] = 0.5 if self.game == "ipd" else 0.0
        fill = {"horizon": chain.horizon, "gamma": chain.gamma, **rates, **preset}
        changes = {k: v for k, v in fill.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **changes)

    def chain_config(self, split: str) -> PeerChainConfig:
        """The env's config for peers drawn from ``split``."""
        return PeerChainConfig(
            game=self.game,
            k=self.k,
            length=self.length,
            horizon=self.horizon,
            gamma=self.gamma,
            peer_lr=self.peer_lr,
            split=split,
            distribution=self.distribution,
            population_seed=self.population_seed,
            peer_model=self.peer_model,
            peer_hidden=self.peer_hidden,
        )


class Position(NamedTuple):
    """One joint policy of a played chain: the env's batch and the meta-agent's tensors."""

    batch: TrajectoryBatch
    meta_logprobs: torch.Tensor  # (C, K, H) log pi(a | s, phi_l), graph to theta
    entropy: torch.Tensor  # (C, K, H)
    peer_logprobs: torch.Tensor | None  # (C, K, H) summed over peers, graph to theta


class Evaluation(NamedTuple):
    """Meta-test of one split: every persona once (Algorithm 2)."""

    reward: np.ndarray  # (L + 1,) the meta-agent's mean reward per round at each position
    peer_reward: np.ndarray  # (L + 1,) the peers' mean reward per round
    auc: float  # sum of ``reward`` over the chain, phi_0..phi_L
    auc_paper: float  # the paper's AUC: sum over phi_1..phi_L (the adapted policies only)
    meta_actions: np.ndarray  # (L + 1, A) the meta-agent's action frequencies
    peer_actions: np.ndarray  # (L + 1, A) the peers' action frequencies
    reward_by_kind: dict[str, np.ndarray]  # kind of the first peer's persona -> (L + 1,)


class PeerMetaLearner(MetaAgentState):
    """A meta-agent of one of :data:`METHODS` (see the module docstring).

    Parameters
    ----------
    args : PeerArgs
    """

    def __init__(self, args: PeerArgs) -> None:
        self.args = args = args.resolved()
        self.method = METHODS[args.method]
        self.chains = {"train": PeerChain(args.chain_config("train"))}
        chain = self.chains["train"]
        self.n_states, self.n_actions = chain.n_states, chain.n_actions
        gen = torch.Generator().manual_seed(args.seed)
        self.actor = {
            k: v.requires_grad_()
            for k, v in init_lstm_net(self.n_states, self.n_actions, args.hidden, gen).items()
        }
        self.value = {
            k: v.requires_grad_()
            for k, v in init_lstm_net(self.n_states, 1, args.hidden, gen).items()
        }
        self.inner_lr = torch.full((args.length,), float(args.inner_lr), requires_grad=True)
        self.learns_inner_lr = args.learn_inner_lr and self.method.outer == "meta"
        # the code: SharedAdam for all three, alpha at the actor's outer rate
        self.actor_opt = outer_optimizer(args.outer_optimizer, self.actor.values(), args.actor_lr)
        self.lr_opt = outer_optimizer(args.outer_optimizer, [self.inner_lr], args.actor_lr)
        if chain.hidden:
            self.to_table = functools.partial(
                mlp_tables, n_states=chain.n_states, n_actions=chain.n_actions, hidden=chain.hidden
            )
        else:
            self.to_table = None
        self.value_opt = outer_optimizer(args.outer_optimizer, self.value.values(), args.critic_lr)
        self.iteration = 0

    # -- chains ------------------------------------------------------------------------
    def chain(self, split: str) -> PeerChain:
        """The env drawing peers from ``split`` (built once)."""
        if split not in self.chains:
            self.chains[split] = PeerChain(
                self.args.chain_config(split), self.chains["train"].population
            )
        return self.chains[split]

    def play_chain(
        self, chain: PeerChain, seed: int, personas: np.ndarray | None = None, train: bool = True
    ) -> tuple[list[Position], dict[str, torch.Tensor]]:
        """Play one chain per row of ``personas`` (or ``args.chains`` drawn ones).

        A pure function of the parameters and ``seed``.  With ``train`` the tensors keep
        the graph the outer loss needs; the returned dict holds the per-chain leaf
        copies of theta (and alpha) whose gradients are the per-chain gradients.
        """
        args = self.args
        peer_term = None if args.estimator == "sampled_chain" else self.method.peer
        n_chains = args.chains if personas is None else len(personas)
        state = chain.reset(n_chains, seed, personas)
        gen = torch.Generator().manual_seed(seed)
        leaves = {k: v.detach().repeat(n_chains, *[1] * v.dim()) for k, v in self.actor.items()}
        leaves["inner_lr"] = self.inner_lr.detach().repeat(n_chains, 1)
        for v in leaves.values():
            v.requires_grad_(train)
        theta = {k: v for k, v in leaves.items() if k != "inner_lr"}
        phi = theta if train else {k: v.detach().requires_grad_() for k, v in theta.items()}
        peers: torch.Tensor | None = None  # phi_l^-i with its graph (peer-learning term)
        positions: list[Position] = []
        for position in range(args.length + 1):
            meta_lp, entropy, batch = self.rollout(chain, state, phi, gen)
            peer_lp = None
            if train and peer_term == "true" and peers is None:
                peers = self.true_peers(batch)
            if train and peers is not None:
                to_table = self.to_table if peer_term == "true" else None
                peer_lp = self.peer_logprobs(peers, batch, to_table)
            positions.append(Position(batch, meta_lp, entropy, peer_lp))
            if position == args.length:
                break
            if train and peer_term == "true":
                peers = self.replay_peer_update(peers, batch, meta_lp, self.to_table)
            elif train and peer_term == "modelled":
                modelled = np.stack(
                    [
                        model_opponent(batch.states, batch.actions[..., p + 1], *self.shape)
                        for p in range(chain.n_peers)
                    ],
                    axis=1,
                )
                peers = torch.tensor(modelled, dtype=torch.float32, requires_grad=True)
                peers = self.replay_peer_update(peers, batch, meta_lp, to_table=None)
            lr = leaves["inner_lr"][:, position]
            phi = self.inner_step(phi, theta, lr, batch, meta_lp, peer_lp, train)
        return positions, leaves

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_states, self.n_actions

    def rollout(
        self, chain: PeerChain, state: Any, phi: Params, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, TrajectoryBatch]:
        """Play the K trajectories of one joint policy with the meta-agent's ``phi``.

        Actions are sampled from detached logits; log-softmax, log-probabilities and
        entropy run once over the stacked logits (small: stacking the hidden states
        instead would make every second-order backward zero-fill them once per round).
        """
        n_chains, n_traj = state.game_state.shape
        runner = LSTMRunner(phi, n_traj)
        states = torch.zeros(n_chains, n_traj, dtype=torch.long)
        logits, taken = [], []
        out = None
        for _ in range(self.args.horizon):
            logits.append(runner(states))
            with torch.no_grad():
                probs = torch.softmax(logits[-1], dim=-1)
            u = torch.rand(n_chains, n_traj, 1, generator=gen)
            actions = (u > probs.cumsum(-1)).sum(-1).clamp_max(self.n_actions - 1)
            taken.append(actions)
            out = chain.step(state, actions.numpy())
            states = torch.from_numpy(state.game_state.copy())
        logp = torch.log_softmax(torch.stack(logits, dim=2), dim=-1)  # (C, K, H, A)
        logprobs = logp.gather(-1, torch.stack(taken, dim=-1)[..., None])[..., 0]
        entropies = -(logp.exp() * logp).sum(-1)
        return logprobs, entropies, out.batch

    def true_peers(self, batch: TrajectoryBatch) -> torch.Tensor:
        """The peers' parameters ``phi_l^-i`` of a batch as a leaf (tables if tabular)."""
        params = batch.peer_logits if self.to_table is None else batch.peer_params
        return torch.tensor(params, dtype=torch.float32, requires_grad=True)

    def peer_logprobs(
        self, peers: torch.Tensor, batch: TrajectoryBatch, to_table: Any = None
    ) -> torch.Tensor:
        """``sum_p log pi^p(a^p | s, peers[:, p])`` along the batch, ``(C, K, H)``."""
        tables = peers if to_table is None else to_table(peers)
        return sum(
            tabular_logprobs(tables[:, p], batch.states, batch.actions[..., p + 1])
            for p in range(peers.shape[1])
        )

    def replay_peer_update(
        self, peers: torch.Tensor, batch: TrajectoryBatch, meta_lp: torch.Tensor, to_table: Any
    ) -> torch.Tensor:
        """The peers' next parameters as a function of the meta-agent's (DiCE)."""
        args = self.args
        baseline = batch.baseline
        if not baseline.any():  # the env did not update (frozen peers): fit the baselines here
            baseline = peer_baselines(batch.states, batch.rewards, args.gamma, self.n_states)
        return dice_peer_update(
            peers, batch.states, batch.actions, batch.rewards, baseline,
            args.peer_lr, args.gamma, meta_logprobs=meta_lp, to_table=to_table,
        )  # fmt: skip

    def inner_step(
        self,
        phi: Params,
        theta: Params,
        lr: torch.Tensor,
        batch: TrajectoryBatch,
        meta_lp: torch.Tensor,
        peer_lp: torch.Tensor | None,
        train: bool,
    ) -> Params:
        """``phi_{l+1} = phi_l + alpha_l grad J_DiCE(tau_l)`` (LOLA-DiCE: after a lookahead)."""
        args, method = self.args, self.method
        rewards = batch.rewards[..., 0]
        baseline = torch.tensor(fit_baselines(batch.states, rewards, args.gamma, self.n_states))
        nodes = meta_lp
        if method.inner == "lola":
            peers = self.true_peers(batch)
            for _ in range(args.lookahead):
                peers = self.replay_peer_update(peers, batch, meta_lp, self.to_table)
            nodes = meta_lp + self.peer_logprobs(peers, batch, self.to_table)
        elif peer_lp is not None:
            nodes = meta_lp + peer_lp
        rewards_t = torch.tensor(rewards, dtype=torch.float32)
        if args.estimator == "sampled_chain":  # the step's Jacobian with its samples held fixed
            objective = score_surrogate(meta_lp, rewards_t, baseline.float(), args.gamma)
        else:
            objective = dice_objective(nodes, nodes, rewards_t, baseline.float(), args.gamma)
        keep_graph = train and method.outer == "meta"
        grads = torch.autograd.grad(
            objective.sum(), list(phi.values()), create_graph=keep_graph, retain_graph=train
        )
        new = {}
        for (name, value), grad in zip(phi.items(), grads):
            step = lr.reshape(-1, *[1] * (value.dim() - 1)) * grad
            if keep_graph:
                new[name] = value + step
            elif train:  # first order: theta + stop_gradient(phi_{l+1} - theta)
                new[name] = theta[name] + (value + step - theta[name]).detach()
            else:
                new[name] = (value + step).detach().requires_grad_()
        return new

    # -- meta-training -----------------------------------------------------------------
    def outer_losses(
        self, positions: list[Position], value: Params | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-chain policy loss ``(C,)`` (equation 6 or stationary) and value loss ``(C,)``.

        ``value``: per-chain copies of the value function's parameters (leading axis C),
        or None to run the shared parameters on all chains as one batch.
        """
        args, method = self.args, self.method
        rewards = torch.tensor(
            np.stack([p.batch.rewards[..., 0] for p in positions], axis=1), dtype=torch.float32
        )  # (C, L + 1, K, H)
        states = torch.from_numpy(np.stack([p.batch.states for p in positions], axis=1))
        n_chains, n_pos, n_traj, horizon = states.shape
        if value is None:
            values = run_sequence(per_chain(self.value, 1), states.reshape(1, -1, horizon))
        else:
            values = run_sequence(value, states.reshape(n_chains, n_pos * n_traj, horizon))
        values = values.reshape(n_chains, n_pos, n_traj, horizon)
        advantages = gae(rewards, values.detach(), args.gamma, args.gae_lambda)
        returns = discounted_returns(rewards, args.gamma)
        errors = (values - returns).square().mean(dim=(2, 3))
        fitted = errors[:, args.value_from :]  # (C, positions fitted)
        positions_avg = args.averaging == "positions"
        value_loss = fitted.sum(1) / n_pos if positions_avg else fitted.mean(1)
        terms = torch.zeros(n_chains)
        if args.estimator == "sampled_chain":
            # d/dtheta E[sum_l mean_k sum_t gamma^t r_l,kt]: batch l' < l moved phi_l (and
            # the peers), so its whole log-probability scores position l's discounted
            # return less V(s_0); batch l's own rounds score gamma^t times their advantage
            # (unbiased with lambda = 1; GAE's lambda < 1 trades bias for variance)
            discount = args.gamma ** torch.arange(horizon, dtype=rewards.dtype)
            baseline_start = values.detach()[:, :, :, 0]
            earlier = torch.zeros(n_chains)
            for step, pos in enumerate(positions):
                if step > 0:
                    start = (returns[:, step, :, 0] - baseline_start[:, step]).mean(-1)
                    own = pos.meta_logprobs * discount * advantages[:, step]
                    terms = terms - earlier * start - own.sum(-1).mean(-1)
                earlier = earlier + pos.meta_logprobs.sum(dim=(-1, -2))
            n_terms = max(args.length, 1)
        elif method.outer == "meta":
            score = positions[0].meta_logprobs
            for step, pos in enumerate(positions[1:], start=1):
                if method.own:
                    score = score + pos.meta_logprobs
                if pos.peer_logprobs is not None:
                    score = score + pos.peer_logprobs
                terms = terms - (score * advantages[:, step]).sum(-1).mean(-1)
            n_terms = max(args.length, 1)
        else:
            for step, pos in enumerate(positions):
                terms = terms - (pos.meta_logprobs * advantages[:, step]).sum(-1).mean(-1)
            n_terms = n_pos
        entropy = args.entropy_weight * positions[0].entropy.sum(-1).mean(-1)
        loss = (terms - entropy) / n_pos if positions_avg else terms / n_terms - entropy
        return loss, value_loss

    def train_iteration(self) -> dict[str, float]:
        """One outer update from ``args.chains`` chains; returns training metrics."""
        args = self.args
        seed = mix_seed(args.seed, self.iteration)
        positions, leaves = self.play_chain(self.chains["train"], seed, train=True)
        n_chains = args.chains
        value = None
        if args.outer_steps == "per_chain":  # per-chain value gradients, like the policy's
            value = {
                k: v.detach().repeat(n_chains, *[1] * v.dim()).requires_grad_()
                for k, v in self.value.items()
            }
        loss, value_loss = self.outer_losses(positions, value)
        names = list(self.actor) + ["inner_lr"]
        grads = torch.autograd.grad(loss.sum(), [leaves[n] for n in names], allow_unused=True)
        flat = {
            n: (torch.zeros_like(leaves[n]) if g is None else g).reshape(n_chains, -1)
            for n, g in zip(names, grads)
        }
        actor_grads = torch.cat([flat[n] for n in self.actor], dim=1)
        gen = torch.Generator().manual_seed(seed)
        self._outer_step(self.actor_opt, list(self.actor.values()), actor_grads, gen)
        if self.learns_inner_lr:
            self._outer_step(self.lr_opt, [self.inner_lr], flat["inner_lr"], gen)
        # ours: one gradient of the mean loss, no PCGrad; paper: one per chain, like the policy's
        shared = value is None
        value_params = self.value if shared else value
        value_grads = torch.autograd.grad(
            value_loss.mean() if shared else value_loss.sum(), list(value_params.values())
        )
        rows = 1 if shared else n_chains
        per_chain_value = torch.cat([g.reshape(rows, -1) for g in value_grads], dim=1)
        self._outer_step(
            self.value_opt, list(self.value.values()), per_chain_value, None if shared else gen
        )
        self.iteration += 1
        rewards = np.stack([p.batch.rewards[..., 0].mean(axis=(1, 2)) for p in positions], axis=1)
        return {
            "train_auc": float(rewards.mean(0).sum()),
            "train_reward_first": float(rewards[:, 0].mean()),
            "train_reward_last": float(rewards[:, -1].mean()),
            "policy_loss": float(loss.mean().item()),
            "value_loss": float(value_loss.mean().item()),
            "grad_norm": float(actor_grads.mean(0).norm().item()),
            "inner_lr_mean": float(self.inner_lr.mean().item()),
        }

    def _outer_step(
        self,
        optimizer: torch.optim.Optimizer,
        targets: list[torch.Tensor],
        per_chain: torch.Tensor,
        gen: torch.Generator | None,
    ) -> None:
        """Adam step(s) of one parameter group from its per-chain gradients ``(C, D)``.

        ``args.clip`` clips each chain's gradient before PCGrad or the combined one
        after; ``args.outer_steps`` takes one step on the combination (PCGrad's mean,
        or the plain mean without ``args.pcgrad`` or ``gen``) or one per chain, each on
        that chain's projected gradient.
        """
        args = self.args
        if not torch.isfinite(per_chain).all():
            raise FloatingPointError(
                f"non-finite outer gradient at iteration {self.iteration}; lower the learning "
                "rates or the peers' learning rate"
            )
        if args.clip == "before_pcgrad":
            per_chain = clip_rows(per_chain, args.max_grad_norm)
        project = args.pcgrad and gen is not None
        if args.outer_steps == "per_chain":
            steps = list(project_conflicting(per_chain, gen) if project else per_chain)
        else:
            steps = [pcgrad(per_chain, gen) if project else per_chain.mean(0)]
        if args.clip == "after_pcgrad":
            steps = [s * min(1.0, args.max_grad_norm / (s.norm().item() + 1e-12)) for s in steps]
        step_each(optimizer, targets, steps)

    # -- meta-testing ------------------------------------------------------------------
    def evaluate(self, split: str, seed: int = 0, max_chains: int | None = None) -> Evaluation:
        """Meta-test on every persona of ``split`` once (Algorithm 2), all chains batched.

        With several peers, peer p of chain c is persona ``ids[(c + p * stride) % n]``
        of the split, so every persona plays and the tuples differ.
        """
        chain = self.chain(split)
        ids = chain.pool
        if max_chains is not None and max_chains < len(ids):  # spread over the kinds
            ids = ids[np.round(np.linspace(0, len(ids) - 1, max_chains)).astype(int)]
        stride = max(1, len(ids) // chain.n_peers)
        personas = np.stack(
            [ids[(np.arange(len(ids)) + p * stride) % len(ids)] for p in range(chain.n_peers)],
            axis=1,
        )
        positions, _ = self.play_chain(chain, mix_seed(seed, 10**6 + 7), personas, train=False)
        a = self.n_actions
        reward = np.array([p.batch.rewards[..., 0].mean() for p in positions])
        peer_reward = np.array([p.batch.rewards[..., 1:].mean() for p in positions])
        meta_freq = np.stack(
            [np.bincount(p.batch.actions[..., 0].ravel(), minlength=a) for p in positions]
        )
        peer_freq = np.stack(
            [np.bincount(p.batch.actions[..., 1:].ravel(), minlength=a) for p in positions]
        )
        kinds = np.array(chain.population.kinds)[personas[:, 0]]
        per_chain = np.stack([p.batch.rewards[..., 0].mean(axis=(1, 2)) for p in positions], 1)
        by_kind = {str(k): per_chain[kinds == k].mean(0) for k in np.unique(kinds)}
        return Evaluation(
            reward_by_kind=by_kind,
            reward=reward,
            peer_reward=peer_reward,
            auc=float(reward.sum()),
            auc_paper=float(reward[1:].sum()),
            meta_actions=meta_freq / meta_freq.sum(1, keepdims=True),
            peer_actions=peer_freq / peer_freq.sum(1, keepdims=True),
        )
