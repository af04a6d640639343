"""Focal view (fixed peers) and the exact best response it is judged against."""

import gymnasium
import numpy as np
import pytest

import metaenvs
import metaenvs.testing as mt
from meta_wrappers.focal import FocalEnv, make_focal_env
from meta_wrappers.policies import (
    TabularPolicy,
    always,
    best_response,
    named_peer,
    tit_for_tat,
    uniform,
)

IPD = metaenvs.make_core("ipd").config


@pytest.mark.parametrize(
    "peer, value",
    [
        # derived by hand from Table 1 over 150 rounds:
        (always(IPD, 1), -0.5 * 150),  # defect back every round
        (always(IPD, 0), 1.5 * 150),  # exploit a sure cooperator
        (tit_for_tat(IPD, copy_agent=0), 0.5 * 149 + 1.5),  # cooperate, defect in the last round
    ],
)
def test_best_response_values_against_known_strategies(peer, value):
    got, policy = best_response(IPD, 0, {1: peer})
    assert got == pytest.approx(value)
    assert policy.shape == (150, 5)


def test_best_response_policy_against_tit_for_tat_defects_only_at_the_end():
    _, policy = best_response(IPD, 0, {1: tit_for_tat(IPD, copy_agent=0)})
    assert (policy[:-1, [0, 1, 3]] == 0).all()  # cooperate while the peer cooperates next
    assert (policy[-1] == 1).all()


def test_best_response_in_rps_against_a_rock_player_is_paper():
    rps = metaenvs.make_core("rps").config
    value, policy = best_response(rps, 1, {0: always(rps, 0)})
    assert value == pytest.approx(50.0) and (policy == 1).all()
    value, _ = best_response(rps, 0, {1: uniform(rps)})
    assert value == pytest.approx(0.0)


def test_focal_env_plays_the_peer_policy():
    env = make_focal_env("ipd", peers="always_defect", horizon=4)
    env.reset(seed=0)
    rewards = [env.step(0)[1] for _ in range(3)]
    *_, truncated, info = env.step(1)
    assert rewards == [-1.5, -1.5, -1.5] and truncated and info["peer_actions"].tolist() == [1]


def test_focal_env_seeded_random_peers_repeat():
    env = gymnasium.make("metaenvs/rps-focal-v0", peers="uniform")
    mt.check_single_agent_env(env)
    mt.check_single_agent_env(gymnasium.make("metaenvs/rps_4p-focal-v0", peers="random_tabular"))


def test_focal_env_with_a_user_callable_and_bad_arguments():
    calls = []

    def peer(obs, rng):
        calls.append(obs.argmax())
        return 2

    env = make_focal_env("rps_3p", peers=[peer, "always_rock"], focal_agent=1)
    env.reset(seed=0)
    _, reward, *_ = env.step(0)  # focal rock vs scissors (peer) and rock: mean(1, 0)
    assert reward == pytest.approx(0.5) and calls == [0]
    with pytest.raises(TypeError, match="integers"):
        env.step(0.5)  # a float is not a discrete action, not even after a cast
    with pytest.raises(ValueError, match="out of range"):
        env.step(3)
    core = metaenvs.make_core("ipd")
    with pytest.raises(ValueError, match="peer policies"):
        FocalEnv(core, [])
    with pytest.raises(ValueError, match="focal_agent"):
        FocalEnv(core, [uniform(IPD)], focal_agent=2)
    with pytest.raises(ValueError, match="unknown peer policy 'nice'"):
        make_focal_env("ipd", peers="nice")
    with pytest.raises(ValueError, match="rows"):
        TabularPolicy(np.ones((5, 2)))


def test_named_peers():
    rng = np.random.default_rng(0)
    assert (named_peer("always_defect", IPD, 0, rng).probs[:, 1] == 1).all()
    assert (named_peer("always_1", IPD, 0, rng).probs[:, 1] == 1).all()
    persona = named_peer("random_tabular", IPD, 0, rng)
    assert persona.probs.shape == (5, 2)
    np.testing.assert_allclose(persona.probs.sum(axis=1), 1.0)
