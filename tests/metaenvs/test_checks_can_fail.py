"""Each conformance check fires on a core broken in the way it is meant to catch."""

import numpy as np
import pytest

import metaenvs
import metaenvs.testing as mt
from metaenvs.faces import BatchedParallelEnv, BatchedVectorEnv
from metaenvs.games.matrix import MatrixGameConfig, MatrixGameCore


class SkipsValidation(MatrixGameCore):
    def step(self, state, actions):
        return self._step(state, np.asarray(actions).astype(np.int64) % 2)


class MutatesBeforeValidating(MatrixGameCore):
    def step(self, state, actions):
        state.t += 1
        return super().step(state, actions)


class DependsOnBatchSize(MatrixGameCore):
    def _step(self, state, actions):
        r = super()._step(state, actions)
        return r._replace(reward=r.reward + np.float32(state.batch))


class TerminatesOnTimeLimit(MatrixGameCore):
    def _step(self, state, actions):
        r = super()._step(state, actions)
        return r._replace(terminated=r.truncated.copy())


class WrongObsDtype(MatrixGameCore):
    def _step(self, state, actions):
        r = super()._step(state, actions)
        return r._replace(obs=r.obs.astype(np.float64))


class StaticPicture(MatrixGameCore):
    def render_copy(self, state, index=0):
        return np.zeros((8, 8, 3), np.uint8)


def core(cls, **kw):
    return cls(MatrixGameConfig(horizon=kw.pop("horizon", 5), **kw))


@pytest.mark.parametrize(
    "cls, check",
    [
        (SkipsValidation, mt.check_bad_input),
        (MutatesBeforeValidating, mt.check_bad_input),
        (DependsOnBatchSize, mt.check_batch_determinism),
        (TerminatesOnTimeLimit, mt.check_space_conformance),
        (WrongObsDtype, mt.check_space_conformance),
        (StaticPicture, mt.check_render),
    ],
)
def test_check_fires_on_broken_core(cls, check):
    with pytest.raises(mt.ConformanceError):
        check(core(cls))


def test_faces_agree_catches_a_face_that_drops_the_final_obs(monkeypatch):
    class DropsFinalObs(BatchedParallelEnv):
        def step(self, actions):
            obs, rew, term, trunc, infos = super().step(actions)
            if not self.agents:  # episode over: hand out the reset observation instead
                obs = dict(zip(self.possible_agents, self.core.observe(self._state)[0]))
            return obs, rew, term, trunc, infos

    make = metaenvs.make
    monkeypatch.setattr(metaenvs, "make", lambda *a, **k: DropsFinalObs(make(*a, **k).core))
    with pytest.raises(mt.ConformanceError, match="PettingZoo face observation"):
        mt.check_faces_agree("ipd", horizon=4)


def test_vector_check_catches_missing_final_obs(monkeypatch):
    class NoFinalObs(BatchedVectorEnv):
        def step(self, actions):
            obs, rew, term, trunc, infos = super().step(actions)
            return obs, rew, term, trunc, {}

    with pytest.raises(mt.ConformanceError, match="final_obs"):
        mt.check_vector_env(NoFinalObs(metaenvs.make_core("ipd", horizon=3), 2))


def test_correct_core_passes_the_same_checks():
    good = core(MatrixGameCore)
    for check in (
        mt.check_bad_input,
        mt.check_batch_determinism,
        mt.check_space_conformance,
        mt.check_render,
    ):
        check(good)


def test_check_all_accepts_keywords():
    mt.check_all("rps", horizon=3)
    assert "ipd-v0" in mt.env_ids() and "ipd-v0" in metaenvs.list_envs()
