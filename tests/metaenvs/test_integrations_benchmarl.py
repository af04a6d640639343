"""metaenvs.integrations.benchmarl against the real BenchMARL (its own venv in CI: BenchMARL
pins TorchRL below 0.12)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest

import metaenvs

pytest.importorskip("benchmarl.environments.pettingzoo.common", exc_type=ImportError)

from metaenvs.integrations.benchmarl import ENV_IDS, MetaenvsClass, MetaenvsTask  # noqa: E402


def test_one_member_per_registered_id_and_tasks_pickle() -> None:
    assert ENV_IDS["NAVIGATION_N3_L3"] == "navigation_N3_l3"
    assert ENV_IDS["SKIRMISH_MMM2"] == "skirmish_MMM2"
    task = MetaenvsTask.SKIRMISH_3M.get_task(config={"max_cycles": 60})
    assert isinstance(task, MetaenvsClass)
    again = pickle.loads(pickle.dumps(task))
    assert (
        again == task
        and pickle.loads(pickle.dumps(MetaenvsTask.SKIRMISH_3M)) is MetaenvsTask.SKIRMISH_3M
    )


def test_task_specs_come_from_the_env() -> None:
    task = MetaenvsTask.SKIRMISH_3M.get_task(config={"max_cycles": 60})
    assert task.supports_discrete_actions() and not task.supports_continuous_actions()
    env = task.get_env_fun(1, False, 0, "cpu")()
    assert task.max_steps(env) == 60
    assert task.group_map(env) == {"marine": ["marine_0", "marine_1", "marine_2"]}
    assert ("marine", "action_mask") in task.action_mask_spec(env).keys(True)
    assert "state" in task.state_spec(env).keys()
    with pytest.raises(ValueError, match="discrete actions"):
        task.get_env_fun(1, True, 0, "cpu")
    # without a time limit, the map's own (config.time_limit is None then)
    default = MetaenvsTask.SKIRMISH_3M.get_task(config={})
    assert default.max_steps(env) == metaenvs.make_core("skirmish_3m").time_limit > 0
    navigation = MetaenvsTask.NAVIGATION_N3_L3.get_task(config={})
    assert navigation.max_steps(env) == metaenvs.make_core("navigation_N3_l3").config.horizon
    assert navigation.supports_discrete_actions() and not navigation.supports_continuous_actions()


def _experiment_config(tmp_path: Path, frames: int) -> object:
    from benchmarl.experiment import ExperimentConfig

    config = ExperimentConfig.get_from_yaml()
    config.sampling_device = config.train_device = config.buffer_device = "cpu"
    config.max_n_frames = frames
    config.on_policy_collected_frames_per_batch = frames // 2
    config.off_policy_collected_frames_per_batch = frames // 2
    config.on_policy_n_minibatch_iters = config.off_policy_n_optimizer_steps = 1
    config.on_policy_minibatch_size = config.off_policy_train_batch_size = 50
    config.evaluation = False
    config.render = False
    config.loggers = []
    config.create_json = False
    config.checkpoint_interval = 0
    config.checkpoint_at_end = False
    config.save_folder = str(tmp_path)
    return config


@pytest.mark.parametrize(
    ("algorithm", "member", "keywords"),
    [
        ("mappo", "NAVIGATION_N3_L3", {"max_cycles": 25}),
        ("qmix", "SKIRMISH_3M", {"max_cycles": 40}),
    ],
)
def test_benchmarl_trains(tmp_path: Path, algorithm: str, member: str, keywords: dict) -> None:
    from benchmarl.algorithms import MappoConfig, QmixConfig
    from benchmarl.experiment import Experiment
    from benchmarl.models.mlp import MlpConfig

    algorithm_config = {"mappo": MappoConfig, "qmix": QmixConfig}[algorithm].get_from_yaml()
    experiment = Experiment(
        task=MetaenvsTask[member].get_task(config=keywords),
        algorithm_config=algorithm_config,
        model_config=MlpConfig.get_from_yaml(),
        critic_model_config=MlpConfig.get_from_yaml(),
        seed=0,
        config=_experiment_config(tmp_path, 200),
    )
    experiment.run()
    assert experiment.total_frames >= 200


def test_example_runs_at_its_smoke_budget(run_example) -> None:
    summary, out = run_example("benchmarl_mappo_qmix", "--frames", "200")
    assert "mappo on navigation_n3_l3" in out and "evaluation at 200 frames" in out
    assert summary["mappo"]["env_id"] == "navigation_N3_l3"
    assert summary["qmix"]["env_id"] == "skirmish_3m"
    for run in ("mappo", "qmix"):
        assert math.isfinite(summary[run]["return_at_end"])
