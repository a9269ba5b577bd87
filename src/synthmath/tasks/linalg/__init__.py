"""Linear algebra with transformers (Charton 2021): the ``linalg`` task.

Importing this package registers :class:`LinalgTask` under the name ``"linalg"``.
"""

from synthmath.tasks.linalg.task import LinalgTask

__all__ = ["LinalgTask"]
