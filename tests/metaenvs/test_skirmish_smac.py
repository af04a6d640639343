"""Skirmish v1's SMAC parity: the ``smac`` enemy AI, the hit order, the observation's
"available to attack" feature and the last actions in the global state."""

from __future__ import annotations

import numpy as np
import pytest

import metaenvs
from metaenvs.games import _skirmish_kernels as sk
from metaenvs.games.skirmish_maps import MAPS, MapSpec, add_map
from metaenvs.games.skirmish_units import SHOOT_RANGE, SIGHT_RANGE, UNITS

STOP, FIRST_TARGET = sk.STOP, sk.FIRST_TARGET


def make_core(map_name, **kwargs):
    return metaenvs.make_core("skirmish", map_name=map_name, **kwargs)


def refresh(core, state):
    for b in range(state.batch):
        sk.observe_copy(b, state.buffers(), core.sim, core.par)


def place(core, state, placed):
    """Only the units of ``placed`` ({unit: (x, y)}) live, weapons ready; observations redone."""
    for u in range(len(core.unit_names)):
        if u in placed:
            state.pos[:, u] = placed[u]
        else:
            state.alive[:, u], state.hp[:, u], state.shield[:, u] = False, 0.0, 0.0
    state.cooldown[:] = 0.0
    refresh(core, state)


@pytest.fixture
def duel_map():
    spec = MapSpec("test_smac_duel", allies=(("marine", 2),), enemies=(("marine", 1),),
                   time_limit=50)  # fmt: skip
    add_map(spec)
    yield spec.name
    MAPS.pop(spec.name, None)


def test_v1_is_the_registered_version_and_smac_the_default():
    core = metaenvs.make_core("skirmish_3m-v1")
    assert core.config.difficulty == "smac" and core.config.hit_order == "random"
    with pytest.raises(Exception, match="v1"):
        metaenvs.make_core("skirmish_3m-v0")


def test_smac_enemy_keeps_its_target_while_it_is_in_reach(duel_map):
    core = make_core(duel_map, hit_order="simultaneous")
    enemy = 2
    state = core.reset(4, 0)
    # ally 0 at 5 from the enemy, ally 1 at 5.5: the enemy acquires ally 0 (the nearest)
    place(core, state, {0: (10.0, 10.0), 1: (10.0, 15.5), enemy: (10.0, 5.0)})
    state.cooldown[:, :2] = 100.0  # our marines hold fire
    core.step(state, np.full((4, 2), STOP))
    assert (state.target[:, enemy] == 0).all() and (state.aim[:, enemy] == 0).all()
    # ally 1 comes nearer than ally 0: the very_hard AI would switch, the smac AI does not
    state.pos[:, 1] = (10.0, 8.0)
    state.cooldown[:, enemy] = 0.0
    refresh(core, state)
    core.step(state, np.full((4, 2), STOP))
    assert (state.target[:, enemy] == 0).all()
    # ally 0 leaves its reach: it takes the nearest in reach, ally 1
    state.pos[:, 0] = (10.0, 5.0 + 6.5)
    state.pos[:, 1] = (10.0, 5.0 + 5.5)
    state.cooldown[:, enemy] = 0.0
    refresh(core, state)
    core.step(state, np.full((4, 2), STOP))
    assert (state.target[:, enemy] == 1).all()


def test_smac_enemy_attack_moves_and_does_not_chase_beyond_reach(duel_map):
    core = make_core(duel_map)
    state = core.reset(2, 0)
    enemy = 2
    start = core.sim[4]
    goal = start[:2].mean(axis=0)
    # our marines far to the side, out of its reach: it walks to our formation's centre
    place(core, state, {0: (2.0, 30.0), 1: (3.0, 30.0), enemy: (goal[0] + 8.0, goal[1])})
    for _ in range(30):
        d_before = np.linalg.norm(state.pos[:, enemy] - goal, axis=-1)
        core.step(state, np.full((2, 2), STOP))
        d_after = np.linalg.norm(state.pos[:, enemy] - goal, axis=-1)
        assert (d_after <= d_before + 1e-9).all()
        assert (state.target[:, enemy] == -1).all()
    assert (np.linalg.norm(state.pos[:, enemy] - goal, axis=-1) <= sk.ARRIVED + 1e-9).all()
    # the very_hard AI sees the whole map and walks toward our nearest marine instead
    hard = make_core(duel_map, difficulty="very_hard")
    state = hard.reset(2, 0)
    place(hard, state, {0: (2.0, 30.0), 1: (3.0, 30.0), enemy: (goal[0] + 8.0, goal[1])})
    y0 = state.pos[0, enemy, 1].copy()
    for _ in range(5):
        hard.step(state, np.full((2, 2), STOP))
    assert state.pos[0, enemy, 1] > y0 + 1.0


