"""The Experiment declaration: its checks, and the x axis of the TensorBoard events."""

import dataclasses
from types import SimpleNamespace

import pytest

from baselines.comm.experiment import EXPERIMENT as COMM
from baselines.mnmpg.experiment import EXPERIMENT as MNMPG


def test_a_declaration_naming_a_missing_field_or_a_bad_option_is_refused():
    with pytest.raises(ValueError, match="has no field 'steps'"):
        dataclasses.replace(MNMPG, budget_field="steps")
    with pytest.raises(ValueError, match="cadence"):
        dataclasses.replace(MNMPG, cadence="sometimes")
    with pytest.raises(ValueError, match="tensorboard_x"):
        dataclasses.replace(MNMPG, tensorboard_x="wall_s")


def test_tensorboard_steps_follow_the_declared_axis():
    learner = SimpleNamespace(episodes_done=12, env_steps=300)
    assert COMM.tb_step(learner) == 300  # comm: env steps, as the paper's curves
    assert dataclasses.replace(COMM, tensorboard_x="progress").tb_step(learner) == 12
