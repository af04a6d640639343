"""The HalfCheetah teammate population (baselines.peers.teammates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.peers import teammates
from baselines.peers.estimators import advantages_with_linear_baseline

TINY = teammates.TeammateArgs(iterations=3, trajectories=2, horizon=8, keep=(0, 2))


def reference_means(params: dict[str, torch.Tensor], obs: torch.Tensor) -> torch.Tensor:
    """The same policy through torch.nn.LSTMCell: FC -> ReLU -> LSTM -> Linear."""
    hidden = params["fc_b"].shape[0]
    cell = torch.nn.LSTMCell(hidden, hidden)
    with torch.no_grad():
        cell.weight_ih.copy_(params["ih_w"].T)
        cell.weight_hh.copy_(params["hh_w"].T)
        cell.bias_ih.copy_(params["lstm_b"])
        cell.bias_hh.zero_()
    h = c = torch.zeros(obs.shape[0], hidden)
    out = []
    for t in range(obs.shape[1]):
        x = torch.relu(obs[:, t] @ params["fc_w"] + params["fc_b"])
        h, c = cell(x, (h, c))
        out.append(h @ params["out_w"] + params["out_b"])
    return torch.stack(out, 1)


def test_gaussian_lstm_is_fc_lstm_linear_with_a_state_free_std() -> None:
    gen = torch.Generator().manual_seed(0)
    params = teammates.init_policy(17, 3, 16, gen)
    params["log_std"] = torch.tensor([-0.5, 0.0, 0.3])
    obs, actions = torch.randn(4, 6, 17, generator=gen), torch.randn(4, 6, 3, generator=gen)
    with torch.no_grad():
        means = reference_means(params, obs)
        expected = torch.distributions.Normal(means, params["log_std"].exp()).log_prob(actions)
        got = teammates.log_prob(params, obs, actions)
    torch.testing.assert_close(got, expected.sum(-1), rtol=1e-5, atol=1e-5)


def test_linear_baseline_removes_what_the_time_features_explain() -> None:
    obs = torch.randn(2, 5, 30, 4)
    rewards = torch.ones(5, 30)  # gamma 1: rewards-to-go 30 - t, a polynomial in t
    adv = advantages_with_linear_baseline(obs, rewards, 1.0)
    assert adv.shape == (2, 5, 30)
    assert adv.abs().max() < 1e-2  # of returns up to 30 (the ridge term leaves a little)
    noisy = advantages_with_linear_baseline(obs, rewards + torch.randn(5, 30), 1.0)
    assert noisy.abs().max() > 0.1


@pytest.fixture(scope="module")
def population_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mujoco")
    path = tmp_path_factory.mktemp("teammates") / "pop.npz"
    teammates.save(teammates.train(TINY, progress=False), path)
    return path


def test_population_keeps_the_teammate_checkpoints_it_was_asked_for(population_file: Path) -> None:
    pop = teammates.Population(population_file)
    assert list(pop.kept) == [0, 2]
    assert pop.returns.shape == (3,)
    assert pop.args["horizon"] == 8
    first, last = pop.params(0), pop.params(2)
    assert set(first) == {"fc_w", "fc_b", "ih_w", "hh_w", "lstm_b", "out_w", "out_b", "log_std"}
    assert first["fc_w"].shape == (17, 64)
    assert not torch.equal(first["out_w"], last["out_w"])  # two updates apart
    with pytest.raises(KeyError, match="checkpoint 1 is not in the population"):
        pop.params(1)
    assert pop.split("train") == [k for k in (0, 2) if k in teammates.SPLITS["train"]]
    assert sorted(pop.split("train") + pop.split("val")) == [0, 2]
    assert pop.split("test") == []
    with pytest.raises(ValueError, match="split must be one of"):
        pop.split("meta-test")


def test_checkpoint_zero_is_the_seeded_initialisation(population_file: Path) -> None:
    pop = teammates.Population(population_file)
    gen = torch.Generator().manual_seed(TINY.seed)
    init = [teammates.init_policy(17, 3, TINY.hidden, gen) for _ in range(2)][teammates.TEAMMATE]
    for name, value in init.items():
        torch.testing.assert_close(pop.params(0)[name], value)


def test_same_seed_same_population(population_file: Path, tmp_path: Path) -> None:
    again = teammates.save(teammates.train(TINY, progress=False), tmp_path / "again.npz")
    a, b = teammates.Population(population_file), teammates.Population(again)
    np.testing.assert_array_equal(a.checkpoints, b.checkpoints)
    np.testing.assert_array_equal(a.returns, b.returns)


def test_splits_follow_the_code_sizes_and_ranges() -> None:
    s = teammates.SPLITS
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (275, 25, 25)
    assert set(s["train"]) | set(s["val"]) == set(range(300))
    assert not set(s["train"]) & set(s["val"])
    assert s["test"] == tuple(range(475, 500))


@pytest.mark.parametrize(
    "bad",
    [dict(iterations=0), dict(trajectories=1.5), dict(lr=0.0), dict(discount=1.5), dict(keep=(3,))],
)
def test_bad_settings_raise(bad: dict) -> None:
    with pytest.raises(ValueError):
        teammates.TeammateArgs(**{"iterations": 3, **bad})


def test_unflatten_refuses_a_vector_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="a parameter vector of 5 floats"):
        teammates.unflatten(np.zeros(5, np.float32), {"w": (2, 3)})


def test_rollout_keeps_every_steps_observation_and_replays() -> None:
    pytest.importorskip("mujoco")
    import metaenvs

    core = metaenvs.make_core("halfcheetah_2x3", horizon=6, forward_reward_weight=-1.0)
    gen = torch.Generator().manual_seed(1)
    policies = [teammates.init_policy(17, 3, 8, gen) for _ in range(2)]
    obs, actions, rewards = teammates.rollout(core, policies, 7, gen, 3, 6)
    assert obs.shape == (2, 3, 6, 17) and actions.shape == (2, 3, 6, 3) and rewards.shape == (3, 6)
    state = core.reset(3, 7)
    for t in range(6):
        np.testing.assert_array_equal(obs[:, :, t].permute(1, 0, 2).numpy(), state.obs)
        joint = actions[:, :, t].permute(1, 0, 2).clamp(-1, 1).numpy()
        result = core.step(state, joint)
        np.testing.assert_allclose(rewards[:, t].numpy(), result.reward[:, 0], rtol=1e-6)
    assert not torch.equal(obs[:, :, 0], obs[:, :, 5])


def test_cli_writes_the_population_and_its_figure(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    out = tmp_path / "pop.npz"
    args = ["--out", str(out), "--iterations", "2", "--trajectories", "2", "--horizon", "4"]
    assert teammates.main([*args, "--keep", "1", "--plot", str(tmp_path / "p.png")]) == 0
    assert list(teammates.Population(out).kept) == [1]
    assert (tmp_path / "p.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        teammates.main(["--out", str(out), "--iterations", "2", "--keep", "5"])
