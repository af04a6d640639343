"""The learning-peers env (meta-mapg-learning-peers): persona populations, the Numba
baseline and policy-gradient kernels against numpy references, the batched chain, the
Gymnasium face, PPO on frozen peers, and the differentiable DiCE peer update."""

import itertools
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import metaenvs
from meta_wrappers._peer_kernels import discounted_returns, linear_baseline, tabular_pg_gradient
from meta_wrappers.peers import PeerChain, PeerChainConfig, make_peer_env
from meta_wrappers.personas import make_population

try:
    import torch

    from meta_wrappers.peers_torch import dice_peer_update, peer_baselines, tabular_logprobs
except ImportError:  # the torch tests skip, the others run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")

GAMES = ["ipd", "rps", "rps_3p", "rps_4p"]
PEER_IDS = [f"metaenvs/{game}-peers-v0" for game in GAMES]
KINDS = {
    "ipd": ("cooperating", "defecting"),
    "rps": ("rock", "paper", "scissors"),
}
PREFERRED = {"cooperating": 0, "defecting": 1, "rock": 0, "paper": 1, "scissors": 2}


def kinds_of(game):
    return KINDS["ipd" if game == "ipd" else "rps"]


# -- numpy references -----------------------------------------------------------------
def ref_returns(rewards, gamma):
    """``G[k, t] = sum_{t' >= t} gamma^(t' - t) r[k, t']`` by a double loop."""
    n_traj, horizon = rewards.shape
    out = np.zeros((n_traj, horizon))
    for k in range(n_traj):
        for t in range(horizon):
            out[k, t] = sum(gamma ** (u - t) * rewards[k, u] for u in range(t, horizon))
    return out


def ref_baseline(states, returns, n_states, reg=1e-5):
    """Ridge fit of the returns on Duan et al.'s features
    ``[o, o**2, t/100, (t/100)**2, (t/100)**3, 1]``: least squares on ``[X; sqrt(reg) I]``."""
    n_traj, horizon = states.shape
    onehot = np.eye(n_states)[states.reshape(-1)]
    x = np.tile(np.arange(horizon) / 100.0, n_traj)[:, None]
    feats = np.hstack([onehot, onehot**2, x, x**2, x**3, np.ones_like(x)])
    n_feat = feats.shape[1]
    aug_x = np.vstack([feats, np.sqrt(reg) * np.eye(n_feat)])
    aug_y = np.concatenate([returns.reshape(-1), np.zeros(n_feat)])
    weights, *_ = np.linalg.lstsq(aug_x, aug_y, rcond=None)
    return (feats @ weights).reshape(n_traj, horizon)


def ref_pg(logits, states, actions, returns, baseline, gamma):
    """``1/K sum_{k,t} gamma^t (G - b) grad log softmax(logits)[s, a]``, naively."""
    n_traj, horizon = states.shape
    grad = np.zeros_like(logits)
    for k in range(n_traj):
        for t in range(horizon):
            s, a = states[k, t], actions[k, t]
            probs = np.exp(logits[s]) / np.exp(logits[s]).sum()
            score = -probs
            score[a] += 1.0
            grad[s] += gamma**t * (returns[k, t] - baseline[k, t]) * score / n_traj
    return grad


def ref_peer_step(batch, c, p, gamma, n_states):
    """The reference gradient of peer p of chain c on a TrajectoryBatch."""
    returns = ref_returns(batch.rewards[c, :, :, p + 1], gamma)
    base = ref_baseline(batch.states[c], returns, n_states)
    grad = ref_pg(
        batch.peer_logits[c, p],
        batch.states[c],
        batch.actions[c, :, :, p + 1],
        returns,
        base,
        gamma,
    )
    return grad, base


def joint_state(actions, n_actions):
    """State id ``1 + index(a)`` of a joint action (player 0 most significant)."""
    return 1 + int(np.ravel_multi_index(tuple(actions), (n_actions,) * len(actions)))


def play(chain, state, n_steps, rng):
    """Step ``chain`` with random meta actions, yielding ``(actions, ChainStep)``."""
    for _ in range(n_steps):
        acts = rng.integers(chain.n_actions, size=(state.n_chains, chain.config.k))
        yield acts, chain.step(state, acts)


