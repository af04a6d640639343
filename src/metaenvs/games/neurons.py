"""Neurons as agents: a feed-forward network whose neurons learn to train it, in batched Numba.

Paper: neurons-as-agents (Cai and Cheng, a draft), sections 2 and 4.  Each of B copies is
one inner training run: a network of fixed architecture ``R_0 -> R_1 -> ... -> R_L``
(no biases), its weights ``W_l`` of shape ``(R_{l+1}, R_l)``, trained for ``horizon`` (T)
updates on a task.  Ids: ``neurons_teacher`` (student-teacher regression),
``neurons_digits`` and ``neurons_digits_pca10`` (classification of scikit-learn's 8 x 8
digits); the family id ``neurons`` takes any architecture and task.  Reference learning
rules (SGD, node and weight perturbation) that act through this env are in
``baselines.neurons``.

## Agents
One per neuron with outgoing weights: ``neuron_<l>_<i>`` is neuron i of layer l, for
``l = 0 .. L-1`` (the inputs and every hidden layer; the R_L output neurons have no
outgoing weights and are not agents).  K = R_0 + ... + R_{L-1} agents, all alike (one
shared observation and action space), none leaving before the end.  No single-agent
(focal) view is registered: one neuron learning while the others follow a fixed rule is not
the draft's setting (the batched and PettingZoo faces carry all neurons at once).

## Action Space
``Box(-1, 1, (D,), float32)`` with ``D = max_l R_{l+1}``: agent ``neuron_<l>_<i>`` adds
``action_scale * a[j]`` to ``W_l[j, i]`` for ``j < R_{l+1}`` (the draft: the neuron "has
control over the weights" ``W_l[:, i]``, "actions correspond to changing" them); entries
past its fan-out ``R_{l+1}`` are ignored (they must still be finite and in the box).  A
NaN, an infinity, an out-of-box value or a wrong shape raises before any weight changes.

## Observation Space
``Box((L + 6 + 4 D,), float32)``, local signals of the neuron (layer l, unit i) and the
global error signals, on the current minibatch of N samples (columns by name in
``core.obs_slices``):

| columns | name | what |
|---|---|---|
| ``L`` | ``layer`` | one-hot of the neuron's layer l |
| 1 | ``progress`` | updates done in the episode over T, in [0, 1] |
| 1 | ``loss`` | E, the clean loss of the network on the minibatch (global) |
| 1 | ``node_signal`` | ``(E - E_N) / sigma``, node perturbation's global signal (0 if off) |
| 1 | ``weight_signal`` | ``(E - E_W) / sigma``, weight perturbation's global signal (0 if off) |
| 1 | ``activity_mean`` | mean over the minibatch of the neuron's activation ``x_i^(l)`` |
| 1 | ``activity_std`` | its standard deviation over the minibatch |
| D | ``weights`` | its outgoing weights ``W_l[:, i]`` |
| D | ``node_trace`` | ``sum_n x_{n,i}^(l) xi_{n,j}^(l+1) / sigma`` (its targets' noise) |
| D | ``weight_noise`` | ``Xi_l[:, i] / sigma``, its own weights' perturbation |
| D | ``mask`` | 1 for the ``R_{l+1}`` real outgoing weights, 0 for the padding |

All entries past the neuron's fan-out are 0, and so are the columns of a perturbation
that is off.  ``node_trace`` is the neuron's activity times the node perturbations of
the neurons it projects to.  The perturbations ``xi^(l)`` (every
sample, every layer 1..L, one forward pass ``E_N``) and ``Xi_l`` (every weight, one
forward pass ``E_W``) are the draft's, redrawn at every update with standard deviation
``sigma``; ``perturb`` switches them on and off.  With these columns the draft's node
and weight perturbation rules are functions of each neuron's own observation:
``Delta_NP W_l[:, i] = eta * sigma * node_signal * node_trace`` and
``Delta_WP W_l[:, i] = eta * sigma * weight_signal * weight_noise``.  SGD is not: it
needs the backpropagated error (``core.gradients``), which is the weight-transport problem.

## Rewards
Minus the loss, shared by every agent: after the agents' update, a fresh minibatch is
drawn and each agent gets ``-E`` of the updated network on it.  ``info["loss"]`` is that
E per copy; ``info["test_loss"]`` (and, on digits, ``info["test_accuracy"]``) hold the
held-out loss of the network that ended an episode, in the rows of the copies that just
finished (other rows: the copy's previous value, 0 before its first episode ends).
``core.evaluate(state)`` gives them at any time.

## Tasks
- ``teacher``: inputs ``x ~ N(0, I_{R_0})``, fresh at every update (online learning);
  targets the outputs of a teacher network of the same depth (hidden widths
  ``teacher_hidden``), weights ``N(0, 1 / fan_in)``, drawn anew for each episode; the MSE
  of the draft, ``E = 1 / (N R_L) * 1/2 * ||X^(L) - Y||^2``.  Held out: ``n_eval`` inputs
  of the episode's own stream.
- ``digits``: scikit-learn's digits (1,797 8 x 8 images, 10 classes; shipped with metaenvs
  in ``metaenvs/data/digits``, scikit-learn is not needed), split once into training and
  test sets (``test_fraction``, a fixed permutation by ``data_seed``); minibatches drawn
  uniformly with replacement from the training split; inputs the pixels over 16 (in
  [0, 1], R_0 = 64), or with ``pca = k`` their projection on the first k principal
  components of the training split, whitened (the draft projects MNIST on 10; on the
  digits 10 components keep 74% of the training variance, not the draft's "> 99%"); the
  cross-entropy of the draft on the softmax of the outputs (R_L = 10).  Held out: the test
  split.

## Starting State
Student weights ``N(0, init_scale^2 / fan_in)``; a new teacher (student-teacher), a first
minibatch and its perturbations.  Every episode of a copy is a new draw from its stream.

## Episode End
Never terminated; truncated after ``horizon`` updates (one inner training run).

## Choices where the draft is silent
The draft gives the forward pass (its equation (1)), the two losses, the three rules and
the agents (a neuron controls its outgoing weights), and reward = minus the loss.  Ours:
no biases (equation (1) has none); the output layer linear (the logits of the softmax, the
regression output), the hidden layers ReLU (the draft's example) or tanh; ``sigma`` is the
perturbations' standard deviation (the draft's ``N(0, sigma)``), so the expected NP and WP
updates are ``sigma`` times the SGD update of the same ``eta`` (see ``baselines.neurons``);
the node perturbation perturbs every layer's pre-activations in one pass, and the sum in
the draft's NP rule runs over the N samples (the only index that makes the shapes agree);
the draft's SGD update ``eta dE/dW`` is applied as descent, ``-eta dE/dW``; weights
initialised with LeCun's fan-in scaling; a fresh minibatch after each update, so the
reward is an unbiased estimate of the updated network's training loss; what a neuron
observes (the table above); the action as a weight change scaled by ``action_scale`` in a
[-1, 1] box (what continuous-control learners expect); the sizes, T, N and sigma of the
defaults below (the draft gives none for student-teacher; for MNIST, a hidden width of
1,000 which the small digits do not need).

## Version History
v0: first release.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import ClassVar

import numpy as np
from gymnasium import spaces

from metaenvs.config import EnvConfig, check_choice, check_float, check_int
from metaenvs.core import BatchedCore, CoreState, StepResult, step_result
from metaenvs.games import _neurons_kernels as nk
from metaenvs.render import Canvas

TASKS = ("teacher", "digits")
ACTIVATIONS = ("relu", "tanh")
PERTURBATIONS = ("both", "node", "weight", "none")
DIGITS_FILE = "data/digits/digits.npz"
"""The digits (``images (1797, 8, 8)`` uint8 in 0..16, ``labels (1797,)``), from
scikit-learn 1.9.1's ``sklearn/datasets/data/digits.csv.gz``."""


