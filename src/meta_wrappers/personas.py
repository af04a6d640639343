"""Persona populations: the initial policies ``p(phi_0^-i)`` of learning peers.

Paper: meta-mapg-learning-peers, appendix E.  A persona is a tabular policy of an
iterated matrix game, ``probs[state, action]`` over the game's ``A**N + 1`` states.

- **IPD**: cooperating personas draw P(cooperate) uniformly from [0.5, 1] in every
  state, defecting ones from [0, 0.5]; 240 of each, 480 in all.
- **RPS** (2 to 4 players): rock, paper and scissors personas draw the preferred
  action's probability uniformly from [1/3, 1] in every state and split the rest
  uniformly between the two other actions, redrawn until the preferred one is the
  largest; 240 of each, 720 in all.

Splits are stratified by kind (every kind has the same share of each split):

- ``distribution="in"`` (the paper's Figure 3b): train / validation / test drawn at
  random, 400 / 40 / 40 (IPD) and 600 / 60 / 60 (RPS).
- ``distribution="out"`` (Figure 3c): within each kind the personas are ranked by the
  mean probability of their preferred action (IPD: cooperate for cooperating personas,
  defect for defecting ones) and the most extreme ones form the test split; train and
  validation are drawn at random from the rest.  Test personas therefore lie outside
  the training range of mean preference, with the same split sizes.

Everything is a pure function of the seed (NumPy's PCG64), so a population is
regenerated on demand instead of being stored; :meth:`Population.save` writes one to
an ``.npz`` file for tools that want the numbers.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
DISTRIBUTIONS = ("in", "out")
PROB_FLOOR = 1e-3
"""Probabilities are clipped to ``[PROB_FLOOR, 1 - PROB_FLOOR]`` before taking logits."""


@dataclasses.dataclass(frozen=True, eq=False)
class Population:
    """A persona population with its stratified splits.

    Attributes
    ----------
    game : str
        ``"ipd"``, ``"rps"``, ``"rps_3p"`` or ``"rps_4p"``.
    probs : np.ndarray
        ``(P, S, A)`` float64 action probabilities of the P personas.
    kinds : tuple of str
        Kind of each persona (``"cooperating"``, ``"defecting"``, ``"rock"``, ...).
    seed : int
        Seed the population was drawn from.
    split_ids : dict
        ``split_ids[distribution][split]`` is the sorted int64 array of persona ids.
    """

    game: str
    probs: np.ndarray
    kinds: tuple[str, ...]
    seed: int
    split_ids: dict[str, dict[str, np.ndarray]]

    def __len__(self) -> int:
        return self.probs.shape[0]

    @property
    def logits(self) -> np.ndarray:
        """``(P, S, A)`` log-probabilities, clipped at :data:`PROB_FLOOR`: the peers' parameters."""
        p = np.clip(self.probs, PROB_FLOOR, 1.0 - PROB_FLOOR)
        return np.log(p / p.sum(axis=-1, keepdims=True))

    def split(self, name: str, distribution: str = "in") -> np.ndarray:
        """Persona ids of split ``name`` (``"train"``, ``"val"``, ``"test"``, or ``"all"``).

        Raises
        ------
        ValueError
            For an unknown split or distribution.
        """
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if name == "all":
            return np.arange(len(self), dtype=np.int64)
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS + ('all',)}, got {name!r}")
        return self.split_ids[distribution][name]

    def mlp_params(self, hidden: int) -> np.ndarray:
        """``(P, D)`` parameters of small MLP peers fitted to the personas (cached).

        See :func:`fit_mlp_personas`; the fit is a pure function of the population.
        """
        return _fitted_mlps(self.game, self.seed, hidden)

    def save(self, path: str | Path) -> None:
        """Write probabilities, kinds and every split to an ``.npz`` file."""
        arrays = {"probs": self.probs, "kinds": np.array(self.kinds)}
        for dist, splits in self.split_ids.items():
            for name, ids in splits.items():
                arrays[f"{dist}_{name}"] = ids
        np.savez(path, **arrays)


def ipd_probs(rng: np.random.Generator, n_each: int, n_states: int = 5) -> np.ndarray:
    """``(2 n_each, S, 2)``: cooperating personas first, then defecting ones."""
    coop = rng.uniform(0.5, 1.0, size=(n_each, n_states))
    defect = rng.uniform(0.0, 0.5, size=(n_each, n_states))
    p_coop = np.concatenate([coop, defect])
    return np.stack([p_coop, 1.0 - p_coop], axis=-1)


def rps_probs(rng: np.random.Generator, n_each: int, n_states: int) -> np.ndarray:
    """``(3 n_each, S, 3)``: rock, paper, then scissors personas (module docstring)."""
    out = np.empty((3 * n_each, n_states, 3))
    for preferred in range(3):
        block = out[preferred * n_each : (preferred + 1) * n_each]
        todo = np.ones((n_each, n_states), dtype=bool)
        others = [a for a in range(3) if a != preferred]
        while todo.any():
            count = int(todo.sum())
            top = rng.uniform(1.0 / 3.0, 1.0, size=count)
            share = rng.uniform(0.0, 1.0, size=count)
            rest = 1.0 - top
            row = np.empty((count, 3))
            row[:, preferred] = top
            row[:, others[0]] = rest * share
            row[:, others[1]] = rest * (1.0 - share)
            block[todo] = row
            todo[todo] = row[:, others].max(axis=1) >= top
    return out


