"""The timing loop of the peer scripts (``_*_peer.py``): standard library only, as they run
in the peers' own interpreters.  Imported as a sibling module (the scripts' folder is on
``sys.path`` when they run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def measure(
    run: Callable[[int], float], batch: int, n_agents: int, seconds: float, repeats: int
) -> dict[str, Any]:
    """Grow the step count until ``run(n)`` lasts a tenth of ``seconds``, scale it to about
    ``seconds``, then keep the best of ``repeats`` runs: the rates of one result row."""
    n, elapsed = 1, run(1)
    while elapsed < seconds / 10:
        n *= 4
        elapsed = run(n)
    steps = max(1, int(n * seconds / max(elapsed, 1e-9)))
    best = min(run(steps) for _ in range(repeats))
    return {
        "batch": batch,
        "n_agents": n_agents,
        "steps": steps,
        "seconds": best,
        "copy_steps_per_s": batch * steps / best,
        "agent_steps_per_s": batch * steps * n_agents / best,
    }