@functools.lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as ``(pixels (1797, 64) uint8 in 0..16, labels (1797,) int64)``.

    The data scikit-learn's ``load_digits`` returns (the UCI optical recognition of
    handwritten digits test set, E. Alpaydin and C. Kaynak, 1998, CC BY 4.0), shipped in
    metaenvs so that the env needs no scikit-learn.
    """
    with resources.files("metaenvs").joinpath(DIGITS_FILE).open("rb") as f:
        data = np.load(f)
        images, labels = data["images"], data["labels"]
    return images.reshape(len(images), -1), labels.astype(np.int64)


def digits_splits(
    pca: int | None, test_fraction: float, data_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Training and test inputs and one-hot targets of the digits task, as the core uses them.

    Parameters
    ----------
    pca : int or None
        Project on this many principal components of the training split (whitened), or
        None for the pixels over 16.
    test_fraction : float
        Share of the 1,797 images in the test split.
    data_seed : int
        Seed of the permutation that splits them.

    Returns
    -------
    train_x, train_y, test_x, test_y : np.ndarray
        float64 inputs ``(n, R_0)`` and one-hot targets ``(n, 10)``.
    explained : float
        Share of the training inputs' variance the components keep (1 without PCA).
    """
    pixels, labels = load_digits()
    x = pixels.astype(np.float64) / 16.0
    order = np.random.default_rng(data_seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    explained = 1.0
    if pca is not None:
        mean = x[train].mean(axis=0)
        _, sv, vt = np.linalg.svd(x[train] - mean, full_matrices=False)
        scale = sv[:pca] / np.sqrt(len(train))
        x = (x - mean) @ vt[:pca].T / scale
        explained = float((sv[:pca] ** 2).sum() / (sv**2).sum())
    one_hot = np.eye(10)[labels]
    return x[train], one_hot[train], x[test], one_hot[test], explained


@dataclasses.dataclass(frozen=True)
class NeuronsConfig(EnvConfig):
    """Configuration of the neurons-as-agents env."""

    task: str = "teacher"
    """``"teacher"`` (student-teacher regression, MSE) or ``"digits"`` (classification,
    cross-entropy)."""
    hidden: tuple[int, ...] = (32,)
    """Widths of the student's hidden layers R_1 .. R_{L-1}."""
    n_inputs: int = 16
    """R_0 of the student-teacher task (digits: 64, or ``pca``)."""
    n_outputs: int = 4
    """R_L of the student-teacher task (digits: 10 classes)."""
    teacher_hidden: tuple[int, ...] | None = None
    """Hidden widths of the teacher (same depth as the student; None: the student's)."""
    activation: str = "relu"
    """Hidden units' non-linearity, ``"relu"`` (the draft's example) or ``"tanh"``."""
    batch_size: int = 32
    """Samples per minibatch (the draft's N)."""
    horizon: int = 200
    """Updates per episode (T), one inner training run."""
    sigma: float = 1e-3
    """Standard deviation of the node and weight perturbations."""
    perturb: str = "both"
    """Perturbations drawn at every update: ``"both"``, ``"node"``, ``"weight"`` or
    ``"none"`` (the other's observation columns are 0; each costs a forward pass)."""
    action_scale: float = 0.1
    """Weight change of an action of 1 (the box is [-1, 1])."""
    init_scale: float = 1.0
    """Student weights ``N(0, init_scale^2 / fan_in)``."""
    pca: int | None = None
    """Digits only: project on this many whitened principal components (None: pixels)."""
    test_fraction: float = 0.3
    """Digits only: share of the images held out."""
    data_seed: int = 0
    """Digits only: seed of the fixed train/test split."""
    n_eval: int = 500
    """Student-teacher only: held-out inputs of the test loss."""

    def __post_init__(self) -> None:
        check_choice("task", self.task, TASKS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("perturb", self.perturb, PERTURBATIONS)
        for name in ("hidden", "teacher_hidden"):
            value = getattr(self, name)
            if value is None and name == "teacher_hidden":
                continue
            if isinstance(value, (int, np.integer)):
                value = (value,)
            value = tuple(check_int(f"{name}[{k}]", v, 1) for k, v in enumerate(value))
            object.__setattr__(self, name, value)
        if self.teacher_hidden is not None and len(self.teacher_hidden) != len(self.hidden):
            raise ValueError(
                f"teacher_hidden {self.teacher_hidden} must have as many layers as hidden "
                f"{self.hidden}"
            )
        for name in ("n_inputs", "n_outputs", "batch_size", "horizon", "n_eval"):
            check_int(name, getattr(self, name), 1)
        check_int("data_seed", self.data_seed, 0)
        for name in ("sigma", "action_scale", "init_scale"):
            check_float(name, getattr(self, name))
        check_float("test_fraction", self.test_fraction)
        if self.test_fraction >= 1.0:
            raise ValueError(f"test_fraction must be below 1, got {self.test_fraction}")
        if self.pca is not None:
            check_int("pca", self.pca, 1)
            if self.pca > 64:
                raise ValueError(f"pca must be at most 64 (the digits' pixels), got {self.pca}")
            if self.task != "digits":
                raise ValueError("pca applies to the digits task only")

    @property
    def sizes(self) -> tuple[int, ...]:
        """The student's layer sizes ``(R_0, ..., R_L)``."""
        if self.task == "digits":
            return (self.pca or 64, *self.hidden, 10)
        return (self.n_inputs, *self.hidden, self.n_outputs)

    @property
    def teacher_sizes(self) -> tuple[int, ...]:
        """The teacher's layer sizes (student-teacher; ``()`` on digits)."""
        if self.task == "digits":
            return ()
        return (self.n_inputs, *(self.teacher_hidden or self.hidden), self.n_outputs)


def _offsets(sizes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Weight offsets ``(L+1,)`` and activation offsets ``(L+2,)`` of a layer-size list."""
    if not sizes:
        return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    s = np.asarray(sizes, dtype=np.int64)
    woff = np.concatenate([[0], np.cumsum(s[1:] * s[:-1])]).astype(np.int64)
    aoff = np.concatenate([[0], np.cumsum(s)]).astype(np.int64)
    return woff, aoff


@dataclasses.dataclass
class NeuronsState(CoreState):
    """Batched state of B inner training runs; shapes in :mod:`metaenvs.games._neurons_kernels`."""

    eval_rng: np.ndarray
    weights: np.ndarray
    """``(B, P)`` float64, the student's weights, ``W_l`` transposed layer after layer (row i
    of ``W_l^T``, neuron i's outgoing weights, contiguous); ``core.layer_weights`` gives
    the ``W_l``."""
    teacher: np.ndarray
    x: np.ndarray
    """``(B, N, R_0)`` float64, the current minibatch's inputs."""
    y: np.ndarray
    """``(B, N, R_L)`` float64, its targets (teacher outputs or one-hot labels)."""
    loss: np.ndarray
    """``(B,)`` float64, the clean loss E on the current minibatch."""
    test_loss: np.ndarray
    test_accuracy: np.ndarray


class NeuronsCore(BatchedCore):
    """B networks trained by their neurons (see the module docstring for the spec)."""

    config_cls = NeuronsConfig
    config: NeuronsConfig
    min_parallel = 64
    reward_description: ClassVar[str] = "minus the loss after the update (shared)"

    def __init__(self, config: NeuronsConfig) -> None:
        super().__init__(config)
        sizes = config.sizes
        self.sizes = sizes
        """Layer sizes ``(R_0, ..., R_L)``."""
        n_layers = len(sizes) - 1
        woff, aoff = _offsets(sizes)
        twoff, taoff = _offsets(config.teacher_sizes)
        agent_layer = np.repeat(np.arange(n_layers), sizes[:-1]).astype(np.int64)
        agent_unit = np.concatenate([np.arange(r) for r in sizes[:-1]]).astype(np.int64)
        self.net = nk.Net(
            np.asarray(sizes, dtype=np.int64), woff, aoff, agent_layer, agent_unit,
            np.asarray(config.teacher_sizes or (0,), dtype=np.int64), twoff, taoff,
        )  # fmt: skip
        self.n_weights = int(woff[-1])
        """P, the student's weights."""
        self.width = max(sizes[1:])
        """D, the action width (the largest fan-out)."""
        self.explained_variance = 1.0
        """Digits with ``pca``: share of the training inputs' variance kept."""
        if config.task == "digits":
            *arrays, self.explained_variance = digits_splits(
                config.pca, config.test_fraction, config.data_seed
            )
            self.data = nk.Data(*arrays)
        else:
            empty_x, empty_y = np.zeros((0, sizes[0])), np.zeros((0, sizes[-1]))
            self.data = nk.Data(empty_x, empty_y, empty_x, empty_y)
        self.par = nk.Params(
            config.horizon, config.sigma, config.action_scale, config.init_scale,
            config.activation == "relu", config.task == "digits",
            config.perturb in ("both", "node"), config.perturb in ("both", "weight"),
            config.n_eval,
        )  # fmt: skip
        self.obs_slices = nk.obs_layout(n_layers, self.width)
        """Columns of an observation by name (see the module docstring)."""
        dim = n_layers + 6 + 4 * self.width
        low = np.full(dim, -np.inf, dtype=np.float32)
        high = np.full(dim, np.inf, dtype=np.float32)
        for name in ("layer", "progress", "mask"):
            low[self.obs_slices[name]], high[self.obs_slices[name]] = 0.0, 1.0
        low[self.obs_slices["loss"]] = 0.0
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.width,), dtype=np.float32)
        self._agents = tuple(f"neuron_{lay}_{i}" for lay, i in zip(agent_layer, agent_unit))

    @property
    def agent_names(self) -> tuple[str, ...]:
        """``neuron_<l>_<i>`` for neuron i of layer l, layer by layer."""
        return self._agents

    def describe(self) -> dict[str, str]:
        """:meth:`BatchedCore.describe` plus the network and the task."""
        out = super().describe()
        c = self.config
        out["network"] = (
            f"{' -> '.join(map(str, self.sizes))} ({c.activation} hidden, linear output, "
            f"no biases), {self.n_weights} weights"
        )
        out["task"] = (
            f"{c.task}, minibatch {c.batch_size}, {c.horizon} updates, perturb {c.perturb} "
            f"(sigma {c.sigma})"
        )
        return out

    # -- dynamics --------------------------------------------------------------------------
    def _init_state(self, batch: int, rng: np.ndarray) -> NeuronsState:
        c = self.config
        state = NeuronsState(
            t=np.zeros(batch, dtype=np.int64),
            rng=rng,
            eval_rng=np.zeros(batch, dtype=np.uint64),
            weights=np.zeros((batch, self.n_weights)),
            teacher=np.zeros((batch, int(self.net.twoff[-1]))),
            x=np.zeros((batch, c.batch_size, self.sizes[0])),
            y=np.zeros((batch, c.batch_size, self.sizes[-1])),
            loss=np.zeros(batch),
            test_loss=np.zeros(batch),
            test_accuracy=np.zeros(batch),
            **self.output_buffers(batch),
        )
        args = (
            state.t, state.rng, state.eval_rng, state.weights, state.teacher, state.x,
            state.y, state.loss, state.obs, self.net, self.data, self.par,
        )  # fmt: skip
        self.step_copies(nk.reset_neurons, args, batch)
        return state

    def _step(self, state: NeuronsState, actions: np.ndarray) -> StepResult:
        args = (
            state.t, state.rng, state.eval_rng, state.weights, state.teacher, state.x,
            state.y, state.loss, state.obs, state.reward, state.terminated, state.truncated,
            state.final_obs, state.test_loss, state.test_accuracy, actions, self.net,
            self.data, self.par,
        )  # fmt: skip
        self.step_copies(nk.step_neurons, args, state.batch)
        info = {"loss": state.loss, "test_loss": state.test_loss}
        if self.par.classify:
            info["test_accuracy"] = state.test_accuracy
        return step_result(
            state.obs, state.reward, state.terminated, state.truncated, state.final_obs, info
        )

    # -- what learning rules and analyses read ---------------------------------------------
    def gradients(self, state: NeuronsState) -> np.ndarray:
        """``(B, K, D)`` float64: dE/dW_l[:, i] for every agent (neuron i of layer l), by
        backpropagation on the current minibatch (the one its observation describes);
        zero past the agent's fan-out.  What SGD needs and no neuron observes."""
        out = np.empty((state.batch, self.n_agents, self.width))
        args = (state.weights, state.x, state.y, self.net, self.par, out)
        self.step_copies(nk.gradients_neurons, args, state.batch)
        return out

    def redraw_perturbations(self, state: NeuronsState) -> np.ndarray:
        """Draw new perturbations on the current weights and minibatch and rewrite the
        observations (returned, the state's buffer); nothing else changes but the copies'
        streams.  For estimating expectations over the perturbations."""
        args = (
            state.t, state.rng, state.weights, state.x, state.y, state.loss, state.obs,
            self.net, self.par,
        )  # fmt: skip
        self.step_copies(nk.redraw_neurons, args, state.batch)
        return state.obs

    def evaluate(self, state: NeuronsState) -> dict[str, np.ndarray]:
        """Held-out loss ``(B,)`` of every copy's current network (and accuracy on digits):
        the test split, or the episode's own ``n_eval`` held-out teacher inputs (the same
        ones at every call within an episode; the trajectory is not changed)."""
        loss, accuracy = np.empty(state.batch), np.empty(state.batch)
        args = (
            state.eval_rng, state.weights, state.teacher, state.x, self.net, self.data,
            self.par, loss, accuracy,
        )  # fmt: skip
        self.step_copies(nk.evaluate_neurons, args, state.batch)
        out = {"test_loss": loss}
        if self.par.classify:
            out["test_accuracy"] = accuracy
        return out

    def layer_weights(self, state: NeuronsState, index: int = 0) -> list[np.ndarray]:
        """Copy ``index``'s weights as the draft's matrices ``W_l (R_{l+1}, R_l)`` (views of
        ``state.weights``, transposed: writing to them changes the state)."""
        w, woff, s = state.weights[index], self.net.woff, self.sizes
        return [
            w[woff[lay] : woff[lay + 1]].reshape(s[lay], s[lay + 1]).T for lay in range(len(s) - 1)
        ]

    def weight_changes(self, deltas: np.ndarray) -> np.ndarray:
        """Actions that make the weight changes ``deltas (B, K, D)`` (``W_l[:, i]`` of each
        agent), clipped to the box: ``clip(deltas / action_scale, -1, 1)`` as float32."""
        return np.clip(deltas / self.config.action_scale, -1.0, 1.0).astype(np.float32)

    # -- rendering -------------------------------------------------------------------------
    render_size: ClassVar[tuple[int, int]] = (300, 420)
    """(height, width) of a picture."""

    def render_copy(self, state: NeuronsState, index: int = 0) -> np.ndarray:
        """Copy ``index``'s network: a column of neurons per layer (agents as discs, shaded
        by their mean activity; outputs as squares), every weight a line, blue positive
        and red negative, darker the larger; a bar of the episode's progress on top and
        one of the loss (relative to its start of 1 on a log scale: shorter is better)."""
        height, width = self.render_size
        canvas = Canvas(height, width, background=(248, 248, 244))
        sizes, top, pad = self.sizes, 30, 12
        progress = float(state.t[index]) / self.config.horizon
        canvas.rect(6, pad, 6, int((width - 2 * pad) * progress), (160, 160, 160))
        loss = float(state.loss[index])
        bar = np.clip((np.log10(max(loss, 1e-6)) + 4.0) / 6.0, 0.0, 1.0)
        canvas.rect(16, pad, 6, int((width - 2 * pad) * bar), (230, 150, 60))
        xs = np.linspace(pad + 10, width - pad - 10, len(sizes))

        def ys(r: int) -> np.ndarray:
            return top + (np.arange(r) + 0.5) * (height - top - pad) / r

        weights = self.layer_weights(state, index)
        biggest = max(float(np.abs(w).max()) for w in weights) or 1.0
        for lay, w in enumerate(weights):
            y0, y1 = ys(sizes[lay]), ys(sizes[lay + 1])
            for j, i in zip(*np.nonzero(np.abs(w) > 0.05 * biggest)):
                shade = float(np.clip(abs(w[j, i]) / biggest, 0.0, 1.0))
                light = int(235 - 200 * shade)
                colour = (light, light, 235) if w[j, i] > 0 else (235, light, light)
                canvas.line(y0[i], xs[lay], y1[j], xs[lay + 1], colour, width=1)
        obs = state.obs[index]
        mean = obs[:, self.obs_slices["activity_mean"]][:, 0]
        scale = float(np.abs(mean).max()) or 1.0
        k = 0
        for lay, r in enumerate(sizes):
            radius = max(1.5, min(6.0, 0.4 * (height - top - pad) / r))
            for cy in ys(r):
                if lay < len(sizes) - 1:
                    g = int(220 - 180 * min(abs(float(mean[k])) / scale, 1.0))
                    canvas.disc(cy, xs[lay], radius, (g, g, g))
                    k += 1
                else:
                    size = int(2 * radius)
                    canvas.rect(
                        int(cy) - size // 2, int(xs[lay]) - size // 2, size, size, (60, 60, 60)
                    )
        return canvas.image
