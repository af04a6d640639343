"""VDN / QMIX / MNMPG: monotonic mixers, the TD step, the hierarchy's two gradients, the
exercise-move protocol (exact rollback) and the episode runner's bookkeeping."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.mnmpg.episodes import Episodes, make_runner_core, run_episodes  # noqa: E402
from baselines.mnmpg.learner import MixArgs, MixingLearner  # noqa: E402
from baselines.mnmpg.nets import MNMPGMixer, QMixer, RNNAgent, VDNMixer  # noqa: E402

TINY = {"n_envs": 4, "batch_size": 4, "meta_interval": 50, "map_name": "3m"}


def monotonic_everywhere(mix, n_agents, n_points=200, seed=0):
    """dQ_tot/dQ_i >= 0 at random points (autograd) and Q_tot grows with each Q_i (finite
    steps of +0.5): returns the smallest derivative seen."""
    g = torch.Generator().manual_seed(seed)
    qs = (torch.randn(n_points, n_agents, generator=g) * 3).requires_grad_(True)
    out = mix(qs)
    (grad,) = torch.autograd.grad(out.sum(), qs)
    with torch.no_grad():
        for i in range(n_agents):
            bumped = qs.detach().clone()
            bumped[:, i] += 0.5
            assert (mix(bumped) >= out.detach() - 1e-6).all(), f"Q_tot fell when Q_{i} rose"
    return grad.min().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qmix_mixer_is_monotonic_in_every_q(seed):
    torch.manual_seed(seed)
    mixer = QMixer(5, 12)
    states = torch.randn(200, 12)
    assert monotonic_everywhere(lambda q: mixer(q, states), 5, seed=seed) >= 0.0
    # the hypernetworks' raw weights are signed: without abs() the check would fail
    with torch.no_grad():
        raw = mixer.w1(states)
    assert (raw < 0).any()


@pytest.mark.parametrize("use_state", [True, False])
def test_mnmpg_mixer_is_monotonic_in_every_q(use_state):
    torch.manual_seed(3)
    mixer = MNMPGMixer(4, 10, k=3, use_state=use_state)
    states, z = torch.randn(200, 10), torch.randn(200, 3) * 2
    assert monotonic_everywhere(lambda q: mixer(q, states, z), 4) >= 0.0
    # the hierarchy changes the mixing; the state only when it is read ("w/o s")
    q = torch.randn(200, 4)
    assert not torch.allclose(mixer(q, states, z), mixer(q, states, z + 1.0))
    changed = not torch.allclose(mixer(q, states, z), mixer(q, states + 1.0, z))
    assert changed == use_state


def test_vdn_sums():
    q = torch.randn(7, 3)
    torch.testing.assert_close(VDNMixer()(q, torch.zeros(7, 2)), q.sum(-1))


def test_runner_episodes_are_consistent_with_the_core():
    core = make_runner_core("3m")
    n, a, d = core.n_agents, core.action_space.n, core.observation_space.shape[0]
    agent = RNNAgent(d + a + n, a)
    ep = run_episodes(core, agent, 16, 1.0, seed=5)
    t_max = core.time_limit
    assert ep.actions.shape == (16, t_max, n) and ep.obs.shape[1] == t_max + 1
    lengths = ep.filled.sum(1)
    # filled steps are a prefix; an episode is terminated at its last step or truncated at T
    for e in range(16):
        k = int(lengths[e])
        assert ep.filled[e, :k].all() and not ep.filled[e, k:].any()
        assert ep.terminated[e].sum() == (1.0 if k < t_max else ep.terminated[e, k - 1])
    # every recorded action was available
    taken = torch.gather(ep.avail[:, :-1], -1, ep.actions.unsqueeze(-1)).squeeze(-1)
    assert taken[ep.filled.bool()].all()
    np.testing.assert_allclose(ep.returns, ep.reward.sum(1).numpy(), rtol=1e-6)
    again = run_episodes(core, agent, 16, 1.0, seed=5)
    assert torch.equal(ep.actions, again.actions) and torch.equal(ep.obs, again.obs)


def test_runner_reads_the_last_step_from_the_finals_at_the_real_time_limit():
    """Episodes cut at T (the core's own time limit) end with the observation, state and
    masks that a core with a longer limit shows at T; a battle that ends keeps its end."""
    limit = 6
    core = make_runner_core("3m", time_limit=limit)
    longer = make_runner_core("3m", time_limit=limit + 30)
    n, a, d = core.n_agents, core.action_space.n, core.observation_space.shape[0]
    torch.manual_seed(0)
    agent = RNNAgent(d + a + n, a)
    ep = run_episodes(core, agent, 12, 0.5, seed=9)
    ref = run_episodes(longer, agent, 12, 0.5, seed=9)
    assert ep.actions.shape[1] == limit and ep.obs.shape[1] == limit + 1
    truncated = ep.filled.sum(1).eq(limit) & ep.terminated.sum(1).eq(0)
    assert truncated.any()
    for name in ("obs", "state", "avail"):
        torch.testing.assert_close(getattr(ep, name), getattr(ref, name)[:, : limit + 1])
    for name in ("actions", "reward", "terminated", "filled"):
        torch.testing.assert_close(getattr(ep, name), getattr(ref, name)[:, :limit])
    # the last recorded state of a truncated episode is the battle's, not zeros
    assert ep.state[truncated, limit].abs().sum(-1).gt(0).all()
    assert ep.avail[truncated, limit].any(-1).all()
    # a battle that ended has its final state and masks at its end, zeros after
    ended = ep.terminated.sum(1).gt(0)
    for e in np.flatnonzero(ended.numpy()):
        k = int(ep.filled[e].sum())
        assert ep.state[e, k].abs().sum() > 0 and not ep.state[e, k + 1 :].any()
        assert ep.avail[e, k].any() and not ep.avail[e, k + 1 :].any()


@pytest.mark.parametrize("method", ["vdn", "qmix", "mnmpg"])
def test_each_method_takes_td_steps_and_is_deterministic(method):
    def run():
        learner = MixingLearner(MixArgs(method=method, **TINY))
        outs = [learner.iteration() for _ in range(4)]
        return learner, outs

    learner, outs = run()
    assert all(np.isfinite(o["td_loss"]) for o in outs)
    if method == "mnmpg":
        assert any("meta_reward" in o for o in outs)
    _, again = run()
    assert outs == again


def test_td_step_lowers_the_loss_on_a_fixed_batch():
    learner = MixingLearner(MixArgs(method="qmix", **TINY))
    learner.gather()
    batch = learner.replay.sample(4, np.random.default_rng(0))
    before = learner.td_loss(batch).item()
    for _ in range(20):
        learner.train_step(batch)
    assert learner.td_loss(batch).item() < before


def parameters(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_snapshot_and_restore_are_exact():
    learner = MixingLearner(MixArgs(method="mnmpg", **TINY))
    learner.gather()
    snap = learner.snapshot()
    nets = parameters(learner._nets())
    state = learner.optimiser.state_dict()
    learner.train_step()
    learner.train_step()
    assert not same(nets, parameters(learner._nets()))
    learner.restore(snap)
    assert same(nets, parameters(learner._nets()))
    restored = learner.optimiser.state_dict()["state"]
    assert restored.keys() == state["state"].keys()
    # the snapshot is a copy: training after a restore does not change it
    learner.train_step()
    learner.restore(snap)
    assert same(nets, parameters(learner._nets()))


@pytest.mark.parametrize("td_grad", [True, False])
def test_the_td_loss_reaches_the_hierarchy_only_with_td_grad(td_grad):
    learner = MixingLearner(MixArgs(method="mnmpg", td_grad=td_grad, **TINY))
    learner.gather()
    theta = parameters(learner.hierarchy)
    learner.train_step()
    assert same(theta, parameters(learner.hierarchy)) != td_grad


def test_meta_step_follows_equation_5():
    """theta moves along (R1 - R0) grad sum log pi(z_t | s_t); a zero meta-reward, or a zero
    meta learning rate, moves nothing, and the sign of the reward sets the direction."""
    learner = MixingLearner(MixArgs(method="mnmpg", **TINY))
    learner.begin(3)
    done = False
    while not done:
        z = learner.sample_z(learner._d0.gstate[:, learner._d0.t])[0]
        _, terminated, truncated = learner.act(z)
        done = terminated or truncated
    d0, _ = learner.end()
    theta = parameters(learner.hierarchy)

    def logp():
        with torch.no_grad():
            filled = torch.cat([d0.filled, d0.filled[:, -1:] * 0], dim=1)
            return (learner.hierarchy.log_prob(d0.z, d0.state) * filled).sum().item()

    base = logp()
    learner.meta_step(d0, 0.0)
    assert same(theta, parameters(learner.hierarchy))
    learner.meta_step(d0, 1.0)  # a positive meta-reward makes D0's hierarchy more likely
    assert logp() > base
    for p, t in zip(learner.hierarchy.parameters(), theta):
        p.data.copy_(t)
    learner.meta_step(d0, -1.0)
    assert logp() < base


def test_replay_keeps_the_last_capacity_episodes():
    from baselines.mnmpg.learner import EpisodeReplay

    learner = MixingLearner(MixArgs(method="qmix", **TINY))
    batches = [learner._play(4) for _ in range(3)] + [learner._play(9)]
    replay = EpisodeReplay(6)
    for b in batches[:3]:
        replay.add(b)
    held = {tuple(a.flatten().tolist()) for a in replay.store["actions"]}
    last6 = [*batches[1].actions[2:], *batches[2].actions]
    assert len(replay) == 6 and held == {tuple(a.flatten().tolist()) for a in last6}
    replay.add(batches[3])  # more than the capacity at once: its last 6
    held = {tuple(a.flatten().tolist()) for a in replay.store["actions"]}
    assert held == {tuple(a.flatten().tolist()) for a in batches[3].actions[3:]}
    sample = replay.sample(5, np.random.default_rng(0))
    assert len(sample) == 5 and sample.obs.shape[2:] == batches[0].obs.shape[2:]


def test_replay_batches_are_cut_to_their_longest_episode():
    """PyMARL's ``max_t_filled``: T = the longest sampled episode, T + 1 observations, and
    the cut batch has the same TD loss as the padded one (padding is masked out)."""
    learner = MixingLearner(MixArgs(method="qmix", **TINY))
    learner.gather(epsilon=1.0)  # random play loses before the time limit
    rng = np.random.default_rng(1)
    index_rng = np.random.default_rng(1)
    batch = learner.replay.sample(4, rng)
    index = index_rng.integers(0, len(learner.replay), size=4)
    full = learner.replay.store
    longest = int(full["filled"][index].sum(1).max())
    assert longest < learner.core.time_limit  # the cut is not vacuous
    assert batch.actions.shape[1] == longest and batch.obs.shape[1] == longest + 1
    assert batch.filled[:, -1].any()  # the longest episode fills the last step
    whole = Episodes(**{"z": None, **{f: full[f][index] for f in full}})
    torch.testing.assert_close(learner.td_loss(batch), learner.td_loss(whole))


def test_rnn_sequence_equals_the_step_by_step_agent():
    torch.manual_seed(0)
    agent = RNNAgent(7, 5, hidden=16)
    x = torch.randn(6, 9, 7)
    h = agent.initial_state(6)
    steps = []
    for t in range(9):
        q, h = agent(x[:, t], h)
        steps.append(q)
    torch.testing.assert_close(agent.sequence(x), torch.stack(steps, 1))


@pytest.mark.parametrize("method, n_envs", [("vdn", 1), ("qmix", 3), ("mnmpg", 1), ("mnmpg", 3)])
def test_one_td_step_per_episode(method, n_envs):
    """PyMARL's ratio: once the replay holds a batch, every episode collected (MNMPG's D0
    and D1 included) is followed by one TD step; MNMPG's exercise steps are paid from it."""
    args = MixArgs(method=method, **{**TINY, "n_envs": n_envs, "meta_interval": 40})
    learner = MixingLearner(args)
    while len(learner.replay) < args.batch_size:
        learner.iteration()
    episodes, td = learner.episodes_seen, learner.td_steps
    metas = 0
    for _ in range(6):
        metas += "meta_reward" in learner.iteration()
    assert learner.td_steps - td == learner.episodes_seen - episodes
    if method == "mnmpg":
        assert metas > 0 and learner.episodes_seen - episodes == 6 * n_envs + 2 * metas


