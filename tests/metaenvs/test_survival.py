"""Survival's rules, step by step on hand-placed worlds (dima-pg's many-agent task)."""

import numpy as np
import pytest

import metaenvs
from metaenvs.games import _survival_kernels as sv
from metaenvs.games.survival import ACTION_NAMES, SurvivalConfig, food_cells

STAY, TURN_LEFT, TURN_RIGHT = 0, 21, 22
AHEAD, BEHIND, RIGHT, LEFT = 1, 2, 3, 4  # the first four moves
ATTACK_AHEAD = 13
NORTH, EAST, SOUTH, WEST = range(4)


def small(**kwargs):
    """A 3-agent world on an 8 x 8 grid with one food particle at (3, 3)."""
    return metaenvs.make_core("survival", n_agents=3, n_food=1, map_size=8, **kwargs)


def place(core, state, agents, food_hp=None):
    """Put agent i at ``agents[i] = (row, col, facing)`` (None: dead) in copy 0."""
    grid = state.grid[0]
    grid[:] = sv.EMPTY
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = sv.WALL
    state.food_hp[0] = core.config.food_hp if food_hp is None else food_hp
    for f, (row, col) in enumerate(core.sim[0]):
        if state.food_hp[0, f] > 0:
            grid[row, col] = sv.FOOD - f
    for i, spot in enumerate(agents):
        state.alive[0, i] = spot is not None
        state.hp[0, i] = core.config.agent_hp if spot is not None else 0.0
        if spot is not None:
            row, col, facing = spot
            state.pos[0, i] = row, col
            state.orient[0, i] = facing
            grid[row, col] = i


def step(core, state, *actions):
    return core.step(state, np.array([actions], dtype=np.int64))


def test_the_food_sits_at_the_centre_and_the_ids_are_registered():
    assert food_cells(8, 1).tolist() == [[3, 3]]
    cells = food_cells(47, 160)
    centre = 23.0
    dist = np.hypot(cells[:, 0] - centre, cells[:, 1] - centre)
    assert dist.max() < 7.5 and len({tuple(c) for c in cells}) == 160
    assert len(ACTION_NAMES) == 23
    for env_id, n in (("survival_N230", 230), ("survival_N630", 630)):
        core = metaenvs.make_core(env_id)
        assert core.n_agents == n and core.config.n_food == 160 and core.config.horizon == 200


@pytest.mark.parametrize(
    ("facing", "moved"),
    [(NORTH, (1, 5)), (EAST, (2, 6)), (SOUTH, (3, 5)), (WEST, (2, 4))],
)
def test_moves_are_relative_to_the_facing(facing, moved):
    core = small()
    state = core.reset(1, seed=0)
    place(core, state, [(2, 5, facing), (6, 1, NORTH), (6, 6, NORTH)])
    step(core, state, AHEAD, STAY, STAY)
    assert tuple(state.pos[0, 0]) == moved
    assert state.grid[0][moved] == 0 and state.grid[0, 2, 5] == sv.EMPTY


def test_blocked_moves_and_turns():
    core = small()
    state = core.reset(1, seed=0)
    # agent 0 faces a wall, agent 1 faces agent 2, agent 2 turns
    place(core, state, [(1, 1, NORTH), (5, 5, EAST), (5, 6, NORTH)])
    step(core, state, AHEAD, AHEAD, TURN_RIGHT)
    assert tuple(state.pos[0, 0]) == (1, 1) and tuple(state.pos[0, 1]) == (5, 5)
    assert state.orient[0, 2] == EAST
    step(core, state, TURN_LEFT, STAY, TURN_LEFT)
    assert state.orient[0, 0] == WEST and state.orient[0, 2] == NORTH
    # two steps ahead over a free cell: a jump to an empty cell
    place(core, state, [(6, 2, NORTH), (6, 6, NORTH), (1, 6, NORTH)])
    step(core, state, 5, STAY, STAY)  # move_+2_+0
    assert tuple(state.pos[0, 0]) == (4, 2)


def test_a_kill_made_as_a_group_pays_each_attacker():
    core = small()
    state = core.reset(1, seed=0)
    # agents 0 and 1 both face agent 2 at (5, 5)
    place(core, state, [(5, 4, EAST), (5, 6, WEST), (5, 5, NORTH)])
    res = step(core, state, ATTACK_AHEAD, ATTACK_AHEAD, STAY)
    c = core.config
    expected = c.step_reward + c.attack_penalty + c.group_kill_reward
    np.testing.assert_allclose(res.reward[0, :2], expected, rtol=1e-6)
    np.testing.assert_allclose(res.reward[0, 2], c.step_reward + c.dead_penalty, rtol=1e-6)
    assert state.alive[0].tolist() == [True, True, False]
    assert state.grid[0, 5, 5] == sv.EMPTY and res.info["survivors"][0] == 2
    assert not res.obs[0, 2].any()
    # the dead get nothing more, and their actions do nothing
    res = step(core, state, STAY, STAY, AHEAD)
    assert res.reward[0, 2] == 0.0 and not res.obs[0, 2].any()