# -- personas ---------------------------------------------------------------------------
@pytest.mark.parametrize("game", GAMES)
@pytest.mark.parametrize("distribution", ["in", "out"])
def test_population_splits_sizes_disjoint_and_stratified(game, distribution):
    pop = make_population(game, seed=3)
    kinds = np.array(pop.kinds)
    n_kinds = len(kinds_of(game))
    assert len(pop) == 240 * n_kinds and set(kinds) == set(kinds_of(game))
    sizes = (
        {"train": 400, "val": 40, "test": 40}
        if game == "ipd"
        else {"train": 600, "val": 60, "test": 60}
    )
    splits = {name: pop.split(name, distribution) for name in sizes}
    for name, size in sizes.items():
        ids = splits[name]
        assert ids.dtype == np.int64 and len(ids) == size == len(np.unique(ids))
        counts = [int((kinds[ids] == kind).sum()) for kind in kinds_of(game)]
        assert counts == [size // n_kinds] * n_kinds  # stratified
    everything = np.concatenate(list(splits.values()))
    assert len(np.unique(everything)) == len(everything) == len(pop)  # disjoint, covering
    np.testing.assert_array_equal(pop.split("all", distribution), np.arange(len(pop)))


def test_ipd_persona_probabilities_obey_their_ranges():
    pop = make_population("ipd")
    n_states = metaenvs.make_core("ipd").config.n_states
    assert pop.probs.shape == (480, n_states, 2)
    np.testing.assert_allclose(pop.probs.sum(-1), 1.0)
    kinds = np.array(pop.kinds)
    coop = pop.probs[kinds == "cooperating", :, 0]
    defect = pop.probs[kinds == "defecting", :, 0]
    assert coop.min() >= 0.5 and coop.max() <= 1.0
    assert defect.min() >= 0.0 and defect.max() <= 0.5
    # drawn uniformly in their ranges, not squeezed into a corner
    assert coop.min() < 0.55 and coop.max() > 0.95 and defect.min() < 0.05 and defect.max() > 0.45


@pytest.mark.parametrize("game", ["rps", "rps_3p", "rps_4p"])
def test_rps_persona_preferred_action_in_range_and_strictly_largest(game):
    pop = make_population(game)
    n_states = metaenvs.make_core(game).config.n_states
    assert pop.probs.shape == (720, n_states, 3)
    np.testing.assert_allclose(pop.probs.sum(-1), 1.0)
    assert (pop.probs >= 0).all()
    for kind in kinds_of(game):
        probs = pop.probs[np.array(pop.kinds) == kind]
        top = probs[..., PREFERRED[kind]]
        others = np.delete(probs, PREFERRED[kind], axis=-1)
        assert top.min() >= 1 / 3 and top.max() <= 1.0
        assert (top > others.max(-1)).all()


def test_population_is_a_function_of_the_seed():
    a, b, c = make_population("rps", 7), make_population("rps", 7), make_population("rps", 8)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.kinds == b.kinds
    for dist in ("in", "out"):
        for name in ("train", "val", "test"):
            np.testing.assert_array_equal(a.split(name, dist), b.split(name, dist))
    assert not np.allclose(a.probs, c.probs)
    assert not np.array_equal(a.split("test"), c.split("test"))


@pytest.mark.parametrize("game", GAMES)
def test_out_of_distribution_test_personas_are_more_extreme(game):
    pop = make_population(game, seed=1)
    kinds = np.array(pop.kinds)
    for kind in kinds_of(game):
        score = pop.probs[:, :, PREFERRED[kind]].mean(axis=1)  # mean preferred-action prob
        mine = kinds == kind
        test = pop.split("test", "out")
        rest = np.concatenate([pop.split("train", "out"), pop.split("val", "out")])
        assert score[test[mine[test]]].min() > score[rest[mine[rest]]].max()
        # the in-distribution split does not separate them (the check above can fail)
        test_in, train_in = pop.split("test", "in"), pop.split("train", "in")
        assert score[test_in[mine[test_in]]].min() < score[train_in[mine[train_in]]].max()


def test_population_bad_arguments_raise():
    pop = make_population("ipd")
    with pytest.raises(ValueError, match="unknown game .chess.*Valid: ipd, rps, rps_3p, rps_4p"):
        make_population("chess")
    with pytest.raises(ValueError, match="split"):
        pop.split("tset")
    with pytest.raises(ValueError, match="distribution"):
        pop.split("test", "sideways")


def test_population_save_round_trips(tmp_path):
    pop = make_population("rps_3p", seed=2)
    path = tmp_path / "population.npz"
    pop.save(path)
    with np.load(path) as data:
        np.testing.assert_array_equal(data["probs"], pop.probs)
        assert tuple(data["kinds"].tolist()) == pop.kinds
        for dist in ("in", "out"):
            for name in ("train", "val", "test"):
                np.testing.assert_array_equal(data[f"{dist}_{name}"], pop.split(name, dist))


def test_persona_logits_are_the_clipped_log_probabilities():
    pop = make_population("ipd")
    probs = np.exp(pop.logits)
    np.testing.assert_allclose(probs.sum(-1), 1.0)
    clipped = np.clip(pop.probs, 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(probs, clipped / clipped.sum(-1, keepdims=True), rtol=1e-12)


# -- kernels against numpy references -------------------------------------------------
@pytest.mark.parametrize("n_states, n_traj, horizon", [(5, 6, 7), (10, 3, 12), (28, 2, 4)])
def test_linear_baseline_matches_ridge_least_squares(n_states, n_traj, horizon):
    rng = np.random.default_rng(n_states)
    states = rng.integers(n_states, size=(n_traj, horizon))
    states[:, 0] = 0  # trajectories start in state 0, as in the games
    rewards = rng.normal(size=(n_traj, horizon))
    returns = discounted_returns(rewards, 0.9)
    np.testing.assert_allclose(returns, ref_returns(rewards, 0.9), rtol=1e-12, atol=1e-12)
    got = linear_baseline(states, returns, n_states)
    np.testing.assert_allclose(got, ref_baseline(states, returns, n_states), atol=1e-8)


def test_linear_baseline_reproduces_returns_that_are_linear_in_the_features():
    rng = np.random.default_rng(0)
    states = rng.integers(5, size=(8, 20))
    t = np.arange(20) / 100.0
    returns = np.array([-1.0, 0.5, 2.0, 0.0, 3.0])[states] + 4.0 * t + 0.7
    # exact up to the ridge term's small shrinkage (the time features are tiny)
    np.testing.assert_allclose(linear_baseline(states, returns, 5), returns, atol=2e-3)
    shuffled = returns[:, ::-1].copy()  # not a function of the features: no exact fit
    assert np.abs(linear_baseline(states, shuffled, 5) - shuffled).max() > 0.1


def test_pg_gradient_matches_the_naive_score_function_gradient():
    rng = np.random.default_rng(1)
    n_states, n_actions, n_traj, horizon = 10, 3, 4, 6
    logits = rng.normal(size=(n_states, n_actions))
    states = rng.integers(n_states, size=(n_traj, horizon))
    actions = rng.integers(n_actions, size=(n_traj, horizon))
    returns = rng.normal(size=(n_traj, horizon))
    baseline = rng.normal(size=(n_traj, horizon))
    got = tabular_pg_gradient(logits, states, actions, returns, baseline, 0.9)
    want = ref_pg(logits, states, actions, returns, baseline, 0.9)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    unvisited = np.setdiff1d(np.arange(n_states), states)
    assert (got[unvisited] == 0).all()
    np.testing.assert_allclose(got.sum(-1), 0.0, atol=1e-12)  # softmax is shift-invariant


# -- PeerChain ---------------------------------------------------------------------------
@pytest.mark.parametrize("game", ["ipd", "rps_3p"])
def test_peer_update_is_lr_times_the_reference_gradient(game):
    cfg = PeerChainConfig(game=game, k=3, length=2, horizon=4, gamma=0.8, peer_lr=0.7)
    chain = PeerChain(cfg)
    state = chain.reset(2, seed=11)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(3 * cfg.horizon):
        before = state.logits.copy()
        _, out = next(play(chain, state, 1, rng))
        if out.batch is not None:
            batches.append((before, out.batch, state.logits.copy()))
    assert [int(b.position[0]) for _, b, _ in batches] == [0, 1, 2]
    for before, batch, after in batches:
        np.testing.assert_array_equal(batch.peer_logits, before)
        position = int(batch.position[0])
        for c in range(2):
            for p in range(chain.n_peers):
                grad, base = ref_peer_step(batch, c, p, cfg.gamma, chain.n_states)
                if position < cfg.length:
                    want = before[c, p] + cfg.peer_lr * grad
                    assert np.abs(grad).max() > 1e-3  # the check can fail
                    np.testing.assert_allclose(batch.next_peer_logits[c, p], want, atol=1e-9)
                    np.testing.assert_allclose(after[c, p], want, atol=1e-9)
                    np.testing.assert_allclose(batch.baseline[c, p], base, atol=1e-8)
                else:  # end of the chain: no update, fresh personas
                    np.testing.assert_array_equal(batch.next_peer_logits[c, p], before[c, p])
                    assert (batch.baseline[c, p] == 0).all()
                    logits = chain.population.logits[state.persona[c, p]]
                    np.testing.assert_array_equal(after[c, p], logits)


def test_chain_positions_cycle_and_personas_come_from_the_split():
    cfg = PeerChainConfig(game="rps_3p", k=2, length=3, horizon=2, split="val", distribution="out")
    chain = PeerChain(cfg)
    pool = set(make_population("rps_3p").split("val", "out").tolist())
    state = chain.reset(3, seed=0)
    rng = np.random.default_rng(1)
    positions, chain_done, personas = [], [], [state.persona.copy()]
    for _, out in play(chain, state, 3 * cfg.joint_policies * cfg.horizon, rng):
        if out.trajectory_done:
            positions.append(int(out.batch.position[0]))
            chain_done.append(out.chain_done)
            np.testing.assert_array_equal(out.batch.persona, personas[-1])  # fixed in a chain
            assert set(state.persona.ravel().tolist()) <= pool
            np.testing.assert_array_equal(state.position, (positions[-1] + 1) % 4)
            if out.chain_done:
                personas.append(state.persona.copy())
                np.testing.assert_array_equal(state.logits, chain.population.logits[state.persona])
    assert positions == [0, 1, 2, 3] * 3
    assert chain_done == [False, False, False, True] * 3
    assert all(not np.array_equal(a, b) for a, b in zip(personas, personas[1:]))


@pytest.mark.parametrize("game", ["ipd", "rps_3p"])
def test_rewards_and_observations_follow_the_game(game):
    cfg = PeerChainConfig(game=game, k=3, length=1, horizon=3)
    chain = PeerChain(cfg)
    game_cfg = metaenvs.make_core(game).config
    payoffs, n_actions = game_cfg.payoffs, game_cfg.n_actions
    state = chain.reset(2, seed=5)
    rng = np.random.default_rng(2)
    t = 0
    for acts, out in play(chain, state, 2 * cfg.horizon, rng):
        t += 1
        for c in range(2):
            for k in range(cfg.k):
                joint = (acts[c, k], *out.peer_actions[c, k])
                assert out.reward[c, k] == np.float32(payoffs[joint][0])
                expected = np.zeros(game_cfg.n_states, dtype=np.float32)
                expected[0 if t == cfg.horizon else joint_state(joint, n_actions)] = 1.0
                np.testing.assert_array_equal(out.obs[c, k], expected)
        if out.batch is not None:
            t = 0
            batch = out.batch
            np.testing.assert_array_equal(
                batch.rewards, payoffs[tuple(np.moveaxis(batch.actions, -1, 0))]
            )
            assert (batch.states[..., 0] == 0).all()
            for c, k, h in itertools.product(range(2), range(cfg.k), range(1, cfg.horizon)):
                assert batch.states[c, k, h] == joint_state(batch.actions[c, k, h - 1], n_actions)


def test_chain_is_deterministic_and_each_chain_has_its_own_stream():
    cfg = PeerChainConfig(game="rps", k=2, length=2, horizon=3)
    chain = PeerChain(cfg)
    n_steps = cfg.joint_policies * cfg.horizon + 2
    actions = np.random.default_rng(3).integers(3, size=(n_steps, 4, cfg.k))

    def run(n_chains, seed, chains):
        state = chain.reset(n_chains, seed=seed)
        out = [chain.step(state, actions[i, chains]) for i in range(n_steps)]
        return state, out

    def same(a, b, index_a=slice(None), index_b=slice(None)):
        (state_a, outs_a), (state_b, outs_b) = a, b
        for oa, ob in zip(outs_a, outs_b):
            np.testing.assert_array_equal(oa.peer_actions[index_a], ob.peer_actions[index_b])
            np.testing.assert_array_equal(oa.reward[index_a], ob.reward[index_b])
            np.testing.assert_array_equal(oa.obs[index_a], ob.obs[index_b])
            assert (oa.batch is None) == (ob.batch is None)
            if oa.batch is not None:
                for fa, fb in zip(oa.batch, ob.batch):
                    np.testing.assert_array_equal(fa[index_a], fb[index_b])
        np.testing.assert_array_equal(state_a.logits[index_a], state_b.logits[index_b])
        np.testing.assert_array_equal(state_a.persona[index_a], state_b.persona[index_b])

    batched = run(4, 10, slice(None))
    same(batched, run(4, 10, slice(None)))
    for c in range(4):
        same(batched, run(1, 10 + c, slice(c, c + 1)), slice(c, c + 1))
    other = run(4, 11, slice(None))
    assert not np.array_equal(other[1][0].peer_actions, batched[1][0].peer_actions)


def test_frozen_peers_never_learn_and_are_redrawn_every_joint_policy():
    cfg = PeerChainConfig(game="ipd", k=2, length=5, horizon=2, learning=False)
    assert cfg.length == 0 and cfg.joint_policies == 1
    chain = PeerChain(cfg)
    state = chain.reset(2, seed=0)
    personas = [state.persona.copy()]
    for _, out in play(chain, state, 10 * cfg.horizon, np.random.default_rng(0)):
        np.testing.assert_array_equal(state.logits, chain.population.logits[state.persona])
        if out.trajectory_done:
            assert out.chain_done and (out.batch.position == 0).all()
            np.testing.assert_array_equal(out.batch.next_peer_logits, out.batch.peer_logits)
            personas.append(state.persona.copy())
    assert len(personas) == 11
    changes = sum(not np.array_equal(a, b) for a, b in zip(personas, personas[1:]))
    assert changes == 10


def test_bad_actions_raise_before_any_state_change():
    chain = PeerChain(PeerChainConfig(game="rps", k=3, length=1, horizon=2))
    state = chain.reset(2, seed=0)
    chain.step(state, np.zeros((2, 3), dtype=np.int64))
    snapshot = state.copy()
    bad = [
        (np.zeros((2, 2), dtype=np.int64), ValueError),  # wrong K
        (np.zeros((3, 3), dtype=np.int64), ValueError),  # wrong C
        (np.zeros((2, 3)), TypeError),  # float dtype
        (np.full((2, 3), np.nan), TypeError),
        (np.full((2, 3), 3), ValueError),  # out of range
        (np.full((2, 3), -1), ValueError),
    ]
    bad_slot = [
        (np.zeros((2, 2), dtype=np.int64), ValueError),  # one slot is played, not K
        (np.zeros((2, 1)), TypeError),
        (np.full((2, 1), 5), ValueError),
    ]
    slot_state = chain.reset(2, seed=0)
    chain.step_slot(slot_state, np.zeros((2, 1), dtype=np.int64))
    for method, st, cases in ((chain.step, state, bad), (chain.step_slot, slot_state, bad_slot)):
        snap = st.copy()
        for actions, error in cases:
            with pytest.raises(error):
                method(st, actions)
            for name, value in vars(snap).items():
                np.testing.assert_array_equal(getattr(st, name), value, err_msg=name)
    assert vars(snapshot).keys() == vars(state).keys()
    chain.step(state, np.ones((2, 3), dtype=np.int64))  # still usable


def test_the_two_faces_cannot_be_mixed_within_a_joint_policy():
    chain = PeerChain(PeerChainConfig(game="ipd", k=3, length=1, horizon=2))
    batched = chain.reset(1, seed=0)
    chain.step(batched, np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="use step"):
        chain.step_slot(batched, np.zeros((1, 1), dtype=np.int64))
    sloted = chain.reset(1, seed=0)
    chain.step_slot(sloted, np.zeros((1, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="step_slot"):
        chain.step(sloted, np.zeros((1, 3), dtype=np.int64))
    chain.step(batched, np.zeros((1, 3), dtype=np.int64))  # the joint policy ends
    chain.step_slot(batched, np.zeros((1, 1), dtype=np.int64))  # the next may use either


def test_mlp_peers_start_at_their_personas_and_learn():
    cfg = PeerChainConfig(game="ipd", k=4, length=1, horizon=5, peer_model="mlp", peer_hidden=6)
    chain = PeerChain(cfg)
    state = chain.reset(2, seed=0)
    probs = np.exp(state.logits) / np.exp(state.logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, chain.population.probs[state.persona], atol=0.02)
    assert state.params.shape == (2, 1, 5 * 6 + 6 + 6 * 2 + 2)
    out = None
    for _ in range(5):
        out = chain.step(state, np.ones((2, 4), dtype=np.int64))
    batch = out.batch
    assert not np.allclose(batch.next_peer_params, batch.peer_params)
    # the update is the table's policy gradient backpropagated through the MLP (torch autograd)
    torch = pytest.importorskip("torch")
    from meta_wrappers.peers_torch import mlp_tables

    params = torch.tensor(batch.peer_params, requires_grad=True)
    tables = mlp_tables(params, 5, 2, 6)
    ref = np.stack([ref_peer_step(batch, c, 0, cfg.gamma, 5)[0] for c in range(2)])[:, None]
    (tables * torch.tensor(ref)).sum().backward()
    want = batch.peer_params + cfg.peer_lr * params.grad.numpy()
    np.testing.assert_allclose(batch.next_peer_params, want, atol=1e-9)


def test_step_slot_plays_the_trajectories_one_after_another():
    cfg = PeerChainConfig(game="ipd", k=2, length=1, horizon=2)
    chain = PeerChain(cfg)
    state = chain.reset(1, seed=0)
    outs = [chain.step_slot(state, [[1]]) for _ in range(cfg.horizon)]
    assert outs[-1].trajectory_done and outs[-1].batch is None and int(state.slot[0]) == 1
    with pytest.raises(ValueError, match="step_slot"):
        chain.step(state, np.zeros((1, 2), dtype=np.int64))
    outs = [chain.step_slot(state, [[0]]) for _ in range(cfg.horizon)]
    batch = outs[-1].batch
    assert batch is not None and int(state.slot[0]) == 0 and int(state.position[0]) == 1
    np.testing.assert_array_equal(batch.actions[0, :, :, 0], [[1, 1], [0, 0]])


def test_reset_with_given_personas_then_draws_from_the_split():
    cfg = PeerChainConfig(game="rps_3p", k=1, length=0, horizon=1, split="test")
    chain = PeerChain(cfg)
    pop = chain.population
    given = pop.split("train")[[[0, 5], [7, 3]]]  # any ids, even outside the split
    state = chain.reset(2, seed=0, personas=given)
    np.testing.assert_array_equal(state.persona, given)
    np.testing.assert_array_equal(state.logits, pop.logits[given])
    out = chain.step(state, np.zeros((2, 1), dtype=np.int64))
    np.testing.assert_array_equal(out.batch.persona, given)
    assert out.chain_done and set(state.persona.ravel()) <= set(pop.split("test").tolist())
    for personas, error in [
        (given[:1], ValueError),  # shape (C, P)
        (given.astype(float), TypeError),
        (np.full((2, 2), len(pop)), ValueError),
        (np.full((2, 2), -1), ValueError),
    ]:
        with pytest.raises(error):
            chain.reset(2, seed=0, personas=personas)


def test_config_rejects_bad_keywords_and_values():
    with pytest.raises(TypeError, match="Did you mean 'horizon'"):
        PeerChainConfig.from_kwargs(horizn=3)
    with pytest.raises(TypeError, match="Did you mean 'peer_lr'"):
        PeerChainConfig.from_kwargs(peer_rl=0.1)
    bad_values = [
        dict(game="chess"),
        dict(k=0),
        dict(length=-1),
        dict(horizon=0),
        dict(gamma=0.0),
        dict(gamma=1.5),
        dict(peer_lr=-0.1),
        dict(peer_lr=float("nan")),
        dict(split="tset"),
        dict(distribution="sideways"),
        dict(population_seed=-1),
    ]
    for kwargs in bad_values:
        with pytest.raises(ValueError):
            PeerChainConfig.from_kwargs(**kwargs)
    with pytest.raises(TypeError):
        PeerChainConfig(learning="yes")
    with pytest.raises(TypeError):
        PeerChainConfig(k=2.0)
    with pytest.raises(TypeError, match="k=None"):
        make_peer_env("ipd", learning=False)
    with pytest.raises(ValueError, match="population is for"):
        PeerChain(PeerChainConfig(game="rps"), population=make_population("ipd"))


def test_paper_defaults():
    ipd, rps = PeerChainConfig(game="ipd"), PeerChainConfig(game="rps_4p")
    assert (ipd.horizon, ipd.gamma, rps.horizon, rps.gamma) == (150, 0.96, 50, 0.9)
    assert (ipd.k, ipd.length, ipd.peer_lr, ipd.joint_policies) == (64, 7, 1.0, 8)


# -- Gymnasium face ----------------------------------------------------------------------
@pytest.mark.parametrize("env_id", PEER_IDS)
@pytest.mark.parametrize("k", [4, None], ids=["learning", "frozen"])
def test_gymnasium_env_checker(env_id, k):
    env = gymnasium.make(env_id, k=k, horizon=5, length=2, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings are failures here
        check_env(env.unwrapped)
    assert env.unwrapped.config.learning is (k is not None)


def test_info_keys_and_centralised_peer_logits():
    env = make_peer_env("rps_3p", k=2, horizon=2)
    _, info = env.reset(seed=0)
    assert set(info) == {"chain_position", "trajectory", "persona"}
    assert info["persona"].shape == (2,)
    _, _, _, _, info = env.step(0)
    assert set(info) == {"chain_position", "trajectory", "persona", "peer_actions"}
    env = make_peer_env("rps_3p", k=2, horizon=2, centralised=True)
    _, info = env.reset(seed=0)
    assert info["peer_logits"].shape == (2, 28, 3)
    pop = make_population("rps_3p")
    np.testing.assert_array_equal(info["peer_logits"], pop.logits[info["persona"]])


def test_gymnasium_chain_updates_every_k_episodes_with_the_reference_gradient():
    k, length, horizon = 3, 2, 4
    env = make_peer_env("ipd", k=k, length=length, horizon=horizon, peer_lr=0.5, centralised=True)
    cfg = env.config
    payoffs = metaenvs.make_core("ipd").config.payoffs
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=3)
    played, expected = [], None
    for episode in range(2 * cfg.joint_policies * k):
        if episode:
            obs, info = env.reset()  # no seed: the chain goes on
        position, slot = episode // k % (length + 1), episode % k
        assert (info["chain_position"], info["trajectory"]) == (position, slot)
        if expected is not None:  # the first trajectory after a joint policy ended
            want_logits, old_persona = expected
            if want_logits is None:  # end of the chain: new peers
                assert not np.array_equal(info["persona"], old_persona)
                np.testing.assert_array_equal(
                    info["peer_logits"], env.chain.population.logits[info["persona"]]
                )
            else:
                np.testing.assert_array_equal(info["persona"], old_persona)
                np.testing.assert_allclose(info["peer_logits"][0], want_logits, atol=1e-9)
        logits, persona = info["peer_logits"], info["persona"]
        states, actions, rewards = [], [], []
        for t in range(horizon):
            action = int(rng.integers(2))
            states.append(int(obs.argmax()))
            obs, reward, terminated, truncated, step_info = env.step(action)
            joint = (action, int(step_info["peer_actions"][0]))
            actions.append(joint)
            rewards.append(payoffs[joint])
            assert reward == payoffs[joint][0] and not terminated
            assert truncated == (t == horizon - 1)
            assert ("peers_updated" in step_info) == truncated
            np.testing.assert_array_equal(step_info["peer_logits"], logits)
            assert step_info["chain_position"] == position
        assert step_info["peers_updated"] == (slot == k - 1 and position < length)
        played.append((states, actions, rewards))
        expected = None
        if slot == k - 1:  # the joint policy ended: the reference update
            s, a, r = (np.array(x) for x in zip(*played[-k:]))
            if position < length:
                returns = ref_returns(r[..., 1], cfg.gamma)
                base = ref_baseline(s, returns, 5)
                grad = ref_pg(logits[0], s, a[..., 1], returns, base, cfg.gamma)
                expected = (logits[0] + cfg.peer_lr * grad, persona)
            else:
                expected = (None, persona)


def play_env(env, actions, seed):
    obs, info = env.reset(seed=seed)
    trace = [(obs, info["persona"])]
    for a in actions:
        obs, reward, _, truncated, info = env.step(a)
        trace.append((obs, reward, info["peer_actions"]))
        if truncated:
            obs, info = env.reset()
            trace.append((obs, info["persona"], info["chain_position"]))
    return trace


def test_reset_with_a_seed_restarts_and_without_continues():
    env = gymnasium.make("metaenvs/rps-peers-v0", k=2, length=1, horizon=3)
    actions = np.random.default_rng(0).integers(3, size=20).tolist()
    first, second = play_env(env, actions, 4), play_env(env, actions, 4)
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    third = play_env(env, actions, 5)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, third))
    # reset() mid-trajectory discards it and replays the same slot of the chain
    _, info = env.reset(seed=1)
    env.step(0)
    obs, again = env.reset()
    assert obs.argmax() == 0 and again["trajectory"] == info["trajectory"] == 0
    np.testing.assert_array_equal(again["persona"], info["persona"])


def test_step_after_the_trajectory_ended_raises():
    env = make_peer_env("ipd", k=2, horizon=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    assert env.step(1)[3]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset()
    with pytest.raises(ValueError, match="out of range"):
        env.step(2)


def test_render_returns_an_rgb_array():
    env = gymnasium.make("metaenvs/rps_3p-peers-v0", k=2, horizon=3, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(1)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8
    env.step(2)
    assert not np.array_equal(frame, env.render())  # it shows the last joint action
    assert make_peer_env("ipd", k=2).render() is None


def test_gymnasium_make_in_a_fresh_interpreter():
    code = (
        "import gymnasium\n"
        "env = gymnasium.make('metaenvs:metaenvs/ipd-peers-v0', k=2, horizon=3)\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs.shape, info['chain_position'], env.step(1)[1] in (-1.5, 1.5, 0.5, -0.5))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(5,) 0 True"


# -- Stable-Baselines3 on frozen peers ---------------------------------------------------
def evaluate_policy(probs_of, seed, n_episodes=256, horizon=20):
    """Mean return of the meta-agent over frozen IPD peers (batched face, fixed seeds)."""
    chain = PeerChain(PeerChainConfig(game="ipd", k=1, horizon=horizon, learning=False))
    state = chain.reset(n_episodes, seed=seed)
    rng = np.random.default_rng(seed)
    obs, total = state.obs[:, 0].copy(), np.zeros(n_episodes)
    for _ in range(horizon):
        defect = rng.random(n_episodes) < probs_of(obs)[:, 1]
        out = chain.step(state, defect.astype(np.int64)[:, None])
        total += out.reward[:, 0]
        obs = out.obs[:, 0]
    return total.mean()


@pytest.fixture
def one_torch_thread():
    """Tiny networks: more torch threads only contend with other processes for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@needs_torch
def test_ppo_learns_to_defect_against_frozen_peers(one_torch_thread):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    def probs_of(model):
        def probs(obs):
            with torch.no_grad():
                dist = model.policy.get_distribution(torch.as_tensor(obs, dtype=torch.float32))
            return dist.distribution.probs.numpy().astype(np.float64)

        return probs

    env = gymnasium.make("metaenvs/ipd-peers-v0", k=None, horizon=20)
    model = PPO(
        "MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=4, learning_rate=3e-3, seed=0,
        device="cpu",
    )  # fmt: skip
    states = np.eye(5, dtype=np.float32)
    p_before = probs_of(model)(states)[:, 1]
    before = evaluate_policy(probs_of(model), seed=100)
    model.learn(4096)
    p_after = probs_of(model)(states)[:, 1]
    after = evaluate_policy(probs_of(model), seed=100)
    # defecting gains 1 per round whatever the peer does, and the personas' next moves do
    # not depend on the meta-agent in a way it can exploit: always defect is near-optimal
    always_defect = evaluate_policy(lambda obs: np.tile([0.0, 1.0], (len(obs), 1)), seed=100)
    assert (p_after > p_before + 0.2).all(), (p_before, p_after)
    assert after > before + 5.0 and after > 0.7 * always_defect, (before, after, always_defect)


# -- DiCE: the differentiable peer update -------------------------------------------------
@needs_torch
@pytest.mark.parametrize("game", ["ipd", "rps_3p"])
def test_dice_update_reproduces_the_env_update(game):
    cfg = PeerChainConfig(game=game, k=3, length=1, horizon=5, peer_lr=0.8)
    chain = PeerChain(cfg)
    state = chain.reset(2, seed=0)
    outs = list(play(chain, state, cfg.horizon, np.random.default_rng(0)))
    batch = outs[-1][1].batch
    assert batch is not None and int(batch.position[0]) == 0
    np.testing.assert_allclose(
        peer_baselines(batch.states, batch.rewards, cfg.gamma, chain.n_states), batch.baseline
    )
    logits = torch.tensor(batch.peer_logits, dtype=torch.float64, requires_grad=True)
    new = dice_peer_update(
        logits, batch.states, batch.actions, batch.rewards, batch.baseline, cfg.peer_lr, cfg.gamma
    )
    assert not np.allclose(batch.next_peer_logits, batch.peer_logits)
    np.testing.assert_allclose(new.detach().numpy(), batch.next_peer_logits, rtol=0, atol=1e-9)
    assert new.requires_grad  # it carries the graph to phi_l


IPD_PAYOFFS = metaenvs.make_core("ipd").config.payoffs
H, GAMMA, LR = 2, 0.9, 0.7


def tiny_ipd_trajectories():
    """All 16 joint-action trajectories of a 2-round IPD: states, actions, rewards."""
    out = []
    for m0, p0, m1, p1 in itertools.product(range(2), repeat=4):
        states = np.array([0, 1 + 2 * m0 + p0])
        actions = np.array([[m0, p0], [m1, p1]])
        rewards = np.array([IPD_PAYOFFS[m0, p0], IPD_PAYOFFS[m1, p1]])
        out.append((states, actions, rewards))
    return out


def exact_expected_update(theta, phi, baseline_table):
    """``E[phi'] = phi + lr sum_tau p(tau; theta, phi) g(tau)`` by enumeration (torch)."""
    total = torch.zeros_like(phi)
    meta_lp, peer_lp = torch.log_softmax(theta, -1), torch.log_softmax(phi, -1)
    for states, actions, rewards in tiny_ipd_trajectories():
        logp = sum(
            meta_lp[states[t], actions[t, 0]] + peer_lp[states[t], actions[t, 1]] for t in range(H)
        )
        returns = ref_returns(rewards[None, :, 1], GAMMA)[0]
        g = torch.zeros_like(phi)
        for t in range(H):
            s, a = states[t], actions[t, 1]
            score = -torch.softmax(phi[s].detach(), -1)
            score[a] += 1.0
            adv = GAMMA**t * (returns[t] - baseline_table[t, s])
            g[s] += adv * score
        total = total + torch.exp(logp) * g
    return phi.detach() + LR * total


def dice_update_one(theta, phi, states, actions, rewards, baseline_table, with_meta=True):
    logits = phi.detach().clone().requires_grad_(True)[None, None]
    meta = tabular_logprobs(theta[None], states[None, None], actions[None, None, :, 0])
    base = np.array([baseline_table[t, states[t]] for t in range(H)])[None, None, None]
    return dice_peer_update(
        logits,
        states[None, None],
        actions[None, None],
        rewards[None, None],
        base,
        LR,
        GAMMA,
        meta_logprobs=meta if with_meta else None,
    )[0, 0]


@needs_torch
def test_dice_peer_learning_term_is_the_exact_gradient_of_the_expected_update():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    phi = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    baseline_table = np.random.default_rng(0).normal(size=(H, 5))  # b(t, s): no actions
    exact = torch.autograd.functional.jacobian(
        lambda th: exact_expected_update(th, phi, baseline_table), theta
    )
    assert exact.abs().max() > 1e-2  # the peers' learning does depend on theta

    meta_lp, peer_lp = torch.log_softmax(theta, -1).detach(), torch.log_softmax(phi, -1)
    value = torch.zeros(5, 2, dtype=torch.float64)
    dice = torch.zeros_like(exact)
    meta_pg = torch.zeros_like(exact)
    for states, actions, rewards in tiny_ipd_trajectories():
        prob = torch.exp(
            sum(
                meta_lp[states[t], actions[t, 0]] + peer_lp[states[t], actions[t, 1]]
                for t in range(H)
            )
        )
        args = (phi, states, actions, rewards, baseline_table)

        def with_meta(th, args=args):
            return dice_update_one(th, *args)

        def without_meta(th, args=args):
            return dice_update_one(th, *args, with_meta=False)

        one = dice_update_one(theta, *args).detach()
        np.testing.assert_array_equal(one, without_meta(theta).detach())  # same value
        value += prob * one
        dice += prob * torch.autograd.functional.jacobian(with_meta, theta)
        meta_pg += prob * torch.autograd.functional.jacobian(without_meta, theta)
    np.testing.assert_allclose(
        value.numpy(),
        exact_expected_update(theta, phi, baseline_table).detach().numpy(),
        atol=1e-12,
    )
    np.testing.assert_allclose(dice.numpy(), exact.numpy(), atol=1e-8)
    assert (
        dice.abs().max() > 1e-2 and (meta_pg == 0).all()
    )  # without the meta-agent's log-probs: Meta-PG, no such term
