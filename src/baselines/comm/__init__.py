"""Learning communication topology (comm-topology-meta-gradient): the shared CTDE learner
with five ways to train the communication networks, and its experiment (``experiment``)."""