def test_a_kill_alone_earns_only_the_penalty():
    core = small()
    state = core.reset(1, seed=0)
    place(core, state, [(5, 4, EAST), (5, 5, NORTH), (1, 6, NORTH)])
    res = step(core, state, ATTACK_AHEAD, STAY, STAY)
    c = core.config
    np.testing.assert_allclose(res.reward[0, 0], c.step_reward + c.attack_penalty, rtol=1e-6)
    assert not state.alive[0, 1]


def test_food_takes_five_attacks_and_is_shared_by_who_finishes_it():
    core = small()
    state = core.reset(1, seed=0)
    # food at (3, 3): agent 0 below it facing north, agent 1 to its right facing west
    place(core, state, [(4, 3, NORTH), (3, 4, WEST), (6, 6, NORTH)])
    c = core.config
    for _ in range(2):  # 2 x 2 attacks: 24 of its 25 hp
        res = step(core, state, ATTACK_AHEAD, ATTACK_AHEAD, STAY)
        np.testing.assert_allclose(res.reward[0, :2], c.step_reward, rtol=1e-6)
        assert res.info["food_left"][0] == 1
    res = step(core, state, ATTACK_AHEAD, ATTACK_AHEAD, STAY)
    np.testing.assert_allclose(res.reward[0, :2], c.step_reward + c.food_reward / 2, rtol=1e-6)
    assert res.info["food_left"][0] == 0 and state.grid[0, 3, 3] == sv.EMPTY
    # alone, the fifth attack eats it all
    place(core, state, [(4, 3, NORTH), (1, 6, NORTH), (6, 6, NORTH)])
    for _ in range(5):
        res = step(core, state, ATTACK_AHEAD, STAY, STAY)
    np.testing.assert_allclose(res.reward[0, 0], c.step_reward + c.food_reward, rtol=1e-6)


@pytest.mark.parametrize("facing", [NORTH, EAST, SOUTH, WEST])
def test_the_view_turns_with_the_agent(facing):
    core = small(view_radius=2)
    state = core.reset(1, seed=0)
    # food at (3, 3); agent 0 one cell from it on the side its facing looks at
    spot = {NORTH: (4, 3), EAST: (3, 2), SOUTH: (2, 3), WEST: (3, 4)}[facing]
    behind = {NORTH: (5, 3), EAST: (3, 1), SOUTH: (1, 3), WEST: (3, 5)}[facing]
    agents = [(*spot, facing), None, None]
    if 0 < behind[0] < 7 and 0 < behind[1] < 7:
        agents[1] = (*behind, NORTH)
    place(core, state, agents)
    res = step(core, state, STAY, STAY, STAY)
    view = res.obs[0, 0, : 5 * 5 * sv.CHANNELS].reshape(core.view_shape)
    assert view[1, 2, 1] == 1.0 and view[1, 2, 2] == 1.0  # food one ahead, full hp
    assert view[:, :, 1].sum() == 1.0
    if agents[1] is not None:
        assert view[3, 2, 3] == 1.0 and view[3, 2, 4] == 1.0  # the agent one behind
    assert view[2, 2].sum() == 0.0  # itself is not in its view
    tail = res.obs[0, 0, 5 * 5 * sv.CHANNELS + core.id_bits :]
    assert tail[STAY] == 1.0 and tail[sv.N_ACTIONS + 3 + facing] == 1.0
    assert tail[-1] == 1.0  # full hp


def test_episodes_end_at_the_horizon_or_when_all_are_dead():
    core = small(horizon=3)
    state = core.reset(1, seed=0)
    for _ in range(2):
        assert not step(core, state, STAY, STAY, STAY).truncated[0]
    res = step(core, state, STAY, STAY, STAY)
    assert res.truncated[0] and not res.terminated[0] and res.info["survivors"][0] == 3
    assert state.t[0] == 0  # restarted
    core = small()
    state = core.reset(1, seed=0)
    place(core, state, [(5, 4, EAST), (5, 5, WEST), None])  # they kill each other
    res = step(core, state, ATTACK_AHEAD, ATTACK_AHEAD, STAY)
    assert res.terminated[0] and res.info["survivors"][0] == 0
    assert not res.final_obs[0].any() and state.alive[0].all()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_agents": 0}, "n_agents"),
        ({"map_size": 6, "n_agents": 20}, "map_size"),
        ({"view_radius": 0}, "view_radius"),
        ({"damage": -1.0}, "damage"),
        ({"food_reward": float("nan")}, "food_reward"),
    ],
)
def test_bad_configs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SurvivalConfig(**kwargs)


@pytest.mark.parametrize("batch", [1, 3])
def test_thread_count_does_not_change_the_trajectory(batch):
    """One copy's agents are observed on several threads, copies step on several threads."""
    traces = []
    for threads in (1, 2, 5):
        core = metaenvs.make_core("survival", n_agents=90, horizon=25, threads=threads)
        core.min_parallel_agents = 16  # the threaded path at a small population
        rng = np.random.default_rng(3)
        state = core.reset(batch, seed=9)
        trace = []
        for _ in range(40):  # over an episode end
            r = core.step(state, rng.integers(0, 23, (batch, 90)))
            trace += [r.obs.copy(), r.reward.copy(), r.final_obs.copy(), state.pos.copy()]
        traces.append(trace)
    for trace in traces[1:]:
        for got, want in zip(trace, traces[0], strict=True):
            np.testing.assert_array_equal(got, want)
