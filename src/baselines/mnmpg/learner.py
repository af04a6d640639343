"""VDN, QMIX and MNMPG on Skirmish: one learner, three mixers (mnmpg-exercise-moves).

Read top to bottom as the paper's Algorithm 1:

1. :meth:`MixingLearner.gather` plays ``n_envs`` episodes in lockstep (epsilon-greedy on the
   recurrent utilities, :func:`~baselines.mnmpg.episodes.run_episodes`) into the replay;
2. MNMPG only, every ``meta_interval`` env steps: one meta-episode through the exercise-move
   wrapper (:class:`meta_wrappers.exercise.ExerciseMoveEnv`, with this learner as its inner
   learner): the hierarchy ``z_t ~ pi_theta(s_t)`` is chosen at every step of an episode D0,
   the wrapper lets the learner take ``n_exercise`` TD steps on D0 (phi and zeta only),
   plays D1 with the updated networks and pays ``R1 - R0``; then ``theta += lambda (R1 -
   R0) sum_t grad log pi_theta(z_t | s_t)`` (equation 5).  D0 and D1 go to the replay;
3. :meth:`MixingLearner.train_step`, once per episode collected (PyMARL's ratio, and
   Algorithm 1's "to keep the training-sampling ratio at 1", D0 and D1 included): samples
   ``batch_size`` episodes, cut to the longest, and takes one RMSprop step on the TD loss
   of ``Q_tot`` (double Q-learning, target networks copied every
   ``target_update_interval`` TD steps, equation 6).  With ``exercise_counts`` (the
   default) the exercise TD steps are paid from that budget, so every method takes one TD
   step per episode and the comparison is at equal TD steps.

The defaults are PyMARL's (oxwhirl/pymarl ``default.yaml``, ``qmix.yaml``); the Skirmish
experiments page lists every difference.

With ``td_grad=True`` the TD loss also reaches ``theta``: the mixer's ``z_t`` is rebuilt as
``mu_theta(s_t) + sigma_theta(s_t) eps_t`` from the stored noise ``eps_t`` (the ablation
"w/o grad" sets it False); ``use_state=False`` is the ablation "w/o s".
"""

from __future__ import annotations

import copy
import dataclasses
import zlib
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

import baselines._torch  # noqa: F401  (optimisers without torch._dynamo)
from baselines.mnmpg.episodes import (
    Episodes,
    LockstepEpisodes,
    agent_inputs,
    make_runner_core,
    run_episodes,
)
from baselines.mnmpg.nets import Hierarchy, MNMPGMixer, QMixer, RNNAgent, VDNMixer
from metaenvs.games.skirmish import DIFFICULTIES
from metaenvs.games.skirmish_maps import get_map

METHODS = ("vdn", "qmix", "mnmpg")


