"""metaenvs: Numba-accelerated, batched multi-agent environments for meta-learning in MARL.

>>> import metaenvs
>>> env = metaenvs.make("ipd")                      # PettingZoo ParallelEnv
>>> obs, infos = env.reset(seed=0)
>>> venv = metaenvs.make_vec("rps", num_envs=1024)  # Gymnasium VectorEnv over 1024 copies
>>> obs, infos = venv.reset(seed=0)
>>> obs.shape
(1024, 2, 10)
"""

# first: Numba's cache directory must be set before any kernel of ours is defined
from metaenvs import _numba_setup  # noqa: F401
from metaenvs._builtin import register_builtin
from metaenvs.config import EnvConfig
from metaenvs.core import BatchedCore, CoreState, NeighbourStructure, StepResult
from metaenvs.registry import (
    EnvSpec,
    UnknownEnvError,
    env,
    list_envs,
    make,
    make_core,
    make_sb3_vec,
    make_vec,
    parallel_env,
    pettingzoo_module,
    register,
    registered_specs,
    spec,
)

__version__ = "0.1.0"

__all__ = [
    "BatchedCore",
    "CoreState",
    "EnvConfig",
    "EnvSpec",
    "NeighbourStructure",
    "StepResult",
    "UnknownEnvError",
    "env",
    "list_envs",
    "make",
    "make_core",
    "make_sb3_vec",
    "make_vec",
    "parallel_env",
    "pettingzoo_module",
    "register",
    "registered_specs",
    "spec",
]

register_builtin()
