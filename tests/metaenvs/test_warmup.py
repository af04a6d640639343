"""``metaenvs warmup`` (``metaenvs.warmup``): what it compiles is what a later process loads.

No test asserts on time.  The fresh-process tests point Numba at an empty cache folder
(``NUMBA_CACHE_DIR``) and use the matrix games, the cheapest family to compile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import pytest

import metaenvs
from metaenvs.cli import main
from metaenvs.registry import UnknownEnvError
from metaenvs.warmup import (
    KEYWORD_VARIANTS,
    WarmupTask,
    compile_log,
    core_tasks,
    kernel_group,
    plugin_tasks,
    variants,
    warmup,
)

# every face of the game, as a user's first script would use it; prints what compiled
USE_IPD = """
import json, numpy as np, metaenvs
from metaenvs.warmup import compile_log
with compile_log() as log:
    core = metaenvs.make_core("ipd")
    for batch in (1, 4096):
        state = core.reset(batch, 0)
        core.global_state(state)
        for _ in range(3):
            core.step(state, np.ones((batch, 2), dtype=np.int64))
    env = metaenvs.make("ipd")
    env.reset(seed=0)
    env.step({a: 0 for a in env.agents})
    venv = metaenvs.make_vec("ipd", num_envs=8)
    venv.reset(seed=0)
    venv.step(np.zeros((8, 2), dtype=np.int64))
print(json.dumps(log.signatures))
"""


def _python(code: str, cache_dir, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_after_warmup_of_an_id_a_fresh_process_using_it_compiles_nothing(tmp_path):
    cold = json.loads(_python(USE_IPD, tmp_path / "cold").stdout.splitlines()[-1])
    assert any("step_matrix_game" in s for s in cold), "an empty cache must compile"
    warm_up = "import sys; from metaenvs.cli import main; sys.exit(main(sys.argv[1:]))"
    out = _python(warm_up, tmp_path / "warm", "warmup", "ipd", "--no-plugins")
    assert "compiled" in out.stdout
    assert json.loads(_python(USE_IPD, tmp_path / "warm").stdout.splitlines()[-1]) == []


def test_a_task_run_twice_in_a_process_compiles_nothing_the_second_time():
    warmup(["rps"], plugins=False)
    with compile_log() as log:
        results = warmup(["rps"], plugins=False)
    assert log.signatures == [] and [r.status for r in results] == ["cached"]
    assert warmup(["rps"], plugins=False, again=False) == []


def test_unknown_id_raises_before_anything_runs():
    with pytest.raises(UnknownEnvError, match="Did you mean 'ipd'"):
        warmup(["ipd", "ipdd"])


def test_cli_warmup_prints_a_row_per_task_and_rejects_unknown_ids(capsys):
    assert main(["warmup", "ipd", "rps", "--no-plugins"]) == 0
    out = capsys.readouterr().out
    assert "ipd-v0, rps-v0" in out
    rows = [line for line in out.splitlines() if line.startswith("matrix ")]
    assert len(rows) == 1 and " s  " in rows[0]  # one row: the two ids share kernels
    assert out.splitlines()[-1].startswith("total")
    assert main(["warmup", "ipd", "no_such_game"]) == 2
    err = capsys.readouterr().err
    assert "metaenvs warmup: error: unknown environment id 'no_such_game'" in err


def test_rows_group_the_ids_that_share_kernels():
    specs = [metaenvs.spec(i) for i in ("ipd", "rps_3p", "navigation_N3_l3", "skirmish_3m")]
    assert [t.name for t in core_tasks(specs)] == ["matrix", "navigation", "skirmish"]
    assert kernel_group(metaenvs.spec("skirmish_8m")) == kernel_group(metaenvs.spec("skirmish"))


def test_variants_cover_every_action_type_and_prey_an_id_accepts():
    assert variants(metaenvs.spec("ipd")) == [{}]
    nav = variants(metaenvs.spec("navigation_N3_l3"))
    assert {kw.get("continuous_actions") for kw in nav} == {None, False, True}
    prey = variants(metaenvs.spec("predator_prey_N3_M1_l3"))
    assert {"continuous_actions": True, "prey": "pretrained"} in prey
    assert {"continuous_actions": False, "prey": "agents"} in prey
    # no pretrained prey for this size: the variant is left out, not an error
    other = variants(metaenvs.spec("predator_prey_dimapg_12v4"))
    assert all(kw.get("prey") != "pretrained" for kw in other)
    assert set(KEYWORD_VARIANTS) == {"continuous_actions", "prey"}


def test_the_wrappers_add_their_tasks_through_the_entry_point():
    """``meta_wrappers`` is found through the group ``metaenvs.warmup`` (it must be
    installed: ``pip install -e .``), so ``metaenvs`` never imports it."""
    names = [t.name for t in plugin_tasks([metaenvs.spec("navigation_N3_l3")])]
    assert names == ["comm (navigation)"]
    names = [t.name for t in plugin_tasks([metaenvs.spec("ipd"), metaenvs.spec("rps")])]
    assert names == ["peers (ipd, rps)"]


def test_a_failing_plugin_is_skipped_with_a_warning(monkeypatch):
    class Broken:
        name, value = "broken", "nowhere:tasks"

        def load(self):
            raise ImportError("no module named nowhere")

    class Fine:
        name, value = "fine", "here:tasks"

        def load(self):
            return lambda specs: [WarmupTask("fine", lambda: None)]

    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [Broken(), Fine()])
    with pytest.warns(RuntimeWarning, match="plugin broken"):
        assert [t.name for t in plugin_tasks([])] == ["fine"]


def test_compile_log_records_the_compiles_of_our_kernels_only():
    def ours(x):
        return x + 1

    def theirs(x):
        return x - 1

    ours.__module__ = "metaenvs._probe"  # a kernel of ours, never cached: always compiles
    with compile_log() as log:
        numba.njit(ours)(1)
        numba.njit(theirs)(1)
    assert log.signatures == [
        "metaenvs._probe.test_compile_log_records_the_compiles_of_our_"
        "kernels_only.<locals>.ours(int64)"
    ]
    assert log.seconds > 0
