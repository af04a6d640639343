"""One home per game: the matrix-game profiles (metaenvs.games.matrix_profiles) and one
copy of the game's rules, shared by the matrix core and the learning-peer chain."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

import metaenvs
from meta_wrappers.peers import GAMES, PeerChain, PeerChainConfig
from meta_wrappers.personas import SAMPLERS, make_population
from metaenvs.games import matrix_profiles
from metaenvs.games.matrix_profiles import (
    PERSONA_SAMPLERS,
    PROFILES,
    PersonaSpec,
    matrix_profile,
)
from metaenvs.registry import registered_specs

KNOWN = "Valid: ipd, rps, rps_3p, rps_4p"
# the paper's Tables 3 and 4: horizon, discount, inner, actor and critic learning rates
PAPER = {
    "ipd": (150, 0.96, 0.1, 1e-4, 1.5e-4),
    "rps": (50, 0.9, 0.01, 1e-5, 1.5e-5),
    "rps_3p": (50, 0.9, 0.01, 1e-5, 1.5e-5),
    "rps_4p": (50, 0.9, 0.01, 1e-5, 1.5e-5),
}


# -- the table ---------------------------------------------------------------------------
def test_every_game_with_a_peers_view_has_a_profile_and_no_other():
    with_peers = {s.name for s in registered_specs() if "peers" in s.views}
    assert with_peers == set(PROFILES) == set(GAMES)


@pytest.mark.parametrize("game", sorted(PROFILES))
def test_profile_matches_its_registered_game_and_the_paper(game):
    profile = matrix_profile(game)
    assert profile.name == game
    assert profile.horizon == metaenvs.registry.spec(game).defaults["horizon"]
    rates = profile.paper_rates
    assert (profile.horizon, profile.gamma, *rates.values()) == PAPER[game]
    assert list(rates) == ["inner_lr", "actor_lr", "critic_lr"]
    # the persona sampler fits the game: one table per persona over the game's states
    rules = metaenvs.make_core(game).config
    spec = profile.personas
    pop = make_population(game)
    assert pop.probs.shape == (spec.n_personas, rules.n_states, rules.n_actions)
    assert max(spec.preferred) < rules.n_actions
    assert sorted(set(pop.kinds)) == sorted(spec.kinds)


def test_persona_samplers_are_the_ones_the_table_names():
    assert set(SAMPLERS) == set(PERSONA_SAMPLERS)


def test_profiles_are_frozen():
    with pytest.raises(TypeError):
        PROFILES["chess"] = PROFILES["ipd"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["ipd"].gamma = 0.5  # type: ignore[misc]


def test_unknown_game_raises_naming_the_known_games():
    for make in (matrix_profile, make_population, lambda g: PeerChainConfig(game=g)):
        with pytest.raises(ValueError, match=f"unknown game 'chess'.*{KNOWN}"):
            make("chess")
    # a registered matrix game without a profile does not borrow another game's numbers
    with pytest.raises(ValueError, match=f"unknown game 'matrix_game'.*{KNOWN}"):
        PeerChainConfig(game="matrix_game")
    with pytest.raises(ValueError, match="Did you mean 'rps_3p'"):
        matrix_profile("rps_3")


def test_learner_takes_its_rates_from_the_table(monkeypatch):
    pytest.importorskip("torch")
    from baselines.peers.learner import PeerArgs

    with pytest.raises(ValueError, match="game"):
        PeerArgs(game="chess")
    for game, (horizon, gamma, *rates) in PAPER.items():
        args = PeerArgs(game=game).resolved()
        assert (args.horizon, args.gamma, args.inner_lr, args.actor_lr, args.critic_lr) == (
            horizon, gamma, *rates,
        )  # fmt: skip
    changed = dataclasses.replace(PROFILES["rps_4p"], gamma=0.5, inner_lr=0.3, horizon=7)
    monkeypatch.setattr(
        matrix_profiles, "PROFILES", types.MappingProxyType({**PROFILES, "rps_4p": changed})
    )
    args = PeerArgs(game="rps_4p").resolved()
    assert (args.horizon, args.gamma, args.inner_lr) == (7, 0.5, 0.3)
    assert PeerArgs(game="rps").resolved().inner_lr == 0.01  # its own row, untouched


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(sampler="dirichlet"), "sampler"),
        (dict(preferred=(0,)), "one entry per kind"),
        (dict(ranges=((0.5, 0.2), (0.0, 0.5))), "low <= high"),
        (dict(split_sizes=(401, 40, 40)), "multiples"),
        (dict(per_kind=100), "more than the personas"),
    ],
)
def test_bad_persona_spec_is_rejected(changes, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(PROFILES["ipd"].personas, **changes)


def test_sampler_rejects_a_game_of_the_wrong_size():
    spec = PROFILES["rps"].personas
    with pytest.raises(ValueError, match="needs 3 actions"):
        SAMPLERS[spec.sampler](np.random.default_rng(0), spec, 5, 2)
    assert isinstance(spec, PersonaSpec)


# -- one copy of the rules ---------------------------------------------------------------
@pytest.mark.parametrize("game", sorted(PROFILES))
def test_chain_plays_the_matrix_core_rules(game):
    """Rewards, states and observations of the chain equal the matrix core's (and the
    payoff tensor's) for the same joint actions, across trajectory ends and peer updates."""
    horizon, n_chains = 4, 2
    chain = PeerChain(PeerChainConfig(game=game, k=3, length=1, horizon=horizon))
    state = chain.reset(n_chains, seed=11)
    core = metaenvs.make_core(game, horizon=horizon)
    payoffs = core.config.payoffs
    n_actions, n_agents = core.config.n_actions, core.n_agents
    n_copies = n_chains * chain.config.k
    core_state = core.reset(n_copies, seed=0)
    rng = np.random.default_rng(5)
    core_rewards = []
    played = 0
    for _ in range(3 * horizon):  # two joint policies (a peer update between) and a new chain
        acts = rng.integers(n_actions, size=(n_chains, chain.config.k))
        out = chain.step(state, acts)
        joint = np.concatenate([acts[..., None], out.peer_actions], axis=-1).reshape(n_copies, -1)
        res = core.step(core_state, joint)
        # the independent reference: the payoff tensor and index(a) + 1
        np.testing.assert_array_equal(res.reward, payoffs[tuple(joint.T)].astype(np.float32))
        expected_state = 1 + np.ravel_multi_index(tuple(joint.T), (n_actions,) * n_agents)
        ended = res.truncated
        np.testing.assert_array_equal(core_state.state_id, np.where(ended, 0, expected_state))
        # the chain against the core
        np.testing.assert_array_equal(out.reward.ravel(), res.reward[:, 0])
        np.testing.assert_array_equal(state.game_state.ravel(), core_state.state_id)
        np.testing.assert_array_equal(out.obs.reshape(n_copies, -1), res.obs[:, 0])
        np.testing.assert_array_equal(res.obs[:, 0], res.obs[:, -1])
        assert out.trajectory_done == bool(ended.all()) and (ended.all() or not ended.any())
        core_rewards.append(res.reward.copy())
        if out.batch is not None:
            recorded = out.batch.rewards.reshape(n_copies, horizon, n_agents)
            expected = np.stack(core_rewards[played : played + horizon], axis=1)
            np.testing.assert_array_equal(recorded.astype(np.float32), expected)
            played += horizon
    assert played == 3 * horizon
