"""A learned learning rule: PPO with one policy shared by all neurons (neurons-as-agents, sec. 2).

The draft's meta-learner: "in order to improve the policy, we use PPO on the loss from each
episode of learning".  Every neuron of every network acts with the same Gaussian policy on
its own observation (the learned rule); an iteration runs ``networks`` inner training runs
of ``horizon`` updates each (new teachers, new initial weights), then takes PPO epochs on
all (network, neuron, update) samples.  Each neuron's reward is the shared minus the loss,
so the meta-objective is the area under the loss curve of an inner run.

Choices the draft leaves open: the inner run's end is terminal (the meta-objective is the
finite sum; no bootstrap past T), gamma 1 with GAE lambda 0.95; observations normalised
by running mean and variance; the log-probability and entropy count only a neuron's real
outgoing weights (its ``mask`` columns); a small initial exploration noise (random weight
changes only hurt the inner run).  Evaluation: the policy's mean action on held-out
teachers (seeds disjoint from training) or the held-out digits, against SGD, node and
weight perturbation on the same networks (:mod:`baselines.neurons.rules`).

Run::

    python -m baselines.neurons.ppo --iterations 100 --out runs/neurons_ppo
"""

from __future__ import annotations

import argparse
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
from baselines.neurons.rules import RULES, run_rule
from metaenvs.games.neurons import NeuronsCore, NeuronsState

EVAL_SEED = 1_000_000_000
"""Held-out networks (teachers, initial weights) use seeds from here; training seeds stay
below it."""


@dataclasses.dataclass
class Args:
    """Settings of the meta-learner."""

    env: str = "neurons_teacher"
    """The env id (its task and network)."""
    horizon: int = 50
    """Updates per inner training run (episode)."""
    networks: int = 16
    """Inner runs per iteration (the batch B)."""
    iterations: int = 100
    """PPO iterations."""
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
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradient clipping."""
    hidden: int = 64
    """Width of the two hidden layers of the policy and value networks."""
    init_log_std: float = -3.0
    """Initial log standard deviation of the actions (in action units, a weight change of
    ``action_scale`` each)."""
    seed: int = 0
    """Seed of the networks' draws and of torch."""
    eval_networks: int = 32
    """Held-out inner runs of the final comparison."""
    out: str = ""
    """Folder for ``metrics.json`` and ``policy.pt`` (nothing written if empty)."""


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


class Rule(nn.Module):
    """The learned rule: a Gaussian policy and a value function on one neuron's observation."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, init_log_std: float) -> None:
        super().__init__()

        def mlp(out: int, gain: float) -> nn.Sequential:
            layers = [nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()]
            last = nn.Linear(hidden, out)
            nn.init.orthogonal_(last.weight, gain)
            nn.init.zeros_(last.bias)
            return nn.Sequential(*layers, last)

        self.mean = mlp(act_dim, 0.01)
        self.value = mlp(1, 1.0)
        self.log_std = nn.Parameter(torch.full((act_dim,), init_log_std))

    def log_prob(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of ``actions`` and entropy, over the real weights (``mask``)."""
        dist = torch.distributions.Normal(self.mean(obs), self.log_std.exp())
        return (dist.log_prob(actions) * mask).sum(-1), (dist.entropy() * mask).sum(-1)


class LearnedRule:
    """The trained policy as a learning rule of the env (mean action), like those of
    :mod:`baselines.neurons.rules`."""

    def __init__(self, rule: Rule, norm: RunningNorm) -> None:
        self.rule, self.norm = rule, norm

    def __call__(self, core: NeuronsCore, state: NeuronsState) -> np.ndarray:
        obs = torch.as_tensor(self.norm(core.observe(state)), dtype=torch.float32)
        with torch.no_grad():
            return np.clip(self.rule.mean(obs).numpy(), -1.0, 1.0).astype(np.float32)


def rollout(
    core: NeuronsCore, rule: Rule, norm: RunningNorm, batch: int, seed: int
) -> dict[str, np.ndarray]:
    """One inner run of every network with the stochastic policy: arrays ``(T, B, K, ...)``."""
    horizon = core.config.horizon
    state = core.reset(batch, seed)
    raw, actions, logps, values, rewards = [], [], [], [], []
    mask_cols = core.obs_slices["mask"]
    for _ in range(horizon):
        obs = core.observe(state).copy()
        raw.append(obs)
        x = torch.as_tensor(norm(obs), dtype=torch.float32)
        with torch.no_grad():
            mean = rule.mean(x)
            action = mean + rule.log_std.exp() * torch.randn_like(mean)
            mask = torch.as_tensor(obs[..., mask_cols])
            logp = (
                torch.distributions.Normal(mean, rule.log_std.exp()).log_prob(action) * mask
            ).sum(-1)
            values.append(rule.value(x)[..., 0].numpy())
        actions.append(action.numpy())
        logps.append(logp.numpy())
        result = core.step(state, np.clip(action.numpy(), -1.0, 1.0))
        rewards.append(result.reward.copy())
    return {
        "obs": np.stack(raw),
        "actions": np.stack(actions),
        "logp": np.stack(logps),
        "values": np.stack(values),
        "rewards": np.stack(rewards),
        "test_loss": result.info["test_loss"].copy(),
    }


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


