"""Learning whom to communicate with: the shared CTDE learner and its five comm rules.

Paper: comm-topology-meta-gradient, Algorithm 1.  One architecture (Figure 1) for every
method: per-agent communication networks ``c^i`` (a Bernoulli per neighbour slot),
per-agent deterministic policies ``pi^i(o^i, o(C^i))`` (an LSTM over the received
observations), and a centralised critic ``Q(o, a)`` with target networks and replay
(MADDPG).  The methods differ only in how the communication networks learn:

- ``meta``: advantages ``A_t(i<-j)`` from the meta-learned backward LSTM eta (equation 5),
  eta trained by the blended meta-gradient through K inner updates (equations 7-9);
- ``reinforce``: the shared advantage ``G^(phi,n)_t - V(o_t; phi)`` (equation 4 with the
  learned baseline);
- ``stgs``: straight-through Gumbel-Softmax masks, trained through the critic with the policy;
- ``none`` / ``full``: no learning; no neighbour / every neighbour is requested.

The environment is :class:`meta_wrappers.comm.CommCore` with learned requests in the
paper's ``same_step`` timing: each env step the agents request (``core.request``), read
the answers, then act (``core.act``).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from typing import Any

import numpy as np
import torch

import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)
import metaenvs
from baselines.comm import meta
from baselines.comm.networks import AgentMLP, JointMLP, PolicyNet, UpdateRule
from meta_wrappers.comm import CommCore, make_comm_core
from metaenvs.config import check_choice, check_float

METHODS = ("meta", "reinforce", "stgs", "none", "full")
PREY_CHOICES = ("pretrained", "heuristic")


@dataclasses.dataclass(frozen=True)
class CommArgs:
    """Configuration of one run; defaults are the paper's Tables 1 and 2 where it gives them."""

    env: str = "navigation_N3_l3"
    """A particle task id (its continuous-action version is used, for deterministic policies)."""
    prey: str = "pretrained"
    """Who moves the prey of a predator-prey task: ``"pretrained"`` (the paper's fixed
    pretrained policies, shipped for its three tasks) or ``"heuristic"`` (scripted);
    other tasks ignore it."""
    method: str = "meta"
    """How the communication networks learn: one of ``METHODS``."""
    seed: int = 0
    """Seed of the run (networks, exploration, envs)."""
    episodes: int = 10_000
    """Training budget in episodes (the paper: 50,000)."""
    eval_every: int = 500
    """Episodes between evaluations."""
    eval_episodes: int = 32
    """Episodes per evaluation (no exploration noise)."""
    envs: int = 8
    """Episodes collected in parallel per iteration (one batched env)."""
    updates_per_episode: float = 1.0
    """Critic and policy updates per collected episode (Algorithm 1: one per trajectory,
    interleaved with the communication update of each trajectory)."""
    warmup_episodes: int = 64
    """Episodes collected before the first critic and policy update."""
    gamma: float = 0.95
    """Discount of the critic's TD target."""
    batch_size: int = 256
    """Transitions per critic and policy update."""
    buffer_size: int = 1_000_000
    """Transitions the replay keeps."""
    hidden: int = 128
    """Width of the hidden layers of every network."""
    lr_critic: float = 1e-3
    """Adam learning rate of the centralised critic."""
    lr_policy: float = 1e-3
    """Adam learning rate of the policies."""
    lr_comm: float = 1e-3
    """RMSprop learning rate of the communication networks (every learning method)."""
    tau: float = 0.01
    """Polyak averaging rate of the target networks."""
    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to the policy's actions while training."""
    grad_clip: float = 0.5
    """Gradient norm clip of the critic, the policies and the baseline (0: none)."""
    comm_clip: float = 0.0
    """Gradient norm clip of every update of the communication networks, the same rule for
    every method: REINFORCE's step, STGS's (through the policy loss) and the meta inner
    step (differentiably, so eta's gradient sees it).  0 (default): no clip for any, as
    the paper lists none for the communication networks (RMSprop normalises their steps);
    with a clip the inner step is no longer linear in eta's advantages."""
    importance_weights: bool = True
    """Correct the communication updates for the episodes of an iteration collected with
    older parameters (episode e of an iteration is used after e updates): each request
    decision's term is weighted by ``c_now(I | o) / c_behaviour(I | o)`` (per-decision
    importance sampling, differentiated through ``c_now``), in the REINFORCE step, the
    meta inner step and the meta-objective.  The first episode of an iteration has weight 1."""
    meta_k: int = 10
    """K, inner updates of the communication networks per meta-update."""
    lr_meta: float = 5e-5
    """RMSprop learning rate of eta."""
    meta_clip: float = 1.0
    """Gradient norm clip of eta (Table 1's value is lost in the paper's text)."""
    beta: float = 0.01
    """Entropy regularisation of the meta-objective (0: none, Figure 4's ablation)."""
    blend: bool = True
    """Equation 9: eta's meta-gradient is the mean over the K intermediate objectives;
    ``False`` (Figure 4's "no blending" ablation): the K-th objective alone (equation 8)."""
    lr_baseline: float = 1e-3
    """Adam learning rate of the value baseline V(o; phi) of the REINFORCE and meta methods."""
    n_step: int = 5
    """n of the baseline's n-step TD target (the paper does not give it)."""
    stgs_temperature: float = 1.0
    """Temperature of the straight-through Gumbel-Softmax (``stgs``) relaxation."""

    def __post_init__(self) -> None:
        check_choice("prey", self.prey, PREY_CHOICES)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        for name in ("episodes", "eval_every", "eval_episodes", "envs", "meta_k", "n_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("updates_per_episode", "grad_clip", "comm_clip"):
            check_float(name, getattr(self, name), strict=False)


class CommLearner:
    """Algorithm 1 over a batched env: ``train_iteration`` collects ``envs`` episodes at
    once, updates critic and policies, then the communication networks by the method.

    Parameters
    ----------
    args : CommArgs
    """

    def __init__(self, args: CommArgs) -> None:
        self.args = args
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.gen = torch.Generator().manual_seed(args.seed)
        env_kwargs: dict[str, Any] = {"continuous_actions": True}
        if metaenvs.spec(args.env).family == "predator_prey":
            env_kwargs["prey"] = args.prey
        self.core: CommCore = make_comm_core(args.env, env_kwargs=env_kwargs, topology="learned")
        inner = self.core.inner
        n, d = self.core.n_agents, self.core.d
        obs_dim, act_dim = self.core.obs_size, int(inner.action_space.shape[0])
        self.n, self.d, self.obs_dim, self.act_dim = n, d, obs_dim, act_dim
        h = args.hidden
        self.comm = AgentMLP(n, obs_dim, d, h)
        self.policy = PolicyNet(n, obs_dim, act_dim, h)
        self.critic = JointMLP(n * (obs_dim + act_dim), h)
        self.baseline = JointMLP(n * obs_dim, h)
        self.rule = UpdateRule(n, d, h)
        self.targets = {
            "comm": copy.deepcopy(self.comm),
            "policy": copy.deepcopy(self.policy),
            "critic": copy.deepcopy(self.critic),
        }
        # foreach: one kernel per step for all of a network's tensors (CPU too)
        self.opt = {
            "critic": torch.optim.Adam(self.critic.parameters(), args.lr_critic, foreach=True),
            "policy": torch.optim.Adam(self.policy.parameters(), args.lr_policy, foreach=True),
            "comm": torch.optim.RMSprop(self.comm.parameters(), args.lr_comm, foreach=True),
            "baseline": torch.optim.Adam(
                self.baseline.parameters(), args.lr_baseline, foreach=True
            ),
            "meta": torch.optim.RMSprop(self.rule.parameters(), args.lr_meta, foreach=True),
        }
        self.buffer = ReplayBuffer(args.buffer_size, n, obs_dim, act_dim, d)
        # the meta method's fast weights theta_c(k), differentiable in eta within a cycle
        self.fast: meta.Params = {k: v.detach().clone() for k, v in self.comm.named_parameters()}
        self.square_avg = {k: torch.zeros_like(v) for k, v in self.fast.items()}
        self.cycle_k = 0
        self.cycle_objectives: list[torch.Tensor] = []
        # what a resume replays to rebuild a cycle in progress: theta_c(0) with its RMSprop
        # averages, and the trajectories of the cycle's inner steps so far
        self.cycle_start: dict[str, meta.Params] = {}
        self.cycle_episodes: list[dict[str, torch.Tensor]] = []
        self.episodes_done = 0
        self.update_credit = 0.0  # critic and policy updates owed (updates_per_episode < 1)
        self.env_steps = 0

    # -- the communication networks ------------------------------------------------------
    def comm_logits(self, params: meta.Params, obs: torch.Tensor) -> torch.Tensor:
        """Logits of ``c^i(j | o^i)`` ``(..., N, d)`` with the given parameters."""
        return self.comm(obs, params)

    def comm_params(self) -> meta.Params:
        """The communication networks' current parameters (fast weights for ``meta``)."""
        if self.args.method == "meta":
            return {k: v.detach() for k, v in self.fast.items()}
        return dict(self.comm.named_parameters())

    def requests(
        self,
        logits: torch.Tensor,
        valid: torch.Tensor,
        relaxed: bool = False,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The request mask for the method: sampled, straight-through relaxed, none or full."""
        method, gen = self.args.method, gen or self.gen
        if method == "none":
            return torch.zeros_like(valid)
        if method == "full":
            return valid
        if relaxed:  # straight-through Gumbel-Softmax for a binary choice: logistic noise
            u = torch.rand(logits.shape, generator=gen).clamp(1e-6, 1 - 1e-6)
            soft = torch.sigmoid((logits + u.log() - (-u).log1p()) / self.args.stgs_temperature)
            hard = (soft > 0.5).float()
            return (hard + soft - soft.detach()) * valid
        return torch.bernoulli(torch.sigmoid(logits), generator=gen) * valid

    # -- acting --------------------------------------------------------------------------
    def rollout(
        self, episodes: int, seed: int, explore: bool, gen: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Run ``episodes`` copies for one episode; arrays ``(E, T, ...)``.

        Requests and exploration noise draw from ``gen`` (the training generator by
        default; evaluation passes its own, so it leaves training's randomness alone).

        Returns the agents' own observations ``obs``, the next ones ``next_obs``, the
        requests ``sample`` and filled slots ``valid``, actions, the team reward (mean over
        agents), ``done`` and ``terminated``.
        """
        core, params, gen = self.core, self.comm_params(), gen or self.gen
        state = core.reset(episodes, seed)
        horizon, n, d = core.inner.config.horizon, self.n, self.d
        shapes = {"obs": (n, self.obs_dim), "next_obs": (n, self.obs_dim), "sample": (n, d),
                  "valid": (n, d), "action": (n, self.act_dim), "reward": (), "done": (),
                  "terminated": (), "ids": (n, d), "next_ids": (n, d),
                  "behaviour_logp": (n, d)}  # fmt: skip
        # filled in place step by step, handed to torch once (no per-step conversions)
        out = {k: np.empty((episodes, horizon, *shape), np.int64 if "ids" in k else np.float32)
               for k, shape in shapes.items()}  # fmt: skip
        for t in range(horizon):
            own_np = core.split_observation(core.observe(state))["own"]  # a view: the core
            ids = core.inner.neighbours_in(own_np)[0]  # reuses it at the next step
            valid_np = ids >= 0
            own, valid = torch.from_numpy(own_np.copy()), torch.from_numpy(valid_np).float()
            with torch.no_grad():
                logits = self.comm_logits(params, own)
                sample = self.requests(logits, valid, gen=gen)
                behaviour_logp = meta.bernoulli_log_prob(logits, sample)
                answered = core.split_observation(core.request(state, sample.numpy() > 0.5))
                received = torch.from_numpy(answered["received"].copy())
                action = self.policy(own, received, torch.from_numpy(answered["valid"].copy()))
            if explore:
                noise = torch.randn(action.shape, generator=gen) * self.args.exploration_noise
                action = (action + noise).clamp(0.0, 1.0)
            # contiguous: the policy's output is a strided view, and the kernels are
            # compiled (and cached by `metaenvs warmup`) for C-contiguous actions
            result = core.act(state, action.contiguous().numpy())
            done = result.terminated | result.truncated
            nxt = core.split_observation(
                np.where(done[:, None, None], result.final_obs, result.obs)
            )["own"]
            for key, value in (
                ("obs", own.numpy()), ("sample", sample.numpy()), ("valid", valid_np),
                ("action", action.numpy()), ("reward", result.reward.mean(axis=1)),
                ("done", done), ("terminated", result.terminated), ("next_obs", nxt),
                ("ids", ids), ("next_ids", core.inner.neighbours_in(nxt)[0]),
                ("behaviour_logp", behaviour_logp.numpy()),
            ):  # fmt: skip
                out[key][:, t] = value
        return {k: torch.from_numpy(v) for k, v in out.items()}

    # -- one iteration of Algorithm 1 ------------------------------------------------------
    def train_iteration(self) -> dict[str, float]:
        """Collect ``envs`` episodes in parallel, then Algorithm 1's lines 6-9 per episode.

        For each collected trajectory in turn: its critic and policy updates (lines 7-8;
        ``updates_per_episode`` of them, spread evenly), then one update of the
        communication networks on that trajectory alone (line 9: a REINFORCE step, or a
        meta inner step, with the K-update cycle and the eta update of lines 11-14 running
        across trajectories and iterations).  The trajectories of one iteration share the
        parameters they were collected with (``importance_weights`` corrects the later ones'
        updates for it).  The advantages of all of them come from the baseline before its
        one step on the iteration's trajectories (line 12).
        """
        args = self.args
        seed = int(self.rng.integers(2**62))
        batch = self.rollout(args.envs, seed, explore=True)
        self.buffer.add(batch)
        self.episodes_done += args.envs
        self.env_steps += int(batch["reward"].numel())
        metrics = {
            "episodes": float(self.episodes_done),
            "env_steps": float(self.env_steps),
            "train_reward": float(batch["reward"].sum(1).mean()),
            "messages": float(batch["sample"].sum() / batch["sample"][..., 0].numel()),
        }
        if args.method in ("meta", "reinforce"):
            advantage, metrics["baseline_loss"] = self.baseline_advantage(batch)
            batch["advantage"] = advantage[..., None, None]
        if not args.importance_weights:
            del batch["behaviour_logp"]
        updating = self.episodes_done >= args.warmup_episodes
        for e in range(args.envs):
            if updating:  # updates_per_episode updates per episode, fractions carried over
                self.update_credit += args.updates_per_episode
                while self.update_credit >= 1.0:
                    metrics |= self.update_critic_and_policy()
                    self.update_credit -= 1.0
            episode = {k: v[e : e + 1] for k, v in batch.items()}
            if args.method == "reinforce":
                metrics |= self.reinforce_update(episode)
            elif args.method == "meta":
                metrics |= self.meta_update(episode)
        return metrics

    def update_critic_and_policy(self) -> dict[str, float]:
        """Equations 1 and 3 on a replay sample (and the STGS comm update with the policy)."""
        args, t = self.args, self.targets
        obs, action, reward, next_obs, terminated, ids, next_ids = self.buffer.sample(
            args.batch_size, self.rng
        )
        with torch.no_grad():
            next_mask, next_received = self.answered(
                next_obs, next_ids, dict(t["comm"].named_parameters()), relaxed=False
            )
            next_action = t["policy"](next_obs, next_received, next_mask)
            target = reward + args.gamma * (1.0 - terminated) * t["critic"](next_obs, next_action)
        critic_loss = ((self.critic(obs, action) - target) ** 2).mean()
        self._step("critic", critic_loss, self.critic)

        mask, received = self.answered(obs, ids, self.comm_params(), relaxed=args.method == "stgs")
        own_action = self.policy(obs, received, mask)  # (B, N, A)
        eye = torch.eye(self.n, dtype=torch.bool)[:, None, :, None]  # agent i's slot in row i
        joint = torch.where(eye, own_action.unsqueeze(0), action.unsqueeze(0))  # (N, B, N, A)
        self.opt["policy"].zero_grad()
        if args.method == "stgs":
            self.opt["comm"].zero_grad()
        self.critic.requires_grad_(False)  # the policy loss needs no critic gradients
        try:
            policy_loss = -self.critic(obs.expand(self.n, *obs.shape), joint).mean(1).sum()
            policy_loss.backward()
        finally:
            self.critic.requires_grad_(True)
        clip_grads(self.policy.parameters(), args.grad_clip)
        self.opt["policy"].step()
        if args.method == "stgs":
            clip_grads(self.comm.parameters(), args.comm_clip)
            self.opt["comm"].step()
        self.soft_update_targets()
        return {"critic_loss": critic_loss.item(), "policy_loss": policy_loss.item()}

    def answered(
        self, obs: torch.Tensor, ids: torch.Tensor, params: meta.Params, relaxed: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Requests from ``obs (B, N, D)`` and the neighbours' answers ``(B, N, d, D)``.

        The neighbour ids come from the game (``neighbours_in``); the answers are the
        requested neighbours' rows of ``obs``, as :class:`CommCore` answers them.
        """
        valid = (ids >= 0).float()
        mask = self.requests(self.comm_logits(params, obs), valid, relaxed=relaxed)
        if not relaxed:
            mask = mask.detach()
        rows = ids.clamp(min=0).flatten(-2)  # (B, N*d)
        gathered = torch.gather(obs, -2, rows[..., None].expand(*rows.shape, self.obs_dim))
        received = gathered.reshape(*ids.shape, self.obs_dim) * mask[..., None]
        return mask, received

    def baseline_advantage(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Fit V(o; phi) by n-step TD on the batch; return ``G^(phi,n)_t - V(o_t)`` ``(E, T)``."""
        args = self.args
        values = self.baseline(batch["obs"])
        with torch.no_grad():
            last = self.baseline(batch["next_obs"][:, -1])
            target = meta.n_step_returns(batch["reward"], values.detach(), last, args.gamma,
                                         args.n_step)  # fmt: skip
        loss = ((values - target) ** 2).mean()
        self._step("baseline", loss, self.baseline)
        return (target - values.detach()), loss.item()

    def reinforce_update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Equation 4 with the learned baseline, by RMSprop on the comm networks."""
        logits = self.comm(batch["obs"])
        objective = meta.surrogate(
            logits, batch["sample"], batch["advantage"], batch["valid"],
            batch.get("behaviour_logp"),
        )  # fmt: skip
        self.opt["comm"].zero_grad()
        (-objective).backward()
        clip_grads(self.comm.parameters(), self.args.comm_clip)
        self.opt["comm"].step()
        return {"comm_objective": objective.item()}

    def meta_update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One step of the K-update cycle of Algorithm 1, on a trajectory of theta_c(k).

        Measures the meta-objective of theta_c(k) on the batch (k >= 1); after K of them
        updates eta by their mean (equation 9); then takes inner step k + 1 with eta's
        advantages, differentiably.  This is :func:`meta.unrolled_meta_objective` spread
        over iterations; the trajectory after the K-th update also starts the next cycle.
        """
        args, out = self.args, {}
        if self.cycle_k > 0 and (args.blend or self.cycle_k == args.meta_k):
            logits = self.comm_logits(self.fast, batch["obs"])
            objective = meta.meta_objective(
                logits, batch["sample"], batch["advantage"], batch["valid"], args.beta,
                batch.get("behaviour_logp"),
            )  # fmt: skip
            self.cycle_objectives.append(objective)
        if self.cycle_k == args.meta_k:
            meta_objective = torch.stack(self.cycle_objectives).mean()
            self.opt["meta"].zero_grad()
            (-meta_objective).backward()
            norm = torch.nn.utils.clip_grad_norm_(
                self.rule.parameters(), args.meta_clip, foreach=True
            )
            self.opt["meta"].step()
            out = {"meta_objective": meta_objective.item(), "meta_grad_norm": norm.item()}
            self.restart_cycle()
        rule_advantage = self.rule_advantage(batch, self.fast)
        if self.cycle_k == 0:
            self.fast = {k: v.detach().requires_grad_(True) for k, v in self.fast.items()}
            self.cycle_start = {
                "fast": {k: v.detach().clone() for k, v in self.fast.items()},
                "square_avg": {k: v.detach().clone() for k, v in self.square_avg.items()},
            }
            self.cycle_episodes = []
        self.cycle_episodes.append({k: v.detach().clone() for k, v in batch.items()})
        self.fast, self.square_avg = meta.inner_step(
            self.comm_logits,
            self.fast,
            self.square_avg,
            batch,
            rule_advantage,
            args.lr_comm,
            clip=args.comm_clip,
        )
        self.cycle_k += 1
        return out

    def rule_advantage(self, batch: dict[str, torch.Tensor], params: meta.Params) -> torch.Tensor:
        """eta's advantages ``A_t(i<-j)`` on a trajectory; the probabilities ``c(i<-j)`` it
        reads are data (no gradient to the communication networks through them)."""
        with torch.no_grad():
            probs = torch.sigmoid(self.comm_logits(params, batch["obs"]))
        return self.rule(batch["reward"], batch["done"], self.args.gamma, probs)

    def restart_cycle(self) -> None:
        """Cut the graph: theta_c(K) becomes theta_c(0) of the next cycle."""
        self.fast = {k: v.detach() for k, v in self.fast.items()}
        self.square_avg = {k: v.detach() for k, v in self.square_avg.items()}
        self.cycle_k = 0
        self.cycle_objectives = []
        self.cycle_start, self.cycle_episodes = {}, []
        with torch.no_grad():
            for name, p in self.comm.named_parameters():
                p.copy_(self.fast[name])

    # -- helpers -------------------------------------------------------------------------
    def _step(self, name: str, loss: torch.Tensor, module: torch.nn.Module) -> None:
        self.opt[name].zero_grad()
        loss.backward()
        clip_grads(module.parameters(), self.args.grad_clip)
        self.opt[name].step()

    def soft_update_targets(self) -> None:
        """Polyak averaging ``target <- (1 - tau) target + tau online``."""
        online = {"comm": self.comm_params(), "policy": dict(self.policy.named_parameters()),
                  "critic": dict(self.critic.named_parameters())}  # fmt: skip
        polyak_update(self.targets, online, self.args.tau)

    def evaluate(self, episodes: int, seed: int) -> dict[str, float]:
        """Mean episodic team reward and messages per agent per step, without exploration."""
        batch = self.rollout(episodes, seed, explore=False, gen=torch.Generator().manual_seed(seed))
        return {
            "eval_reward": float(batch["reward"].sum(1).mean()),
            "eval_messages": float(batch["sample"].sum() / batch["sample"][..., 0].numel()),
        }

    # -- checkpoints ---------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        """The trained networks by name (targets apart)."""
        return {"comm": self.comm, "policy": self.policy, "critic": self.critic,
                "baseline": self.baseline, "rule": self.rule}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly, a meta cycle in progress included: its
        theta_c(0) and trajectories, from which :meth:`load_state_dict` rebuilds its graph.

        A snapshot: optimiser states are copied (``Optimizer.state_dict`` shares its live
        moment tensors, so loading it into a second learner in the same process would
        make the two step each other's moments).
        """
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "targets": {k: m.state_dict() for k, m in self.targets.items()},
            "opt": {k: copy.deepcopy(o.state_dict()) for k, o in self.opt.items()},
            "fast": {k: v.detach().clone() for k, v in self.fast.items()},
            "square_avg": {k: v.detach().clone() for k, v in self.square_avg.items()},
            "buffer": self.buffer.state_dict(),
            "rng": self.rng.bit_generator.state,
            "gen": self.gen.get_state(),
            "counters": (self.episodes_done, self.env_steps, self.update_credit),
            # its tensors are never changed in place: a list of them is a snapshot
            "cycle": {"start": self.cycle_start, "episodes": list(self.cycle_episodes)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, m in self.targets.items():
            m.load_state_dict(state["targets"][k])
        for k, o in self.opt.items():
            o.load_state_dict(state["opt"][k])
        self.fast, self.square_avg = state["fast"], state["square_avg"]
        self.cycle_k, self.cycle_objectives = 0, []
        self.cycle_start, self.cycle_episodes = {}, []
        self.buffer.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        self.gen.set_state(state["gen"])
        self.episodes_done, self.env_steps, self.update_credit = state["counters"]
        cycle = state.get("cycle") or {}
        if cycle.get("episodes"):
            self._replay_cycle(cycle["start"], cycle["episodes"], state["fast"])

    def _replay_cycle(
        self,
        start: dict[str, meta.Params],
        episodes: list[dict[str, torch.Tensor]],
        saved_fast: meta.Params,
    ) -> None:
        """Rebuild the meta cycle in progress: its inner steps again from theta_c(0), on
        its trajectories, so that eta's next update differentiates through all of them.

        Warns
        -----
        RuntimeWarning
            If the replay does not end at the saved theta_c(k) bit for bit (another number
            of torch threads rounds differently): the run goes on from the replay, a valid
            but no longer exact continuation.
        """
        self.fast = {k: v.clone() for k, v in start["fast"].items()}
        self.square_avg = {k: v.clone() for k, v in start["square_avg"].items()}
        for episode in episodes:
            self.meta_update(episode)
        if not all(torch.equal(self.fast[k].detach(), saved_fast[k]) for k in saved_fast):
            warnings.warn(
                "resuming the meta cycle in progress did not reproduce its saved fast "
                "weights bit for bit (another number of torch threads than the run was "
                "trained with?); it goes on from the replay, no longer an exact resume",
                RuntimeWarning,
                stacklevel=3,
            )


def clip_grads(params: Any, max_norm: float) -> None:
    """``clip_grad_norm_`` (one fused kernel per step), nothing for ``max_norm`` 0."""
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


def polyak_update(
    targets: dict[str, torch.nn.Module], online: dict[str, dict[str, torch.Tensor]], tau: float
) -> None:
    """``target <- (1 - tau) target + tau online`` for each target network, by name: the
    online parameters ``online[name]`` are keyed as the target's ``named_parameters``."""
    with torch.no_grad():
        for name, target in targets.items():
            pairs = [(p, online[name][key].detach()) for key, p in target.named_parameters()]
            torch._foreach_lerp_([p for p, _ in pairs], [q for _, q in pairs], tau)


class Replay:
    """A ring buffer of transitions, one tensor per field: ``fields`` maps a name to the
    shape of one row and its dtype; rows come from rollouts ``(E, T, ...)``."""

    def __init__(
        self, capacity: int, fields: dict[str, tuple[tuple[int, ...], torch.dtype]]
    ) -> None:
        self.capacity, self.size, self.head = capacity, 0, 0
        self.data = {
            k: torch.zeros(capacity, *shape, dtype=dtype) for k, (shape, dtype) in fields.items()
        }

    def add(self, batch: dict[str, torch.Tensor]) -> None:
        """Add every step of a rollout ``(E, T, ...)``."""
        rows = {k: batch[k].flatten(0, 1) for k in self.data}
        m = rows[next(iter(rows))].shape[0]
        index = (self.head + torch.arange(m)) % self.capacity
        for k, v in rows.items():
            self.data[k][index] = v.to(self.data[k].dtype)
        self.head = (self.head + m) % self.capacity
        self.size = min(self.size + m, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[torch.Tensor]:
        """Uniform rows: the tensors of the fields, in order."""
        index = torch.from_numpy(rng.integers(0, self.size, size=batch_size))
        return [v[index] for v in self.data.values()]

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "head": self.head,
                "data": {k: v[: self.size].clone() for k, v in self.data.items()}}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.head = state["size"], state["head"]
        for k, v in state["data"].items():
            self.data[k][: self.size] = v


class ReplayBuffer(Replay):
    """The comm learner's joint transitions ``(o, a, r, o', terminated)`` with the neighbour
    ids ``(N, d)`` of ``o`` and ``o'`` (int16; -1 for an empty slot)."""

    KEYS = ("obs", "action", "reward", "next_obs", "terminated", "ids", "next_ids")

    def __init__(self, capacity: int, n: int, obs_dim: int, act_dim: int, d: int) -> None:
        if n > torch.iinfo(torch.int16).max:
            raise ValueError(f"at most {torch.iinfo(torch.int16).max} agents, got {n}")
        f32, i16 = torch.float32, torch.int16
        shapes = ((n, obs_dim), (n, act_dim), (), (n, obs_dim), (), (n, d), (n, d))
        dtypes = (f32, f32, f32, f32, f32, i16, i16)
        super().__init__(capacity, dict(zip(self.KEYS, zip(shapes, dtypes))))

    def sample(self, batch_size: int, rng: np.random.Generator) -> list[torch.Tensor]:
        """Uniform rows: the tensors of :attr:`KEYS` in order, the ids as int64."""
        rows = super().sample(batch_size, rng)
        return rows[:-2] + [ids.long() for ids in rows[-2:]]