def _stratified_splits(
    rng: np.random.Generator, score: np.ndarray, kinds: np.ndarray, sizes: dict[str, int]
) -> dict[str, dict[str, np.ndarray]]:
    """In- and out-of-distribution splits, each kind contributing equal shares."""
    labels = np.unique(kinds)
    share = {name: size // len(labels) for name, size in sizes.items()}
    result: dict[str, dict[str, list[np.ndarray]]] = {
        d: {s: [] for s in SPLITS} for d in DISTRIBUTIONS
    }
    for label in labels:
        ids = np.flatnonzero(kinds == label)
        shuffled = rng.permutation(ids)
        start = 0
        for name in SPLITS:
            result["in"][name].append(shuffled[start : start + share[name]])
            start += share[name]
        # out of distribution: the most extreme preference is the test split
        by_score = ids[np.argsort(-score[ids], kind="stable")]
        test, rest = by_score[: share["test"]], rng.permutation(by_score[share["test"] :])
        result["out"]["test"].append(test)
        result["out"]["val"].append(rest[: share["val"]])
        result["out"]["train"].append(rest[share["val"] : share["val"] + share["train"]])
    return {
        d: {s: np.sort(np.concatenate(parts)).astype(np.int64) for s, parts in splits.items()}
        for d, splits in result.items()
    }


def make_population(game: str, seed: int = 0) -> Population:
    """The persona population of ``game`` drawn from ``seed`` (see the module docstring).

    Parameters
    ----------
    game : {"ipd", "rps", "rps_3p", "rps_4p"}
        The matrix game; N-player RPS personas are tables over that game's states.
    seed : int
        Seed of the draw and of the splits.

    Examples
    --------
    >>> pop = make_population("ipd")
    >>> pop.probs.shape, len(pop.split("train")), len(pop.split("test", "out"))
    ((480, 5, 2), 400, 40)
    """
    rng = np.random.default_rng(seed)
    if game == "ipd":
        probs = ipd_probs(rng, 240)
        kinds = np.repeat(["cooperating", "defecting"], 240)
        preferred = np.where(kinds == "cooperating", 0, 1)
        sizes = {"train": 400, "val": 40, "test": 40}
    elif game in ("rps", "rps_3p", "rps_4p"):
        n_players = {"rps": 2, "rps_3p": 3, "rps_4p": 4}[game]
        probs = rps_probs(rng, 240, 3**n_players + 1)
        kinds = np.repeat(["rock", "paper", "scissors"], 240)
        preferred = np.repeat([0, 1, 2], 240)
        sizes = {"train": 600, "val": 60, "test": 60}
    else:
        raise ValueError(f"no persona population for {game!r}; known: ipd, rps, rps_3p, rps_4p")
    score = probs[np.arange(len(probs)), :, preferred].mean(axis=1)
    probs.setflags(write=False)
    splits = _stratified_splits(rng, score, kinds, sizes)
    return Population(game, probs, tuple(kinds.tolist()), seed, splits)


def fit_mlp_personas(
    probs: np.ndarray, hidden: int, seed: int = 0, steps: int = 800, lr: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one tanh MLP per persona to its action probabilities (small neural peers).

    Minimises the mean over states of ``KL(probs[s] || softmax(tanh(W1[s] + b1) W2 + b2))``
    by full-batch Adam from a seeded initialisation, all personas at once.

    Parameters
    ----------
    probs : np.ndarray
        ``(P, S, A)`` persona probabilities.
    hidden : int
        Hidden units h.

    Returns
    -------
    params : np.ndarray
        ``(P, D)`` flattened ``[W1, b1, W2, b2]``, ``D = S h + h + h A + A``.
    kl : np.ndarray
        ``(P,)`` the mean KL divergence of each fit.
    """
    if hidden < 1:
        raise ValueError(f"hidden must be >= 1, got {hidden}")
    rng = np.random.default_rng(seed)
    n, n_states, n_actions = probs.shape
    target = np.clip(probs, PROB_FLOOR, 1.0)
    target = target / target.sum(-1, keepdims=True)
    weights = [
        rng.normal(0.0, 0.5, (n, n_states, hidden)),
        np.zeros((n, hidden)),
        rng.normal(0.0, 1.0 / np.sqrt(hidden), (n, hidden, n_actions)),
        np.log(target.mean(axis=1)),
    ]
    moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
    for step in range(1, steps + 1):
        w1, b1, w2, b2 = weights
        h = np.tanh(w1 + b1[:, None])  # (P, S, h)
        logits = h @ w2 + b2[:, None]
        q = np.exp(logits - logits.max(-1, keepdims=True))
        q /= q.sum(-1, keepdims=True)
        g_logits = (q - target) / n_states  # gradient of the mean cross-entropy
        g_w2 = np.swapaxes(h, 1, 2) @ g_logits
        g_b2 = g_logits.sum(1)
        g_z = (g_logits @ np.swapaxes(w2, 1, 2)) * (1.0 - h * h)
        grads = [g_z, g_z.sum(1), g_w2, g_b2]
        for w, g, (m, v) in zip(weights, grads, moments):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    w1, b1, w2, b2 = weights
    logits = np.tanh(w1 + b1[:, None]) @ w2 + b2[:, None]
    logq = logits - logits.max(-1, keepdims=True)
    logq -= np.log(np.exp(logq).sum(-1, keepdims=True))
    kl = (target * (np.log(target) - logq)).sum(-1).mean(-1)
    params = np.concatenate([w.reshape(n, -1) for w in weights], axis=1)
    return params, kl


@functools.lru_cache(maxsize=8)
def _fitted_mlps(game: str, seed: int, hidden: int) -> np.ndarray:
    params, _ = fit_mlp_personas(make_population(game, seed).probs, hidden, seed)
    params.setflags(write=False)
    return params
