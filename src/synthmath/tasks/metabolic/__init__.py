"""Metabolic network equilibria (Charton, Hayat, McQuade, Merrill, Piccoli 2021).

Random network generators: :mod:`synthmath.tasks.metabolic.graphs`; exact equilibrium
solvers (linear LIFE and Michaelis-Menten kinetics): :mod:`synthmath.tasks.metabolic.solvers`;
the task (token encoding, scoring): :mod:`synthmath.tasks.metabolic.task`; network files and
the shipped biological networks: :mod:`synthmath.tasks.metabolic.networks`. Importing this
package registers :class:`MetabolicTask` under the name ``"metabolic"``.
"""

from synthmath.tasks.metabolic.task import MetabolicTask

__all__ = ["MetabolicTask"]
