"""Torch reference learners and experiment runners."""