def test_exercise_steps_on_top_when_they_do_not_count():
    args = MixArgs(method="mnmpg", exercise_counts=False, n_exercise=2,
                   **{**TINY, "meta_interval": 40})  # fmt: skip
    learner = MixingLearner(args)
    while len(learner.replay) < args.batch_size:
        learner.iteration()
    episodes, td, metas = learner.episodes_seen, learner.td_steps, 0
    for _ in range(4):
        metas += "meta_reward" in learner.iteration()
    assert metas > 0
    assert learner.td_steps - td == learner.episodes_seen - episodes + 2 * metas


def test_target_networks_are_copied_every_interval_td_steps():
    learner = MixingLearner(MixArgs(method="qmix", target_update_interval=3, **TINY))
    learner.gather()
    copies = []
    for _ in range(7):
        before = parameters(learner.target)
        learner.train_step()
        copies.append(not same(before, parameters(learner.target)))
    assert copies == [False, False, True, False, False, True, False]
    assert same(parameters(learner.target["agent"]), parameters(learner.agent)) is False


def test_exercise_moves_leave_theta_alone():
    """Algorithm 1's exercise moves update phi and zeta only (even with td_grad)."""
    learner = MixingLearner(MixArgs(method="mnmpg", **TINY))
    learner.gather()
    d0 = learner.replay.sample(1, learner.rng)
    theta, phi = parameters(learner.hierarchy), parameters(learner.agent)
    learner.update(d0)
    assert same(theta, parameters(learner.hierarchy))
    assert not same(phi, parameters(learner.agent))


