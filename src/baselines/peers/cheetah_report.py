"""Figure 2d as a table: the meta-tested returns of the cheetah runs and the paper's claims.

``metaenvs compare cheetah DIR`` writes ``adaptation.md`` from the runs' ``test.json``:
per method the meta-agent's mean episode return against the test teammates at each joint
policy phi_0 .. phi_L and the score (summed over phi_1 .. phi_L, what the validator
selects by), mean ± 95% t interval over seeds, and a verdict for each claim of the paper
(section 5, question 8), judged on the score:

- "Meta-PG and Meta-MAPG outperform LOLA-DiCE and REINFORCE": **reproduced** when each
  meta method's interval lies wholly above each baseline's; **not reproduced** when a
  baseline's interval lies wholly above a meta method's; **inconclusive** otherwise.
- "Meta-MAPG performs similarly to Meta-PG": the 95% interval of the difference of their
  means (Welch's standard error, with the conservative ``min(n1, n2) - 1`` degrees of
  freedom). **Not reproduced** when it excludes 0; **reproduced** when it covers 0 and
  is narrower than the gap from the lower meta method's mean down to the best baseline's
  (so the runs could tell methods apart at the scale they call similar); **inconclusive**
  otherwise, e.g. when no method has learned anything yet and all are alike.

The paper gives Figure 2d as a plot only (5 seeds, 95% intervals), no numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from baselines._runs import mean_ci95, t_quantile_975

META = ("meta_mapg", "meta_pg")
"""The methods the paper finds best on the cooperative cheetah."""
BASELINES = ("lola_dice", "reinforce")
"""The methods it finds them better than."""

Results = Mapping[str, Sequence[Mapping[str, Any]]]
"""``{method: [test.json of each seed]}``."""


def scores(results: Results) -> dict[str, np.ndarray]:
    """Per method the seeds' test scores (return summed over phi_1 .. phi_L)."""
    return {m: np.array([s["score"] for s in seeds], dtype=float) for m, seeds in results.items()}


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """``(mean, low, high)`` of the 95% t interval; infinite bounds for one seed."""
    mean, half = mean_ci95(values)
    half = float(half) if len(values) > 1 else math.inf
    return float(mean), float(mean) - half, float(mean) + half


def difference_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of ``a`` less mean of ``b`` and the half-width of its 95% interval (Welch's
    standard error, ``min(n_a, n_b) - 1`` degrees of freedom); infinite below 2 seeds."""
    diff = float(a.mean() - b.mean())
    if min(len(a), len(b)) < 2:
        return diff, math.inf
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return diff, t_quantile_975(min(len(a), len(b)) - 1) * se


def claim_verdicts(results: Results) -> list[tuple[str, str, str]]:
    """``(claim, verdict, evidence)`` for the paper's two claims on Figure 2d."""
    score = scores(results)
    meta = [m for m in META if m in score]
    base = [m for m in BASELINES if m in score]
    bounds = {m: interval(v) for m, v in score.items()}
    out = []
    claim = "Meta-PG and Meta-MAPG outperform LOLA-DiCE and REINFORCE"
    pairs = [(a, b) for a in meta for b in base]
    above = [(a, b) for a, b in pairs if bounds[a][1] > bounds[b][2]]
    below = [(a, b) for a, b in pairs if bounds[b][1] > bounds[a][2]]
    if len(pairs) == len(META) * len(BASELINES) and len(above) == len(pairs):
        verdict = "reproduced"
    elif below:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    evidence = (
        f"intervals separate {len(above)} of {len(pairs)} meta/baseline pairs in the claimed "
        f"order, {len(below)} in the reverse order"
        + ("" if len(pairs) == 4 else f" (only {', '.join(meta + base) or 'no method'} run)")
    )
    out.append((claim, verdict, evidence))
    claim = "Meta-MAPG performs similarly to Meta-PG"
    if len(meta) < 2:
        out.append((claim, "inconclusive", "needs runs of both meta methods"))
        return out
    diff, half = difference_interval(score["meta_mapg"], score["meta_pg"])
    gap = min(bounds[m][0] for m in meta) - max((bounds[m][0] for m in base), default=math.nan)
    if abs(diff) > half:
        verdict = "not reproduced"
    elif half < gap:
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    evidence = f"Meta-MAPG - Meta-PG = {diff:.1f} ± {half:.1f}; the meta methods' lower mean " + (
        f"is {gap:.1f} above the best baseline's" if math.isfinite(gap) else "has no baseline"
    )
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
    lines += [
        "",
        "The meta-agent's mean episode return (unscaled, running right) against the test "
        "teammates, per seed at its best-by-validation iteration, then mean ± 95% t interval "
        "over seeds.",
        "",
        "| claim (paper, question 8) | verdict | evidence |",
        "|:--|:--|:--|",
    ]
    lines += [f"| {c} | **{v}** | {e} |" for c, v, e in claim_verdicts(results)]
    if last:
        lines += ["", *_table(last, order, "validated at"), "",
                  "The same against the validation teammates at each seed's last iteration "
                  "(`metrics.csv`), whichever iteration validation selected."]  # fmt: skip
    return "\n".join(lines) + "\n"


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
        cells = [_cell(m, h) for m, h in zip(mean, half, strict=True)]
        s_mean, s_half = mean_ci95(np.array([s["score"] for s in seeds], dtype=float))
        iterations = sorted({int(s["iterations"]) for s in seeds})
        best = ", ".join(str(int(s["best_iteration"])) for s in seeds)
        lines.append(
            f"| {method} | {len(seeds)} | {', '.join(map(str, iterations))} | {best} | "
            + " | ".join(cells)
            + f" | {_cell(float(s_mean), float(s_half))} |"
        )
    return lines


def _cell(mean: float, half: float) -> str:
    return f"{mean:.1f}" + (f" ± {half:.1f}" if np.isfinite(half) else "")
