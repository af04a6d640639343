"""Time OpenSpiel's C++ iterated prisoner's dilemma for bench_matrix.py; run in an env with
``open_spiel`` (``pip install open_spiel``).

Usage: ``python _openspiel_peer.py '{"seconds": 0.5, "repeats": 3}'``; prints one JSON
result.  The game is ``repeated_game(stage_game=matrix_pd(),num_repetitions=150)`` (150
rounds, like ``ipd``), stepped through the state API from Python: per step one
``apply_actions`` of a joint action (cycling through 16 random ones) and ``rewards()``,
and a new initial state when an episode ends (inside the timed loop, as our faces reset).
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import sys
import time

import pyspiel
from _peer_timing import measure

GAME = "repeated_game(stage_game=matrix_pd(),num_repetitions=150)"


def main() -> None:
    spec = json.loads(sys.argv[1])
    game = pyspiel.load_game(GAME)
    rng = random.Random(0)
    joint = [[rng.randrange(2), rng.randrange(2)] for _ in range(16)]
    state = game.new_initial_state()

    def run(n: int) -> float:
        nonlocal state
        tick = time.perf_counter()
        for k in range(n):
            state.apply_actions(joint[k & 15])
            state.rewards()
            if state.is_terminal():
                state = game.new_initial_state()
        return time.perf_counter() - tick

    result = measure(run, 1, 2, spec["seconds"], spec["repeats"])
    result["game"] = GAME
    result["open_spiel"] = importlib.metadata.version("open_spiel")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
