"""Size of an MNMPG / QMIX checkpoint with a full replay, packed and raw.

The replay dominates a checkpoint (5000 episodes of up to the map's time limit, with
observations, states and masks of every agent).  This fills a replay with real episodes
of the untrained learner (epsilon = 1, as at the start of training), writes the learner's
checkpoint, and extrapolates linearly to a full buffer (``--episodes`` is a sample)::

    python benchmarks/checkpoint_size.py --map 2s3z --episodes 640
"""

from __future__ import annotations

import argparse
import io
import time

import torch

from baselines.mnmpg.learner import MixArgs, MixingLearner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map", default="2s3z")
    parser.add_argument("--episodes", type=int, default=640, help="episodes sampled")
    ns = parser.parse_args()
    args = MixArgs(method="qmix", map_name=ns.map, seed=0)
    learner = MixingLearner(args)
    while len(learner.replay) < ns.episodes:
        learner.replay.add(learner.gather(epsilon=1.0))
    raw = sum(
        (b.numpy() if isinstance(b, torch.Tensor) else b)[: len(learner.replay)].nbytes
        for b in learner.replay.store.values()
    )
    tick = time.perf_counter()
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    save_s = time.perf_counter() - tick
    packed = buffer.getbuffer().nbytes
    scale = args.buffer_size / len(learner.replay)
    print(f"map {ns.map}: {len(learner.replay)} episodes in the replay")
    print(f"replay arrays raw: {raw / 2**20:.1f} MiB; checkpoint: {packed / 2**20:.1f} MiB "
          f"(packed in {save_s:.2f} s)")  # fmt: skip
    print(f"full buffer of {args.buffer_size} episodes: raw {raw * scale / 2**20:.0f} MiB, "
          f"checkpoint ~{packed * scale / 2**20:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
