"""metaenvs.integrations.torchrl against the real TorchRL."""

from __future__ import annotations

import sys
import warnings

import pytest

pytest.importorskip("torchrl")
import torch  # noqa: E402

import metaenvs  # noqa: E402
from metaenvs.integrations.torchrl import make_env  # noqa: E402

warnings.filterwarnings("ignore", message="PettingZoo in TorchRL is tested", category=UserWarning)


def test_skirmish_gets_masks_state_and_ends_when_every_unit_is_done() -> None:
    env = make_env("skirmish_3m", seed=0, max_cycles=40)
    assert env.use_mask and env.done_on_any is False
    assert list(env.group_map) == ["marine"] and len(env.group_map["marine"]) == 3
    rollout = env.rollout(60, break_when_any_done=False)
    assert ("marine", "mask") in rollout.keys(True)
    assert ("marine", "action_mask") in rollout.keys(True)
    state_dim = metaenvs.make("skirmish_3m").state_space.shape[0]
    assert rollout["state"].shape == (60, state_dim)
    done = rollout["next", "done"].squeeze(-1)
    units_done = rollout["next", "marine", "done"].squeeze(-1)  # (60, 3)
    assert done.any()  # random marines lose within 40 steps
    assert units_done[done].all()  # the episode ends when every unit is done ...
    assert (units_done.any(-1) & ~done).any()  # ... not at the first death


def test_navigation_has_no_mask_and_groups_agents_by_name() -> None:
    env = make_env("navigation_N3_l3", max_cycles=5)
    assert not env.use_mask
    assert env.group_map == {"agent": ["agent_0", "agent_1", "agent_2"]}
    rollout = env.rollout(5)
    assert rollout["next", "agent", "reward"].shape == (5, 3, 1)
    assert rollout["next", "done"][-1].all()


def test_same_seed_same_rollout() -> None:
    def run() -> torch.Tensor:
        torch.manual_seed(3)
        env = make_env("skirmish_3m", seed=5)
        return env.rollout(25, break_when_any_done=False)["next", "marine", "observation"]

    torch.testing.assert_close(run(), run())


def test_bad_keyword_raises_before_torchrl_sees_the_env() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
        make_env("skirmish_3m", frameskip=4)


def test_without_torchrl_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchrl.envs.libs.pettingzoo", None)
    with pytest.raises(ImportError, match=r"metaenvs\[torchrl\]"):
        make_env("ipd")


def test_import_metaenvs_does_not_import_torchrl() -> None:
    import subprocess

    code = "import sys, metaenvs, metaenvs.integrations; print('torchrl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mappo_example_runs_at_its_smoke_budget(run_example) -> None:
    argv = ("--frames", "500", "--frames-per-batch", "500", "--episodes", "2")
    summary, out = run_example("torchrl_mappo_navigation", *argv)
    assert "iteration 0: 500 frames" in out and '"greedy_return"' in out
    assert summary["frames"] == 500
    assert all(summary[k] < 0 for k in ("greedy_return", "random_return"))  # distances
