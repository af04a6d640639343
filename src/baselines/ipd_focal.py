"""Main job: SB3 PPO learns to play iterated prisoner's dilemma against fixed peers.

One focal agent learns through the single-agent focal view
(:class:`meta_wrappers.focal.FocalEnv`); the peer follows a fixed strategy:
always-defect, tit-for-tat, or a random tabular persona.  The learning curves are
plotted next to the exact best-response return (backward induction,
:func:`meta_wrappers.policies.best_response`), so the plot shows how far PPO is from
the optimum against each peer.

Run::

    python -m baselines.ipd_focal --out runs/ipd_focal
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import metaenvs
from meta_wrappers.focal import FocalEnv
from meta_wrappers.policies import TabularPolicy, best_response, named_peer


@dataclasses.dataclass
class Args:
    """Settings of the main job."""

    out: str = "runs/ipd_focal"
    """Run directory (created; files in it are overwritten)."""
    peers: tuple[str, ...] = ("always_defect", "tit_for_tat", "random_tabular")
    """Fixed peer strategies to train against, one PPO run each."""
    timesteps: int = 200_000
    """PPO environment steps per peer (rounded up to whole rollouts of 2 * horizon * n_envs)."""
    horizon: int = 150
    """IPD rounds per episode (the paper's 150)."""
    n_envs: int = 8
    """Parallel copies of the focal env (SB3 DummyVecEnv)."""
    gamma: float = 0.99
    """PPO discount."""
    seed: int = 0
    """Seed of PPO, the envs and the random persona."""
    eval_episodes: int = 200
    """Episodes of the final greedy-policy evaluation per peer."""


def make_peer(name: str, seed: int, horizon: int) -> TabularPolicy:
    """The peer (player 1) policy named ``name``; the random persona is drawn from ``seed``."""
    config = metaenvs.make_core("ipd", horizon=horizon).config
    return named_peer(name, config, focal=0, rng=np.random.default_rng(seed))


def evaluate(model, env: FocalEnv, episodes: int, seed: int) -> float:
    """Mean return of the model's greedy policy over ``episodes`` episodes."""
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def train(args: Args) -> dict[str, dict[str, float]]:
    """Train PPO against every peer; write metrics, summary and plot into ``args.out``."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from tqdm import tqdm

    import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
    rows: list[dict[str, float | str]] = []
    summary: dict[str, dict[str, float]] = {}
    rollout = 2 * args.horizon * args.n_envs
    per_peer = -(-args.timesteps // rollout) * rollout
    bar = tqdm(total=per_peer * len(args.peers), unit="step", desc="PPO on ipd")

    class Record(BaseCallback):
        def __init__(self, peer: str) -> None:
            super().__init__()
            self.peer = peer

        def _on_step(self) -> bool:
            bar.update(self.training_env.num_envs)
            for info in self.locals["infos"]:
                if "episode" in info:
                    rows.append(
                        {
                            "peer": self.peer,
                            "timesteps": self.num_timesteps,
                            "return": info["episode"]["r"],
                        }
                    )
            return True

    start = time.perf_counter()
    for peer_name in args.peers:
        peer = make_peer(peer_name, args.seed, args.horizon)
        core = metaenvs.make_core("ipd", horizon=args.horizon)
        venv = make_vec_env(
            lambda core=core, peer=peer: FocalEnv(core, [peer]), n_envs=args.n_envs, seed=args.seed
        )
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=args.horizon * 2,
            batch_size=300,
            gamma=args.gamma,
            ent_coef=0.01,
            seed=args.seed,
            verbose=0,
            device="cpu",
        )
        model.learn(per_peer, callback=Record(peer_name))
        optimum, _ = best_response(core.config, 0, {1: peer})
        summary[peer_name] = {
            "best_response_return": optimum,
            "ppo_greedy_return": evaluate(
                model, FocalEnv(core, [peer]), args.eval_episodes, 10_000
            ),
            "ppo_last_train_returns": float(
                np.mean([r["return"] for r in rows if r["peer"] == peer_name][-20:])
            ),
        }
    bar.close()
    summary_all = {"peers": summary, "wall_clock_s": time.perf_counter() - start}
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["peer", "timesteps", "return"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "summary.json").write_text(json.dumps(summary_all, indent=2))
    plot(rows, summary, out / "learning_curves.png", args)
    return summary


def plot(rows: list[dict], summary: dict[str, dict[str, float]], path: Path, args: Args) -> None:
    """One panel per peer: PPO's episode returns (raw and smoothed) and the best response."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, len(summary), figsize=(5 * len(summary), 4), squeeze=False)
    for ax, (peer, stats) in zip(axes[0], summary.items()):
        steps = np.array([r["timesteps"] for r in rows if r["peer"] == peer])
        returns = np.array([r["return"] for r in rows if r["peer"] == peer])
        ax.plot(steps, returns, ".", alpha=0.25, color="tab:blue", label="PPO episode return")
        if len(returns) >= 10:
            window = max(len(returns) // 20, 5)
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"mean of {window}")
        ax.axhline(stats["best_response_return"], color="black", ls="--", label="best response")
        ax.axhline(
            stats["ppo_greedy_return"], color="tab:orange", ls=":", label="PPO greedy, final"
        )
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k"))
        ax.set_title(f"peer: {peer}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel(f"return over {args.horizon} rounds")
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("IPD (Table 1 payoffs): PPO through the focal view vs exact best response")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Args()
    parser.add_argument("--out", default=defaults.out)
    parser.add_argument("--peers", nargs="+", default=list(defaults.peers))
    parser.add_argument("--timesteps", type=int, default=defaults.timesteps)
    parser.add_argument("--horizon", type=int, default=defaults.horizon)
    parser.add_argument("--n-envs", type=int, default=defaults.n_envs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    ns = parser.parse_args(argv)
    args = Args(
        out=ns.out,
        peers=tuple(ns.peers),
        timesteps=ns.timesteps,
        horizon=ns.horizon,
        n_envs=ns.n_envs,
        seed=ns.seed,
    )
    summary = train(args)
    for peer, stats in summary.items():
        print(
            f"{peer:>16}: PPO greedy {stats['ppo_greedy_return']:8.2f}   "
            f"best response {stats['best_response_return']:8.2f}"
        )
    print(f"run directory: {args.out}")


if __name__ == "__main__":
    main()
