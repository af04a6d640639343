"""A population of 2-Agent HalfCheetah teammates of varying expertise (appendix E.3).

Paper: meta-mapg-learning-peers, question 8 and appendix E.3: "we pre-train a teammate j
with an LSTM policy that has varying expertise in moving to the left direction.
Specifically, we train the teammate up to 500 train iterations and save a checkpoint at
each iteration."  The meta-agent must later make the cheetah run to the *right* with a
teammate drawn from these checkpoints, who has to unlearn what it was taught.

``python -m baselines.peers.teammates --out population.npz`` trains both agents of
``halfcheetah_2x3`` from scratch to run left and keeps the teammate's parameters after
every iteration; :func:`population` loads the file, or trains it once into the cache
(``~/.cache/metaenvs/teammates``, or ``$METAENVS_CACHE``) when it is missing.

Choices (the paper and its code, dkkim93/meta-mapg, do not ship the pre-training; its
population files are downloads):

- **Policy**: appendix C.1's Gaussian LSTM, ``FC(64) -> ReLU -> LSTM(64) -> Linear(3)``
  for the mean and one state-independent log standard deviation per action (initialised
  at 0, floored at log 1e-6), as the code's ``network/gaussian_lstm.py``; the LSTM state
  is zeroed at the start of every trajectory.
- **Who learns**: both agents, each with its own policy, on the joint reward of running
  *left* (``forward_reward_weight=-1``: the code's ``HalfCheetahDir`` with ``direction=-1``),
  rewards divided by 100 (the code's ``reward_scale``).  The teammate is ``agent_1``
  (the front leg; :data:`TEAMMATE`), the meta-agent later drives the back leg.
- **Update**: "the policy gradient with the linear feature baseline as in IPD and RPS"
  (the rule the teammate keeps using inside a chain): REINFORCE on rewards-to-go less
  rllab's linear feature baseline fitted per agent on the iteration's batch, discount
  0.99 (Table 5), ``trajectories`` (64, Table 5's K) episodes of H = 200 steps per
  iteration, one Adam step (learning rate ``lr``) per iteration.  The code's in-chain
  teammate steps are plain SGD at 5e-3 (``actor_lr_inner``); for pre-training Adam
  makes steady progress within 500 iterations, which the population needs.
- **Actions**: sampled from the Gaussian, clipped to the actuators' range [-1, 1] for the
  env (MuJoCo clamps controls the same way); the log-probability is of the unclipped
  sample.
- **Checkpoints**: ``k = 0..iterations-1`` the parameters after ``k`` updates (0: the
  initialisation).  The code's split files (``pretrain_model/HalfCheetahDir-v0/*.npy``)
  use checkpoints 0-299 for meta-training (275) and validation (25, drawn at random) and
  475-499 for meta-testing; the paper's text says 50-300 and 475-500.  This file follows
  the code: :data:`SPLITS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from baselines.lstm_cell import gate_scale, lstm_cell
from baselines.peers.estimators import advantages_with_linear_baseline
from baselines.peers.nets import Params, init_lstm_net

TEAMMATE = 1
"""Index of the teammate among ``halfcheetah_2x3``'s agents (``agent_1``, the front leg)."""
ENV = "halfcheetah_2x3"
MIN_LOG_STD = math.log(1e-6)