def train(args: Args) -> dict[str, Any]:
    """Meta-train the shared rule; return the per-iteration metrics and the final comparison."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    core = metaenvs.make_core(args.env, horizon=args.horizon)
    obs_dim, act_dim = core.observation_space.shape[0], core.width
    rule = Rule(obs_dim, act_dim, args.hidden, args.init_log_std)
    norm = RunningNorm(obs_dim)
    optimiser = torch.optim.Adam(rule.parameters(), lr=args.lr, eps=1e-5)
    mask_cols = core.obs_slices["mask"]
    history = []
    start = time.perf_counter()
    for it in range(args.iterations):
        # ROLLOUT: B inner runs with the current rule
        data = rollout(core, rule, norm, args.networks, seed=args.seed * 100_003 + it * 997)
        norm.update(data["obs"].reshape(-1, obs_dim))
        adv = advantages(data["rewards"], data["values"], args.gae_lambda)
        ret = adv + data["values"]
        # UPDATE: PPO epochs over every (update, network, neuron) sample
        flat_obs = torch.as_tensor(norm(data["obs"].reshape(-1, obs_dim)), dtype=torch.float32)
        flat_mask = torch.as_tensor(data["obs"].reshape(-1, obs_dim)[:, mask_cols])
        flat_act = torch.as_tensor(data["actions"].reshape(-1, act_dim))
        flat_logp = torch.as_tensor(data["logp"].reshape(-1))
        flat_adv = torch.as_tensor(adv.reshape(-1), dtype=torch.float32)
        flat_ret = torch.as_tensor(ret.reshape(-1), dtype=torch.float32)
        n = len(flat_obs)
        size = n // args.minibatches
        for _ in range(args.epochs):
            order = torch.randperm(n)
            for k in range(args.minibatches):
                idx = order[k * size : (k + 1) * size]
                logp, entropy = rule.log_prob(flat_obs[idx], flat_act[idx], flat_mask[idx])
                ratio = (logp - flat_logp[idx]).exp()
                a = flat_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = -torch.min(ratio * a, ratio.clamp(1 - args.clip, 1 + args.clip) * a).mean()
                v = rule.value(flat_obs[idx])[:, 0]
                loss = pg + args.vf_coef * ((v - flat_ret[idx]) ** 2).mean()
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(rule.parameters(), args.max_grad_norm)
                optimiser.step()
        # LOG
        history.append(
            {
                "iteration": it,
                "mean_loss": float(-data["rewards"][..., 0].mean()),
                "final_test_loss": float(data["test_loss"].mean()),
                "log_std": float(rule.log_std.detach().mean()),
                "seconds": time.perf_counter() - start,
            }
        )
    comparison = compare(core, LearnedRule(rule, norm), args.eval_networks)
    result = {"args": dataclasses.asdict(args), "history": history, "comparison": comparison}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=1))
        torch.save(
            {"rule": rule.state_dict(), "mean": norm.mean, "var": norm.var}, out / "policy.pt"
        )
    return result


def compare(core: NeuronsCore, learned: LearnedRule, networks: int) -> dict[str, dict]:
    """Final held-out loss of the learned rule, of no learning (zero actions) and of SGD, NP
    and WP (their docs' rates) on the same held-out networks."""

    def still(core: NeuronsCore, state: NeuronsState) -> np.ndarray:  # no learning at all
        return np.zeros((state.batch, core.n_agents, core.width), dtype=np.float32)

    rules: dict[str, Any] = {"learned": learned, "none": still}
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


def main(argv: list[str] | None = None) -> None:
    """``python -m baselines.neurons.ppo --iterations 100 --out DIR``: every Args field a flag."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                            default=field.default)  # fmt: skip
    args = Args(**vars(parser.parse_args(argv)))
    result = train(args)
    for row in result["history"][:: max(1, args.iterations // 10)]:
        print(json.dumps(row))
    print(json.dumps(result["comparison"], indent=1))


if __name__ == "__main__":
    main()
