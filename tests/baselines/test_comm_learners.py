"""The communication-topology learners: the meta-gradient through K updates, blending,
eta's gradients, the five methods' comm rules, n-step returns, determinism and resume."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.comm import meta  # noqa: E402
from baselines.comm.learner import CommArgs, CommLearner  # noqa: E402
from baselines.comm.networks import AgentMLP, UpdateRule  # noqa: E402


def tiny_problem(k_updates=2, seed=0):
    """A 2-agent, 1-slot comm net, a small rule and K + 1 fixed random trajectories (float64)."""
    g = torch.Generator().manual_seed(seed)
    e, t, n, d, obs_dim = 2, 3, 2, 2, 3
    with torch.random.fork_rng():  # seeded weights: some inits leave every ReLU of the rule dead
        torch.manual_seed(seed)
        comm = AgentMLP(n, obs_dim, d, hidden=4).double()
        rule = UpdateRule(n, d, hidden=5).double()
    trajectories = [
        {
            "obs": torch.randn(e, t, n, obs_dim, generator=g, dtype=torch.float64),
            "sample": torch.bernoulli(
                torch.full((e, t, n, d), 0.5, dtype=torch.float64), generator=g
            ),
            "valid": torch.ones(e, t, n, d, dtype=torch.float64),
            "reward": torch.randn(e, t, generator=g, dtype=torch.float64),
            "done": torch.tensor([[0.0, 0.0, 1.0]] * e, dtype=torch.float64),
            "advantage": torch.randn(e, t, 1, 1, generator=g, dtype=torch.float64),
        }
        for _ in range(k_updates + 1)
    ]
    params = {k: v.detach().requires_grad_(True) for k, v in comm.named_parameters()}
    square_avg = {k: torch.ones_like(v) for k, v in params.items()}

    def comm_logits(p, obs):
        return torch.func.functional_call(comm, p, (obs,))

    def rule_fn(batch, p):
        # the learner feeds eta the probabilities of theta_c(k) as data (stop-gradient); here
        # they come from theta_c(0), so that the objective is a plain function of eta and
        # finite differences see exactly what autograd differentiates
        with torch.no_grad():
            probs = torch.sigmoid(comm_logits(params, batch["obs"]))
        return rule(batch["reward"], batch["done"], 0.95, probs)

    return rule, rule_fn, comm_logits, params, square_avg, trajectories


def blended(rule, rule_fn, comm_logits, params, square_avg, trajectories, alpha=1.0, clip=0.0):
    value, _, _ = meta.unrolled_meta_objective(
        rule_fn, comm_logits, params, square_avg, trajectories, lr=0.05, beta=0.01, alpha=alpha,
        clip=clip,
    )  # fmt: skip
    return value


@pytest.mark.parametrize("clip", [0.0, 0.05])  # 0.05: every inner step is clipped
def test_meta_gradient_through_k_updates_matches_finite_differences(clip):
    rule, rule_fn, comm_logits, params, square_avg, trajs = tiny_problem(k_updates=3)
    value = blended(rule, rule_fn, comm_logits, params, square_avg, trajs, clip=clip)
    grads = torch.autograd.grad(value, list(rule.parameters()))
    flat = torch.cat([gr.flatten() for gr in grads])
    assert flat.abs().max() > 1e-6  # eta receives a non-zero meta-gradient
    rng = np.random.default_rng(0)
    checked = 0
    for p, gr in zip(rule.parameters(), grads):
        for idx in rng.choice(p.numel(), size=min(3, p.numel()), replace=False):
            h = 1e-6
            with torch.no_grad():
                p.view(-1)[idx] += h
            up = blended(rule, rule_fn, comm_logits, params, square_avg, trajs, clip=clip).item()
            with torch.no_grad():
                p.view(-1)[idx] -= 2 * h
            down = blended(rule, rule_fn, comm_logits, params, square_avg, trajs, clip=clip)
            down = down.item()
            with torch.no_grad():
                p.view(-1)[idx] += h
            fd = (up - down) / (2 * h)
            assert gr.view(-1)[idx].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)
            checked += 1
    assert checked >= 12


def test_blending_averages_the_intermediate_meta_gradients():
    rule, rule_fn, comm_logits, params, square_avg, trajs = tiny_problem(k_updates=3)
    grad = torch.autograd.grad(
        blended(rule, rule_fn, comm_logits, params, square_avg, trajs), list(rule.parameters())
    )
    # objective k alone: k * mean(L_1..L_k) - (k - 1) * mean(L_1..L_(k-1))
    per_k = []
    for k in range(1, 4):
        mean_k = blended(rule, rule_fn, comm_logits, params, square_avg, trajs[: k + 1])
        prev = blended(rule, rule_fn, comm_logits, params, square_avg, trajs[:k]) if k > 1 else 0.0
        per_k.append(torch.autograd.grad(k * mean_k - (k - 1) * prev, list(rule.parameters())))
    for j, g in enumerate(grad):
        mean_of_parts = sum(parts[j] for parts in per_k) / 3
        torch.testing.assert_close(g, mean_of_parts)
    # blending matters: the last objective alone gives another direction
    last_only = per_k[-1][0]
    assert not torch.allclose(grad[0], last_only)


def test_rule_advantage_changes_the_inner_update():
    rule, rule_fn, comm_logits, params, square_avg, trajs = tiny_problem(k_updates=1)
    new, _ = meta.inner_step(
        comm_logits, params, square_avg, trajs[0], rule_fn(trajs[0], params), 0.1
    )
    moved = sum((new[k] - params[k]).abs().sum() for k in params)
    assert moved > 0
    zero = meta.inner_step(
        comm_logits, params, square_avg, trajs[0], torch.zeros(2, 3, 2, 2, dtype=torch.float64), 0.1
    )[0]
    for k in params:  # a zero advantage is no update
        torch.testing.assert_close(zero[k], params[k])


def test_clip_by_norm_is_torchs_rule_and_leaves_small_gradients_alone():
    g = torch.Generator().manual_seed(3)
    grads = [torch.randn(4, 5, generator=g), torch.randn(7, generator=g)]
    for max_norm in (0.1, 100.0):
        copies = [x.clone().requires_grad_(True) for x in grads]
        for c, x in zip(copies, grads):
            c.grad = x.clone()
        torch.nn.utils.clip_grad_norm_(copies, max_norm)
        for ours, theirs in zip(meta.clip_by_norm(grads, max_norm), copies):
            torch.testing.assert_close(ours, theirs.grad)
    assert all(torch.equal(a, b) for a, b in zip(meta.clip_by_norm(grads, 100.0), grads))


def test_inner_step_clips_its_gradient():
    rule, rule_fn, comm_logits, params, square_avg, trajs = tiny_problem(k_updates=1)
    advantage = rule_fn(trajs[0], params)
    steps = {}
    for clip in (0.0, 1e-3):
        new, _ = meta.inner_step(
            comm_logits, params, square_avg, trajs[0], advantage, 0.1, alpha=1.0, clip=clip
        )
        steps[clip] = torch.cat([(new[k] - params[k]).detach().flatten() for k in params])
    # alpha 1 keeps square_avg at 1: the step is lr times the (clipped) gradient
    assert steps[1e-3].norm().item() == pytest.approx(0.1 * 1e-3, rel=1e-3)
    assert steps[0.0].norm() > 10 * steps[1e-3].norm()
    torch.testing.assert_close(steps[1e-3] / steps[1e-3].norm(), steps[0.0] / steps[0.0].norm())


@pytest.mark.parametrize("d, rate", [(1, 0.5), (2, 0.5), (5, 0.3), (5, 0.0), (5, 1.0)])
def test_policy_on_requested_slots_only_equals_the_full_loop(d, rate):
    """A 0/1 mask runs only the requested slots (packed); a mask with a gradient runs every
    slot and carries the state over the others: same actions, same parameter gradients."""
    from baselines.comm.networks import PolicyNet

    g = torch.Generator().manual_seed(d)
    torch.manual_seed(d)
    policy = PolicyNet(3, 7, 5, hidden=16).double()
    own = torch.randn(11, 3, 7, generator=g, dtype=torch.float64)
    received = torch.randn(11, 3, d, 7, generator=g, dtype=torch.float64)
    mask = (torch.rand(11, 3, d, generator=g) < rate).double()
    packed = policy(own, received * mask[..., None], mask)
    relaxed = mask.clone().requires_grad_(True)
    dense = policy(own, received * relaxed[..., None], relaxed)
    torch.testing.assert_close(packed, dense)
    params = list(policy.parameters())
    for a, b in zip(
        torch.autograd.grad(packed.square().sum(), params, allow_unused=True),
        torch.autograd.grad(dense.square().sum(), params, allow_unused=True),
    ):
        if a is not None or b is not None:  # d = 1 uses no recurrent weights
            ref = a if a is not None else b
            zero = torch.zeros_like(ref)
            torch.testing.assert_close(zero if a is None else a, zero if b is None else b)
    # and the loop is an LSTM over the requested slots in order: row 0 of agent 0 by hand
    cell = torch.nn.LSTMCell(7, 16).double()
    with torch.no_grad():
        cell.weight_ih.copy_(policy.lstm_in.weight[0].T)
        cell.weight_hh.copy_(policy.lstm_rec.weight[0].T)
        cell.bias_ih.copy_(policy.lstm_in.bias[0])
        cell.bias_hh.copy_(policy.lstm_rec.bias[0])
        state = (torch.zeros(1, 16, dtype=torch.float64), torch.zeros(1, 16, dtype=torch.float64))
        for s in range(d):
            if mask[0, 0, s]:
                state = cell(received[0, 0, s][None], state)
        head = policy.head(torch.cat([own[0], state[0][0].expand(3, 16)], -1)[None])
        torch.testing.assert_close(packed[0, 0], torch.sigmoid(head[0, 0]))


def test_importance_weighted_surrogate_is_on_policy_where_the_parameters_sampled():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    sample = torch.bernoulli(torch.full((2, 4, 3, 2), 0.5, dtype=torch.float64), generator=g)
    advantage = torch.randn(2, 4, 3, 2, generator=g, dtype=torch.float64)
    valid = torch.ones_like(sample)
    plain = torch.autograd.grad(meta.surrogate(logits, sample, advantage, valid), logits)[0]
    own = meta.bernoulli_log_prob(logits, sample).detach()
    weighted = meta.surrogate(logits, sample, advantage, valid, own)
    torch.testing.assert_close(torch.autograd.grad(weighted, logits)[0], plain)
    # off-policy: each decision's term is scaled by c_now / c_behaviour
    older = own - 0.3
    shifted = meta.surrogate(logits, sample, advantage, valid, older)
    grad = torch.autograd.grad(shifted, logits)[0]
    torch.testing.assert_close(grad, plain * torch.exp(torch.tensor(0.3, dtype=torch.float64)))


def test_n_step_returns_match_a_loop():
    rng = np.random.default_rng(0)
    r, v, last = rng.normal(size=(2, 7)), rng.normal(size=(2, 7)), rng.normal(size=2)
    gamma, n = 0.9, 3
    got = meta.n_step_returns(torch.tensor(r), torch.tensor(v), torch.tensor(last), gamma, n)
    v_ext = np.concatenate([v, last[:, None]], axis=1)
    for t in range(7):
        end = min(t + n, 7)
        expected = (
            sum(gamma**k * r[:, t + k] for k in range(end - t)) + gamma ** (end - t) * v_ext[:, end]
        )
        np.testing.assert_allclose(got[:, t].numpy(), expected)


def test_bernoulli_pieces():
    logits = torch.tensor([-1.0, 0.0, 2.0])
    p = torch.sigmoid(logits)
    np.testing.assert_allclose(meta.bernoulli_log_prob(logits, torch.ones(3)), p.log(), rtol=1e-6)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log())
    np.testing.assert_allclose(meta.bernoulli_entropy(logits), entropy, rtol=1e-6)


# -- the learner ---------------------------------------------------------------------------------
def small_args(method, **kw):
    base = dict(method=method, envs=2, episodes=64, warmup_episodes=2, batch_size=32, hidden=16,
                meta_k=2, buffer_size=5000)  # fmt: skip
    return CommArgs(**(base | kw))


def comm_vector(learner):
    return torch.cat([p.detach().flatten() for p in learner.comm.parameters()]).clone()


@pytest.mark.parametrize("method", ["meta", "reinforce", "stgs", "none", "full"])
def test_each_method_trains_its_comm_networks_or_not(method):
    learner = CommLearner(small_args(method))
    before = comm_vector(learner)
    for _ in range(5):  # meta: K = 2 inner updates, then a meta-update, twice
        metrics = learner.train_iteration()
    assert np.isfinite(list(metrics.values())).all()
    changed = not torch.equal(before, comm_vector(learner))
    assert changed == (method in ("meta", "reinforce", "stgs"))
    ev = learner.evaluate(4, seed=1)
    d = learner.d
    if method == "none":
        assert ev["eval_messages"] == 0
    if method == "full":
        assert ev["eval_messages"] == d  # every filled slot of navigation (d = N - 1)
    if method == "meta":
        assert "meta_objective" in metrics or learner.cycle_k > 0


def test_rollout_records_each_step_with_its_own_observation():
    learner = CommLearner(small_args("none"))
    batch = learner.rollout(3, seed=2, explore=True)
    # within an episode the next observation of step t is the observation of step t + 1
    torch.testing.assert_close(batch["obs"][:, 1:], batch["next_obs"][:, :-1])
    assert not torch.equal(batch["obs"][:, 0], batch["obs"][:, 1])
    ids = torch.from_numpy(learner.core.inner.neighbours_in(batch["obs"].numpy())[0])
    torch.testing.assert_close(batch["ids"], ids)
    torch.testing.assert_close(batch["valid"], (ids >= 0).float())


@pytest.mark.parametrize("method", ["meta", "reinforce"])
def test_one_comm_update_per_collected_episode(method):
    """Algorithm 1: each trajectory its own update of the communication networks."""
    learner = CommLearner(small_args(method, envs=3, meta_k=4))
    steps = []
    if method == "reinforce":
        learner.reinforce_update = lambda episode: steps.append(episode["reward"].shape[0]) or {}
    else:
        inner = learner.meta_update
        learner.meta_update = lambda episode: (
            steps.append(episode["reward"].shape[0]) or inner(episode)
        )
    learner.train_iteration()
    assert steps == [1, 1, 1]  # three episodes, three updates on one episode each
    if method == "meta":
        assert learner.cycle_k == 3
        out = {}
        for _ in range(2):  # episodes 4-6: the K = 4th update closes the cycle at episode 5
            out |= learner.train_iteration()
        assert "meta_objective" in out


def test_critic_and_policy_updates_interleave_with_the_episodes():
    learner = CommLearner(small_args("reinforce", envs=4, updates_per_episode=0.5))
    order = []
    update, comm = learner.update_critic_and_policy, learner.reinforce_update
    learner.update_critic_and_policy = lambda: order.append("q") or update()
    learner.reinforce_update = lambda episode: order.append("c") or comm(episode)
    learner.train_iteration()  # warm-up of 2 episodes is over after this first iteration
    assert order == ["c", "q", "c", "c", "q", "c"]


def test_rollout_keeps_the_behaviour_log_probabilities():
    learner = CommLearner(small_args("reinforce"))
    batch = learner.rollout(2, seed=3, explore=True)
    with torch.no_grad():
        logits = learner.comm_logits(learner.comm_params(), batch["obs"])
    expected = meta.bernoulli_log_prob(logits, batch["sample"])
    torch.testing.assert_close(batch["behaviour_logp"], expected)


def test_fractional_updates_per_episode_carry_over_and_resume():
    learner = CommLearner(small_args("none", envs=2, updates_per_episode=0.25))
    calls = []
    update = learner.update_critic_and_policy
    learner.update_critic_and_policy = lambda: calls.append(1) or update()
    for _ in range(4):  # 8 episodes at a quarter of an update each, after the warm-up
        learner.train_iteration()
    assert len(calls) == 2
    assert learner.state_dict()["counters"][2] == learner.update_credit


def test_policy_rejects_a_soft_mask_without_a_gradient():
    from baselines.comm.networks import PolicyNet

    policy = PolicyNet(2, 3, 5, hidden=4)
    with pytest.raises(ValueError, match="0/1"):
        policy(torch.zeros(1, 2, 3), torch.zeros(1, 2, 1, 3), torch.full((1, 2, 1), 0.5))


def test_eta_receives_gradients_and_moves():
    learner = CommLearner(small_args("meta", meta_k=2))
    eta_before = [p.detach().clone() for p in learner.rule.parameters()]
    seen = {}
    for _ in range(3):
        seen |= learner.train_iteration()
    assert seen["meta_grad_norm"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(eta_before, learner.rule.parameters()))


def cycle_inputs(learner, n):
    """``n`` rollouts of 2 episodes with random advantages, and copies of the learner's
    fast weights (differentiable) and RMSprop statistics: one meta cycle's inputs."""
    batches = []
    for k in range(n):
        batch = learner.rollout(2, seed=k, explore=True)
        batch["advantage"] = torch.randn(2, batch["reward"].shape[1], 1, 1)
        batches.append(batch)
    theta0 = {k: v.detach().requires_grad_(True) for k, v in learner.fast.items()}
    sq0 = {k: v.clone() for k, v in learner.square_avg.items()}
    return batches, theta0, sq0


