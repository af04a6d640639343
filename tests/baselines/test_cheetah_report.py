"""Figure 2d's table and the verdicts on the paper's claims (baselines.peers.cheetah_report)."""

from __future__ import annotations

import pytest

from baselines.peers.cheetah_report import adaptation_markdown, claim_verdicts


def runs(**scores: list[float]) -> dict[str, list[dict]]:
    """test.json stand-ins: a method's seeds with these scores (phi_0's return 0)."""
    return {
        m: [
            {
                "seed": k,
                "returns": [0.0, s / 2, s / 2],
                "score": s,
                "iterations": 50,
                "best_iteration": 25,
            }  # fmt: skip
            for k, s in enumerate(values)
        ]
        for m, values in scores.items()
    }


def verdicts(results) -> dict[str, str]:
    return {claim: verdict for claim, verdict, _ in claim_verdicts(results)}


OUTPERFORM = "Meta-PG and Meta-MAPG outperform LOLA-DiCE and REINFORCE"
SIMILAR = "Meta-MAPG performs similarly to Meta-PG"


def four(mapg: list[float], pg: list[float], lola: list[float], rf: list[float]) -> dict:
    """Scores per seed of Meta-MAPG, Meta-PG, LOLA-DiCE and REINFORCE."""
    return dict(meta_mapg=mapg, meta_pg=pg, lola_dice=lola, reinforce=rf)


YES, NO, OPEN = "reproduced", "not reproduced", "inconclusive"
CASES = [
    # both meta methods clearly above both baselines and alike: the paper's figure
    (four([100, 102, 101], [101, 99, 103], [10, 12, 11], [0, 3, 1]), YES, YES),
    # seeds far apart but every method's offset from the others the same on each seed:
    # paired by seed, the differences are clear (unpaired intervals would all overlap)
    (four([100, 300, 500], [101, 299, 502], [90, 290, 491], [88, 291, 490]), YES, YES),
    # nothing has learned: all alike, so "similar" says nothing
    (four([1, 2, 3], [2, 1, 3], [3, 1, 2], [1, 3, 2]), OPEN, OPEN),
    # a baseline clearly above a meta method; the meta methods clearly differ
    (four([50, 51, 52], [0, 1, 2], [20, 21, 22], [-5, -4, -6]), NO, NO),
    # one seed each: no intervals, nothing can be judged
    (four([100], [100], [0], [0]), OPEN, OPEN),
]


@pytest.mark.parametrize("scores, outperform, similar", CASES)
def test_claims_are_judged_by_the_intervals(scores, outperform, similar):
    assert verdicts(runs(**scores)) == {OUTPERFORM: outperform, SIMILAR: similar}


def test_missing_methods_leave_the_claims_open():
    got = verdicts(runs(meta_mapg=[100, 101, 102], lola_dice=[0, 1, 2]))
    assert got == {OUTPERFORM: OPEN, SIMILAR: OPEN}


def test_the_table_has_a_row_per_method_in_the_papers_order():
    text = adaptation_markdown(runs(reinforce=[0, 2], meta_pg=[10, 12]))
    rows = [line for line in text.splitlines() if line.startswith("| meta_pg") or
            line.startswith("| reinforce")]  # fmt: skip
    assert [r.split(" | ")[0] for r in rows] == ["| meta_pg", "| reinforce"]
    # meta_pg: phi_1 = 5, 6 -> 5.5; score 11 ± t(1) * std / sqrt(2) = 12.706 * 1.414 / 1.414
    assert "| 5.5 ± 6.4 | 5.5 ± 6.4 | 11.0 ± 12.7 |" in rows[0]
    assert "| 2 | 50 | 25, 25 |" in rows[0]


def test_the_last_validation_table_follows_when_given():
    last = runs(meta_pg=[-4, -6])
    text = adaptation_markdown(runs(meta_pg=[10, 12]), last=last)
    assert text.index("| claim") < text.index("validated at")
    row = "| meta_pg | 2 | 50 | 25, 25 | 0.0 ± 0.0 | -2.5 ± 6.4 | -2.5 ± 6.4 | -5.0 ± 12.7 |"
    assert row in text
    assert "validated at" not in adaptation_markdown(runs(meta_pg=[10, 12]))
