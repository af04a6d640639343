"""Numba kernels of the communication-topology wrapper: rule masks, requests, observations.

Shapes: B copies, N agents, d neighbour slots, D the inner observation size.
"""

from __future__ import annotations

import numpy as np
from numba import njit

RULE_NONE = 0
RULE_FULL = 1
RULE_K_NEAREST = 2
RULE_RADIUS = 3


@njit(cache=True)
def select_by_rule(
    ids: np.ndarray, rel: np.ndarray, rule: int, k: int, radius: float, mask: np.ndarray
) -> None:
    """Write a fixed topology's requests ``mask (B, N, d)`` from the neighbour structure.

    ``ids (B, N, d)`` are neighbour agent slots (-1: empty slot), ``rel (B, N, d, 2)``
    their positions relative to the agent.  ``k_nearest`` takes the ``k`` closest filled
    slots (ties go to the lower slot), ``radius`` those within ``radius``.
    """
    n_b, n, d = ids.shape
    dist = np.empty(d)
    for b in range(n_b):
        for i in range(n):
            for s in range(d):
                filled = ids[b, i, s] >= 0
                dist[s] = np.sqrt(rel[b, i, s, 0] ** 2 + rel[b, i, s, 1] ** 2) if filled else np.inf
                if rule == RULE_NONE:
                    mask[b, i, s] = False
                elif rule == RULE_FULL:
                    mask[b, i, s] = filled
                elif rule == RULE_RADIUS:
                    mask[b, i, s] = filled and dist[s] <= radius
            if rule == RULE_K_NEAREST:
                for s in range(d):
                    rank = 0
                    for q in range(d):
                        if dist[q] < dist[s] or (dist[q] == dist[s] and q < s):
                            rank += 1
                    mask[b, i, s] = rank < k and dist[s] < np.inf


@njit(cache=True)
def send(
    obs: np.ndarray,
    ids: np.ndarray,
    mask: np.ndarray,
    sent: np.ndarray,
    sent_ids: np.ndarray,
    messages: np.ndarray,
) -> None:
    """Answer the requests: copy the observations of the requested neighbours.

    ``obs (B, N, D)`` are the observations the neighbours send; ``mask (B, N, d)`` the
    requests.  Writes ``sent (B, N, d, D)`` (zeros in slots without a message),
    ``sent_ids (B, N, d)`` (the sender, -1 without a message) and ``messages (B, N)``
    (messages each agent receives).  A request to an empty slot sends nothing.
    """
    n_b, n, d = ids.shape
    for b in range(n_b):
        for i in range(n):
            count = 0
            for s in range(d):
                j = ids[b, i, s]
                if mask[b, i, s] and j >= 0:
                    sent[b, i, s] = obs[b, j]
                    sent_ids[b, i, s] = j
                    count += 1
                else:
                    sent[b, i, s] = 0.0
                    sent_ids[b, i, s] = -1
            messages[b, i] = count


@njit(cache=True)
def observe(
    obs: np.ndarray,
    sent: np.ndarray,
    sent_ids: np.ndarray,
    keep: np.ndarray,
    phase: int,
    out: np.ndarray,
) -> None:
    """Write the wrapped observations ``out (B, N, F)``.

    Row layout: own observation (D), received observations (d x D), validity (d),
    sender ids (d, -1 when empty) and, when ``phase >= 0``, the phase flag.  Copies with
    ``keep[b]`` False get an empty received block (a new episode has no messages yet).
    """
    n_b, n, d, n_d = sent.shape
    for b in range(n_b):
        for i in range(n):
            out[b, i, :n_d] = obs[b, i]
            col = n_d
            for s in range(d):
                has = keep[b] and sent_ids[b, i, s] >= 0
                for c in range(n_d):
                    out[b, i, col + c] = sent[b, i, s, c] if has else 0.0
                col += n_d
            for s in range(d):
                has = keep[b] and sent_ids[b, i, s] >= 0
                out[b, i, col + s] = 1.0 if has else 0.0
                out[b, i, col + d + s] = sent_ids[b, i, s] if has else -1.0
            if phase >= 0:
                out[b, i, col + 2 * d] = phase
