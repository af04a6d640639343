"""SB3 PPO with parameter sharing on ``navigation_N3_l3``: does it beat random actions?

Every agent of every copy is one slot of the SB3 vector env (``metaenvs.make_sb3_vec``),
so one PPO policy is shared by all agents.  The script trains for ``--steps`` agent
steps, then compares the mean episode return per agent (25 steps, the shared reward)
of the greedy policy with that of uniformly random actions, both over ``--episodes``
episodes on fresh seeds.

Usage::

    python examples/sb3_navigation.py                 # 300k agent steps, about 3 minutes
    python examples/sb3_navigation.py --steps 30000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from stable_baselines3 import PPO

import metaenvs

ENV_ID = "navigation_N3_l3"


def episode_returns(policy, copies: int, episodes: int, seed: int) -> np.ndarray:
    """Mean return per agent of ``episodes`` episodes per copy; ``policy(obs) -> actions``."""
    core = metaenvs.make_core(ENV_ID)
    state = core.reset(copies, seed)
    totals, done_returns = np.zeros((copies, core.n_agents)), []
    while len(done_returns) < episodes * copies:
        result = core.step(state, policy(core.observe(state)))
        totals += result.reward
        for b in np.flatnonzero(result.truncated | result.terminated):
            done_returns.append(totals[b].mean())
            totals[b] = 0.0
    return np.array(done_returns)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300_000, help="agent steps of training")
    parser.add_argument("--copies", type=int, default=16, help="copies of the game (x 3 agents)")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per copy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    venv = metaenvs.make_sb3_vec(ENV_ID, num_envs=args.copies)
    venv.seed(args.seed)
    model = PPO(
        "MlpPolicy", venv, n_steps=128, batch_size=512, learning_rate=1e-3, gamma=0.95,
        ent_coef=0.01, seed=args.seed, verbose=0,
    )  # fmt: skip
    t0 = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    train_s = time.perf_counter() - t0

    def greedy(obs: np.ndarray) -> np.ndarray:
        flat = obs.reshape(-1, obs.shape[-1])
        actions, _ = model.predict(flat, deterministic=True)
        return actions.reshape(obs.shape[:2])

    rng = np.random.default_rng(args.seed)
    core = metaenvs.make_core(ENV_ID)

    def random(obs: np.ndarray) -> np.ndarray:
        return core.sample_actions(obs.shape[0], rng)

    eval_seed = 10_000 + args.seed
    ppo = episode_returns(greedy, args.copies, args.episodes, eval_seed)
    rnd = episode_returns(random, args.copies, args.episodes, eval_seed)
    summary = {
        "env_id": ENV_ID,
        "agent_steps": args.steps,
        "train_seconds": round(train_s, 1),
        "ppo_return": round(float(ppo.mean()), 2),
        "ppo_return_sem": round(float(ppo.std() / np.sqrt(len(ppo))), 2),
        "random_return": round(float(rnd.mean()), 2),
        "random_return_sem": round(float(rnd.std() / np.sqrt(len(rnd))), 2),
        "episodes": len(ppo),
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
