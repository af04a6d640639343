"""Pretrained prey for the comm-topology predator-prey tasks: MADDPG, both teams learning.

The paper's prey "are environment-controlled by fixed policies that are pretrained"
(section 5).  This trains them as MPE's ``simple_tag`` is trained: the task with
``prey="agents"`` and continuous actions, predators and prey learning at the same time
by MADDPG.  Every agent has a deterministic policy (its own :class:`AgentMLP` row,
sigmoid outputs in ``[0, 1]^5``); the predators share one centralised critic
(:class:`JointMLP` over all agents' observations and actions) of their shared reward;
each prey has its own centralised critic (a row of an :class:`AgentMLP`, the same joint
input) of its own reward.  The settings are the paper's Table 2 (Adam 1e-3, gamma 0.95,
batches of 256, Polyak 0.01), Gaussian exploration noise 0.1, gradient clip 0.5, one
critic and policy update per collected episode, horizon 25.

A prey's policy reads its observation up to the neighbour block (own state, landmarks,
predators: :func:`metaenvs.games.pretrained_prey.input_size` entries), so the trained prey
work whatever neighbour structure the predators use.  At the end only the prey policy is
saved, as the ``.npz`` that ``prey="pretrained"`` loads
(:func:`metaenvs.games.pretrained_prey.save_prey_weights`), with a JSON file beside it.

Run::

    OMP_NUM_THREADS=1 python -m baselines.comm.prey --task predator_prey_N3_M1_l3 \\
        --episodes 20000 --seed 0 --out src/metaenvs/data/prey
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import metaenvs
from baselines._runs import one_thread_per_run
from baselines.comm.learner import CommArgs, Replay, clip_grads, polyak_update
from baselines.comm.networks import AgentMLP, JointMLP
from baselines.experiment.cli import add_field_flags, given_fields
from metaenvs.games.predator_prey import CATCH_REWARD, PredatorPreyCore
from metaenvs.games.pretrained_prey import (
    PretrainedPrey,
    input_size,
    prey_key,
    read_prey_weights,
    save_prey_weights,
)

#: The MADDPG settings the prey train with: the comm learner's defaults (the paper's Table
#: 2, one update per episode, 8 episodes in parallel); only :data:`MADDPG_FIELDS` are read.
TABLE2 = CommArgs()
#: Seed of the validation episodes (the final evaluation uses ``seed + 10**9``).
VALIDATION_SEED = 10**6
MADDPG_FIELDS = (
    "envs", "warmup_episodes", "updates_per_episode", "gamma", "batch_size", "lr_critic",
    "lr_policy", "tau", "exploration_noise", "grad_clip",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PreyArgs:
    """Configuration of one prey training run; the learning settings are :data:`TABLE2`."""

    task: str = "predator_prey_N3_M1_l3"
    """A predator-prey id (trained with ``prey="agents"`` and continuous actions)."""
    episodes: int = 20_000
    """Training budget in episodes."""
    seed: int = 0
    """Seed of the run (networks, exploration, envs)."""
    out: str = "prey"
    """Folder the prey weights ``<key>.npz`` and ``<key>.json`` are written to."""
    hidden: int = 64
    """Width of the hidden layers of every network (the shipped prey MLPs' size)."""
    buffer_size: int = 250_000
    """Transitions the replay keeps (the last 10,000 episodes)."""
    eval_episodes: int = 512
    """Episodes of the final evaluation (no exploration noise)."""
    validate_every: int = 500
    """Episodes between validations: the prey's mean return against scripted chasers
    (:func:`chase_nearest`) on 64 fixed episodes, a progress line on stderr; the prey
    policy of the best validation is saved (0: no validation, the last policy is saved)."""
    chasers: float = 0.0
    """Share of the training episodes in which the predators act as scripted chasers
    (:func:`chase_nearest`, with the exploration noise) instead of their policies: off-policy
    data for both teams' critics that shows the prey a strong pursuit."""

    def __post_init__(self) -> None:
        for name in ("episodes", "hidden", "buffer_size", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        every = self.validate_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"validate_every must be an int >= 0, got {every!r}")
        if not (isinstance(self.chasers, (int, float)) and 0.0 <= self.chasers <= 1.0):
            raise ValueError(f"chasers must be a number in [0, 1], got {self.chasers!r}")
        if metaenvs.spec(self.task).family != "predator_prey":
            raise ValueError(f"task must be a predator-prey id, got {self.task!r}")

    def core(self) -> PredatorPreyCore:
        """The training env: the task with prey agents and continuous actions."""
        return metaenvs.make_core(self.task, prey="agents", continuous_actions=True)


class PreyTrainer:
    """MADDPG for predators and prey on one batched env; see the module docstring.

    Parameters
    ----------
    args : PreyArgs
    maddpg : CommArgs
        The learning settings (only its :data:`MADDPG_FIELDS` are read).
    """

    def __init__(self, args: PreyArgs, maddpg: CommArgs = TABLE2) -> None:
        self.args, self.maddpg = args, maddpg
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.gen = torch.Generator().manual_seed(args.seed)
        self.core = core = args.core()
        cfg = core.config
        n, m, h = cfg.n_predators, cfg.n_prey, args.hidden
        obs_dim, act_dim = core.observation_space.shape[0], core.action_space.shape[0]
        self.n, self.m, self.obs_dim, self.act_dim = n, m, obs_dim, act_dim
        self.key = prey_key(n, m, cfg.landmarks, cfg.n_observed)
        self.prey_inputs = input_size(n, m, cfg.landmarks, cfg.n_observed)
        joint = (n + m) * (obs_dim + act_dim)
        self.nets: dict[str, torch.nn.Module] = {
            "predator_policy": AgentMLP(n, obs_dim, act_dim, h),
            "prey_policy": AgentMLP(m, self.prey_inputs, act_dim, h),
            "predator_critic": JointMLP(joint, h),
            "prey_critic": AgentMLP(m, joint, 1, h),
        }
        self.targets = {k: copy.deepcopy(v) for k, v in self.nets.items()}
        self.opt = {
            k: torch.optim.Adam(
                v.parameters(),
                maddpg.lr_critic if "critic" in k else maddpg.lr_policy,
                foreach=True,
            )
            for k, v in self.nets.items()
        }
        # one row of a transition; rewards: the predators' shared one, then each prey's own
        self.shapes = {"obs": (n + m, obs_dim), "action": (n + m, act_dim), "reward": (1 + m,),
                       "next_obs": (n + m, obs_dim), "terminated": ()}  # fmt: skip
        self.buffer = Replay(
            args.buffer_size, {k: (s, torch.float32) for k, s in self.shapes.items()}
        )
        self.episodes_done = 0

    # -- acting --------------------------------------------------------------------------
    def act(
        self, obs: torch.Tensor, nets: dict[str, torch.nn.Module] | None = None
    ) -> torch.Tensor:
        """Every agent's deterministic action ``(..., N + M, A)`` from ``obs (..., N + M, D)``."""
        nets = nets or self.nets
        predators = nets["predator_policy"](obs[..., : self.n, :])
        prey = nets["prey_policy"](obs[..., self.n :, : self.prey_inputs])
        return torch.sigmoid(torch.cat([predators, prey], dim=-2))

    def rollout(
        self,
        episodes: int,
        seed: int,
        explore: bool,
        predators: Callable[[torch.Tensor], torch.Tensor] | None = None,
        scripted: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run ``episodes`` copies for one episode; tensors ``(E, T, ...)``.

        ``predators`` (``obs -> actions`` of the predators) replaces their policy in the
        first ``scripted`` copies (default: all; an evaluation against other predators,
        or scripted chasers while training).  Returns ``obs``, ``action``, ``reward``
        ``(E, T, 1 + M)`` (the predators', then each prey's), ``next_obs`` (the final
        observation at the horizon) and ``terminated``.
        """
        core, n = self.core, self.n
        state = core.reset(episodes, seed)
        horizon = core.config.horizon
        out = {k: np.empty((episodes, horizon, *s), np.float32) for k, s in self.shapes.items()}
        for t in range(horizon):
            obs = torch.from_numpy(core.observe(state).copy())
            with torch.no_grad():
                action = self.act(obs)
                if predators is not None:
                    action[:scripted, :n] = predators(obs[:scripted, :n])
            if explore:
                noise = (
                    torch.randn(action.shape, generator=self.gen) * self.maddpg.exploration_noise
                )
                action = (action + noise).clamp(0.0, 1.0)
            result = core.step(state, action.contiguous().numpy())  # as the kernels' cache
            done = result.terminated | result.truncated
            out["obs"][:, t], out["action"][:, t] = obs.numpy(), action.numpy()
            out["reward"][:, t, 0] = result.reward[:, 0]
            out["reward"][:, t, 1:] = result.reward[:, n:]
            out["next_obs"][:, t] = np.where(done[:, None, None], result.final_obs, result.obs)
            out["terminated"][:, t] = result.terminated
        return {k: torch.from_numpy(v) for k, v in out.items()}

    # -- learning ------------------------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        """Collect ``envs`` episodes, then ``updates_per_episode`` updates per episode."""
        args, chasing = self.maddpg, round(self.args.chasers * self.maddpg.envs)
        seed = int(self.rng.integers(2**62))
        chasers = self.chasers if chasing else None
        batch = self.rollout(args.envs, seed, explore=True, predators=chasers, scripted=chasing)
        self.buffer.add(batch)
        self.episodes_done += args.envs
        returns = batch["reward"].sum(1).mean(0)  # (1 + M)
        metrics = {
            "catches": float(returns[0]) / CATCH_REWARD,
            "prey_reward": float(returns[1:].mean()),
        }
        if self.episodes_done >= args.warmup_episodes:
            for _ in range(round(args.envs * args.updates_per_episode)):
                metrics |= self.update()
        return metrics

    def q_values(
        self, obs: torch.Tensor, action: torch.Tensor, nets: dict[str, torch.nn.Module]
    ) -> torch.Tensor:
        """``(B, 1 + M)``: the predators' critic, then each prey's, on the joint input."""
        predators = nets["predator_critic"](obs, action)
        joint = torch.cat([obs.flatten(-2), action.flatten(-2)], dim=-1)
        prey = nets["prey_critic"](joint.unsqueeze(-2).expand(*joint.shape[:-1], self.m, -1))
        return torch.cat([predators.unsqueeze(-1), prey.squeeze(-1)], dim=-1)

    def update(self) -> dict[str, float]:
        """One MADDPG step of both teams: critics by TD, policies through their critic."""
        args, nets, n, m = self.maddpg, self.nets, self.n, self.m
        obs, action, reward, next_obs, terminated = self.buffer.sample(args.batch_size, self.rng)
        with torch.no_grad():
            next_q = self.q_values(next_obs, self.act(next_obs, self.targets), self.targets)
            target = reward + args.gamma * (1.0 - terminated[:, None]) * next_q
        critic_loss = ((self.q_values(obs, action, nets) - target) ** 2).mean()
        self._step(("predator_critic", "prey_critic"), critic_loss)

        # agent i's row: the replayed joint action with agent i's own action in its slot
        own = self.act(obs)
        eye = torch.eye(n + m, dtype=torch.bool)[:, None, :, None]
        joint = torch.where(eye, own.unsqueeze(0), action.unsqueeze(0))  # (N + M, B, N + M, A)
        critics = ("predator_critic", "prey_critic")
        for name in critics:  # the policy loss needs no critic gradients
            nets[name].requires_grad_(False)
        try:
            predator_q = nets["predator_critic"](obs.expand(n, *obs.shape), joint[:n])  # (N, B)
            prey_in = torch.cat([obs.flatten(-2).expand(m, *obs.shape[:-2], -1),
                                 joint[n:].flatten(-2)], dim=-1)  # fmt: skip
            prey_q = nets["prey_critic"](prey_in.transpose(0, 1))  # (B, M, 1)
            policy_loss = -predator_q.mean(1).sum() - prey_q.mean(0).sum()
            self._step(("predator_policy", "prey_policy"), policy_loss)
        finally:
            for name in critics:
                nets[name].requires_grad_(True)
        online = {k: dict(v.named_parameters()) for k, v in nets.items()}
        polyak_update(self.targets, online, args.tau)
        return {"critic_loss": critic_loss.item(), "policy_loss": policy_loss.item()}

    def _step(self, names: Sequence[str], loss: torch.Tensor) -> None:
        """Backward ``loss`` and step the named networks, each clipped on its own."""
        for name in names:
            self.opt[name].zero_grad()
        loss.backward()
        for name in names:
            clip_grads(self.nets[name].parameters(), self.maddpg.grad_clip)
            self.opt[name].step()

    # -- results -------------------------------------------------------------------------
    def prey_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The prey policy as ``[(weight (M, in, out), bias (M, out)), ...]`` numpy arrays."""
        return [(w.detach().numpy().copy(), b.detach().numpy().copy())
                for w, b in self.nets["prey_policy"].weights()]  # fmt: skip

    def chasers(self, obs: torch.Tensor) -> torch.Tensor:
        """:func:`chase_nearest` predators' actions from their observations."""
        seen = self.core.config.seen_landmarks
        return torch.from_numpy(chase_nearest(obs.numpy(), seen))

    def set_prey_layers(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Load :meth:`prey_layers` output into the prey policy."""
        with torch.no_grad():
            for (w, b), layer in zip(layers, self.nets["prey_policy"].layers):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))

    def evaluate(self, episodes: int, seed: int, predators: str = "trained") -> dict[str, float]:
        """Catches per episode and mean prey return, no exploration; against the trained
        predators, predators that never move (``"still"``) or :meth:`chasers`."""
        still = lambda o: torch.zeros(*o.shape[:-1], self.act_dim)  # noqa: E731
        policy = {"trained": None, "still": still, "chasers": self.chasers}[predators]
        returns = self.rollout(episodes, seed, explore=False, predators=policy)["reward"].sum(1)
        return {"catches": float(returns[:, 0].mean()) / CATCH_REWARD,
                "prey_reward": float(returns[:, 1:].mean())}  # fmt: skip


def train(args: PreyArgs, maddpg: CommArgs = TABLE2) -> dict[str, Any]:
    """Train, write ``<out>/<key>.npz`` (the prey policy) and ``<key>.json``; return the
    JSON's content."""
    start = time.perf_counter()
    trainer = PreyTrainer(args, maddpg)
    best: dict[str, Any] = {"episode": None, "prey_reward": -np.inf}
    while trainer.episodes_done < args.episodes:
        metrics = trainer.train_iteration()
        done = trainer.episodes_done
        if args.validate_every and done % args.validate_every < maddpg.envs:
            val = trainer.evaluate(64, VALIDATION_SEED, predators="chasers")
            if val["prey_reward"] > best["prey_reward"]:
                best = {"episode": done, **val, "layers": trainer.prey_layers()}
            metrics |= {f"val_{k}": v for k, v in val.items()}
            text = " ".join(f"{k}={v:.3g}" for k, v in metrics.items())
            print(f"{done} episodes {time.perf_counter() - start:.0f}s {text}", file=sys.stderr)
    wall = time.perf_counter() - start
    if "layers" in best:
        trainer.set_prey_layers(best.pop("layers"))
    else:  # no validation: the last policy
        best = {"episode": trainer.episodes_done}
    eval_seed = args.seed + 10**9
    summary = {
        "task": args.task,
        "key": trainer.key,
        "episodes": trainer.episodes_done,
        "seed": args.seed,
        "wall_clock_s": round(wall, 1),
        "args": dataclasses.asdict(args),
        "maddpg": {k: getattr(maddpg, k) for k in MADDPG_FIELDS},
        "selected": best,
        "vs_trained_predators": trainer.evaluate(args.eval_episodes, eval_seed),
        "vs_still_predators": trainer.evaluate(args.eval_episodes, eval_seed, "still"),
        "vs_chasers": trainer.evaluate(args.eval_episodes, eval_seed, "chasers"),
        "command": command_line(args),
    }
    path = save_prey_weights(Path(args.out) / f"{trainer.key}.npz", trainer.prey_layers())
    trained = PretrainedPrey(read_prey_weights(path), continuous=True)
    summary["chaser_catches"] = {
        name: chaser_catches(args.task, prey, args.eval_episodes, eval_seed)
        for name, prey in (
            ("still", still_prey),
            ("heuristic", "heuristic"),
            ("pretrained", trained),
        )
    }
    path.with_suffix(".json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def command_line(args: PreyArgs) -> str:
    """The command that trains ``args`` (fields other than the defaults, and the four
    that name a run)."""
    named = ("task", "episodes", "seed", "out")
    fields = [f.name for f in dataclasses.fields(args)]
    given = [k for k in fields if k in named or getattr(args, k) != getattr(PreyArgs(), k)]
    flags = " ".join(f"--{k.replace('_', '-')} {getattr(args, k)}" for k in given)
    return f"python -m baselines.comm.prey {flags}"


# -- evaluation against scripted chasers ---------------------------------------------------
def chase_nearest(obs: np.ndarray, seen_landmarks: int) -> np.ndarray:
    """Scripted predators: full force towards the nearest prey they see (continuous
    actions ``(..., 5)`` from predator observations ``(..., D)``); none when none is seen."""
    at = 5 + 2 * seen_landmarks  # the nearest opponent's slot: rel. position, velocity, 1
    direction = obs[..., at : at + 2] * obs[..., at + 4 : at + 5]
    dx, dy = direction[..., 0], direction[..., 1]
    unit = np.stack([-dx, dx, -dy, dy], axis=-1) / np.maximum(np.hypot(dx, dy), 1e-9)[..., None]
    action = np.zeros((*obs.shape[:-1], 5), dtype=np.float32)
    action[..., 1:] = np.clip(unit, 0.0, 1.0)  # -x, +x, -y, +y
    return action


def still_prey(obs: np.ndarray, rng: Any = None) -> np.ndarray:
    """A prey policy that never moves (continuous actions)."""
    return np.zeros((*obs.shape[:2], 5), dtype=np.float32)


def chaser_catches(task: str, prey: Any, episodes: int = 256, seed: int = 0) -> float:
    """Catches per episode (prey-predator contacts summed over the episode) of a team of
    :func:`chase_nearest` predators against ``prey`` (any ``prey=`` value) on ``task``,
    with continuous actions."""
    core = metaenvs.make_core(task, prey=prey, continuous_actions=True)
    state = core.reset(episodes, seed)
    total = 0.0
    for _ in range(core.config.horizon):
        result = core.step(state, chase_nearest(core.observe(state), core.config.seen_landmarks))
        total += float(result.reward[:, 0].sum())
    return total / CATCH_REWARD / episodes


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m baselines.comm.prey --task ID --episodes N --seed S --out DIR [...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m baselines.comm.prey", description=__doc__.split("\n\n")[0]
    )
    add_field_flags(parser, PreyArgs)
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    ns = parser.parse_args(argv)
    try:
        args = PreyArgs(**given_fields(PreyArgs, ns))
    except ValueError as err:
        parser.error(str(err))
    one_thread_per_run(ns.threads)
    summary = train(args)
    print(json.dumps({k: v for k, v in summary.items() if k != "args"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
