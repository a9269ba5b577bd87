"""Raw trees <-> SymPy objects, built with constructors only (specs/expressions.md).

Nothing here parses a string: no ``sympify``, ``parse_expr``, ``S(str)`` or ``eval`` (they
run code, and the released ``sp.S(Node)`` stopped working on SymPy 1.14). Every symbol comes
from one table of plain symbols (no assumptions: ``Symbol("x")`` and ``Symbol("x",
real=True)`` are different and silently break equality). The ODE unknown is the applied
function :data:`Y` ``= Function("Y")(x)``; the raw leaves ``Y'`` and ``Y''`` are its first and
second derivatives in ``x``.

:func:`from_sympy` writes SymPy's n-ary sums and products as right-associated binary chains
in ``expr.args`` order, so one SymPy object has one tree (the canonical form of a tree is
``from_sympy(to_sympy(tree))``). Heads the vocabulary cannot write (``zoo``, ``oo``, ``nan``,
``I``, ``AccumBounds``, ``Integral``, ``Piecewise``, special and unknown functions) raise
:class:`UnsupportedExpression`; :func:`has_forbidden` names them for rejection counts.
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.core.cache import clear_cache as _sympy_clear_cache
from sympy.core.function import AppliedUndef

from synthmath.expressions.errors import ExprParseError, TimeoutExpired, UnsupportedExpression
from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    Tree,
    float_token,
    int_token,
    is_float,
    is_int,
    is_variable,
    n_operators,
)
from synthmath.expressions.workers import time_limit

#: the variable of differentiation and of the ODE unknown
X = sp.Symbol("x")
#: the ODE unknown y(x) and its derivatives (raw leaves ``Y``, ``Y'``, ``Y''``)
Y = sp.Function("Y")(X)
DY = sp.Derivative(Y, X)
D2Y = sp.Derivative(Y, (X, 2))

_UNKNOWN_LEAVES = {"Y": Y, "Y'": DY, "Y''": D2Y}
_SYMBOLS: dict[str, sp.Symbol] = {"x": X}
_PLAIN_ASSUMPTIONS = sp.Symbol("x").assumptions0

#: a numeric power whose exact result would exceed this many bits is refused: an integer
#: power is computed in C, which no time limit interrupts (``pow i9 pow i9 i9`` would hang),
#: and Python writes ints of at most 4300 digits (14,284 bits) as text
MAX_POW_BITS = 14_000
#: the largest |integer exponent| SymPy is asked to evaluate on a non-numeric base
MAX_EXPONENT = 100_000

_UNARY_CLASSES = {sp.exp: "exp", sp.log: "ln", sp.Abs: "abs", sp.sign: "sign"}
for _name in (
    "sin cos tan cot sec csc asin acos atan acot asec acsc "
    "sinh cosh tanh coth sech csch asinh acosh atanh acoth asech acsch"
).split():
    _UNARY_CLASSES[getattr(sp, _name)] = _name
assert all(name in OPERATORS for name in _UNARY_CLASSES.values())

#: SymPy singletons the vocabulary has no word for, by the name error messages use
_FORBIDDEN_ATOMS = {
    sp.zoo: "zoo",
    sp.oo: "oo",
    -sp.oo: "-oo",
    sp.nan: "nan",
    sp.I: "I",
}
_CONSTANT_TOKENS = {value: token for token, (value, _, _) in CONSTANTS.items()}
_POW_OPS = {"pow2": 2, "pow3": 3, "pow4": 4, "pow5": 5, "sqr": 2, "inv": -1}


def symbol(name: str) -> sp.Expr:
    """The table's SymPy object for a variable token (made once, then cached)."""
    if name in _UNKNOWN_LEAVES:
        return _UNKNOWN_LEAVES[name]
    found = _SYMBOLS.get(name)
    if found is None:
        if not is_variable(name):
            raise ValueError(f"symbol: {name!r} is not a variable token")
        found = _SYMBOLS[name] = sp.Symbol(name)
    return found


def _leaf(token: str) -> sp.Expr:
    if is_int(token):
        try:
            return sp.Integer(int(token[1:]))
        except ValueError:  # over Python's 4300-digit limit of int(str)
            raise UnsupportedExpression(f"to_sympy: integer leaf of {len(token)} digits") from None
    if is_float(token):
        value = float(token[1:])
        if value != value or value in (float("inf"), float("-inf")):
            raise UnsupportedExpression(f"to_sympy: non-finite float leaf {token!r}")
        return sp.Float(value)
    if token in CONSTANTS:
        return CONSTANTS[token][0]
    if is_variable(token):
        return symbol(token)
    raise ExprParseError(f"to_sympy: unknown token {token!r}")


