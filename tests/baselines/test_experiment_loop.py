"""The runner's kernel warm-up: the ids of the runs, once, and never fatal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import metaenvs.warmup
from baselines.experiment.loop import warm_kernels


def test_warm_kernels_warms_the_ids_of_the_runs_once(monkeypatch):
    asked = []
    monkeypatch.setattr(metaenvs.warmup, "warmup", lambda ids, again: asked.append(ids) or [])
    experiment = SimpleNamespace(env_ids=lambda args: [args, "ipd"])
    assert warm_kernels(experiment, ["rps", "ipd", "rps"], report=None) == []
    assert asked == [["rps", "ipd"]]
    assert warm_kernels(SimpleNamespace(env_ids=None), ["ipd"], report=None) == []
    assert len(asked) == 1


def test_a_failed_warm_up_warns_and_lets_the_runs_go_on(monkeypatch):
    def broken(ids, again):
        raise OSError("cache directory vanished")

    monkeypatch.setattr(metaenvs.warmup, "warmup", broken)
    experiment = SimpleNamespace(env_ids=lambda args: ["ipd"])
    with pytest.warns(RuntimeWarning, match="cache directory vanished"):
        assert warm_kernels(experiment, ["run"], report=None) == []
