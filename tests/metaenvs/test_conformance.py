"""The public conformance suite, run on every registered id (generated from the registry)."""

import importlib
import inspect
import pkgutil

import pytest

import metaenvs
import metaenvs.games
import metaenvs.testing as mt

SKIRMISH_SAMPLE = {
    "skirmish-v1",  # the family id (any map by keyword)
    "skirmish_3m-v1",  # marines: the plain case
    "skirmish_2s3z-v1",  # shields, melee units
    "skirmish_MMM2-v1",  # a healer, mixed armour, asymmetric sides
    "skirmish_corridor-v1",  # terrain, many agents
}
"""Skirmish maps that get the full suite; the others share their code paths and get
:func:`test_smoke` (the full suite on all 15 maps was 39% of the test time)."""
POPULATIONS = {"survival_N230-v0", "survival_N630-v0"}
"""Hundreds of agents: the full suite's 300-step rollouts of every face would hold
gigabytes of observations; the family id ``survival-v0`` (20 agents, the same code) gets the
full suite, these the smoke test."""
FULL = [
    i
    for i in mt.env_ids()
    if (not i.startswith("skirmish") or i in SKIRMISH_SAMPLE) and i not in POPULATIONS
]
SMOKE = [i for i in mt.env_ids() if i not in FULL]
parametrize = pytest.mark.parametrize("env_id", FULL)


@pytest.mark.parametrize("env_id", SMOKE)
def test_smoke(env_id):
    """The other Skirmish maps and the large Survival populations: spaces, bad input and
    faces agreeing, over short runs."""
    mt.check_space_conformance(env_id, batch=2, steps=40)
    mt.check_bad_input(env_id)
    mt.check_faces_agree(env_id, steps=40)


def test_the_sample_is_registered():
    assert (SKIRMISH_SAMPLE | POPULATIONS) <= set(mt.env_ids()) and len(SMOKE) >= 10


@parametrize
def test_space_conformance(env_id):
    mt.check_space_conformance(env_id)


@parametrize
def test_batch_determinism(env_id):
    mt.check_batch_determinism(env_id)


@parametrize
def test_bad_input_raises_and_leaves_state(env_id):
    mt.check_bad_input(env_id)


@parametrize
def test_pickle_round_trip(env_id):
    mt.check_pickle(env_id)


@parametrize
def test_render(env_id):
    mt.check_render(env_id)


@parametrize
def test_pettingzoo_parallel_and_aec_api(env_id):
    mt.check_parallel_api(lambda: metaenvs.make(env_id))


@parametrize
def test_pettingzoo_seeding(env_id):
    mt.check_parallel_seeding(lambda: metaenvs.make(env_id))


@parametrize
def test_gymnasium_vector_face(env_id):
    mt.check_vector_env(metaenvs.make_vec(env_id, num_envs=5))


@parametrize
def test_faces_agree(env_id):
    mt.check_faces_agree(env_id)


@parametrize
def test_single_agent_views(env_id):
    mt.check_views(env_id)


def test_every_core_class_is_registered():
    """Guard: a core written in metaenvs.games but never registered gets no conformance."""
    specs = [s for s in metaenvs.registered_specs() if not mt.missing_dependency(s.id)]
    registered = {s.core_class() for s in specs}
    for info in pkgutil.iter_modules(metaenvs.games.__path__, "metaenvs.games."):
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as err:  # an optional package (mujoco) not installed
            if (err.name or "").startswith("metaenvs"):
                raise
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            concrete = issubclass(cls, metaenvs.BatchedCore) and not inspect.isabstract(cls)
            if concrete and cls.__module__ == module.__name__:
                assert cls in registered, f"{cls.__name__} has no registered id"


def test_check_all_takes_an_unregistered_core_or_face():
    from metaenvs.games.matrix import MatrixGameCore

    stag_hunt = [[[4, 4], [0, 3]], [[3, 0], [3, 3]]]
    core = MatrixGameCore.from_kwargs(payoffs=stag_hunt, horizon=7)
    mt.check_all(core)
    mt.check_all(metaenvs.make("rps", horizon=5))
    mt.check_all(metaenvs.make_vec("rps", num_envs=2, horizon=5))


def test_check_all_rejects_other_objects_and_keywords_with_an_object():
    with pytest.raises(TypeError, match="expected a registered id, a metaenvs BatchedCore"):
        mt.check_all(object())
    with pytest.raises(TypeError, match="go with an id"):
        mt.check_all(metaenvs.make_core("ipd"), horizon=3)
