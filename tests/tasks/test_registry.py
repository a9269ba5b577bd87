"""The task registry: built-in families by name, imported on first use."""

import subprocess
import sys

import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.registry import get_task_class, task_names


def test_every_builtin_name_loads_its_class():
    names = task_names()
    assert {"linalg", "symbolic", "symreg", "odeformer"} <= set(names)
    for name in names:
        assert get_task_class(name).name == name


def test_unknown_task_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"task: unknown task 'nope'; allowed: arithmetic, "):
        get_task_class("nope")


def test_a_task_imports_only_its_own_family():
    # a generate job of a linalg dataset needs neither SymPy nor SciPy (about 1 s of imports)
    code = (
        "import sys\n"
        "from synthmath.runs.datasets import generate_shard\n"
        "from synthmath.tasks.registry import make_task\n"
        "make_task('linalg', {'op': 'transpose', 'dim': 3})\n"
        "print(sorted(m for m in ('sympy', 'scipy', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
