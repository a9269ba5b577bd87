"""Integer arithmetic and length generalisation (Jelassi et al. 2023): the ``arithmetic`` task.

Importing this package registers :class:`ArithmeticTask` under the name ``"arithmetic"``.
"""

from synthmath.tasks.arithmetic.task import ArithmeticTask

__all__ = ["ArithmeticTask"]