@dataclasses.dataclass(frozen=True)
class TeammateArgs:
    """Settings of the teammate pre-training (module docstring: the choices)."""

    iterations: int = 500
    """Training iterations; one checkpoint before each (the paper: 500)."""
    trajectories: int = 64
    """Episodes per iteration (Table 5's K)."""
    horizon: int = 200
    """Steps per episode (Table 5's H)."""
    lr: float = 1e-3
    """Adam step size."""
    discount: float = 0.99
    """Discount of the rewards-to-go (Table 5)."""
    reward_scale: float = 0.01
    """Rewards are multiplied by this (the code's ``reward_scale``: divided by 100)."""
    direction: float = -1.0
    """Sign of the forward velocity in the reward: -1 runs left, as the paper's teammates."""
    hidden: int = 64
    """Units of the FC and LSTM layers (appendix C.1)."""
    seed: int = 0
    """Seed of the initialisation, the action noise and the env's starts."""
    keep: tuple[int, ...] = ()
    """Checkpoints written to the file (empty: those of :data:`SPLITS`)."""

    def __post_init__(self) -> None:
        for name in ("iterations", "trajectories", "horizon", "hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not (self.lr > 0 and 0 < self.discount <= 1 and self.reward_scale > 0):
            raise ValueError("lr and reward_scale must be > 0 and discount in (0, 1]")
        bad = [k for k in self.keep if not 0 <= k < self.iterations]
        if bad:
            raise ValueError(f"keep holds checkpoints outside 0..{self.iterations - 1}: {bad}")


def _code_splits() -> dict[str, tuple[int, ...]]:
    """The code's split: 0-299 shuffled into 275 train and 25 validation, 475-499 test."""
    order = np.random.default_rng(2020).permutation(300)
    return {
        "train": tuple(sorted(int(k) for k in order[:275])),
        "val": tuple(sorted(int(k) for k in order[275:])),
        "test": tuple(range(475, 500)),
    }


SPLITS = _code_splits()
"""Checkpoint indices per split (the code's sizes and ranges; our own random draw)."""


def init_policy(n_obs: int, n_act: int, hidden: int, generator: torch.Generator) -> Params:
    """Gaussian LSTM parameters: :func:`init_lstm_net` plus a log standard deviation (0)."""
    params = init_lstm_net(n_obs, n_act, hidden, generator)
    params["log_std"] = torch.zeros(n_act)
    return params


class ChainLSTM:
    """``FC -> ReLU -> LSTM -> Linear`` with one parameter set per chain, one step a call.

    Parameters
    ----------
    params : Params
        :func:`~baselines.peers.nets.init_lstm_net`'s names with a leading chain axis C.
    rows : int
        Trajectories per chain run side by side (the LSTM state starts at zero).
    """

    def __init__(self, params: Params, rows: int) -> None:
        n_chains, hidden = params["fc_b"].shape
        scale = gate_scale(hidden)  # tanh as a sigmoid (baselines.lstm_cell)
        self.p = params
        self.ih_w, self.hh_w = params["ih_w"] * scale, params["hh_w"] * scale
        self.lstm_b = (params["lstm_b"] * scale)[:, None]
        self.h = params["fc_b"].new_zeros(n_chains, rows, hidden)
        self.c: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(C, rows, out)`` for inputs ``(C, rows, D)``; advances the LSTM."""
        x = torch.relu(torch.baddbmm(self.p["fc_b"][:, None], x, self.p["fc_w"]))
        gates = torch.baddbmm(torch.baddbmm(self.lstm_b, x, self.ih_w), self.h, self.hh_w)
        self.h, self.c = lstm_cell(gates, self.c)
        return torch.baddbmm(self.p["out_b"][:, None], self.h, self.p["out_w"])


def log_std(params: Params) -> torch.Tensor:
    """``(C, 1, 1, A)`` the floored log standard deviations (the code's ``min_log_std``)."""
    return params["log_std"].clamp(min=MIN_LOG_STD)[:, None, None]


def gaussian_logprob(
    means: torch.Tensor, log_sd: torch.Tensor, actions: torch.Tensor
) -> torch.Tensor:
    """``sum_a log N(actions | means, exp(log_sd))`` over the last axis."""
    z = (actions - means) * torch.exp(-log_sd)
    return (-0.5 * z.square() - log_sd - 0.5 * math.log(2.0 * math.pi)).sum(-1)


class GaussianLSTM:
    """One Gaussian LSTM policy (no leading axis) stepped through a batch of trajectories:
    :class:`ChainLSTM` with one chain.

    Parameters
    ----------
    params : Params
        :func:`init_policy`'s parameters (no leading axis).
    batch : int
        Trajectories run side by side.
    """

    def __init__(self, params: Params, batch: int) -> None:
        self.p = params
        self.net = ChainLSTM({k: v[None] for k, v in params.items()}, batch)

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The action mean ``(batch, n_act)`` for observations ``(batch, n_obs)``; advances."""
        return self.net(obs[None])[0]

    def std(self) -> torch.Tensor:
        return self.p["log_std"].clamp(min=MIN_LOG_STD).exp()


def log_prob(params: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` log-densities of ``actions`` ``(B, T, A)`` given ``obs`` ``(B, T, D)``."""
    policy = GaussianLSTM(params, obs.shape[0])
    means = torch.stack([policy.mean(obs[:, t]) for t in range(obs.shape[1])], dim=1)
    return gaussian_logprob(means, params["log_std"].clamp(min=MIN_LOG_STD), actions)


def rollout(
    core: object, policies: Sequence[Params], state_seed: int, generator: torch.Generator,
    trajectories: int, horizon: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Run every agent's policy for one batch of episodes.

    Returns
    -------
    obs : torch.Tensor
        ``(N, B, T, D)`` each agent's observations.
    actions : torch.Tensor
        ``(N, B, T, A)`` the unclipped samples.
    rewards : torch.Tensor
        ``(B, T)`` the joint reward (before scaling).
    """
    state = core.reset(trajectories, state_seed)
    obs = torch.tensor(state.obs, dtype=torch.float32)  # (B, N, D), a copy: cores reuse buffers
    runners = [GaussianLSTM(p, trajectories) for p in policies]
    all_obs, all_act, all_rew = [], [], []
    with torch.no_grad():
        for _ in range(horizon):
            acts = []
            for i, runner in enumerate(runners):
                mean = runner.mean(obs[:, i])
                noise = torch.randn(mean.shape, generator=generator)
                acts.append(mean + runner.std() * noise)
            act = torch.stack(acts, dim=1)  # (B, N, A)
            result = core.step(state, act.clamp(-1.0, 1.0).numpy())
            all_obs.append(obs)
            all_act.append(act)
            all_rew.append(torch.tensor(result.reward[:, 0], dtype=torch.float32))
            obs = torch.tensor(result.obs, dtype=torch.float32)
    stacked_obs = torch.stack(all_obs, dim=2).permute(1, 0, 2, 3)  # (N, B, T, D)
    stacked_act = torch.stack(all_act, dim=2).permute(1, 0, 2, 3)
    return stacked_obs, stacked_act, torch.stack(all_rew, dim=1)


def flat(params: Params) -> np.ndarray:
    """The parameters as one float32 vector, in :func:`unflatten`'s order."""
    return torch.cat([v.detach().reshape(-1) for v in params.values()]).numpy().copy()


def unflatten(vector: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> Params:
    """Inverse of :func:`flat` given the parameter shapes (in order)."""
    total = sum(math.prod(shape) for shape in shapes.values())
    if total != len(vector):
        raise ValueError(f"a parameter vector of {len(vector)} floats for shapes adding to {total}")
    out, at = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        out[name] = torch.from_numpy(np.asarray(vector[at : at + size]).reshape(shape).copy())
        at += size
    return out


def train(args: TeammateArgs, progress: bool = True) -> dict[str, np.ndarray]:
    """Pre-train both agents to run left; the teammate's checkpoints and the learning curve.

    Returns
    -------
    dict
        ``checkpoints`` ``(K, P)`` float32 (the teammate's flat parameters at the kept
        iterations ``kept`` ``(K,)``), ``returns`` ``(iterations,)`` the mean undiscounted
        episode reward (unscaled, in the running-left reward) of the batch each checkpoint
        collected, ``shapes`` (JSON of the parameter shapes), ``wall_s``.
    """
    import metaenvs

    keep = set(args.keep or sum(SPLITS.values(), ()))
    keep = {k for k in keep if k < args.iterations}
    core = metaenvs.make_core(ENV, horizon=args.horizon, forward_reward_weight=args.direction)
    n_obs, n_act = core.observation_space.shape[-1], core.action_space.shape[-1]
    generator = torch.Generator().manual_seed(args.seed)
    policies = [init_policy(n_obs, n_act, args.hidden, generator) for _ in range(2)]
    for p in policies:
        for v in p.values():
            v.requires_grad_(True)
    optimizers = [torch.optim.Adam(list(p.values()), lr=args.lr) for p in policies]
    kept, checkpoints, returns = [], [], []
    start = time.perf_counter()
    for k in range(args.iterations):
        if k in keep:
            kept.append(k)
            checkpoints.append(flat(policies[TEAMMATE]))
        obs, actions, rewards = rollout(
            core, policies, args.seed * 1_000_003 + k, generator, args.trajectories, args.horizon
        )
        returns.append(float(rewards.sum(1).mean()))
        adv = advantages_with_linear_baseline(obs, rewards * args.reward_scale, args.discount)
        for i, (p, opt) in enumerate(zip(policies, optimizers)):
            opt.zero_grad()
            loss = -(log_prob(p, obs[i], actions[i]) * adv[i]).sum(1).mean()
            loss.backward()
            opt.step()
        if progress and (k % 10 == 0 or k == args.iterations - 1):
            std = float(policies[TEAMMATE]["log_std"].detach().exp().mean())
            print(f"iteration {k}: running-left reward {returns[-1]:.1f}, teammate action "
                  f"std {std:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    shapes = {name: tuple(v.shape) for name, v in policies[TEAMMATE].items()}
    return {
        "kept": np.array(kept, dtype=np.int64),
        "checkpoints": np.array(checkpoints, dtype=np.float32).reshape(len(kept), -1),
        "returns": np.array(returns),
        "shapes": np.array(json.dumps(shapes)),
        "wall_s": np.array(time.perf_counter() - start),
        "args": np.array(json.dumps(dataclasses.asdict(args))),
    }


class Population:
    """The teammate checkpoints of one pre-training run, by split.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save`.
    """

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as f:
            self.kept = f["kept"]
            self.checkpoints = f["checkpoints"]
            self.returns = f["returns"]
            self.shapes = {k: tuple(v) for k, v in json.loads(str(f["shapes"])).items()}
            self.wall_s = float(f["wall_s"])
            self.args = json.loads(str(f["args"]))
        self._row = {int(k): i for i, k in enumerate(self.kept)}

    def params(self, checkpoint: int) -> Params:
        """The teammate's parameters at ``checkpoint`` (an iteration index)."""
        if checkpoint not in self._row:
            raise KeyError(f"checkpoint {checkpoint} is not in the population (kept: "
                           f"{len(self.kept)} of 0..{len(self.returns) - 1})")  # fmt: skip
        return unflatten(self.checkpoints[self._row[checkpoint]], self.shapes)

    def split(self, name: str) -> list[int]:
        """The checkpoints of split ``name`` (``train``, ``val`` or ``test``) in the file."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {tuple(SPLITS)}, got {name!r}")
        return [k for k in SPLITS[name] if k in self._row]


def save(result: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write :func:`train`'s result atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **result)
    os.replace(tmp, path)
    return path


def cache_dir() -> Path:
    """Where :func:`population` keeps generated populations."""
    root = os.environ.get("METAENVS_CACHE") or Path.home() / ".cache" / "metaenvs"
    return Path(root) / "teammates"


def population(args: TeammateArgs | None = None, path: str | Path | None = None) -> Population:
    """The population of ``args`` (default: the paper's), trained into the cache if missing.

    Training the default population takes 9-11 minutes (553-677 s) on one core of a
    2-core machine (docs/envs/halfcheetah.md); the file is about 41 MB (325 checkpoints of
    34,374 floats), so it is generated, not shipped.  Torch's CPU kernels may round
    differently on another machine or torch version, and 500 REINFORCE steps amplify the
    rounding: a population regenerated elsewhere can differ well beyond its last bits
    (another expertise curve), so share the file when runs must meet the same teammates.
    """
    args = args or TeammateArgs()
    if path is None:
        key = json.dumps(dataclasses.asdict(args), sort_keys=True)
        digest = __import__("hashlib").sha256(key.encode()).hexdigest()[:12]
        path = cache_dir() / f"halfcheetah_2x3_{digest}.npz"
    path = Path(path)
    if not path.exists():
        print(f"training the teammate population into {path} (once)", flush=True)
        save(train(args), path)
    return Population(path)


def plot_population(pop: Population, path: str | Path) -> None:
    """Figure 7's view: the running-left reward of the batch each checkpoint collected,
    the meta-train/validation and meta-test checkpoints marked."""
    from baselines._runs import figure

    fig = figure(6.0, 3.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.arange(len(pop.returns)), pop.returns, color="0.6", lw=0.8, label="all")
    for name, color in (("train", "C0"), ("val", "C1"), ("test", "C3")):
        ks = [k for k in SPLITS[name] if k < len(pop.returns)]
        ax.scatter(ks, pop.returns[ks], s=6, color=color, label=f"{name} ({len(ks)})", zorder=3)
    ax.set_xlabel("teammate pre-training iteration (checkpoint)")
    ax.set_ylabel("episode reward, running left")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m baselines.peers.teammates --out FILE [--iterations N] [--seed S] ...``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the population file (.npz)")
    parser.add_argument("--plot", type=Path, default=None, help="also draw the rewards (PNG)")
    for field in dataclasses.fields(TeammateArgs):
        if field.name == "keep":
            parser.add_argument("--keep", type=int, nargs="*", default=())
        else:
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default),
                                default=field.default)  # fmt: skip
    ns = vars(parser.parse_args(argv))
    out, plot = ns.pop("out"), ns.pop("plot")
    ns["keep"] = tuple(ns["keep"])
    try:
        args = TeammateArgs(**ns)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(1)
    result = train(args)
    save(result, out)
    print(f"wrote {out}: {len(result['kept'])} checkpoints, {float(result['wall_s']):.0f} s")
    if plot is not None:
        plot_population(Population(out), plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
