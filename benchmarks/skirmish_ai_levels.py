"""Win and draw rates of Skirmish's built-in AIs against each other (docs/skirmish.md).

Our side is driven by an AI level too (``core.scripted_actions``), the enemy by the config's
``difficulty``; every battle is played to its end.  This measures the enemies, it asserts
nothing::

    python benchmarks/skirmish_ai_levels.py --battles 1000
"""

from __future__ import annotations

import argparse

import numpy as np

import metaenvs

MAPS = ("3m", "2s3z", "5m_vs_6m")
OURS = ("smac", "very_hard")
ENEMIES = ("smac", "very_hard", "hard", "medium", "easy")


def outcomes(map_name: str, ours: str, enemy: str, hit_order: str, battles: int, seed: int):
    """(win rate, draw rate) of our side over the first battle of ``battles`` copies."""
    core = metaenvs.make_core("skirmish", map_name=map_name, difficulty=enemy, hit_order=hit_order)
    state = core.reset(battles, seed)
    rng = np.random.default_rng(seed)
    done = np.zeros(battles, bool)
    won, draw = np.zeros(battles, bool), np.zeros(battles, bool)
    while not done.all():
        r = core.step(state, core.scripted_actions(state, ours, rng))
        new = ~done & (r.terminated | r.truncated)
        won |= new & r.info["battle_won"]
        draw |= new & r.info["battle_draw"]
        done |= new
    return won.mean(), draw.mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--battles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args()
    print(f"win rate (draw rate) of our side over {ns.battles} battles, hits in random order\n")
    print("| map | our AI | " + " | ".join(f"vs {e}" for e in ENEMIES) + " |")
    print("|---|---|" + "---:|" * len(ENEMIES))
    for map_name in MAPS:
        for ours in OURS:
            cells = []
            for enemy in ENEMIES:
                w, d = outcomes(map_name, ours, enemy, "random", ns.battles, ns.seed)
                cells.append(f"{w:.2f} ({d:.2f})")
            print(f"| {map_name} | {ours} | " + " | ".join(cells) + " |")
    print("\nthe same AI on both sides, hits simultaneous (v0) against random (v1):\n")
    print("| map | AI | simultaneous: win (draw) | random: win (draw) |")
    print("|---|---|---:|---:|")
    for map_name in MAPS[:2]:
        for ai in OURS:
            cells = [outcomes(map_name, ai, ai, h, ns.battles, ns.seed) for h in
                     ("simultaneous", "random")]  # fmt: skip
            print(f"| {map_name} | {ai} | " + " | ".join(f"{w:.2f} ({d:.2f})" for w, d in cells)
                  + " |")  # fmt: skip


if __name__ == "__main__":
    main()
