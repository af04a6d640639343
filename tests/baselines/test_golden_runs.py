"""Short experiment runs reproduce the metrics recorded before a refactor, for one seed.

``tests/data/golden_runs`` holds ``metrics.csv`` (and the peers' ``test.json``) of short
runs made by the runners before the experiment framework of issue 15 (peers and comm at
commit aa377dc; mnmpg regenerated for issue 16: Skirmish v1 and PyMARL's TD ratio; peers
for issue 17: the faster LSTM's reordered float operations, within 1e-5 of before; comm
``meta`` for issue 18: Algorithm 1's one communication update per episode and the clip of
every communication update; comm ``none`` is unchanged by issue 18's speed work), with
the commands below.  The peers run pins ``--outer-optimizer adam``, PyTorch's Adam that
made its files (and the documented results), since the learner's default became the
authors' ``SharedAdam``: the files stay as they were, and "adam" is checked to reproduce
them (to rel 1e-12).  Any change to a runner, learner or env that alters a learning curve
for a fixed seed fails here; regenerate the files only for an intended change of results,
and say so in the commit.
"""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_runs"
TIMING = {"wall_s", "test_s"}
"""Columns and keys that measure time (with every ``*_per_s`` rate): not compared."""


def untimed(keys) -> set[str]:
    return {k for k in keys if k not in TIMING and not k.endswith("_per_s")}


def rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]


def same(a: float, b: float, rel: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def compare_tree(out: Path, golden: Path, rel: float) -> None:
    files = sorted(p.relative_to(golden) for p in golden.rglob("*") if p.is_file())
    assert files, "no golden files"
    for name in files:
        if name.suffix == ".csv":
            got, want = rows(out / name), rows(golden / name)
            assert len(got) == len(want) and want[0].keys() <= got[0].keys(), name
            for i, (g, w) in enumerate(zip(got, want)):
                for key in untimed(w.keys()):
                    assert same(g[key], w[key], rel), f"{name} row {i} {key}: {g[key]} != {w[key]}"
        else:
            got, want = (
                json.loads((out / name).read_text()),
                json.loads((golden / name).read_text()),
            )
            for key in untimed(want.keys()):
                flat_got, flat_want = _flat(got[key]), _flat(want[key])
                if all(isinstance(x, (int, float)) for x in flat_want):
                    a, b = np.asarray(flat_got, float), np.asarray(flat_want, float)
                    assert a.shape == b.shape and np.allclose(a, b, rtol=rel, atol=1e-9), key
                else:
                    assert got[key] == want[key], f"{name} {key}"


def _flat(value):
    """Nested lists and dicts of numbers as one flat list (dicts by sorted key)."""
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _flat(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _flat(v)]
    return [value]


def test_peers_runs_reproduce_their_golden_metrics(tmp_path):
    from baselines.peers.experiment import main

    assert main(["train", "--game", "ipd", "--methods", "meta_mapg", "reinforce", "--seeds", "0",
                 "--iterations", "3", "--eval-every", "1", "--out", str(tmp_path), "--no-progress",
                 "--k", "2", "--horizon", "4", "--length", "1", "--chains", "2",
                 "--actor-lr", "0.05", "--critic-lr", "0.05",
                 "--outer-optimizer", "adam"]) == 0  # fmt: skip
    compare_tree(tmp_path, GOLDEN / "peers", rel=1e-12)


def test_comm_runs_reproduce_their_golden_metrics(tmp_path):
    from baselines.comm.experiment import main

    assert main(["train", "--env", "navigation_N3_l3", "--methods", "meta", "none", "--seeds", "0",
                 "--episodes", "48", "--eval-every", "16", "--out", str(tmp_path), "--no-progress",
                 "--envs", "8", "--eval-episodes", "4", "--warmup-episodes", "8"]) == 0  # fmt: skip
    # torch's float sums may differ in the last bits between runs (see test_comm_learners)
    compare_tree(tmp_path, GOLDEN / "comm", rel=1e-5)


def test_mnmpg_runs_reproduce_their_golden_metrics(tmp_path):
    from baselines.mnmpg.experiment import main

    assert main(["train", "--map", "3m", "--methods", "qmix", "mnmpg", "--seeds", "0",
                 "--env-steps", "600", "--eval-every", "200", "--eval-episodes", "4",
                 "--out", str(tmp_path), "--no-progress", "--n-envs", "4", "--batch-size", "4",
                 "--meta-interval", "8", "--epsilon-anneal-steps", "400"]) == 0  # fmt: skip
    compare_tree(tmp_path, GOLDEN / "mnmpg", rel=1e-5)
