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


@pytest.mark.parametrize(
    "scores, outperform, similar",
    [
        # both meta methods clearly above both baselines and alike: the paper's figure
        (
            dict(
                meta_mapg=[100, 102, 101],
                meta_pg=[101, 99, 103],
                lola_dice=[10, 12, 11],
                reinforce=[0, 3, 1],
            ),
            "reproduced",
            "reproduced",
        ),  # fmt: skip
        # seeds far apart but every method's offset from the others the same on each seed:
        # paired by seed, the differences are clear (unpaired intervals would all overlap)
        (
            dict(
                meta_mapg=[100, 300, 500],
                meta_pg=[101, 299, 502],
                lola_dice=[90, 290, 491],
                reinforce=[88, 291, 490],
            ),
            "reproduced",
            "reproduced",
        ),  # fmt: skip
        # nothing has learned: all alike, so "similar" says nothing
        (
            dict(meta_mapg=[1, 2, 3], meta_pg=[2, 1, 3], lola_dice=[3, 1, 2], reinforce=[1, 3, 2]),
            "inconclusive",
            "inconclusive",
        ),  # fmt: skip
        # a baseline clearly above a meta method; the meta methods clearly differ
        (
            dict(
                meta_mapg=[50, 51, 52],
                meta_pg=[0, 1, 2],
                lola_dice=[20, 21, 22],
                reinforce=[-5, -4, -6],
            ),
            "not reproduced",
            "not reproduced",
        ),  # fmt: skip
        # one seed each: no intervals, nothing can be judged
        (
            dict(meta_mapg=[100], meta_pg=[100], lola_dice=[0], reinforce=[0]),
            "inconclusive",
            "inconclusive",
        ),  # fmt: skip
    ],
)
def test_claims_are_judged_by_the_intervals(scores, outperform, similar):
    assert verdicts(runs(**scores)) == {OUTPERFORM: outperform, SIMILAR: similar}


def test_missing_methods_leave_the_claims_open():
    got = verdicts(runs(meta_mapg=[100, 101, 102], lola_dice=[0, 1, 2]))
    assert got == {OUTPERFORM: "inconclusive", SIMILAR: "inconclusive"}


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
