"""A learned learning rule: PPO with one policy shared by all neurons (neurons-as-agents, sec. 2).

The draft's meta-learner: "in order to improve the policy, we use PPO on the loss from each
episode of learning".  Every neuron of every network acts with the same Gaussian policy on
its own observation (the learned rule); an iteration runs ``networks`` inner training runs
of ``horizon`` updates each (new teachers, new initial weights), then takes PPO epochs on
all (network, neuron, update) samples.  Each neuron's reward is the shared minus the loss,
so the meta-objective is the area under the loss curve of an inner run.

:class:`NeuronLearner` is one run of ``metaenvs train neurons`` (method ``ppo``: this
learner; ``sgd``, ``np``, ``wp``: the reference rules of :mod:`baselines.neurons.rules`,
which do not train and are evaluated at the same iterations; ``none``: zero actions).

Choices the draft leaves open: the inner run's end is terminal (the meta-objective is the
finite sum; no bootstrap past T), gamma 1 with GAE lambda 0.95; observations normalised
by running mean and variance, the statistics frozen during a rollout and updated after it
(so the PPO epochs see the inputs the behaviour policy saw); the log-probability and
entropy count only a neuron's real outgoing weights (its ``mask`` columns); a small
initial exploration noise (random weight changes only hurt the inner run).  The policy
(``policy``): ``"synapse"`` (default) applies one small network to each outgoing weight
of a neuron, on the neuron's own columns (layer, progress, loss, the two global
perturbation signals, its activity) and that weight's columns (weight, node trace,
weight noise), so that node and weight perturbation, ``signal x trace_j``, are a
function of two of its 12 inputs; ``"neuron"`` (the pilot's) maps the whole observation
to the D actions at once.  The value function always reads the whole observation.
Evaluation: the policy's mean action on held-out networks (teachers and initial weights
from seeds disjoint from training; on digits, the held-out test split).

Run::

    metaenvs train neurons --methods ppo sgd np wp --seeds 0 1 2 --iterations 300
    python -m baselines.neurons.ppo --iterations 100 --out runs/neurons_ppo  # one run, JSON
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import baselines._torch  # noqa: F401 - optimisers without torch._dynamo
import metaenvs
from baselines.neurons.rules import RULES, LearningRule, run_rule
from metaenvs.config import check_choice, check_float, check_int
from metaenvs.games.neurons import NeuronsCore, NeuronsState

METHODS = ("ppo", "sgd", "np", "wp", "none")
"""``ppo``: the learned rule; the reference rules (no training); ``none``: zero actions."""
POLICIES = ("synapse", "neuron")
INITS = ("none", "np")
FIT_STEPS = 1000
"""Adam steps (3e-3, minibatches of 512 samples) of :func:`fit_to_rule`."""
EVAL_SEED = 1_000_000_000
"""Held-out networks (teachers, initial weights) use seeds from here; training seeds stay
below it."""
MAX_SEED = 999
"""Largest run seed: the inner runs of iteration i of seed s use env seed ``s * 10^6 + i``."""
GLOBAL_COLUMNS = ("layer", "progress", "loss", "node_signal", "weight_signal",
                  "activity_mean", "activity_std")  # fmt: skip
"""A neuron's own columns, which the synapse policy reads beside each weight's."""
SYNAPSE_COLUMNS = ("weights", "node_trace", "weight_noise")
"""The per-weight columns of the synapse policy (column j: outgoing weight j)."""


@dataclasses.dataclass(frozen=True)
class NeuronArgs:
    """Configuration of one run: a rule meta-trained by PPO, or a reference rule."""

    env: str = "neurons_teacher"
    """The env id (a ``neurons`` id: its task and network)."""
    method: str = "ppo"
    """The rule: ``ppo`` (learned), ``sgd``, ``np``, ``wp`` (reference) or ``none``."""
    seed: int = 0
    """Seed of the run (training networks, torch, held-out networks), 0 .. 999."""
    horizon: int = 50
    """Updates per inner training run (episode), in training and evaluation."""
    networks: int = 16
    """Inner runs per PPO iteration (the batch B)."""
    iterations: int = 300
    """Budget: PPO iterations (the reference rules only count them)."""
    eval_every: int = 25
    """Iterations between evaluations."""
    eval_networks: int = 32
    """Held-out inner runs per evaluation (the same networks at every row of a run)."""
    policy: str = "synapse"
    """``synapse``: one network per outgoing weight (shared); ``neuron``: the whole
    observation to all D actions (the pilot's)."""
    lr: float = 3e-4
    """Adam learning rate of the policy and value networks."""
    epochs: int = 4
    """PPO epochs per iteration."""
    minibatches: int = 8
    """Minibatches per epoch."""
    clip: float = 0.2
    """PPO ratio clip."""
    gae_lambda: float = 0.95
    """GAE lambda (gamma is 1: the inner run's loss curve, summed)."""
    vf_coef: float = 0.5
    """Weight of the value loss (itself half the squared error, as CleanRL's)."""
    max_grad_norm: float = 0.5
    """Gradient clipping."""
    hidden: int = 32
    """Width of the two hidden layers of the policy and value networks."""
    init: str = "none"
    """The policy's mean at iteration 0: ``none`` (near zero: a last layer of gain 0.01,
    no learning) or ``np``, fitted by regression to node perturbation's actions (rate
    ``lr_np``) on ``networks`` training inner runs (:func:`fit_to_rule`), so that PPO
    refines a rule that already learns."""
    init_log_std: float = -3.0
    """Initial log standard deviation of the actions (an action of 1 changes a weight by
    the env's ``action_scale``)."""
    lr_sgd: float = 0.1
    """Learning rate of the reference SGD."""
    lr_np: float = 0.005
    """SGD-equivalent learning rate of node perturbation (:mod:`baselines.neurons.rules`)."""
    lr_wp: float = 0.005
    """SGD-equivalent learning rate of weight perturbation."""

    def __post_init__(self) -> None:
        if metaenvs.spec(self.env).family != "neurons":  # UnknownEnvError for unknown ids
            raise ValueError(f"env must be a neurons id, got {self.env!r}")
        check_choice("method", self.method, METHODS)
        check_choice("policy", self.policy, POLICIES)
        check_choice("init", self.init, INITS)
        for name in ("horizon", "networks", "iterations", "eval_every", "eval_networks",
                     "epochs", "minibatches", "hidden"):  # fmt: skip
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        if self.seed > MAX_SEED:
            raise ValueError(f"seed must be at most {MAX_SEED}, got {self.seed}")
        if self.iterations >= 999_999:  # seed s x 10^6 + 999,999 is the init fit's
            raise ValueError(f"iterations must be below 999,999, got {self.iterations}")
        for name in ("lr", "clip", "max_grad_norm", "lr_sgd", "lr_np", "lr_wp"):
            check_float(name, getattr(self, name))
        check_float("vf_coef", self.vf_coef, strict=False)
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError(f"gae_lambda must be in [0, 1], got {self.gae_lambda}")
        if not np.isfinite(self.init_log_std):
            raise ValueError(f"init_log_std must be finite, got {self.init_log_std}")


Args = NeuronArgs
"""The pilot's name of :class:`NeuronArgs`."""


class RunningNorm:
    """Running mean and variance of observations (Chan's parallel update), for scaling."""

    def __init__(self, dim: int) -> None:
        self.mean, self.var, self.count = np.zeros(dim), np.ones(dim), 1e-4

    def update(self, x: np.ndarray) -> None:
        """Fold in a batch ``(n, dim)``."""
        mean, var, n = x.mean(axis=0), x.var(axis=0), len(x)
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + var * n + delta**2 * self.count * n / total
        self.var, self.count = m2 / total, total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -10.0, 10.0)

    def state_dict(self) -> dict[str, Any]:
        """As tensors (checkpoints load with ``weights_only=True``)."""
        return {"mean": torch.tensor(self.mean), "var": torch.tensor(self.var),
                "count": float(self.count)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = torch.as_tensor(state["mean"]).double().numpy().copy()
        self.var = torch.as_tensor(state["var"]).double().numpy().copy()
        self.count = float(state["count"])


def _mlp(inputs: int, hidden: int, out: int, gain: float) -> nn.Sequential:
    """Two tanh layers (PyTorch's default init) and a last layer orthogonal with ``gain``."""
    last = nn.Linear(hidden, out)
    nn.init.orthogonal_(last.weight, gain)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                         nn.Tanh(), last)  # fmt: skip


