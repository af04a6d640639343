"""The ``metaenvs`` command line (``metaenvs.cli``) and the timing library behind ``bench``.

No test asserts on speed: only on what is printed and on the shape of the results.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest

import metaenvs
from metaenvs import bench
from metaenvs.cli import main


def test_list_shows_every_registered_id_and_gymnasium_id(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for s in metaenvs.registered_specs():
        line = next((ln for ln in out.splitlines() if ln.startswith(s.id + " ")), None)
        assert line is not None, f"{s.id} missing from `metaenvs list`"
        assert f"metaenvs/{s.id}" in line
        assert s.description in line
    for name in ("ipd-v0", "rps-v0", "rps_3p-v0", "rps_4p-v0", "matrix_game-v0"):
        assert re.search(rf"^{name}\s", out, re.MULTILINE), name


def test_info_ipd_shows_spaces_keywords_and_gymnasium_ids(capsys):
    assert main(["info", "ipd"]) == 0
    out = capsys.readouterr().out
    core = metaenvs.make_core("ipd")
    assert out.startswith("ipd-v0: ")
    assert "player_0, player_1" in out
    assert f"observation space (per agent): {core.observation_space!r}" in out
    assert "Box(0.0, 1.0, (5,), float32)" in out
    assert "action space (per agent): Discrete(2)" in out
    assert "reward: " in out
    # the one keyword a user may pass, with the id's default, and its field docstring
    assert re.search(r"^\s+horizon = 150 \(id default", out, re.MULTILINE)
    assert "truncated" in out
    # payoffs are fixed by the id, so they are listed apart, not as a keyword
    keywords, _, fixed = out.partition("fixed by the id")
    assert "payoffs" not in keywords.split("keywords", 1)[1]
    assert "payoffs = ndarray (2, 2, 2)" in fixed
    assert "metaenvs/ipd-v0" in out
    for suffix in metaenvs.spec("ipd").views:
        assert f"metaenvs/ipd-{suffix}-v0" in out


def test_info_matrix_game_lists_config_defaults(capsys):
    assert main(["info", "matrix_game-v0"]) == 0
    out = capsys.readouterr().out
    for key in metaenvs.spec("matrix_game").keywords():
        assert re.search(rf"^\s+{key} = ", out, re.MULTILINE), key
    assert "fixed by the id" not in out


def test_info_unknown_id_exits_2_pointing_to_the_list(capsys):
    assert main(["info", "nosuch"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nosuch" in captured.err and "metaenvs list" in captured.err
    assert "skirmish_corridor" not in captured.err  # no wall of ids


def test_train_without_a_name_lists_the_experiments(capsys):
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    for name in ("comm", "mnmpg", "peers"):
        assert f"  {name} " in err
    assert "usage: metaenvs train NAME" in err


def test_train_help_lists_the_experiments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "experiments:" in out and "peers" in out and "mnmpg" in out


def test_info_suggests_close_id(capsys):
    assert main(["info", "ipdd"]) == 2
    assert "Did you mean 'ipd'" in capsys.readouterr().err


def test_bench_unknown_id_exits_2(capsys):
    assert main(["bench", "nosuch", "--steps", "5"]) == 2
    assert "unknown environment id 'nosuch'" in capsys.readouterr().err


def test_bench_reports_compile_time_and_steps_per_second(capsys):
    assert main(["bench", "ipd", "--batch", "1", "4", "--steps", "50", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^compile: \d+\.\d+ s", out, re.MULTILINE)
    assert "copy-steps/s" in out and "agent-steps/s" in out
    rows = {
        (m["face"], int(m["batch"])): m
        for m in re.finditer(
            r"^(?P<face>core|parallel|vector)\s+(?P<batch>\d+)\s+(?P<steps>\d+)\s+(?P<rate>\S+)",
            out,
            re.MULTILINE,
        )
    }
    assert set(rows) == {("core", 1), ("core", 4), ("parallel", 1), ("vector", 1)}
    assert all(int(m["steps"]) == 50 for m in rows.values())
    assert re.search(r"parallel \(PettingZoo\) \d+\.\d+x, vector \(Gymnasium\) \d+\.\d+x", out)


def test_bench_threads_and_contended_mode(capsys):
    argv = ["bench", "ipd", "--batch", "1", "--steps", "20", "--repeats", "1"]
    assert main([*argv, "--threads", "2", "--contended"]) == 0
    out = capsys.readouterr().out
    assert "threads: 2" in out
    assert "contended: a busy process" in out


def test_busy_process_lives_only_inside_its_block():
    with bench.busy_process() as proc:
        assert proc.poll() is None
    assert proc.returncode is not None
    with pytest.raises(KeyError):
        with bench.busy_process() as proc:
            raise KeyError("the block failed")
    assert proc.returncode is not None
    with bench.busy_process(False) as nothing:
        assert nothing is None


def test_bench_rejects_bad_batch():
    with pytest.raises(SystemExit) as exc:
        main(["bench", "ipd", "--batch", "0"])
    assert exc.value.code == 2


@pytest.mark.parametrize("env_id", ["ipd", "rps_3p"])
def test_time_core_counts_copy_and_agent_steps(env_id):
    r = bench.time_core(env_id, batch=8, timing=bench.Timing(steps=20, repeats=3))
    n = metaenvs.make_core(env_id).n_agents
    assert (r["face"], r["batch"], r["steps"], r["n_agents"]) == ("core", 8, 20, n)
    assert r["compile_s"] >= 0
    assert r["seconds"] <= r["seconds_median"]
    assert math.isclose(r["copy_steps_per_s"], 8 * 20 / r["seconds"])
    assert math.isclose(r["agent_steps_per_s"], n * r["copy_steps_per_s"])


def test_faces_and_calibration():
    # 120 steps cross two episode ends
    p = bench.time_parallel_face("rps", timing=bench.Timing(steps=120, repeats=2))
    assert (p["face"], p["batch"], p["steps"]) == ("parallel", 1, 120)
    v = bench.time_vector_face("rps", num_envs=3, timing=bench.Timing(steps=10, repeats=2))
    assert (v["face"], v["batch"]) == ("vector", 3)
    assert math.isclose(v["copy_steps_per_s"], 3 * 10 / v["seconds"])
    c = bench.time_core("ipd", batch=2, timing=bench.Timing(seconds=0.01, repeats=1))
    assert c["steps"] >= 1


def test_time_core_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch"):
        bench.time_core("ipd", batch=0, timing=bench.Timing(steps=1))
    with pytest.raises(ValueError, match="steps"):
        bench.time_core("ipd", batch=1, timing=bench.Timing(steps=0))


def test_console_script_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "metaenvs.cli", "info", "ipdd"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Did you mean 'ipd'" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "metaenvs.cli", "list"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "metaenvs/rps-v0" in proc.stdout


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, metaenvs.cli; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