def _check_pow(base: sp.Expr, exponent: sp.Expr) -> None:
    """Refuse powers whose exact evaluation would be huge (see :data:`MAX_POW_BITS`)."""
    if not exponent.is_Rational:
        return
    e = abs(int(exponent.p)) / int(exponent.q)
    coeff = base if base.is_Rational else base.as_coeff_Mul()[0] if base.is_Mul else None
    if coeff is not None and coeff.is_Rational and abs(coeff) not in (0, 1):
        bits = max(math.log2(abs(int(coeff.p))), math.log2(int(coeff.q)))
        if bits * e > MAX_POW_BITS:
            raise UnsupportedExpression(f"to_sympy: pow result over {MAX_POW_BITS} bits")
    elif e > MAX_EXPONENT and not (base.is_Rational and abs(base) in (0, 1)):
        raise UnsupportedExpression(f"to_sympy: pow exponent over {MAX_EXPONENT}")


def to_sympy(tree: Tree, evaluate: bool = True) -> sp.Expr:
    """The SymPy expression of a raw prefix tree (iterative: no recursion limit).

    ``evaluate=True`` lets SymPy canonicalise (``div i1 i2`` becomes ``Rational(1, 2)``);
    ``evaluate=False`` keeps the tree's structure. Operators without a SymPy form (``idiv``,
    ``mod``), powers too large to compute exactly and SymPy's own refusals (``Max`` of a
    complex number, recursion too deep, its internal errors) raise :class:`UnsupportedExpression`; a malformed
    tree raises :class:`ExprParseError`.
    """
    stack: list[sp.Expr] = []
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is None:
            stack.append(_leaf(token))
            continue
        if op.sympy is None:
            raise UnsupportedExpression(f"to_sympy: operator {token!r} has no SymPy form")
        if len(stack) < op.arity:
            raise ExprParseError(f"to_sympy: operator {token!r} lacks operands")
        args = [stack.pop() for _ in range(op.arity)]
        if evaluate and token == "pow":
            _check_pow(args[0], args[1])
        elif evaluate and token in _POW_OPS:
            _check_pow(args[0], sp.Integer(_POW_OPS[token]))
        try:
            stack.append(op.sympy(*args, evaluate=evaluate))
        except TimeoutExpired:
            raise
        except Exception as err:  # noqa: BLE001 - SymPy's refusals and internal errors
            raise UnsupportedExpression(
                f"to_sympy: SymPy failed on {token!r}: {type(err).__name__}: {err}"
            ) from None
    if len(stack) != 1:
        raise ExprParseError(f"to_sympy: {len(stack)} expressions, expected 1")
    return stack[0]


def _unsupported(head: str, detail: str = "") -> UnsupportedExpression:
    err = UnsupportedExpression(f"unsupported SymPy head {head!r}{detail}")
    err.head = head  # type: ignore[attr-defined]  # read by has_forbidden
    return err


def _symbol_token(node: sp.Symbol) -> str:
    name = node.name
    if (
        type(node) is not sp.Symbol
        or not is_variable(name)
        or name in _UNKNOWN_LEAVES
        or node.assumptions0 != _PLAIN_ASSUMPTIONS
    ):
        raise _unsupported(
            "Symbol", f": {name!r} is not a plain variable of the table (assumptions?)"
        )
    return name


def _node_step(node: sp.Basic, inv: bool) -> tuple[str | None, list]:
    """One node: its token (None: write its one child instead) and its children (all the
    args of a sum or product: :func:`from_sympy` chains them)."""
    if node.is_Atom:
        if node in _FORBIDDEN_ATOMS:
            raise _unsupported(_FORBIDDEN_ATOMS[node])
        if node.is_Integer:
            try:
                return int_token(int(node)), []
            except ValueError:  # over Python's 4300-digit limit of str(int)
                raise _unsupported("Integer", " over 4300 digits") from None
        if node.is_Rational:
            return "div", [sp.Integer(node.p), sp.Integer(node.q)]
        if node.is_Float:
            if not math.isfinite(float(node)):  # beyond float64's range
                raise _unsupported("Float", f" {node} outside float64")
            return float_token(float(node)), []
        if node in _CONSTANT_TOKENS:
            return _CONSTANT_TOKENS[node], []
        if node.is_Symbol:
            return _symbol_token(node), []
        raise _unsupported(type(node).__name__)
    if node.is_Add or node.is_Mul:
        if len(node.args) == 1:  # an unevaluated one-argument sum or product is its argument
            return None, [node.args[0]]
        return ("add" if node.is_Add else "mul"), list(node.args)
    if node.is_Pow:
        base, exponent = node.args
        if exponent == -1:
            return ("inv", [base]) if inv else ("pow", [base, exponent])
        if exponent == sp.S.Half:
            return "sqrt", [base]
        return "pow", [base, exponent]
    cls = node.func
    if cls in _UNARY_CLASSES and len(node.args) == 1:
        if cls is sp.exp and node.args[0] == 1:
            return "E", []
        return _UNARY_CLASSES[cls], [node.args[0]]
    if isinstance(node, AppliedUndef):
        if node == Y:
            return "Y", []
        raise _unsupported(cls.__name__, " (unknown function)")
    if isinstance(node, sp.Derivative):
        if node == DY:
            return "Y'", []
        if node == D2Y:
            return "Y''", []
        raise _unsupported("Derivative", f" of {type(node.expr).__name__}")
    if cls is sp.Max and len(node.args) == 2 and sp.S.Zero in node.args:
        other = node.args[1] if node.args[0] == 0 else node.args[0]
        return "relu", [other]
    raise _unsupported(type(node).__name__)