def test_learner_cycle_equals_the_unrolled_objective():
    learner = CommLearner(small_args("meta", meta_k=3))
    batches, theta0, sq0 = cycle_inputs(learner, 4)
    expected, theta_k, _ = meta.unrolled_meta_objective(
        learner.rule_advantage, learner.comm_logits, theta0, sq0, batches,
        learner.args.lr_comm, learner.args.beta, clip=learner.args.comm_clip,
    )  # fmt: skip
    outs = [learner.meta_update(b) for b in batches]
    assert outs[-1]["meta_objective"] == pytest.approx(expected.item(), rel=1e-5)
    for name, p in learner.comm.named_parameters():  # theta_c(K) becomes the comm networks
        torch.testing.assert_close(p.detach(), theta_k[name].detach())


def test_without_blending_eta_learns_from_the_last_objective_alone():
    learner = CommLearner(small_args("meta", meta_k=3, blend=False))
    batches, theta0, sq0 = cycle_inputs(learner, 4)
    args = (learner.rule_advantage, learner.comm_logits, theta0, sq0, batches,
            learner.args.lr_comm, learner.args.beta)  # fmt: skip
    last, _, _ = meta.unrolled_meta_objective(*args, blend=False)
    mean, _, _ = meta.unrolled_meta_objective(*args)
    outs = [learner.meta_update(b) for b in batches]
    assert outs[-1]["meta_objective"] == pytest.approx(last.item(), rel=1e-5)
    assert last.item() != pytest.approx(mean.item(), rel=1e-3)


