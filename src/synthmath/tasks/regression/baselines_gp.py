"""Function baseline: genetic programming with ``pyoperon`` (optional extra ``baselines``).

E2E (Kamienny et al. 2022) is compared with genetic programming on SRBench; here Operon's
scikit-learn style ``SymbolicRegressor`` fits y = f(x), seeded, single-threaded and capped
(generations, evaluations and a wall-clock ``max_time``; a fit that reaches the time cap
depends on the machine). Its model string is converted to an engine tree by the engine's own
infix parser (variables ``X1 .. Xn`` -> ``x_0 .. x_{n-1}``; ``^`` is power; only operators
the engine has are allowed: :data:`SYMBOLS`), never by SymPy or ``eval``; the converted tree
is checked against Operon's own predictions.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from synthmath.expressions import numeric
from synthmath.expressions.infix import FUNCTIONS, Names, parse_infix
from synthmath.expressions.operators import Tree
from synthmath.tasks.regression.baselines import require

#: Operon primitives whose printed form the engine reads with the same meaning (Operon's
#: ``aq``, ``cbrt``, ``logabs``... are left out: the engine has no faithful equivalent)
SYMBOLS = "add,sub,mul,div,exp,log,sin,cos,sqrt,square,constant,variable"
#: the functions Operon prints for :data:`SYMBOLS`
_FUNCTIONS = {name: FUNCTIONS[name] for name in ("exp", "log", "sin", "cos", "sqrt")}


def operon_names(n_features: int) -> Names:
    """Operon's variables ``X1 .. Xn`` as the engine's ``x_0 .. x_{n-1}``."""
    return Names(
        {f"X{k + 1}": f"x_{k}" for k in range(n_features)},
        functions=_FUNCTIONS,
        named_constants=False,
    )


def operon_fit(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    max_time: int = 10,
    generations: int = 1000,
    population_size: int = 1000,
    max_evaluations: int = 500_000,
    max_length: int = 50,
    symbols: str = SYMBOLS,
) -> Tree:
    """The tree of Operon's selected model for y = f(x) (x: n x d, variables ``x_0..``)."""
    op = require("pyoperon.sklearn")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (len(x),) or len(y) < 2:
        raise ValueError(f"operon_fit: x of shape {x.shape} and y of shape {y.shape}")
    regressor = op.SymbolicRegressor(
        allowed_symbols=symbols,
        random_state=seed,
        n_threads=1,
        max_time=max_time,
        generations=generations,
        population_size=population_size,
        max_evaluations=max_evaluations,
        max_length=max_length,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regressor.fit(x, y)
    text = regressor.get_model_string(regressor.model_, 17)
    tree = parse_infix(text, operon_names(x.shape[1]))
    _check_conversion(tree, text, x, np.asarray(regressor.predict(x), dtype=np.float64))
    return tree


def _check_conversion(tree: Tree, text: str, x: np.ndarray, expected: np.ndarray) -> float:
    """How far the tree (float64) is from Operon's own predictions (float32), relative to
    their spread; a warning above 1e-3 (ill-conditioned models cancel differently in
    float32; a wrong conversion would show here)."""
    env = {f"x_{k}": x[:, k] for k in range(x.shape[1])}
    got = np.broadcast_to(numeric.compile(tree)(env), expected.shape)
    ok = np.isfinite(expected)
    if not ok.any():
        return 0.0
    with np.errstate(all="ignore"):
        scale = max(float(np.std(expected[ok])), float(np.max(np.abs(expected[ok]))) * 1e-6, 1e-12)
        deviation = float(np.max(np.abs(got[ok] - expected[ok]))) / scale
    if not deviation <= 1e-3:
        logging.getLogger(__name__).warning(
            "operon: the converted tree deviates from Operon's predictions by %.3g of their "
            "spread (float32 cancellation?): %s",
            deviation,
            text[:200],
        )
    return deviation
