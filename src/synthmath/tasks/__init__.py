"""Task families, one package each, behind the contract of :mod:`synthmath.core.task`; the
registry by name is :mod:`synthmath.tasks.registry`."""