class Rule(nn.Module):
    """The learned rule: a Gaussian policy and a value function on one neuron's observation.

    Parameters
    ----------
    obs_dim, act_dim : int
        The env's observation width and D.
    hidden : int
        Width of the hidden layers.
    init_log_std : float
        Initial log standard deviation of every action.
    layout : dict of slice, optional
        ``core.obs_slices``; with it the policy is ``"synapse"`` (one network on each
        weight's columns and the neuron's own, one log std), without it ``"neuron"``.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: int,
        init_log_std: float,
        layout: dict[str, slice] | None = None,
    ) -> None:
        super().__init__()
        self.act_dim = act_dim
        if layout is None:
            self.own: list[int] | None = None
            self.mean_net = _mlp(obs_dim, hidden, act_dim, 0.01)
            self.log_std = nn.Parameter(torch.full((act_dim,), init_log_std))
        else:
            self.own = [i for c in GLOBAL_COLUMNS for i in range(obs_dim)[layout[c]]]
            starts = [layout[c].start for c in SYNAPSE_COLUMNS]
            self.per_weight = [[s + j for s in starts] for j in range(act_dim)]
            self.mean_net = _mlp(len(self.own) + len(starts), hidden, 1, 0.01)
            self.log_std = nn.Parameter(torch.full((1,), init_log_std))
        self.value = _mlp(obs_dim, hidden, 1, 1.0)

    def mean(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean actions ``(..., D)`` of normalised observations ``(..., obs_dim)``; the
        synapse policy gives 0 past a neuron's fan-out (``mask (..., D)``, the raw mask
        columns; the neuron policy ignores it, as the env ignores those actions)."""
        if self.own is None:
            return self.mean_net(obs)
        lead, d = obs.shape[:-1], self.act_dim
        own = obs[..., self.own].unsqueeze(-2).expand(*lead, d, len(self.own))
        weights = obs[..., torch.tensor(self.per_weight)]  # (..., D, 3)
        x = torch.cat([own, weights], -1).reshape(-1, own.shape[-1] + weights.shape[-1])
        real = (mask > 0).reshape(-1)
        out = obs.new_zeros(len(x))
        out[real] = self.mean_net(x[real])[:, 0]
        return out.reshape(*lead, d)

    def std(self) -> torch.Tensor:
        """Standard deviations ``(D,)``."""
        return self.log_std.exp().expand(self.act_dim)

    def log_prob(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and entropy, over the real weights (``mask``)."""
        dist = torch.distributions.Normal(self.mean(obs, mask), self.std())
        return (dist.log_prob(actions) * mask).sum(-1), (dist.entropy() * mask).sum(-1)


class LearnedRule:
    """The trained policy as a learning rule of the env (mean action), like those of
    :mod:`baselines.neurons.rules`."""

    def __init__(self, rule: Rule, norm: RunningNorm) -> None:
        self.rule, self.norm = rule, norm

    def __call__(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        raw = core.observe(state)
        obs = torch.as_tensor(self.norm(raw), dtype=torch.float32)
        mask = torch.as_tensor(raw[..., core.obs_slices["mask"]])
        with torch.no_grad():
            return np.clip(self.rule.mean(obs, mask).numpy(), -1.0, 1.0).astype(np.float32)


def no_learning(core: NeuronsCore, state: NeuronsState) -> np.ndarray:
    """Zero actions: the network keeps its initial weights."""
    return np.zeros((state.batch, core.n_agents, core.width), dtype=np.float32)


def rollout(
    core: NeuronsCore,
    rule: Rule,
    norm: RunningNorm,
    batch: int,
    seed: int,
    gen: torch.Generator | None = None,
) -> dict[str, np.ndarray]:
    """One inner run of every network with the stochastic policy: arrays ``(T, B, K, ...)``.

    ``"obs"`` are the normalised observations the policy acted on (``norm`` as it is
    now), ``"raw"`` the env's, ``"mask"`` the real-weight columns.
    """
    horizon = core.config.horizon
    state = core.reset(batch, seed)
    raw, normed, actions, logps, values, rewards = [], [], [], [], [], []
    mask_cols = core.obs_slices["mask"]
    for _ in range(horizon):
        obs = core.observe(state).copy()
        raw.append(obs)
        x = torch.as_tensor(norm(obs), dtype=torch.float32)
        normed.append(x.numpy())
        mask = torch.as_tensor(obs[..., mask_cols])
        with torch.no_grad():
            mean, std = rule.mean(x, mask), rule.std()
            action = mean + std * torch.randn(mean.shape, generator=gen)
            logp = (torch.distributions.Normal(mean, std).log_prob(action) * mask).sum(-1)
            values.append(rule.value(x)[..., 0].numpy())
        actions.append(action.numpy())
        logps.append(logp.numpy())
        result = core.step(state, np.clip(action.numpy(), -1.0, 1.0))
        rewards.append(result.reward.copy())
    raw_obs = np.stack(raw)
    return {
        "obs": np.stack(normed),
        "raw": raw_obs,
        "mask": raw_obs[..., mask_cols],
        "actions": np.stack(actions),
        "logp": np.stack(logps),
        "values": np.stack(values),
        "rewards": np.stack(rewards),
        "test_loss": result.info["test_loss"].copy(),
    }


def fit_to_rule(
    rule: Rule,
    norm: RunningNorm,
    core: NeuronsCore,
    reference: LearningRule,
    batch: int,
    seed: int,
    steps: int = FIT_STEPS,
    gen: torch.Generator | None = None,
) -> float:
    """Fit the policy's mean to a reference rule's actions (supervised, in place).

    Runs ``reference`` on ``batch`` inner runs from env seed ``seed``, adds their
    observations to ``norm``, then takes ``steps`` Adam steps (3e-3, minibatches of 512
    neuron-updates) on the squared error of the mean over each neuron's real weights.
    The log std and the value function are left as they are.

    Returns
    -------
    float
        The fit's R^2 on its own data (1 - residual / variance, real weights only).
    """
    state, xs, ys = core.reset(batch, seed), [], []
    for _ in range(core.config.horizon):
        xs.append(core.observe(state).copy())
        ys.append(reference(core, state))
        core.step(state, ys[-1])
    raw = np.concatenate(xs).reshape(-1, xs[0].shape[-1])
    norm.update(raw)
    x = torch.as_tensor(norm(raw), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate(ys).reshape(-1, core.width))
    m = torch.as_tensor(raw[:, core.obs_slices["mask"]])
    optimiser = torch.optim.Adam(rule.mean_net.parameters(), lr=3e-3)
    for _ in range(steps):
        i = torch.randint(len(x), (512,), generator=gen)
        loss = (((rule.mean(x[i], m[i]) - y[i]) * m[i]) ** 2).sum() / m[i].sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        real = m > 0
        residual = ((rule.mean(x, m) - y)[real] ** 2).mean()
        return 1.0 - float(residual / y[real].var())


def advantages(rewards: np.ndarray, values: np.ndarray, lam: float) -> np.ndarray:
    """GAE with gamma 1, the last update terminal: ``(T, ...)`` like ``rewards``."""
    adv = np.zeros_like(values)
    last = np.zeros_like(values[0])
    for t in range(len(rewards) - 1, -1, -1):
        next_value = values[t + 1] if t + 1 < len(rewards) else 0.0
        delta = rewards[t] + next_value - values[t]
        last = delta + lam * last
        adv[t] = last
    return adv


def ppo_update(
    rule: Rule,
    optimiser: torch.optim.Optimizer,
    data: dict[str, np.ndarray],
    args: NeuronArgs,
    gen: torch.Generator | None = None,
    scale: float = 1.0,
) -> dict[str, float]:
    """PPO epochs over every (update, network, neuron) sample of one rollout (CleanRL's
    ``ppo_continuous_action`` update: GAE, advantages normalised per minibatch, clipped
    ratio, half squared-error value loss, no entropy bonus, gradient clipping); rewards
    are multiplied by ``scale`` (the value function learns the scaled returns)."""
    obs_dim, act_dim = data["obs"].shape[-1], data["actions"].shape[-1]
    adv = advantages(data["rewards"] * scale, data["values"], args.gae_lambda)
    ret = adv + data["values"]
    flat_obs = torch.as_tensor(data["obs"].reshape(-1, obs_dim))
    flat_mask = torch.as_tensor(data["mask"].reshape(-1, act_dim))
    flat_act = torch.as_tensor(data["actions"].reshape(-1, act_dim))
    flat_logp = torch.as_tensor(data["logp"].reshape(-1))
    flat_adv = torch.as_tensor(adv.reshape(-1), dtype=torch.float32)
    flat_ret = torch.as_tensor(ret.reshape(-1), dtype=torch.float32)
    n = len(flat_obs)
    size = n // args.minibatches
    clipped, approx_kl, value_loss = [], [], []
    for _ in range(args.epochs):
        order = torch.randperm(n, generator=gen)
        for k in range(args.minibatches):
            idx = order[k * size : (k + 1) * size]
            logp, _ = rule.log_prob(flat_obs[idx], flat_act[idx], flat_mask[idx])
            log_ratio = logp - flat_logp[idx]
            ratio = log_ratio.exp()
            a = flat_adv[idx]
            a = (a - a.mean()) / (a.std() + 1e-8)
            pg = -torch.min(ratio * a, ratio.clamp(1 - args.clip, 1 + args.clip) * a).mean()
            v_loss = 0.5 * ((rule.value(flat_obs[idx])[:, 0] - flat_ret[idx]) ** 2).mean()
            loss = pg + args.vf_coef * v_loss
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(rule.parameters(), args.max_grad_norm)
            optimiser.step()
            with torch.no_grad():
                approx_kl.append(float(((ratio - 1) - log_ratio).mean()))
                clipped.append(float(((ratio - 1).abs() > args.clip).float().mean()))
                value_loss.append(float(v_loss))
    var = float(np.var(ret))
    explained = 1.0 - float(np.var(ret - data["values"])) / var if var > 0 else float("nan")
    return {
        "approx_kl": float(np.mean(approx_kl)),
        "clip_fraction": float(np.mean(clipped)),
        "value_loss": float(np.mean(value_loss)),
        "explained_variance": explained,
    }


class NeuronLearner:
    """One run: the PPO meta-learner of a shared rule, or a reference rule that only counts
    iterations (so that it is evaluated at the same rows).

    Parameters
    ----------
    args : NeuronArgs
    """

    def __init__(self, args: NeuronArgs) -> None:
        self.args = args
        self.core = metaenvs.make_core(args.env, horizon=args.horizon)
        self.iteration = 0
        self.env_steps = 0
        """Inner updates of meta-training done (networks x horizon per PPO iteration)."""
        obs_dim, width = self.core.observation_space.shape[0], self.core.width
        self.gen = torch.Generator().manual_seed(args.seed)
        torch.manual_seed(args.seed)  # the networks' initial weights
        layout = self.core.obs_slices if args.policy == "synapse" else None
        self.rule = Rule(obs_dim, width, args.hidden, args.init_log_std, layout)
        self.norm = RunningNorm(obs_dim)
        self.return_norm = RunningNorm(1)
        """Running variance of the returns to go: rewards are divided by its square root
        (CleanRL's reward normalisation), so that the value function fits returns of
        order 1."""
        self.optimiser = torch.optim.Adam(self.rule.parameters(), lr=args.lr, eps=1e-5)
        rates = {"sgd": args.lr_sgd, "np": args.lr_np, "wp": args.lr_wp}
        self.reference = RULES[args.method](lr=rates[args.method]) if args.method in RULES else None
        self.init_fit = float("nan")
        """R^2 of the fit to node perturbation (``init="np"``), NaN otherwise."""
        if args.method == "ppo" and args.init == "np":  # training seeds, none of an iteration's
            seed = args.seed * 1_000_000 + 999_999
            self.init_fit = fit_to_rule(
                self.rule, self.norm, self.core, RULES["np"](lr=args.lr_np), args.networks,
                seed, gen=self.gen,
            )  # fmt: skip

    def learning_rule(self) -> LearningRule:
        """The rule this run evaluates: the policy's mean action, or the reference rule."""
        if self.args.method == "ppo":
            return LearnedRule(self.rule, self.norm)
        if self.args.method == "none":
            return no_learning
        assert self.reference is not None
        return self.reference

    def train_iteration(self) -> dict[str, float]:
        """One PPO iteration (rollout of ``networks`` inner runs, then the update); a
        reference rule only counts the iteration."""
        if self.args.method != "ppo":
            self.iteration += 1
            return {}
        args = self.args
        seed = args.seed * 1_000_000 + self.iteration
        data = rollout(self.core, self.rule, self.norm, args.networks, seed, self.gen)
        to_go = np.cumsum(data["rewards"][::-1], axis=0)[::-1]
        self.return_norm.update(to_go.reshape(-1, 1))
        scale = 1.0 / float(np.sqrt(self.return_norm.var[0] + 1e-8))
        metrics = ppo_update(self.rule, self.optimiser, data, args, self.gen, scale)
        self.norm.update(data["raw"].reshape(-1, data["raw"].shape[-1]))
        self.iteration += 1
        self.env_steps += args.networks * args.horizon
        return {
            "train_loss": float(-data["rewards"][..., 0].mean()),
            "train_test_loss": float(data["test_loss"].mean()),
            "log_std": float(self.rule.log_std.detach().mean()),
            **metrics,
            "init_fit": self.init_fit,
        }

    def evaluate(self, networks: int, seed: int) -> dict[str, float]:
        """The rule on ``networks`` held-out inner runs: mean final held-out loss, mean
        minibatch loss over the run (and the final held-out accuracy on digits)."""
        run = run_rule(self.core, self.learning_rule(), networks, seed)
        out = {
            "eval_test_loss": float(run["test_loss"].mean()),
            "eval_mean_loss": float(run["loss"][0, 1:].mean()),
        }
        if "test_accuracy" in run:
            out["eval_test_accuracy"] = float(run["test_accuracy"].mean())
        out["eval_score"] = -out["eval_test_loss"]
        return out

    def loss_curve(self, networks: int, seed: int) -> dict[str, np.ndarray]:
        """Held-out and minibatch loss ``(T + 1, networks)`` before the first update and
        after each one, on the same held-out runs as :meth:`evaluate`."""
        core, rule = self.core, self.learning_rule()
        state = core.reset(networks, seed)
        horizon = core.config.horizon
        test, train = np.empty((horizon + 1, networks)), np.empty((horizon + 1, networks))
        test[0], train[0] = core.evaluate(state)["test_loss"], state.loss
        for t in range(horizon):
            result = core.step(state, rule(core, state))
            train[t + 1] = -result.reward[:, 0]
            last = t == horizon - 1  # the copies reset after their last update
            test[t + 1] = result.info["test_loss"] if last else core.evaluate(state)["test_loss"]
        return {"test_loss": test, "loss": train}

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (optimiser state copied, not shared)."""
        return {
            "rule": copy.deepcopy(self.rule.state_dict()),
            "optimiser": copy.deepcopy(self.optimiser.state_dict()),
            "norm": self.norm.state_dict(),
            "return_norm": self.return_norm.state_dict(),
            "gen": self.gen.get_state(),
            "counters": (self.iteration, self.env_steps),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rule.load_state_dict(state["rule"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.norm.load_state_dict(state["norm"])
        self.return_norm.load_state_dict(state["return_norm"])
        self.gen.set_state(state["gen"])
        self.iteration, self.env_steps = (int(v) for v in state["counters"])


def compare(core: NeuronsCore, learned: LearningRule, networks: int) -> dict[str, dict]:
    """Final held-out loss of the learned rule, of no learning (zero actions) and of SGD, NP
    and WP (their docs' rates) on the same held-out networks."""
    rules: dict[str, Any] = {"learned": learned, "none": no_learning}
    rates = {"sgd": 0.1, "np": 0.005, "wp": 0.005}
    rules |= {name: RULES[name](lr=lr) for name, lr in rates.items()}
    out = {}
    for name, rule in rules.items():
        run = run_rule(core, rule, networks, seed=EVAL_SEED)
        out[name] = {
            "final_test_loss": float(run["test_loss"].mean()),
            "final_test_loss_std": float(run["test_loss"].std()),
            "area_under_loss": float(run["loss"][0, 1:].mean()),
        }
    return out


def train(args: NeuronArgs, out: str = "") -> dict[str, Any]:
    """Meta-train the shared rule (the pilot, without the experiment loop); return the
    per-iteration metrics and the final comparison, and write them to ``out`` if given."""
    torch.set_num_threads(1)
    learner = NeuronLearner(dataclasses.replace(args, method="ppo"))
    history = []
    start = time.perf_counter()
    for it in range(args.iterations):
        metrics = learner.train_iteration()
        history.append({"iteration": it, "mean_loss": metrics["train_loss"],
                        "final_test_loss": metrics["train_test_loss"],
                        "log_std": metrics["log_std"],
                        "seconds": time.perf_counter() - start})  # fmt: skip
    comparison = compare(learner.core, learner.learning_rule(), args.eval_networks)
    result = {"args": dataclasses.asdict(args), "history": history, "comparison": comparison}
    if out:
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        (path / "metrics.json").write_text(json.dumps(result, indent=1))
        torch.save({"rule": learner.rule.state_dict(), "mean": learner.norm.mean,
                    "var": learner.norm.var}, path / "policy.pt")  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m baselines.neurons.ppo --iterations 100 --out DIR``: every Args field a flag."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(NeuronArgs):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                            default=field.default)  # fmt: skip
    parser.add_argument("--out", default="", help="folder for metrics.json and policy.pt")
    ns = vars(parser.parse_args(argv))
    out = ns.pop("out")
    args = NeuronArgs(**ns)
    result = train(args, out)
    for row in result["history"][:: max(1, args.iterations // 10)]:
        print(json.dumps(row))
    print(json.dumps(result["comparison"], indent=1))


if __name__ == "__main__":
    main()
