"""Property tests: the Numba kernel against a naive Python reference of the rules."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import metaenvs
from metaenvs.testing import copy_result


def naive_episode(payoffs, horizon, actions):
    """Plain-Python rules: s_0 = 0, s_t = 1 + index(a_{t-1}), truncation every horizon."""
    n_actions, n = payoffs.shape[0], payoffs.ndim - 1
    state, t, out = 0, 0, []
    for joint in actions:
        reward = payoffs[tuple(joint)]
        state = 1 + int(np.ravel_multi_index(tuple(joint), (n_actions,) * n))
        t += 1
        truncated = t == horizon
        final = state
        if truncated:
            state, t = 0, 0
        out.append((reward, state, truncated, final))
    return out


@settings(max_examples=40, deadline=None)
@given(
    n_players=st.integers(2, 4),
    n_actions=st.integers(2, 4),
    horizon=st.integers(1, 6),
    batch=st.integers(1, 5),
    data=st.data(),
)
def test_kernel_matches_naive_rules(n_players, n_actions, horizon, batch, data):
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    payoffs = rng.normal(size=(n_actions,) * n_players + (n_players,))
    core = metaenvs.make_core("matrix_game", payoffs=payoffs, horizon=horizon)
    steps = data.draw(st.integers(1, 3 * horizon + 2))
    actions = rng.integers(0, n_actions, (steps, batch, n_players))
    state = core.reset(batch, seed)
    results = [copy_result(core.step(state, a)) for a in actions]
    for b in range(batch):
        expected = naive_episode(payoffs, horizon, actions[:, b])
        for r, (reward, s, truncated, final) in zip(results, expected):
            np.testing.assert_allclose(r.reward[b], reward.astype(np.float32))
            assert r.obs[b, :, s].all() and r.obs[b].sum() == n_players
            assert bool(r.truncated[b]) == truncated and not r.terminated[b]
            if truncated:
                assert r.final_obs[b, :, final].all() and r.final_obs[b].sum() == n_players