def test_same_seed_same_run_and_resume_continues_exactly():
    a, b = CommLearner(small_args("reinforce")), CommLearner(small_args("reinforce"))
    for _ in range(3):
        assert a.train_iteration() == b.train_iteration()
    state = a.state_dict()
    c = CommLearner(small_args("reinforce"))
    c.load_state_dict(state)
    ma, mc = a.train_iteration(), c.train_iteration()
    for key in ("episodes", "env_steps", "train_reward", "messages", "baseline_loss"):
        assert ma[key] == mc[key], key  # the same rollout from the restored generators
    # updates agree up to float summation order (fresh tensors, other memory alignment)
    assert ma["critic_loss"] == pytest.approx(mc["critic_loss"], rel=1e-2)
    fresh = CommLearner(small_args("reinforce"))
    assert fresh.evaluate(3, seed=4) != c.evaluate(3, seed=4)


@pytest.mark.parametrize("blend", [True, False])
def test_resume_inside_a_meta_cycle_rebuilds_it_exactly(blend):
    """A checkpoint taken mid-cycle (2 of meta_k = 3 inner steps done) resumes to the same
    eta update: the cycle is replayed from theta_c(0) on its saved trajectories."""
    args = small_args("meta", envs=1, meta_k=3, blend=blend)
    a = CommLearner(args)
    for _ in range(5):  # one trajectory each: a cycle of 3, its eta update, 2 steps in
        a.train_iteration()
    assert a.cycle_k == 2
    c = CommLearner(args)
    c.load_state_dict(copy.deepcopy(a.state_dict()))
    assert c.cycle_k == 2 and len(c.cycle_objectives) == len(a.cycle_objectives)
    for _ in range(5):  # across the eta update that ends the cycle and the next cycle
        assert a.train_iteration() == c.train_iteration()
    for pa, pc in zip(a.rule.parameters(), c.rule.parameters()):
        assert torch.equal(pa, pc)


