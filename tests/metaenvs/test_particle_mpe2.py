"""Cross-check of the particle physics and rewards against mpe2, the MPE reference.

Both simulators start from the same state (ours, copied into mpe2's world), receive the
same random actions for 60 steps, and must agree on every entity's position and
velocity and every agent's reward to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import metaenvs

mpe2 = pytest.importorskip("mpe2")
from mpe2 import simple_spread_v3, simple_tag_v3  # noqa: E402

STEPS = 60
TOL = 1e-5


def _run_both(core, reference, names, continuous: bool, seed: int):
    """Step our core (B = 1) and the mpe2 env side by side; compare after every step."""
    state = core.reset(1, seed=seed)
    reference.reset(seed=seed)
    world = reference.unwrapped.world
    entities = world.agents + world.landmarks
    assert len(entities) == core.entities.count
    for e, entity in enumerate(entities):  # same initial state
        entity.state.p_pos = state.pos[0, e].copy()
        entity.state.p_vel = state.vel[0, e].copy()
    rng = np.random.default_rng(seed)
    for step in range(STEPS):
        actions = core.sample_actions(1, rng)
        if continuous:
            # mpe2 reads the action as given: feed it the same float32 numbers
            ref_actions = {a: actions[0, i].astype(np.float32) for i, a in enumerate(names)}
        else:
            ref_actions = {a: int(actions[0, i]) for i, a in enumerate(names)}
        result = core.step(state, actions)  # horizon > STEPS: no auto-reset here
        _, ref_rewards, _, _, _ = reference.step(ref_actions)
        ref_pos = np.array([e.state.p_pos for e in entities])
        ref_vel = np.array([e.state.p_vel for e in entities])
        np.testing.assert_allclose(
            state.pos[0], ref_pos, atol=TOL, err_msg=f"position, step {step}"
        )
        np.testing.assert_allclose(state.vel[0], ref_vel, atol=TOL, err_msg=f"velocity {step}")
        ref_r = np.array([ref_rewards[a] for a in names])
        np.testing.assert_allclose(result.reward[0], ref_r, atol=TOL, err_msg=f"reward {step}")
    return state


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("n", [3, 6])
def test_navigation_matches_simple_spread(n, continuous):
    core = metaenvs.make_core(
        "navigation", n_agents=n, reward="mpe2", horizon=STEPS + 1, continuous_actions=continuous
    )
    reference = simple_spread_v3.parallel_env(
        N=n, max_cycles=STEPS + 1, continuous_actions=continuous
    )
    names = [f"agent_{i}" for i in range(n)]
    state = _run_both(core, reference, names, continuous, seed=n)
    assert np.abs(state.vel).max() > 0.1  # the agents really moved


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
def test_predator_prey_matches_simple_tag(continuous):
    core = metaenvs.make_core(
        "predator_prey",
        n_predators=3,
        n_prey=1,
        n_landmarks=2,
        prey="agents",
        horizon=STEPS + 1,
        continuous_actions=continuous,
    )
    reference = simple_tag_v3.parallel_env(
        num_good=1,
        num_adversaries=3,
        num_obstacles=2,
        max_cycles=STEPS + 1,
        continuous_actions=continuous,
    )
    names = ["adversary_0", "adversary_1", "adversary_2", "agent_0"]
    _run_both(core, reference, names, continuous, seed=7)


def test_cross_check_can_fail():
    """The comparison notices a physics change (here: a different damping)."""
    core = metaenvs.make_core("navigation", reward="mpe2", damping=0.3, horizon=STEPS + 1)
    reference = simple_spread_v3.parallel_env(N=3, max_cycles=STEPS + 1)
    with pytest.raises(AssertionError, match="position|velocity"):
        _run_both(core, reference, [f"agent_{i}" for i in range(3)], False, seed=0)
