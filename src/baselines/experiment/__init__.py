"""One experiment framework for every learner.

A learner module declares an :class:`Experiment` (its Args dataclass, its learner and a
few hooks); this package runs it: :func:`run` (the run loop, with resumable checkpoints,
metrics, TensorBoard and progress), :func:`main` (``metaenvs train NAME`` and
``metaenvs compare NAME``, every Args field a flag) and :func:`compare` (summary tables and
curves over seeds).
"""

from baselines.experiment.cli import main
from baselines.experiment.loop import run, warm_kernels
from baselines.experiment.report import compare
from baselines.experiment.spec import Experiment, RunContext, RunState

__all__ = ["Experiment", "RunContext", "RunState", "compare", "main", "run", "warm_kernels"]
