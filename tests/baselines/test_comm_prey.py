"""The prey trainer (baselines.comm.prey) and the shipped pretrained prey."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.comm import prey as prey_training  # noqa: E402
from baselines.comm.learner import CommArgs  # noqa: E402
from metaenvs.games import pretrained_prey as pp  # noqa: E402

TINY = {"episodes": 16, "hidden": 16, "eval_episodes": 8, "validate_every": 8}
#: learning settings of a tiny run: updates from the second iteration on
QUICK = CommArgs(envs=8, warmup_episodes=8, batch_size=32)


def test_trainer_writes_loadable_prey(tmp_path):
    """The command line trains end to end and writes the weights the env loads."""
    argv = ["--task", "predator_prey_N3_M1_l3", "--seed", "3", "--out", str(tmp_path)]
    argv += [arg for k, v in TINY.items() for arg in (f"--{k.replace('_', '-')}", str(v))]
    assert prey_training.main(argv) == 0  # 16 episodes: no update before Table 2's warm-up
    summary = json.loads((tmp_path / "N3_M1_L3_l3.json").read_text())
    assert summary["task"] == "predator_prey_N3_M1_l3" and summary["episodes"] == 16
    assert summary["seed"] == 3 and summary["wall_clock_s"] > 0
    for against in ("vs_trained_predators", "vs_still_predators", "vs_chasers"):
        assert set(summary[against]) == {"catches", "prey_reward"}
    assert summary["selected"]["episode"] in (8, 16)  # the best of the two validations
    assert set(summary["chaser_catches"]) == {"still", "heuristic", "pretrained"}
    weights = pp.read_prey_weights(tmp_path / "N3_M1_L3_l3.npz")
    assert weights[0].shape == (1, pp.input_size(3, 1, 3, 3), 16)
    core = prey_training.metaenvs.make_core(
        "predator_prey_N3_M1_l3", prey=pp.PretrainedPrey(weights, continuous=False)
    )
    state = core.reset(4, seed=0)
    core.step(state, np.zeros((4, 3), dtype=np.int64))


@pytest.mark.parametrize(
    ("task", "chasers"), [("predator_prey_N3_M1_l3", 0.0), ("predator_prey_N6_M2_l1", 0.5)]
)
def test_saved_prey_equal_the_torch_policy(task, chasers, tmp_path):
    args = prey_training.PreyArgs(task=task, out=str(tmp_path), chasers=chasers, **TINY)
    trainer = prey_training.PreyTrainer(args, QUICK)
    for _ in range(2):  # the second iteration updates the networks
        metrics = trainer.train_iteration()
    assert "policy_loss" in metrics
    path = pp.save_prey_weights(tmp_path / trainer.key, trainer.prey_layers())
    policy = pp.PretrainedPrey(pp.read_prey_weights(path), continuous=True)
    width = trainer.core.observation_space.shape[0]
    obs = np.random.default_rng(0).normal(size=(7, trainer.m, width)).astype(np.float32)
    with torch.no_grad():
        prey_net = trainer.nets["prey_policy"]
        want = torch.sigmoid(prey_net(torch.from_numpy(obs[..., : trainer.prey_inputs])))
    got = policy(obs, None)
    assert got.shape == (7, trainer.m, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
    # the agents-mode observations the trainer learns from are those the env hands a callable
    pretrained_core = prey_training.metaenvs.make_core(task, prey=policy, continuous_actions=True)
    assert pretrained_core.prey_observation_space.shape == (width,)


def test_bad_prey_args_raise():
    with pytest.raises(ValueError, match="predator-prey"):
        prey_training.PreyArgs(task="navigation_N3_l3")
    with pytest.raises(ValueError, match="episodes"):
        prey_training.PreyArgs(episodes=0)
    with pytest.raises(ValueError, match="validate_every"):
        prey_training.PreyArgs(validate_every=-1)


def test_pretrained_prey_are_caught_less_than_still_prey():
    """Chasers (each predator runs at the nearest prey it sees) catch the shipped prey of
    predator_prey_N3_M1_l3 less than half as often as prey that stand still."""
    task = "predator_prey_N3_M1_l3"
    still = prey_training.chaser_catches(task, prey_training.still_prey, episodes=128)
    pretrained = prey_training.chaser_catches(task, "pretrained", episodes=128)
    assert still > 4.0
    assert pretrained < 0.5 * still, (pretrained, still)
