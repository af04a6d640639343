"""The public core protocol that wrappers and learners use: declared capabilities
(``NeighbourStructure``), the public faces of the hooks (``start``, ``step_validated``),
the final global state and masks of finished copies, and no private access across
packages."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import metaenvs
import metaenvs._rng
import metaenvs.rng
import metaenvs.testing as mt
from meta_wrappers.comm import CommConfig, CommCore
from metaenvs.core import NeighbourStructure, legal_actions
from metaenvs.games.matrix import MatrixGameCore
from metaenvs.games.particle import ParticleCore
from metaenvs.games.skirmish import SkirmishConfig, SkirmishCore

SRC = Path(__file__).resolve().parents[2] / "src"


# -- declared capabilities -------------------------------------------------------------
@pytest.mark.parametrize("env_id", [s.id for s in metaenvs.registered_specs()])
def test_exactly_the_particle_cores_declare_a_neighbour_structure(env_id):
    core = metaenvs.make_core(env_id)
    assert isinstance(core, NeighbourStructure) == isinstance(core, ParticleCore)
    if isinstance(core, NeighbourStructure):
        ids, rel = core.neighbours_in(core.observe(core.reset(2, 0)))
        d = core.neighbour_slots
        assert ids.shape == (2, core.n_agents, d) and rel.shape == (2, core.n_agents, d, 2)


class DuckTypedIPD(MatrixGameCore):
    """Has both names of the protocol, but does not declare it."""

    neighbour_slots = 1

    def neighbours_in(self, obs):
        return np.zeros((*obs.shape[:-1], 1), dtype=np.int64), np.zeros((*obs.shape[:-1], 1, 2))


def ipd_config():
    return metaenvs.make_core("ipd").config


def test_the_comm_wrapper_refuses_a_core_without_the_protocol_and_names_it():
    with pytest.raises(TypeError, match=r"IPD.*metaenvs\.core\.NeighbourStructure"):
        CommCore(DuckTypedIPD(ipd_config()), CommConfig())
    with pytest.raises(TypeError, match="MatrixGameCore declares no neighbour structure"):
        CommCore(metaenvs.make_core("ipd"), CommConfig())


def test_a_registered_core_is_accepted():
    class RegisteredIPD(DuckTypedIPD):
        pass

    NeighbourStructure.register(RegisteredIPD)
    core = CommCore(RegisteredIPD(ipd_config()), CommConfig(topology="full"))
    assert core.d == 1


def test_the_protocol_is_abstract():
    class Half(NeighbourStructure):
        @property
        def neighbour_slots(self):
            return 1

    with pytest.raises(TypeError, match="neighbours_in"):
        Half()


# -- public faces of the hooks ---------------------------------------------------------
@pytest.mark.parametrize("env_id", ["ipd", "navigation_N3_l3", "skirmish_3m"])
def test_start_on_seed_streams_is_reset(env_id):
    core = metaenvs.make_core(env_id)
    streams = metaenvs.rng.seed_streams(metaenvs.rng.seeds_for_batch(3, 5))
    started, reset = core.start(3, streams.copy()), core.reset(3, 5)
    for name, value in reset.arrays().items():
        np.testing.assert_array_equal(started.arrays()[name], value, err_msg=name)
    with pytest.raises(TypeError, match="uint64"):
        core.start(3, streams.astype(np.int64))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        core.start(3, streams[:2])
    with pytest.raises(ValueError, match="positive"):
        core.start(0, streams[:0])


@pytest.mark.parametrize("env_id", ["ipd", "push_N3", "skirmish_3m"])
def test_step_validated_is_step_without_the_checks(env_id):
    core = metaenvs.make_core(env_id)
    a, b = core.reset(4, 1), core.reset(4, 1)
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = legal_actions(core, a, core.sample_actions(4, rng))
        r1, r2 = core.step(a, actions), core.step_validated(b, actions)
        for f1, f2, name in zip(r1, r2, r1._fields):
            if isinstance(f1, dict):
                assert f1.keys() == f2.keys()
            elif f1 is None:
                assert f2 is None, name
            else:
                np.testing.assert_array_equal(f1, f2, err_msg=name)


def test_the_public_rng_module_is_the_private_one():
    for name in metaenvs.rng.__all__:
        assert getattr(metaenvs.rng, name) is getattr(metaenvs._rng, name)
    assert metaenvs.rng.check_seed(3) == 3


# -- final global state and masks ----------------------------------------------------------
@pytest.mark.parametrize("map_name", ["3m", "MMM2", "corridor", "2s3z"])
def test_skirmish_final_state_and_mask_are_what_a_longer_time_limit_shows(map_name):
    """At the truncation step, ``final_state`` / ``final_mask`` / ``final_obs`` equal the
    global state, masks and observations of a core with a longer time limit, after the same
    steps (the copies that ended earlier restart the same way in both)."""
    limit, batch = 12, 6
    core = metaenvs.make_core("skirmish", map_name=map_name, time_limit=limit)
    longer = metaenvs.make_core("skirmish", map_name=map_name, time_limit=limit + 20)
    a, b = core.reset(batch, 3), longer.reset(batch, 3)
    rng = np.random.default_rng(0)
    for _ in range(limit):
        actions = core.random_legal_actions(a, rng)
        r, r_long = core.step(a, actions), longer.step(b, actions)
        running = ~(r.terminated | r.truncated)
        np.testing.assert_array_equal(r.obs[running], r_long.obs[running])
    truncated = r.truncated
    assert truncated.any() and not r_long.truncated.any()
    np.testing.assert_array_equal(r.final_obs[truncated], longer.observe(b)[truncated])
    np.testing.assert_array_equal(r.final_state[truncated], longer.global_state(b)[truncated])
    np.testing.assert_array_equal(r.final_mask[truncated], longer.action_mask(b)[truncated])
    # the state has already restarted: the finals are not the current state and masks
    assert not np.array_equal(r.final_state[truncated], core.global_state(a)[truncated])


def test_skirmish_final_state_and_mask_of_a_lost_battle():
    """A battle that ends: the final state has the losing team's rows at zero, and the final
    masks are those of the final observations (the dead: only no-op)."""
    core = metaenvs.make_core("skirmish", map_name="3m")  # state: 3 allies x 5, 3 enemies x 4
    state = core.reset(8, 0)
    stop = np.ones((8, core.n_agents), dtype=np.int64)  # our units never fire: they lose
    seen = 0
    for _ in range(core.time_limit):
        r = core.step(state, legal_actions(core, state, stop))
        for b in np.flatnonzero(r.terminated):
            seen += 1
            assert not r.final_state[b, :15].any() and r.final_state[b, 15:].any()
            assert (r.final_mask[b, :, 0] == 1).all() and (r.final_mask[b, :, 1:] == 0).all()
            assert not r.final_obs[b].any()
            assert (core.action_mask(state)[b, :, 1] == 1).all()  # restarted: alive again
    assert seen > 0


@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("ipd", lambda final_obs: final_obs[:, 0]),  # every player sees the state
        ("navigation_N3_l3", lambda final_obs: final_obs.reshape(len(final_obs), -1)),
        ("predator_prey_N3_M1_l3", lambda final_obs: final_obs.reshape(len(final_obs), -1)),
    ],
)
def test_final_state_of_an_observation_based_core_follows_its_final_obs(env_id, expected):
    core = metaenvs.make_core(env_id, horizon=7)
    state = core.reset(3, 2)
    rng = np.random.default_rng(1)
    done_seen = False
    for _ in range(60):
        r = core.step(state, core.sample_actions(3, rng))
        assert r.final_mask is None
        assert r.final_state.shape == (3, *core.global_state_space.shape)
        done = r.terminated | r.truncated
        if done.any():
            done_seen = True
            np.testing.assert_array_equal(r.final_state[done], expected(r.final_obs[done]))
    assert done_seen


def test_the_conformance_check_fails_on_missing_or_misshapen_finals():
    class NoFinalMask(SkirmishCore):
        def _step(self, state, actions):
            return super()._step(state, actions)._replace(final_state=None, final_mask=None)

        def final_action_mask(self, state):
            return None

    with pytest.raises(mt.ConformanceError, match="final_mask"):
        mt.check_space_conformance(NoFinalMask(SkirmishConfig(map_name="3m")), steps=3)

    class StackedFinalState(MatrixGameCore):
        def final_global_state(self, state):
            return state.final_obs  # (B, N, S), not (B, S)

    with pytest.raises(mt.ConformanceError, match="final_state"):
        mt.check_space_conformance(StackedFinalState(ipd_config()), steps=3)


# -- no private access across packages -----------------------------------------------------
PRIVATE = re.compile(
    r"(?<!self)\._init_state\b|(?<!self)\._step\(|\bmetaenvs\._rng\b|\bmetaenvs\.faces\._common\b"
)


def test_wrappers_and_learners_use_the_public_protocol_only():
    found = []
    for package in ("meta_wrappers", "baselines"):
        for path in sorted((SRC / package).rglob("*.py")):
            rel = path.relative_to(SRC).as_posix()
            for k, line in enumerate(path.read_text().splitlines(), 1):
                if PRIVATE.search(line):
                    found.append(f"{rel}:{k}: {line.strip()}")
    assert not found, "private core access from another package:\n" + "\n".join(found)


def test_the_private_access_pattern_fires():
    assert PRIVATE.search("inner = self.inner._init_state(batch, rng)")
    assert PRIVATE.search("result = self.inner._step(state.inner, moves)")
    assert PRIVATE.search("from metaenvs._rng import check_seed")
    assert not PRIVATE.search('self._step("critic", loss, self.critic)')
    assert not PRIVATE.search("from metaenvs.rng import check_seed")
