"""Value-decomposition learners on Skirmish: VDN, QMIX and MNMPG (mnmpg-exercise-moves)."""
