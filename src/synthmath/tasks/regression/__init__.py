"""Symbolic regression of functions and ODE systems (Kamienny et al. 2022, d'Ascoli et al.
2024): for now the benchmark systems as data, :mod:`synthmath.tasks.regression.benchmarks`
(ODEBench and Strogatz, read from ``known/*.json`` and integrated as the papers do)."""