def test_a_cycle_replay_that_ends_elsewhere_warns():
    a = CommLearner(small_args("meta", envs=1, meta_k=3))
    for _ in range(4):
        a.train_iteration()
    state = copy.deepcopy(a.state_dict())
    state["fast"] = {k: v + 1.0 for k, v in state["fast"].items()}
    with pytest.warns(RuntimeWarning, match="fast weights"):
        CommLearner(small_args("meta", envs=1, meta_k=3)).load_state_dict(state)


def test_evaluation_leaves_training_randomness_alone():
    a, b = CommLearner(small_args("stgs")), CommLearner(small_args("stgs"))
    a.train_iteration()
    b.train_iteration()
    a.evaluate(4, seed=9)
    assert a.train_iteration() == b.train_iteration()


def test_bad_args_raise():
    with pytest.raises(ValueError, match="method"):
        CommArgs(method="gumbel")
    with pytest.raises(ValueError, match="meta_k"):
        CommArgs(meta_k=0)
    with pytest.raises(ValueError, match="prey"):
        CommArgs(prey="still")
    with pytest.raises(ValueError, match="comm_clip"):
        CommArgs(comm_clip=-1.0)
    with pytest.raises(ValueError, match="updates_per_episode"):
        CommArgs(updates_per_episode=-0.5)
    with pytest.raises(ValueError, match="updates_per_episode"):
        CommArgs(updates_per_episode=float("nan"))


def test_predator_prey_runs_against_the_pretrained_prey_by_default():
    learner = CommLearner(small_args("none", env="predator_prey_N3_M1_l3"))
    assert learner.core.inner.config.prey == "pretrained"
    scripted = CommLearner(small_args("none", env="predator_prey_N3_M1_l3", prey="heuristic"))
    assert scripted.core.inner.config.prey == "heuristic"
    assert CommLearner(small_args("none")).core.inner.config.__class__.__name__ != (
        "PredatorPreyConfig"
    )
