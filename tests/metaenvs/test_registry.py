"""Registry, ids, keywords, and the Gymnasium registration."""

import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import metaenvs
from metaenvs.games.particle import ParticleConfig


def test_list_envs_shows_the_matrix_games():
    ids = metaenvs.list_envs()
    for env_id in ("ipd-v0", "rps-v0", "rps_3p-v0", "rps_4p-v0", "matrix_game-v0"):
        assert env_id in ids and ids[env_id]


@pytest.mark.parametrize("name", ["ipd", "ipd-v0", "metaenvs/ipd-v0", "metaenvs/ipd"])
def test_id_forms_resolve_to_the_same_spec(name):
    assert metaenvs.spec(name).id == "ipd-v0"


def test_unknown_id_names_the_close_matches_not_every_id():
    with pytest.raises(metaenvs.UnknownEnvError, match="Did you mean 'rps'") as err:
        metaenvs.make("rsp")
    message = str(err.value)
    assert "skirmish_27m_vs_30m" not in message and "navigation_N6_l6" not in message
    assert f"all {len(metaenvs.list_envs())} ids" in message and "metaenvs list" in message
    with pytest.raises(metaenvs.UnknownEnvError):
        metaenvs.make_vec("ipd-v9", num_envs=2)
    with pytest.raises(metaenvs.UnknownEnvError, match="is a string"):
        metaenvs.make(3)


def test_a_fixed_keyword_is_reported_as_fixed_not_unknown():
    with pytest.raises(TypeError, match="'payoffs' is fixed by 'ipd-v0'") as err:
        metaenvs.make("ipd", payoffs=np.ones((2, 2, 2)))
    assert "unknown" not in str(err.value) and "horizon" in str(err.value)


def test_gymnasium_make_of_a_multi_agent_id_says_what_to_call():
    with pytest.raises(TypeError) as err:
        gymnasium.make("metaenvs:metaenvs/rps-v0")
    message = str(err.value)
    assert "gymnasium.make_vec('metaenvs:metaenvs/rps-v0', num_envs=...)" in message
    assert "metaenvs/rps-focal-v0" in message and "metaenvs.make('rps')" in message


def test_unknown_keyword_is_worded_as_python_and_lists_valid_ones():
    # Python's own wording first (TorchRL's GymEnv retries without frameskip on it), then
    # the hint and the valid keywords
    with pytest.raises(TypeError) as err:
        metaenvs.make_vec("rps", num_envs=2, horizn=10)
    assert str(err.value).startswith(
        "env 'rps-v0' got an unexpected keyword argument 'horizn'. Did you mean 'horizon'?"
    )
    assert str(err.value).endswith("Valid keywords: horizon")
    with pytest.raises(TypeError, match="ParticleConfig\\(\\) got an unexpected keyword"):
        ParticleConfig.from_kwargs(n_agent=3)


def test_register_rejects_bad_and_duplicate_ids():
    with pytest.raises(ValueError, match="name-v0"):
        metaenvs.register("NoVersion", "x:y", "d", family="f")
    with pytest.raises(ValueError, match="already registered"):
        metaenvs.register("ipd-v0", "metaenvs.games.matrix:MatrixGameCore", "d", family="f")


def test_gymnasium_make_vec_after_import():
    venv = gymnasium.make_vec("metaenvs/rps_3p-v0", num_envs=4, horizon=5)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, 3, 28)


FRESH = """
import sys, gymnasium
venv = gymnasium.make_vec("metaenvs:metaenvs/ipd-v0", num_envs=8)
obs, _ = venv.reset(seed=0)
env = gymnasium.make("metaenvs:metaenvs/ipd-focal-v0", peers="tit_for_tat")
o, _ = env.reset(seed=0)
print(obs.shape, o.shape, "torch" in sys.modules)
"""


def test_module_prefix_works_in_a_fresh_interpreter():
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(8,", "2,", "5)", "(5,)", "False"]


def test_import_metaenvs_does_not_import_torch_or_sb3():
    code = (
        "import sys, metaenvs; "
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