def from_sympy(expr: sp.Basic, inv: bool = False) -> Tree:
    """The raw prefix tree of a SymPy expression (iterative).

    Sums and products become right-associated ``add``/``mul`` chains in ``expr.args`` order;
    ``Pow(b, -1)`` is ``pow b i-1`` (``inv b`` with ``inv=True``), ``Pow(b, 1/2)`` is
    ``sqrt b``; a rational p/q is ``div i<p> i<q>``; ``exp(1)`` is ``E``; ``Max(0, a)`` is
    ``relu a``. Anything else the vocabulary cannot write raises
    :class:`UnsupportedExpression` naming the head.
    """
    out: list[str] = []
    # items: a SymPy node, or (token, args) for the tail of a sum or product (>= 2 args)
    pending: list = [expr]
    while pending:
        item = pending.pop()
        if isinstance(item, tuple):
            token, args = item
        else:
            token, args = _node_step(item, inv)
            if token is None:  # an unevaluated one-argument sum or product: its argument
                pending.append(args[0])
                continue
        out.append(token)
        if token in ("add", "mul") and len(args) > 2:
            args = [args[0], (token, args[1:])]
        pending.extend(reversed(args))
    return tuple(out)


def canonical(tree: Tree, max_rounds: int = 4) -> Tree:
    """The canonical form of a raw tree: ``from_sympy(to_sympy(tree))``, repeated until it
    stops changing (at most ``max_rounds`` times). One round is almost always enough, but
    SymPy's evaluation is not idempotent everywhere (``Abs(1/x)`` evaluates to
    ``1/Abs(x)`` when built again; ~0.1% of random 15-operator trees need a second round)."""
    current = from_sympy(to_sympy(tree))
    for _ in range(max_rounds - 1):
        following = from_sympy(to_sympy(current))
        if following == current:
            break
        current = following
    return current


def count_ops(tree: Tree) -> int:
    """Operator nodes of a raw tree (the paper's "number of operators")."""
    return n_operators(tree)


def has_forbidden(expr: sp.Basic) -> str | None:
    """The first head (prefix order) :func:`from_sympy` cannot write, or None: ``zoo``,
    ``oo``, ``-oo``, ``nan``, ``I``, ``AccumulationBounds``, ``Integral``, ``Piecewise``,
    ``erf``, ... (generators count rejections by this name)."""
    try:
        from_sympy(expr)
    except UnsupportedExpression as err:
        return getattr(err, "head", str(err))
    return None


def simplify(expr: sp.Expr, timeout_s: float | None) -> tuple[str, sp.Expr]:
    """``(status, result)``: ``sp.simplify(expr)`` within ``timeout_s`` seconds.

    status is ``ok``, ``timeout`` or ``error`` (SymPy raised); on timeout and error the
    result is ``expr`` itself, as the released generators fall back to the unsimplified form.
    """
    try:
        with time_limit(timeout_s):
            return "ok", sp.simplify(expr)
    except TimeoutExpired:
        return "timeout", expr
    except Exception:  # noqa: BLE001 - SymPy raises many types; the status counts them
        return "error", expr


def clear_cache() -> None:
    """Empty SymPy's global cache (it grows without bound: generators call this every
    10,000 samples)."""
    _sympy_clear_cache()


def _depends(term: sp.Expr, variables: frozenset[sp.Symbol]) -> bool:
    return bool(term.free_symbols & variables) or term.has(AppliedUndef)