def test_random_hit_order_makes_last_shot_trades_one_sided(duel_map):
    """Two marines that can kill each other in one shot: simultaneously both die (a draw),
    in a random order one fires first and the other holds its fire, about half each way."""
    outcomes = {}
    for order in ("random", "simultaneous"):
        core = make_core(duel_map, hit_order=order)
        state = core.reset(400, 3)
        place(core, state, {0: (10.0, 10.0), 2: (14.0, 10.0)})
        state.hp[:, [0, 2]] = 1.0
        refresh(core, state)
        r = core.step(state, np.tile([FIRST_TARGET, sk.NOOP], (400, 1)))
        assert r.terminated.all()
        outcomes[order] = (r.info["battle_won"].mean(), r.info["battle_draw"].mean())
    assert outcomes["simultaneous"] == (0.0, 1.0)
    won, draw = outcomes["random"]
    assert draw == 0.0 and 0.4 < won < 0.6, outcomes


@pytest.mark.parametrize("map_name", ["3m", "2s3z"])
def test_scripted_mirror_battles_rarely_draw_with_random_hits(map_name):
    draws = {}
    for order in ("random", "simultaneous"):
        core = make_core(map_name, hit_order=order)
        state = core.reset(256, 1)
        n_ended, n_draw = 0, 0
        while n_ended < 256:
            r = core.step(state, core.scripted_actions(state))
            n_ended += int((r.terminated | r.truncated).sum())
            n_draw += int(r.info["battle_draw"].sum())
        draws[order] = n_draw / n_ended
    assert draws["random"] < 0.02, draws
    if map_name == "3m":  # the symmetric marine fight: simultaneous hits tie often
        assert draws["simultaneous"] > 0.2, draws


def test_feature_zero_is_available_to_attack_for_enemies_and_visible_for_allies(duel_map):
    core = make_core(duel_map)
    state = core.reset(1, 0)
    reach = max(SHOOT_RANGE, UNITS["marine"].range)
    for gap, attackable in ((reach - 0.5, 1.0), (reach + 0.5, 0.0), (SIGHT_RANGE + 0.5, None)):
        place(core, state, {0: (10.0, 10.0), 1: (10.0, 12.0), 2: (10.0 + gap, 10.0)})
        obs = core.observe(state)[0, 0]
        mask = core.action_mask(state)[0, 0]
        enemy, ally = obs[4:10], obs[10:16]
        assert ally[0] == 1.0  # the other marine is visible
        assert mask[FIRST_TARGET] == (attackable or 0.0)
        if attackable is None:
            assert not enemy.any()  # out of sight: all zero
        else:
            assert enemy[0] == attackable and enemy[1] == pytest.approx(gap / SIGHT_RANGE)
    assert obs.shape == (4 + 2 * 6 + 2,)  # own: health and shield, no cooldown


def test_global_state_ends_with_last_actions():
    core = make_core("3m")
    n, a = core.n_agents, core.n_actions
    state = core.reset(8, 0)
    assert not core.global_state(state)[:, -n * a :].any()  # zeros after a reset
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = core.random_legal_actions(state, rng)
        r = core.step(state, actions)
        tail = core.global_state(state)[:, -n * a :].reshape(-1, n, a)
        done = r.terminated | r.truncated
        expected = np.eye(a, dtype=np.float32)[actions]
        np.testing.assert_array_equal(tail[~done], expected[~done])
        assert not tail[done].any()  # restarted
        final_tail = r.final_state[done][:, -n * a :].reshape(-1, n, a)
        np.testing.assert_array_equal(final_tail, expected[done])
    assert core.state_space.shape[0] == n * (5 + 0) + 3 * 4 + n * a
