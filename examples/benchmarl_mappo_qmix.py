"""BenchMARL: MAPPO on ``navigation_N3_l3`` and QMIX on ``skirmish_3m``.

``metaenvs.integrations.benchmarl.MetaenvsTask`` makes every registered id a BenchMARL
task, so BenchMARL's own algorithms, models and experiment loop run on it unchanged.
The script runs two experiments of ``--frames`` environment steps each, MAPPO (one
policy shared by the agents, a centralised critic) on cooperative navigation and QMIX
(per-agent Q-networks, a mixer reading the global state, masked actions) on the 3-marine
Skirmish map, and prints the mean evaluation return per agent (greedy actions, BenchMARL's
evaluation) after the first batch of training and at the end, and that of random
available actions.

Needs BenchMARL (``pip install 'metaenvs[benchmarl]'``, in its own venv: it pins TorchRL
below 0.12).

Usage::

    python examples/benchmarl_mappo_qmix.py                 # 2 x 30k steps, about 3 minutes
    python examples/benchmarl_mappo_qmix.py --frames 200    # smoke run
    python examples/benchmarl_mappo_qmix.py --algorithms qmix

With the defaults (seed 0) the greedy return per agent goes from -28.51 after the first
batch to -15.18 for MAPPO on navigation (random actions: -28.57), and from 0.99 to 6.07 for
QMIX on Skirmish (random legal actions: 1.01); 5 evaluation episodes each, about 1 and 2
minutes of CPU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings

import numpy as np
import torch
from benchmarl.algorithms import MappoConfig, QmixConfig
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.experiment.callback import Callback
from benchmarl.models.mlp import MlpConfig

import metaenvs
from metaenvs.core import legal_actions
from metaenvs.integrations.benchmarl import MetaenvsTask

RUNS = {  # algorithm, task, the id's keywords, learning rate
    "mappo": (MappoConfig, MetaenvsTask.NAVIGATION_N3_L3, {"max_cycles": 25}, 1e-3),
    "qmix": (QmixConfig, MetaenvsTask.SKIRMISH_3M, {}, 5e-4),
}


class EvaluationReturns(Callback):
    """Records (and prints) the mean episode return per agent of each evaluation."""

    def __init__(self) -> None:
        super().__init__()
        self.returns: list[float] = []

    def on_evaluation_end(self, rollouts: list) -> None:
        per_episode = []
        for rollout in rollouts:
            for group in self.experiment.group_map:
                # (steps, agents, 1) summed over the episode, averaged over the agents
                per_episode.append(rollout["next", group, "reward"].sum(0).mean().item())
        self.returns.append(sum(per_episode) / len(per_episode))
        frames = self.experiment.total_frames
        print(f"  evaluation at {frames} frames: return per agent {self.returns[-1]:.2f}")


def random_return(env_id: str, keywords: dict, episodes: int, seed: int) -> float:
    """Mean episode return per agent of random available actions, straight on the core."""
    core = metaenvs.make_core(env_id, **keywords)
    state, rng = core.reset(1, seed), np.random.default_rng(seed)
    total, returns = 0.0, []
    while len(returns) < episodes:
        result = core.step(state, legal_actions(core, state, core.sample_actions(1, rng)))
        total += float(result.reward.mean())
        if result.terminated[0] or result.truncated[0]:
            returns.append(total)
            total = 0.0
    return float(np.mean(returns))


def experiment_config(frames: int, folder: str) -> ExperimentConfig:
    """BenchMARL's defaults, sized for a laptop: CPU, small batches, evaluation at the
    first batch and at the end only, nothing written but BenchMARL's JSON in ``folder``."""
    config = ExperimentConfig.get_from_yaml()
    config.sampling_device = config.train_device = config.buffer_device = "cpu"
    config.max_n_frames = frames
    config.on_policy_collected_frames_per_batch = min(1_000, frames)
    config.on_policy_n_minibatch_iters = 10
    config.on_policy_minibatch_size = min(400, frames)
    config.off_policy_collected_frames_per_batch = min(1_000, frames)
    config.off_policy_n_optimizer_steps = 50
    config.off_policy_train_batch_size = min(128, frames)
    config.evaluation_interval = frames  # a multiple of the batches: see main()
    config.evaluation_episodes = 5
    config.render = False
    config.loggers = []  # BenchMARL evaluates only when it logs: its JSON goes to folder
    config.create_json = True
    config.save_folder = folder
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    return config


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=30_000, help="env steps per algorithm")
    parser.add_argument(
        "--algorithms", nargs="+", choices=list(RUNS), default=list(RUNS), help="which runs"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested")
    if args.frames > 1_000 and args.frames % 1_000:
        parser.error("--frames must be a multiple of 1000 (a batch), or below 1000")

    summary: dict = {"frames": args.frames}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.algorithms:
            algorithm, task, keywords, lr = RUNS[name]
            config = experiment_config(args.frames, folder)
            config.lr = lr
            algorithm_config = algorithm.get_from_yaml()
            if name == "mappo":
                algorithm_config.entropy_coef = 0.01  # keeps exploring (BenchMARL's: 0)
            print(f"{name} on {task.name.lower()}:", flush=True)
            returns = EvaluationReturns()
            experiment = Experiment(
                task=task.get_task(config=keywords),
                algorithm_config=algorithm_config,
                model_config=MlpConfig.get_from_yaml(),
                critic_model_config=MlpConfig.get_from_yaml(),
                seed=args.seed,
                config=config,
                callbacks=[returns],
            )
            t0 = time.perf_counter()
            experiment.run()
            summary[name] = {
                "env_id": experiment.task.env_id,
                "seconds": round(time.perf_counter() - t0, 1),
                "return_after_first_batch": round(returns.returns[0], 2),
                "return_at_end": round(returns.returns[-1], 2),
                "random_return": round(
                    random_return(experiment.task.env_id, keywords, 20, 10_000 + args.seed), 2
                ),
            }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