def remove_root_constants(expr: sp.Expr, variables: tuple[str, ...] = ("x",)) -> sp.Expr:
    """Drop the additive terms of a root sum that do not depend on ``variables``
    (``x**2 + 3 + c`` -> ``x**2`` with the default). A sum that is all constant, or an
    expression that is not a sum, is returned unchanged (a lone constant is kept)."""
    if not expr.is_Add:
        return expr
    names = frozenset(symbol(v) for v in variables)
    kept = [t for t in expr.args if _depends(t, names)]
    if not kept or len(kept) == len(expr.args):
        return expr
    return sp.Add(*kept)


def _occurrences(expr: sp.Basic, k: sp.Symbol) -> int:
    return sum(1 for node in sp.preorder_traversal(expr) if node == k)


def _pure(expr: sp.Basic, k: sp.Symbol) -> bool:
    """Free of every symbol but ``k`` (numbers included)."""
    return expr.free_symbols <= {k} and not expr.has(AppliedUndef)


def _split_term(term: sp.Expr, k: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``term = coefficient * rest`` with the coefficient made of k-pure factors."""
    factors = sp.Mul.make_args(term)
    coeff = [f for f in factors if _pure(f, k)]
    rest = [f for f in factors if not _pure(f, k)]
    return sp.Mul(*coeff), sp.Mul(*rest)


def _absorbable(piece: sp.Expr, k: sp.Symbol, total: int) -> bool:
    """``piece`` is a function of ``k`` alone holding every occurrence of ``k`` (so renaming
    ``piece`` to ``k`` keeps the solution family), not already ``k``, not constant in ``k``."""
    return (
        piece != k
        and k in piece.free_symbols
        and _pure(piece, k)
        and _occurrences(piece, k) == total
        and sp.diff(piece, k) != 0
    )


def _absorb_node(node: sp.Expr, k: sp.Symbol, total: int) -> sp.Expr | None:
    """The node with its k-only part renamed to ``k``, or None when no rule applies."""
    if _absorbable(node, k, total):
        return k
    if node.is_Mul:
        coeff, rest = _split_term(node, k)
        if _absorbable(coeff, k, total):
            return sp.Mul(k, rest)
    elif node.is_Add:
        groups: dict[sp.Expr, list[sp.Expr]] = {}
        for term in node.args:
            coeff, rest = _split_term(term, k)
            groups.setdefault(rest, []).append(coeff)
        for rest, coeffs in groups.items():
            piece = sp.Add(*coeffs)
            if _absorbable(piece, k, total):
                others = [t for t in node.args if _split_term(t, k)[1] != rest]
                return sp.Add(sp.Mul(k, rest), *others)
    return None


def reduce_coefficients(expr: sp.Expr, constants: tuple[str, ...] = ("c",)) -> sp.Expr:
    """Absorb constant subexpressions into the ODE constants, up to renaming each constant.

    For each constant ``k`` present, bottom-up, a piece that depends on ``k`` alone (no other
    symbol) and holds every occurrence of ``k`` is renamed ``k``: a whole subexpression
    (``sqrt(1/c)`` -> ``c``, ``c + 3`` -> ``c``), the k-only factors of a product
    (``2*c*x`` -> ``c*x``), or the summed coefficients of the terms of a sum that share their
    remaining factor (``x + x*tan(3) + c*x + 1`` -> ``c*x + 1``: the coefficient of ``x`` is
    ``1 + tan(3) + c``). A piece that shares ``k`` with the rest of the expression is left
    alone (``c*x + c + 3`` stays), as is one constant in ``k``. As in the paper, the renaming
    assumes the piece takes every value as ``k`` varies (``exp(c)`` -> ``c`` ignores the
    sign). Any symbol but ``k`` counts as a variable here.
    """
    for name in constants:
        k = symbol(name)
        total = _occurrences(expr, k)
        if not total:
            continue
        expr = _absorb_pass(expr, k, total)
    return expr


def _absorb_pass(expr: sp.Expr, k: sp.Symbol, total: int) -> sp.Expr:
    """One bottom-up pass of :func:`_absorb_node` (iterative post-order)."""
    done: dict[int, sp.Expr] = {}
    stack: list[tuple[sp.Expr, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if node.is_Atom or k not in node.free_symbols:
            done[id(node)] = node
            continue
        if not expanded:
            stack.append((node, True))
            stack.extend((arg, False) for arg in node.args)
            continue
        args = tuple(done[id(a)] for a in node.args)
        new = node.func(*args) if args != node.args else node
        absorbed = _absorb_node(new, k, total)
        if absorbed is not None:
            new, total = absorbed, 1
        done[id(node)] = new
    return done[id(expr)]
