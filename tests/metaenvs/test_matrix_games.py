"""Game rules against the paper's payoff tables (meta-mapg-learning-peers, Tables 1 and 2)."""

import itertools

import numpy as np
import pytest

import metaenvs
from metaenvs.games.matrix import MatrixGameConfig, MatrixGameCore, pairwise_mean_payoffs
from metaenvs.testing import copy_result

# Table 1 (IPD): (row, column) -> (reward of player 0, reward of player 1); C = 0, D = 1
TABLE_1 = {(0, 0): (0.5, 0.5), (0, 1): (-1.5, 1.5), (1, 0): (1.5, -1.5), (1, 1): (-0.5, -0.5)}
# Table 2 (RPS): R = 0, P = 1, S = 2
TABLE_2 = {
    (0, 0): (0, 0), (0, 1): (-1, 1), (0, 2): (1, -1),
    (1, 0): (1, -1), (1, 1): (0, 0), (1, 2): (-1, 1),
    (2, 0): (-1, 1), (2, 1): (1, -1), (2, 2): (0, 0),
}  # fmt: skip


def play(env_id, joint_actions, **kw):
    core = metaenvs.make_core(env_id, **kw)
    state = core.reset(1, 0)
    return core, state, [copy_result(core.step(state, np.array([a]))) for a in joint_actions]


@pytest.mark.parametrize("env_id, table", [("ipd", TABLE_1), ("rps", TABLE_2)])
def test_two_player_payoffs_match_the_paper(env_id, table):
    _, _, results = play(env_id, list(table))
    for (joint, expected), r in zip(table.items(), results):
        np.testing.assert_array_equal(r.reward[0], np.float32(expected), err_msg=str(joint))


@pytest.mark.parametrize("env_id, n_actions", [("ipd", 2), ("rps", 3)])
def test_state_is_the_previous_joint_action(env_id, n_actions):
    joints = list(itertools.product(range(n_actions), repeat=2))
    core, state, results = play(env_id, joints)
    assert core.observe(core.reset(1, 0))[0, 0].argmax() == 0  # s_0 = 0
    assert core.observation_space.shape == (n_actions**2 + 1,)
    for (a0, a1), r in zip(joints, results):
        expected = 1 + a0 * n_actions + a1
        assert r.obs[0, 0].argmax() == expected and r.obs[0, 0].sum() == 1
        np.testing.assert_array_equal(r.obs[0, 0], r.obs[0, 1])


@pytest.mark.parametrize("env_id, horizon", [("ipd", 150), ("rps", 50), ("rps_3p", 50)])
def test_default_horizon_truncates_and_never_terminates(env_id, horizon):
    core = metaenvs.make_core(env_id)
    state = core.reset(2, 0)
    actions = np.ones((2, core.n_agents), dtype=np.int64)
    for t in range(1, 2 * horizon + 1):
        r = core.step(state, actions)
        assert not r.terminated.any()
        assert r.truncated.all() == (t % horizon == 0)
        if t % horizon == 0:
            # final_obs is the last state (joint action 1,1,...), obs is s_0 of the next episode
            last_state = 1 + sum(core.config.n_actions**k for k in range(core.n_agents))
            assert (r.final_obs[:, :, last_state] == 1).all()
            assert (r.obs[:, :, 0] == 1).all()


def test_three_and_four_player_rps_use_the_mean_of_pairwise_payoffs():
    _, _, (r,) = play("rps_3p", [(0, 0, 1)])  # rock, rock, paper
    np.testing.assert_allclose(r.reward[0], [-0.5, -0.5, 1.0])
    _, _, (r,) = play("rps_4p", [(0, 1, 2, 2)])  # rock, paper, scissors, scissors
    np.testing.assert_allclose(r.reward[0], [1 / 3, -1 / 3, 0.0, 0.0], atol=1e-7)
    for n in (3, 4):
        payoffs = metaenvs.make_core(f"rps_{n}p").config.payoffs
        np.testing.assert_allclose(payoffs.sum(axis=-1), 0.0, atol=1e-12)  # zero-sum
        assert payoffs.shape == (3,) * n + (n,)


def test_pairwise_mean_of_two_players_is_the_table():
    two = pairwise_mean_payoffs(np.array([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]]), 2)
    for joint, expected in TABLE_2.items():
        np.testing.assert_array_equal(two[joint], expected)


def test_matrix_game_family_takes_any_payoff_tensor():
    rng = np.random.default_rng(0)
    payoffs = rng.normal(size=(4, 4, 4, 3))
    core, _, results = play("matrix_game", [(3, 0, 2), (1, 1, 1)], payoffs=payoffs, horizon=9)
    assert core.n_agents == 3 and core.action_space.n == 4
    assert core.observation_space.shape == (4**3 + 1,)
    np.testing.assert_allclose(results[0].reward[0], payoffs[3, 0, 2], rtol=1e-6)
    np.testing.assert_allclose(results[1].reward[0], payoffs[1, 1, 1], rtol=1e-6)
    assert results[1].obs[0, 0].argmax() == 1 + 1 * 16 + 1 * 4 + 1


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"payoffs": np.zeros((2, 2))}, ValueError, "shape"),
        ({"payoffs": np.zeros((2, 3, 2))}, ValueError, "shape"),
        ({"payoffs": np.full((2, 2, 2), np.nan)}, ValueError, "NaN"),
        ({"horizon": 0}, ValueError, "horizon"),
        ({"horizon": 2.5}, TypeError, "horizon"),
        ({"action_names": ("a",)}, ValueError, "action_names"),
        ({"horizn": 3}, TypeError, "Did you mean 'horizon'"),
    ],
)
def test_bad_config_is_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        metaenvs.make_core("matrix_game", **kwargs)


def test_paper_games_fix_their_payoffs():
    with pytest.raises(TypeError, match="payoffs"):
        metaenvs.make("ipd", payoffs=np.zeros((2, 2, 2)))
    assert metaenvs.make_core("ipd", horizon=10).config.horizon == 10


def test_config_is_frozen_and_payoffs_read_only():
    config = MatrixGameConfig(horizon=3)
    with pytest.raises(AttributeError):
        config.horizon = 4
    with pytest.raises(ValueError):
        config.payoffs[0, 0, 0] = 9.0
    assert MatrixGameCore(config.replace(horizon=7)).config.horizon == 7


def test_rps_agrees_with_pettingzoo_rps_v2():
    """Independent reference: PettingZoo's own rock-paper-scissors (0 rock, 1 paper, 2 scissors)."""
    rps_v2 = pytest.importorskip("pettingzoo.classic.rps_v2")
    reference = rps_v2.parallel_env(max_cycles=50)
    reference.reset(seed=0)
    joints = list(itertools.product(range(3), repeat=2)) * 3
    _, _, ours = play("rps", joints)
    for (a0, a1), r in zip(joints, ours):
        _, rewards, _, trunc, _ = reference.step({"player_0": a0, "player_1": a1})
        np.testing.assert_array_equal(r.reward[0], [rewards["player_0"], rewards["player_1"]])
        assert r.truncated[0] == trunc["player_0"]
