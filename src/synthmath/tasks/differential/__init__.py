"""Differential systems: stability, convergence speed, controllability, feedback."""
