"""The 8-task table and the claims' verdicts (baselines.comm.tasks) on synthetic runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baselines.comm import tasks
from baselines.comm.learner import METHODS


def write_run(root: Path, task: str, method: str, seed: int, rewards: list[float]) -> None:
    run = root / task / method / f"seed{seed}"
    run.mkdir(parents=True)
    lines = ["episodes,eval_reward,eval_messages"]
    lines += [
        f"{250 * (i + 1)},{r},{1.0 if method != 'none' else 0.0}" for i, r in enumerate(rewards)
    ]
    (run / "metrics.csv").write_text("\n".join(lines) + "\n")


def fill(root: Path, task: str, means: dict[str, float], spread: float = 0.1) -> None:
    """Three seeds per method whose final rewards are ``mean - spread, mean, mean + spread``."""
    for method, mean in means.items():
        for seed, delta in enumerate((-spread, 0.0, spread)):
            write_run(root, task, method, seed, [-100.0, mean + delta, mean + delta, mean + delta])


PAPER_LIKE = {"meta": 0.0, "reinforce": -1.0, "none": -2.0, "stgs": -3.0, "full": -4.0}


def test_final_reward_is_the_mean_of_the_last_three_evaluations(tmp_path: Path) -> None:
    write_run(tmp_path, "push_N3", "meta", 0, [-100.0, 1.0, 2.0, 3.0])
    write_run(tmp_path, "push_N3", "meta", 1, [-100.0, 3.0, 4.0, 5.0])
    cell = tasks.read_cell(tmp_path / "push_N3" / "meta")
    np.testing.assert_allclose(cell.finals, [2.0, 4.0])
    assert cell.episodes == 1000
    assert cell.ci == pytest.approx(12.706, rel=1e-3)  # t(0.975, 1) * std(2, 4) / sqrt(2)


def test_seeds_are_cut_at_the_shortest_run(tmp_path: Path) -> None:
    write_run(tmp_path, "push_N3", "meta", 0, [0.0, 1.0, 2.0, 3.0, 100.0])
    write_run(tmp_path, "push_N3", "meta", 1, [0.0, 1.0, 2.0, 3.0])
    cell = tasks.read_cell(tmp_path / "push_N3" / "meta")
    np.testing.assert_allclose(cell.finals, [2.0, 2.0])
    assert cell.episodes == 1000


def test_claims_reproduced_when_every_task_matches_the_paper(tmp_path: Path) -> None:
    for task in tasks.TASKS:
        fill(tmp_path, task, PAPER_LIKE)
    text, table = tasks.tasks_markdown(tmp_path)
    assert len(table) == 8
    verdicts = [v for _, v, _ in tasks.claim_verdicts(table)]
    assert verdicts == ["reproduced"] * 3
    assert "0.00 ± 0.25 (#1, 1.00 msg)" in text


def test_meta_clearly_below_two_methods_is_not_reproduced(tmp_path: Path) -> None:
    fill(tmp_path, "navigation_N3_l3", {**PAPER_LIKE, "meta": -3.5})
    table = {"navigation_N3_l3": tasks.read_task(tmp_path / "navigation_N3_l3")}
    meta, full, stgs = tasks.claim_verdicts(table)
    assert meta[1] == "not reproduced"
    assert full[1] == "inconclusive"  # bottom two here, but 7 other tasks are missing
    assert "navigation_N3_l3" in stgs[2]


def test_full_clearly_above_the_rest_on_two_tasks_rules_out_seven_of_eight(tmp_path: Path) -> None:
    best_full = {**PAPER_LIKE, "full": 1.0}
    for task in tasks.TASKS[:2]:
        fill(tmp_path, task, best_full)
    table = {t: tasks.read_task(tmp_path / t) for t in tasks.TASKS[:2]}
    verdicts = dict((c.split()[0], v) for c, v, _ in tasks.claim_verdicts(table))
    assert verdicts["full"] == "not reproduced"
    assert verdicts["meta"] == "inconclusive"


def test_overlapping_intervals_leave_the_claims_open(tmp_path: Path) -> None:
    fill(tmp_path, "push_N6", {**PAPER_LIKE, "meta": -3.5}, spread=5.0)
    table = {"push_N6": tasks.read_task(tmp_path / "push_N6")}
    assert [v for _, v, _ in tasks.claim_verdicts(table)] == ["inconclusive"] * 3


def test_cli_writes_the_table_the_ablations_and_the_figure(tmp_path: Path) -> None:
    fill(tmp_path, "navigation_N3_l3", PAPER_LIKE)
    fill(tmp_path, "navigation_N3_l3_k1", {"meta": -5.0})
    assert tasks.main([str(tmp_path)]) == 0
    text = (tmp_path / "tasks.md").read_text()
    assert "| K = 1 | 3 | 1,000 | -5.00 ± 0.25 | 1.000 |" in text
    assert "no blending" not in text  # no runs, no row
    assert (tmp_path / "tasks.png").stat().st_size > 0
    assert set(METHODS) == set(PAPER_LIKE)


def test_cli_refuses_a_folder_without_runs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        tasks.main([str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        tasks.main([str(tmp_path)])


def test_runs_short_of_their_budget_are_left_out(tmp_path: Path) -> None:
    write_run(tmp_path, "push_N3", "meta", 0, [0.0, 1.0, 2.0, 3.0])
    write_run(tmp_path, "push_N3", "meta", 1, [0.0, 5.0])
    (tmp_path / "push_N3" / "meta" / "seed0" / "config.json").write_text('{"episodes": 1000}')
    (tmp_path / "push_N3" / "meta" / "seed1" / "config.json").write_text('{"episodes": 1000}')
    cell = tasks.read_cell(tmp_path / "push_N3" / "meta")
    np.testing.assert_allclose(cell.finals, [2.0])
    (tmp_path / "push_N3" / "meta" / "seed0" / "config.json").write_text('{"episodes": 2000}')
    assert tasks.read_cell(tmp_path / "push_N3" / "meta") is None