@dataclasses.dataclass
class MixArgs:
    """Hyperparameters: PyMARL's QMIX defaults (RMSprop 5e-4, alpha 0.99, eps 1e-5; epsilon
    1.0 -> 0.05 over 50k steps; batches of 32 episodes from a replay of 5000; one TD step
    per episode; target copy every 200 TD steps; gradient clip 10), and the paper's for
    MNMPG (hierarchy of dimension 3, meta-update every 500 env steps)."""

    method: str = "qmix"
    """``vdn``, ``qmix`` or ``mnmpg``."""
    map_name: str = "3m"
    """A Skirmish map."""
    seed: int = 0
    """Seeds the networks, the battles and the exploration."""
    n_envs: int = 1
    """Episodes collected per iteration, in lockstep in one batched core (PyMARL's
    ``batch_size_run``); the iteration then takes one TD step per episode collected."""
    batch_size: int = 32
    """Episodes per TD update."""
    buffer_size: int = 5000
    """Episodes the replay keeps."""
    lr: float = 5e-4
    """RMSprop learning rate (alpha 0.99, eps 1e-5)."""
    gamma: float = 0.99
    """Discount."""
    epsilon_start: float = 1.0
    """Exploration at the start."""
    epsilon_finish: float = 0.05
    """Exploration after the anneal."""
    epsilon_anneal_steps: int = 50_000
    """Env steps of the linear anneal (paper: 5e4 on most maps)."""
    target_update_interval: int = 200
    """TD steps between target-network copies (PyMARL's ``target_update_interval``,
    counted in episodes there: the same at one TD step per episode)."""
    grad_clip: float = 10.0
    """Gradient-norm clip of the TD step."""
    hidden: int = 64
    """Utility network width."""
    embed: int = 32
    """Mixer width."""
    hierarchy_dim: int = 3
    """K, the dimension of MNMPG's hierarchy z."""
    meta_lr: float = 1e-3
    """lambda, the hierarchy's learning rate in equation 5 (0: no meta-learning)."""
    meta_interval: int = 500
    """Env steps between meta-updates."""
    n_exercise: int = 1
    """TD steps on D0 before D1 is played (phi and zeta only: Algorithm 1)."""
    exercise_counts: bool = True
    """Whether the exercise TD steps are paid from the one-TD-step-per-episode budget (so
    MNMPG takes as many TD steps as QMIX and VDN); False gives them on top, as Algorithm 1
    read literally."""
    td_grad: bool = True
    """Whether the TD loss also trains theta (False: the ablation "w/o grad")."""
    use_state: bool = True
    """Whether the mixer also reads the state (False: the ablation "w/o s")."""
    difficulty: str = "smac"
    """The enemy AI (a Skirmish level; ``smac``: SMAC's built-in AI)."""
    env_steps: int = 200_000
    """Budget of a run: env steps (the paper trains 2-10M)."""
    eval_every: int = 10_000
    """Env steps between tests (a test is due this many env steps after the previous one)."""
    eval_episodes: int = 32
    """Test battles (greedy policy, fixed seeds: every test of every run meets the same)."""
    label: str = ""
    """The run's folder instead of the method (ablations: ``mnmpg_no_grad`` ...)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        for name in ("n_envs", "batch_size", "buffer_size", "hierarchy_dim", "n_exercise",
                     "env_steps", "eval_every", "eval_episodes",
                     "target_update_interval"):  # fmt: skip
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.meta_lr < 0 or self.lr <= 0:
            raise ValueError("lr must be > 0 and meta_lr >= 0")
        get_map(self.map_name)  # an unknown map raises here, naming the known ones
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(
                f"difficulty must be one of {tuple(DIFFICULTIES)}, got {self.difficulty!r}"
            )


class EpisodeReplay:
    """A ring buffer of the last ``capacity`` episodes (preallocated on the first add);
    uniform sampling with a given generator."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.store: dict[str, Any] | None = None
        self.size = 0
        self.next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, episodes: Episodes) -> None:
        """Store ``episodes``, overwriting the oldest when full."""
        if self.store is None:
            self.store = {}
            for f in dataclasses.fields(Episodes):
                value = getattr(episodes, f.name)
                if value is not None:
                    zeros = np.zeros if isinstance(value, np.ndarray) else torch.zeros
                    self.store[f.name] = zeros((self.capacity, *value.shape[1:]), dtype=value.dtype)
        if len(episodes) > self.capacity:
            episodes = episodes.select(np.arange(len(episodes) - self.capacity, len(episodes)))
        slots = (self.next + np.arange(len(episodes))) % self.capacity
        for name, buffer in self.store.items():
            buffer[slots] = getattr(episodes, name)
        self.next = int((self.next + len(episodes)) % self.capacity)
        self.size = min(self.size + len(episodes), self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> Episodes:
        """``n`` stored episodes drawn uniformly (with replacement), cut to the longest of
        them (PyMARL's ``max_t_filled``): ``T`` steps, ``T + 1`` observations."""
        index = rng.integers(0, self.size, size=n)
        steps = int(self.store["filled"][index].sum(1).max())
        fields = {f.name: None for f in dataclasses.fields(Episodes)}
        for name, buffer in self.store.items():
            if buffer.ndim == 1:
                fields[name] = buffer[index]
            else:
                fields[name] = buffer[index, : steps + int(name in Episodes.OBSERVED)]
        return Episodes(**fields)

    def state_dict(self) -> dict[str, Any]:
        """The filled slots, each field packed losslessly (:func:`pack_array`), so that a
        checkpoint is compact (padding after a battle's end, dead units and masks compress
        well) and loads under ``torch.load(weights_only=True)``; numpy fields are named in
        ``"numpy"``."""
        store = None
        if self.store is not None:
            store = {name: pack_array(buffer[: self.size]) for name, buffer in self.store.items()}
        numpy = sorted(k for k, v in (self.store or {}).items() if isinstance(v, np.ndarray))
        return {"capacity": self.capacity, "size": self.size, "next": self.next,
                "store": store, "numpy": numpy}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (the slots past ``size`` are zeros).

        Raises
        ------
        ValueError
            If the capacity differs from this replay's.
        """
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay capacity {state['capacity']} != {self.capacity}")
        self.size, self.next, self.store = int(state["size"]), int(state["next"]), None
        if state["store"] is None:
            return
        self.store = {}
        for name, packed in state["store"].items():
            filled = unpack_array(packed)
            buffer = np.zeros((self.capacity, *filled.shape[1:]), dtype=filled.dtype)
            buffer[: self.size] = filled
            self.store[name] = buffer if name in state["numpy"] else torch.from_numpy(buffer)


def pack_array(array: np.ndarray | torch.Tensor) -> dict[str, Any]:
    """``array`` as zlib-compressed bytes in a uint8 tensor, with its shape and dtype.

    Lossless (a resumed run replays exactly) and loadable with ``weights_only=True``.
    """
    values = array.numpy() if isinstance(array, torch.Tensor) else array
    values = np.ascontiguousarray(values)
    data = zlib.compress(values.tobytes(), 1)
    return {
        "zlib": torch.frombuffer(bytearray(data), dtype=torch.uint8),
        "shape": list(values.shape),
        "dtype": values.dtype.str,
    }


def unpack_array(packed: dict[str, Any]) -> np.ndarray:
    """The array :func:`pack_array` packed (a writable copy)."""
    raw = zlib.decompress(packed["zlib"].numpy().tobytes())
    return np.frombuffer(raw, dtype=np.dtype(packed["dtype"])).reshape(packed["shape"]).copy()


class MixingLearner:
    """VDN / QMIX / MNMPG on a Skirmish map; MNMPG also implements the exercise-move
    protocol (:class:`meta_wrappers.exercise.InnerLearner`): meta-observation ``s_t``,
    meta-action ``z_t``."""

    def __init__(self, args: MixArgs) -> None:
        self.args = args
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.core = make_runner_core(args.map_name, difficulty=args.difficulty)
        n, a = self.core.n_agents, int(self.core.action_space.n)
        d, s = self.core.observation_space.shape[0], self.core.state_space.shape[0]
        self.n_agents, self.n_actions = n, a
        self.agent = RNNAgent(d + a + n, a, args.hidden)
        self.hierarchy: Hierarchy | None = None
        if args.method == "vdn":
            self.mixer: torch.nn.Module = VDNMixer()
        elif args.method == "qmix":
            self.mixer = QMixer(n, s, args.embed)
        else:
            self.mixer = MNMPGMixer(n, s, args.hierarchy_dim, use_state=args.use_state)
            self.hierarchy = Hierarchy(s, args.hierarchy_dim)
            self.meta_optimiser = torch.optim.SGD(self.hierarchy.parameters(), lr=args.meta_lr)
        td_params = [*self.agent.parameters(), *self.mixer.parameters()]
        if self.hierarchy is not None and args.td_grad:
            td_params += list(self.hierarchy.parameters())
        self.optimiser = torch.optim.RMSprop(
            td_params, lr=args.lr, alpha=0.99, eps=1e-5, foreach=True
        )
        self.target = copy.deepcopy(self._nets())
        self.replay = EpisodeReplay(args.buffer_size)
        self.env_steps = 0
        self.episodes_seen = 0
        self.td_steps = 0
        self.td_owed = 0  # TD steps due: one per episode collected, less exercise steps
        self.last_target_update = 0
        self._next_seed = args.seed * 1_000_003
        self._last_meta = 0
        if self.hierarchy is not None:
            self.meta_observation_space = self.core.state_space
            high = np.full(args.hierarchy_dim, np.inf, dtype=np.float32)
            self.meta_action_space = spaces.Box(-high, high, dtype=np.float32)

    # -- pieces ----------------------------------------------------------------------------
    def _nets(self) -> torch.nn.ModuleDict:
        nets = {"agent": self.agent, "mixer": self.mixer}
        if self.hierarchy is not None:
            nets["hierarchy"] = self.hierarchy
        return torch.nn.ModuleDict(nets)

    def seed(self) -> int:
        """A fresh battle seed (deterministic sequence)."""
        self._next_seed += 7919
        return self._next_seed

    @property
    def epsilon(self) -> float:
        a = self.args
        frac = min(self.env_steps / max(a.epsilon_anneal_steps, 1), 1.0)
        return a.epsilon_start + frac * (a.epsilon_finish - a.epsilon_start)

    def sample_z(self, states: np.ndarray) -> np.ndarray:
        """``z_t ~ pi_theta(s_t)`` for ``states (E, S)``."""
        with torch.no_grad():
            return self.hierarchy.distribution(torch.from_numpy(states)).sample().numpy()

    # -- acting --------------------------------------------------------------------------
    def gather(self, n_episodes: int | None = None, epsilon: float | None = None) -> Episodes:
        """Play episodes with the current networks, count their steps, put them in the replay."""
        episodes = self._play(n_episodes, epsilon)
        self.replay.add(episodes)
        return episodes

    def _play(self, n_episodes: int | None = None, epsilon: float | None = None) -> Episodes:
        episodes = run_episodes(
            self.core,
            self.agent,
            n_episodes or self.args.n_envs,
            self.epsilon if epsilon is None else epsilon,
            self.seed(),
            None if self.hierarchy is None else self.sample_z,
        )
        self.env_steps += episodes.steps
        self.episodes_seen += len(episodes)
        return episodes

    def iteration(self) -> dict[str, float]:
        """Algorithm 1, once: gather ``n_envs`` episodes; for MNMPG a meta-update through the
        exercise-move wrapper when ``meta_interval`` steps passed; then one TD step per
        episode collected (D0 and D1 included; with ``exercise_counts`` less the exercise
        steps), once the replay holds a batch."""
        seen = self.episodes_seen
        episodes = self.gather()
        out = {"return": float(episodes.returns.mean()), "win_rate": float(episodes.won.mean())}
        if (
            self.hierarchy is not None
            and self.env_steps - self._last_meta >= self.args.meta_interval
        ):
            out.update(self.meta_episode())
            self._last_meta = self.env_steps
        self.td_owed += self.episodes_seen - seen
        if len(self.replay) < self.args.batch_size:
            self.td_owed = 0  # PyMARL trains only once the buffer can sample a batch
        losses = []
        while self.td_owed >= 1:
            losses.append(self.train_step())
            self.td_owed -= 1
        if losses:
            out["td_loss"] = float(np.mean(losses))
        return out

    def meta_episode(self) -> dict[str, float]:
        """One D0 through :class:`~meta_wrappers.exercise.ExerciseMoveEnv` with ``pi_theta``
        as the meta-agent, then equation 5 with the wrapper's ``R1 - R0``."""
        from meta_wrappers.exercise import ExerciseMoveEnv

        env = ExerciseMoveEnv(self, n_exercise=self.args.n_exercise, rollback=False)
        state, _ = env.reset(seed=self.seed())
        while True:
            z = self.sample_z(state[None])[0]
            state, meta_reward, terminated, truncated, info = env.step(z)
            if terminated or truncated:
                break
        objective = self.meta_step(self._last_d0, float(meta_reward)) if self.args.meta_lr else 0.0
        return {"meta_reward": float(meta_reward), "R0": info["R0"], "R1": info["R1"],
                "meta_objective": objective}  # fmt: skip

    def evaluate(self, n_episodes: int = 32, seed: int = 10**6) -> dict[str, float]:
        """Greedy test episodes (not stored): win rate, draw rate and mean return."""
        episodes = run_episodes(self.core, self.agent, n_episodes, 0.0, seed)
        return {"win_rate": float(episodes.won.mean()), "draw_rate": float(episodes.draw.mean()),
                "return": float(episodes.returns.mean())}  # fmt: skip

    # -- learning ------------------------------------------------------------------------
    def td_loss(self, batch: Episodes, theta: bool = True) -> torch.Tensor:
        """Masked mean squared TD error of ``Q_tot`` (double Q, target networks); with
        ``theta`` False (or ``td_grad`` False) it does not depend on the hierarchy's theta."""
        a = self.args
        q = self._utilities(self.agent, batch)
        with torch.no_grad():
            target_q = self._utilities(self.target["agent"], batch)
            next_greedy = q.detach().masked_fill(~batch.avail, -1e9).argmax(-1, keepdim=True)
            next_q = target_q.gather(-1, next_greedy).squeeze(-1)[:, 1:]
        chosen = q[:, :-1].gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
        q_tot = self._mix(self.mixer, self.hierarchy if theta else None, chosen, batch,
                          slice(0, -1))  # fmt: skip
        with torch.no_grad():
            target_tot = self._mix(
                self.target["mixer"], self.target["hierarchy"] if self.hierarchy else None,
                next_q, batch, slice(1, None),
            )  # fmt: skip
            y = batch.reward + a.gamma * (1.0 - batch.terminated) * target_tot
        return (((q_tot - y) ** 2) * batch.filled).sum() / batch.filled.sum().clamp(min=1.0)

    def _utilities(self, agent: RNNAgent, batch: Episodes) -> torch.Tensor:
        """``Q_i(tau_i, .)`` for every step: ``(E, T + 1, N, A)`` (one fused GRU pass)."""
        e, t1, n, _ = batch.obs.shape
        last = torch.cat([torch.zeros_like(batch.actions[:, :1]), batch.actions], dim=1)
        x = agent_inputs(batch.obs, last, self.n_actions)  # (E, T + 1, N, in)
        q = agent.sequence(x.transpose(1, 2).reshape(e * n, t1, -1))  # (E N, T + 1, A)
        return q.view(e, n, t1, -1).transpose(1, 2)

    def _mix(self, mixer, hierarchy, qs, batch: Episodes, steps: slice) -> torch.Tensor:
        states = batch.state[:, steps]
        if isinstance(mixer, MNMPGMixer):
            z = batch.z[:, steps]
            if hierarchy is not None and self.args.td_grad:
                # z rebuilt from the stored noise, so the TD gradient reaches theta
                dist = hierarchy.distribution(states)
                eps = ((z - dist.mean) / dist.stddev).detach()
                z = dist.mean + dist.stddev * eps
            return mixer(qs, states, z)
        return mixer(qs, states)

    def train_step(self, batch: Episodes | None = None, theta: bool = True) -> float:
        """One RMSprop step on ``batch_size`` replayed episodes (or on ``batch``); the target
        networks are copied every ``target_update_interval`` TD steps.  ``theta=False``
        leaves the hierarchy's parameters out (no gradient reaches them: RMSprop skips
        them)."""
        if batch is None:
            batch = self.replay.sample(self.args.batch_size, self.rng)
        loss = self.td_loss(batch, theta)
        self.optimiser.zero_grad()
        loss.backward()
        params = [p for g in self.optimiser.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.args.grad_clip, foreach=True)
        self.optimiser.step()
        self.td_steps += 1
        if self.td_steps - self.last_target_update >= self.args.target_update_interval:
            self.target.load_state_dict(self._nets().state_dict())
            self.last_target_update = self.td_steps
        return float(loss.item())

    def meta_step(self, episode: Episodes, meta_reward: float) -> float:
        """Equation 5: ``theta += lambda (R1 - R0) sum_t grad log pi_theta(z_t | s_t)`` on D0
        (SGD, the gradient norm clipped at ``grad_clip`` as in the TD step)."""
        filled = torch.cat([episode.filled, episode.filled[:, -1:] * 0], dim=1)
        logp = self.hierarchy.log_prob(episode.z, episode.state)
        objective = meta_reward * (logp * filled).sum()
        self.meta_optimiser.zero_grad()
        (-objective).backward()
        torch.nn.utils.clip_grad_norm_(self.hierarchy.parameters(), self.args.grad_clip)
        self.meta_optimiser.step()
        return float(objective.item())

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue exactly: networks, targets, optimisers,
        replay, counters and random states (deep copies)."""
        state = {
            **self.snapshot(),
            "replay": self.replay.state_dict(),
            "counters": (self.env_steps, self.episodes_seen, self.td_steps, self.td_owed,
                         self.last_target_update, self._next_seed, self._last_meta),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
        }  # fmt: skip
        if self.hierarchy is not None:
            state["meta_optimiser"] = copy.deepcopy(self.meta_optimiser.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.restore(state)
        self.replay.load_state_dict(state["replay"])
        (self.env_steps, self.episodes_seen, self.td_steps, self.td_owed,
         self.last_target_update, self._next_seed, self._last_meta) = state["counters"]  # fmt: skip
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if self.hierarchy is not None:
            self.meta_optimiser.load_state_dict(copy.deepcopy(state["meta_optimiser"]))

    # -- the exercise-move protocol (meta_wrappers.exercise.InnerLearner) ----------------
    def begin(self, seed: int | None) -> np.ndarray:
        """Start a D0 episode; its first global state ``s_0``."""
        seed = self.seed() if seed is None else int(seed)
        self._d0 = LockstepEpisodes(self.core, self.agent, 1, self.epsilon, seed)
        return self._d0.record()[0].copy()

    def act(self, meta_action: np.ndarray) -> tuple[np.ndarray, bool, bool]:
        """One step of D0 with ``z_t = meta_action``: ``(s_{t+1}, terminated, truncated)``."""
        play = self._d0
        play.record_z(np.asarray(meta_action, dtype=np.float32).reshape(1, -1))
        play.step()
        states = play.record()
        terminated = bool(play.terminated[0, play.t - 1])
        truncated = not terminated and play.finished
        if terminated or truncated:  # z at the last state, for the TD target: drawn from pi
            play.record_z(self.sample_z(states))
        return states[0].copy(), terminated, truncated

    def end(self) -> tuple[Episodes, float]:
        """D0 and its return R0."""
        episode = self._d0.episodes()
        self.env_steps += episode.steps
        self.episodes_seen += 1
        self._last_d0 = episode
        return episode, float(episode.returns[0])

    def collect(self, n_episodes: int) -> tuple[Episodes, float]:
        """D1: ``n_episodes`` fresh episodes with the current networks and their mean return
        (not stored: the wrapper hands them back through :meth:`remember`)."""
        episodes = self._play(n_episodes)
        return episodes, float(episodes.returns.mean())

    def update(self, data: Episodes) -> None:
        """One exercise move: a TD step on D0 that moves phi and zeta only (Algorithm 1);
        with ``exercise_counts`` it is paid from the TD budget."""
        self.train_step(data, theta=False)
        if self.args.exercise_counts:
            self.td_owed -= 1

    def snapshot(self) -> dict[str, Any]:
        """Every learnable parameter and optimiser state (deep copies)."""
        return copy.deepcopy(
            {"nets": self._nets().state_dict(), "optimiser": self.optimiser.state_dict(),
             "target": self.target.state_dict()}
        )  # fmt: skip

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put back a :meth:`snapshot`."""
        snapshot = copy.deepcopy(snapshot)
        self._nets().load_state_dict(snapshot["nets"])
        self.optimiser.load_state_dict(snapshot["optimiser"])
        self.target.load_state_dict(snapshot["target"])

    def remember(self, data: Episodes) -> None:
        """Into the replay (D0 and D1 are not wasted)."""
        self.replay.add(data)
