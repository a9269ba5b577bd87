"""Toy models and their solvers (numpy/scipy only): the random-features phase space, the
spherical p-spin Langevin toy. They back the dynamics studies of configs/paper/dynamics.yaml."""
