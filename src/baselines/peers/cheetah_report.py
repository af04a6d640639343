"""Figure 2d as a table: the meta-tested returns of the cheetah runs and the paper's claims.

``metaenvs compare cheetah DIR`` writes ``adaptation.md`` from the runs' ``test.json``:
per method the meta-agent's mean episode return against the test teammates at each joint
policy phi_0 .. phi_L and the score (summed over phi_1 .. phi_L, what the validator
selects by), mean ± 95% t interval over seeds, and a verdict for each claim of the paper
(section 5, question 8), judged on the score; then the same table and verdicts for each
run's last validation (in a short run validation may select iteration 0, where every method
of a seed is the same initial policy, so the meta-test cannot show what training did).

The methods are compared seed by seed: a seed starts every method from the same
initial policy and meets the same teammates, so most of the spread between seeds is
shared, and the difference of two methods is judged by the 95% t interval of its paired
per-seed values (over the seeds both ran; at least 2):

- "Meta-PG and Meta-MAPG outperform LOLA-DiCE and REINFORCE": **reproduced** when each of
  the four meta-minus-baseline intervals lies wholly above 0; **not reproduced** when one
  lies wholly below 0; **inconclusive** otherwise.
- "Meta-MAPG performs similarly to Meta-PG": **not reproduced** when the interval of
  Meta-MAPG minus Meta-PG excludes 0; **reproduced** when it covers 0 and its half-width
  is below the smallest meta-minus-baseline mean difference (so the runs tell methods
  apart at the scale they call similar); **inconclusive** otherwise, e.g. when nothing
  has learned yet and all methods are alike.

The paper gives Figure 2d as a plot only (5 seeds, 95% intervals), no numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from baselines._runs import mean_ci95
from baselines.experiment.report import plus_minus

META = ("meta_mapg", "meta_pg")
"""The methods the paper finds best on the cooperative cheetah."""
BASELINES = ("lola_dice", "reinforce")
"""The methods it finds them better than."""

Results = Mapping[str, Sequence[Mapping[str, Any]]]
"""``{method: [test.json of each seed]}``."""


def paired_difference(results: Results, a: str, b: str) -> tuple[float, float, int]:
    """Mean over the seeds both ran of ``a``'s score less ``b``'s, the half-width of its
    95% t interval (infinite below 2 seeds) and the number of seeds."""
    score_a = {int(s["seed"]): float(s["score"]) for s in results[a]}
    score_b = {int(s["seed"]): float(s["score"]) for s in results[b]}
    common = sorted(score_a.keys() & score_b.keys())
    if not common:
        return math.nan, math.inf, 0
    diff = np.array([score_a[k] - score_b[k] for k in common])
    mean, half = mean_ci95(diff)
    return float(mean), float(half) if len(common) > 1 else math.inf, len(common)


def claim_verdicts(results: Results) -> list[tuple[str, str, str]]:
    """``(claim, verdict, evidence)`` for the paper's two claims on Figure 2d."""
    meta = [m for m in META if m in results]
    base = [m for m in BASELINES if m in results]
    out = []
    claim = "Meta-PG and Meta-MAPG outperform LOLA-DiCE and REINFORCE"
    pairs = {(a, b): paired_difference(results, a, b) for a in meta for b in base}
    above = [p for p, (d, h, _) in pairs.items() if d - h > 0]
    below = [p for p, (d, h, _) in pairs.items() if d + h < 0]
    if len(pairs) == len(META) * len(BASELINES) and len(above) == len(pairs):
        verdict = "reproduced"
    elif below:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    evidence = "; ".join(f"{a} - {b} = {plus_minus(d, h, 1)} ({n} seeds)"
                         for (a, b), (d, h, n) in pairs.items())  # fmt: skip
    missing = [m for m in META + BASELINES if m not in results]
    if missing:
        evidence += ("; " if evidence else "") + f"not run: {', '.join(missing)}"
    out.append((claim, verdict, evidence))
    claim = "Meta-MAPG performs similarly to Meta-PG"
    if len(meta) < 2:
        out.append((claim, "inconclusive", "needs runs of both meta methods"))
        return out
    diff, half, n = paired_difference(results, "meta_mapg", "meta_pg")
    gap = min((d for d, _, _ in pairs.values()), default=math.nan)
    if abs(diff) > half:
        verdict = "not reproduced"
    elif half < gap:
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    evidence = f"meta_mapg - meta_pg = {plus_minus(diff, half, 1)} ({n} seeds)"
    if math.isfinite(gap):
        evidence += f"; smallest meta - baseline mean difference {gap:.1f}"
    out.append((claim, verdict, evidence))
    return out


def adaptation_markdown(
    results: Results, order: Sequence[str] = META + BASELINES, last: Results | None = None
) -> str:
    """The meta-test table (mean ± 95% interval per joint policy and the score, seeds,
    iterations, best iteration) and the claims' verdicts, as Markdown; with ``last``
    (per method the seeds' validation at their last iteration, in the same form), also
    that table, which shows what training did when validation selects iteration 0."""
    lines = _table(results, order, "best iteration")
    lines += ["", "The meta-agent's mean episode return (unscaled, running right) against the "
              "test teammates, per seed at its best-by-validation iteration, then mean ± 95% t "
              "interval over seeds.", "", *_claims(results)]  # fmt: skip
    if last:
        lines += ["", *_table(last, order, "validated at"), "",
                  "The same against the validation teammates at each seed's last iteration "
                  "(`metrics.csv`), whichever iteration validation selected; the claims judged "
                  "on it:", "", *_claims(last)]  # fmt: skip
    return "\n".join(lines) + "\n"


def _claims(results: Results) -> list[str]:
    lines = ["| claim (paper, question 8) | verdict | evidence |", "|:--|:--|:--|"]
    return lines + [f"| {c} | **{v}** | {e} |" for c, v, e in claim_verdicts(results)]


def _table(results: Results, order: Sequence[str], at: str) -> list[str]:
    methods = [m for m in order if m in results] + [m for m in results if m not in order]
    length = len(next(iter(results.values()))[0]["returns"])
    head = " | ".join(f"phi_{i}" for i in range(length))
    lines = [
        f"| method | seeds | iterations | {at} | {head} | score (phi_1..phi_L) |",
        "|:--|--:|--:|--:|" + "--:|" * (length + 1),
    ]
    for method in methods:
        seeds = results[method]
        returns = np.array([s["returns"] for s in seeds], dtype=float)
        mean, half = mean_ci95(returns)
        cells = [plus_minus(m, h, 1) for m, h in zip(mean, half, strict=True)]
        s_mean, s_half = mean_ci95(np.array([s["score"] for s in seeds], dtype=float))
        iterations = sorted({int(s["iterations"]) for s in seeds})
        best = ", ".join(str(int(s["best_iteration"])) for s in seeds)
        lines.append(
            f"| {method} | {len(seeds)} | {', '.join(map(str, iterations))} | {best} | "
            + " | ".join(cells)
            + f" | {plus_minus(float(s_mean), float(s_half), 1)} |"
        )
    return lines
