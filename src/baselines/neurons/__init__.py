"""Neurons as agents (paper: neurons-as-agents): the draft's reference learning rules."""