def test_mnmpg_is_an_inner_learner_of_the_exercise_wrapper():
    from meta_wrappers.exercise import InnerLearner

    learner = MixingLearner(MixArgs(method="mnmpg", **TINY))
    assert isinstance(learner, InnerLearner)
    learner.gather()
    replay_before, steps_before = len(learner.replay), learner.env_steps
    out = learner.meta_episode()
    assert out["meta_reward"] == pytest.approx(out["R1"] - out["R0"])
    assert len(learner.replay) == replay_before + 2  # D0 and D1 are kept
    assert learner.env_steps > steps_before
    # D0's recorded hierarchy is what pi_theta drew: finite, one z per recorded step
    d0 = learner._last_d0
    steps = int(d0.filled.sum()) + 1
    assert torch.isfinite(d0.z[0, :steps]).all() and not d0.z[0, steps:].any()


def test_replay_state_is_packed_losslessly_and_compactly():
    import io

    import numpy as np
    import torch

    from baselines.mnmpg.learner import EpisodeReplay, MixArgs, MixingLearner

    learner = MixingLearner(MixArgs(method="qmix", map_name="3m", seed=0, n_envs=8))
    learner.replay.add(learner.gather(epsilon=1.0))
    state = learner.replay.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    raw = sum(np.asarray(b[: len(learner.replay)]).nbytes for b in learner.replay.store.values())
    assert buffer.getbuffer().nbytes < raw / 4  # padding, dead units and masks compress
    buffer.seek(0)
    again = EpisodeReplay(learner.replay.capacity)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert (again.size, again.next) == (learner.replay.size, learner.replay.next)
    for name, original in learner.replay.store.items():
        restored = again.store[name]
        assert type(restored) is type(original) and restored.dtype == original.dtype
        assert np.array_equal(np.asarray(restored), np.asarray(original))
