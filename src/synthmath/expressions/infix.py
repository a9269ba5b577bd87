"""Infix text -> raw prefix trees, by our own tokeniser and precedence-climbing parser.

Nothing here hands a string to SymPy or Python (no ``sympify``, ``parse_expr``, ``eval``):
the text is split into tokens by one regular expression and parsed into a raw tree of
:mod:`synthmath.expressions.operators`. Grammar (Python's precedences)::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := ("-" | "+") unary | power
    power := atom (("**" | "^") unary)?          right-associative: 2**-x, -x**2 = -(x**2)
    atom  := integer | decimal | name | function "(" expr ")" | "(" expr ")"

Which names are leaves is the caller's choice (:class:`Names`): variables (each mapped to an
engine variable token, e.g. ``x0`` -> ``x_0``), symbolic constants (kept as placeholder tokens
such as ``c_0`` that the caller later replaces by numbers; a placeholder is not an
engine leaf, so a tree holding one does not compile) and the named constants ``pi``, ``E``,
``EulerGamma``. Functions are the engine's unary operators by their SymPy names (``sqrt exp
log Abs sin cos ... acsch``) plus ``ln``, ``abs`` and numpy's ``arcsin`` ... ``arctanh``;
a caller can restrict them. Digits only make an integer (``i3``), anything else with a point
or an exponent a float (``3.`` -> ``f3.0``); -k for a literal k is the literal ``i-k`` /
``f-k``, any other negation ``mul i-1 (.)`` (the engine has no unary minus). ``x^2`` is
``pow x i2`` (no rewriting to ``pow2``).

:func:`parse_system` reads ``|``-separated components (``x_1 | -x_0``), one tree each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    Tree,
    float_token,
    int_token,
    is_float,
    is_int,
    is_leaf,
    is_variable,
)

#: most characters of one expression, and the deepest nesting of parentheses, signs and
#: powers (each level costs at most 6 Python frames, so 100 stays far below the recursion limit)
MAX_CHARS = 10_000
MAX_DEPTH = 100

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[-+*/^()]))"
)
_INTEGER = re.compile(r"^\d+$")
_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def _function_table() -> dict[str, str]:
    """SymPy function name -> unary operator, for every unary operator written ``f({0})``."""
    table = {}
    for name, op in OPERATORS.items():
        m = re.match(r"^([A-Za-z]+)\(\{0\}\)$", op.infix)
        if op.arity == 1 and m:
            table[m.group(1)] = name
    table["ln"] = "ln"
    table["abs"] = "abs"
    for short in ("sin", "cos", "tan", "sinh", "cosh", "tanh"):
        table[f"arc{short}"] = f"a{short}"
    return table


#: every function name the parser knows -> its unary operator
FUNCTIONS: Mapping[str, str] = MappingProxyType(_function_table())
#: named constants by their infix name: ``pi``, ``E``, ``EulerGamma``
NAMED_CONSTANTS: Mapping[str, str] = MappingProxyType(
    {infix: token for token, (_, _, infix) in CONSTANTS.items()}
)


class InfixError(ValueError):
    """The text is not an expression this parser reads; the message says where and why."""


@dataclass(frozen=True)
class Names:
    """The names an expression may use.

    ``variables``: text name -> engine variable token (a plain list of names maps each to
    itself, which must then be an engine variable such as ``x_0``). ``constants``: names of
    symbolic constants, kept as placeholder tokens of the same name. ``functions``: function
    name -> unary operator (default: all of :data:`FUNCTIONS`). ``named_constants``: whether
    ``pi``, ``E`` and ``EulerGamma`` are read. A name in two roles is an error.
    """

    variables: Mapping[str, str] | Iterable[str]
    constants: Iterable[str] = frozenset()
    functions: Mapping[str, str] = field(default_factory=lambda: FUNCTIONS)
    named_constants: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.variables, Mapping):
            object.__setattr__(self, "variables", {name: name for name in self.variables})
        object.__setattr__(self, "constants", frozenset(self.constants))
        for text, token in self.variables.items():
            if not is_variable(token):
                raise ValueError(f"Names: {text!r} maps to {token!r}, not an engine variable")
        for name in self.constants:
            if not _PLACEHOLDER.match(name) or is_leaf(name) or name in OPERATORS:
                raise ValueError(f"Names: constant {name!r} must be a name the engine lacks")
        for name, op in self.functions.items():
            if OPERATORS.get(op) is None or OPERATORS[op].arity != 1:
                raise ValueError(f"Names: function {name!r} maps to {op!r}, not a unary operator")
        roles = [set(self.variables), set(self.constants), set(self.functions)]
        if self.named_constants:
            roles.append(set(NAMED_CONSTANTS))
        seen: set[str] = set()
        for names in roles:
            clash = seen & names
            if clash:
                raise ValueError(f"Names: {', '.join(sorted(clash))} used in two roles")
            seen |= names

    def leaf(self, name: str) -> str | None:
        """The raw token of a leaf name, or None if the name is not a leaf here."""
        if name in self.variables:
            return self.variables[name]
        if name in self.constants:
            return name
        if self.named_constants and name in NAMED_CONSTANTS:
            return NAMED_CONSTANTS[name]
        return None


def indexed_names(
    dim: int, n_constants: int = 0, variable: str = "x", constant: str = "c"
) -> Names:
    """Variables ``x_0 .. x_{dim-1}`` (also written ``x0``) and constants ``c_0 ..``."""
    variables = {}
    for k in range(dim):
        variables[f"{variable}_{k}"] = f"x_{k}"
        variables[f"{variable}{k}"] = f"x_{k}"
    return Names(variables, frozenset(f"{constant}_{k}" for k in range(n_constants)))


def tokenize(text: str) -> list[tuple[str, str]]:
    """``[(kind, text)]`` with kind ``num``, ``name`` or ``op``; InfixError at an unknown
    character or for an empty text."""
    if len(text) > MAX_CHARS:
        raise InfixError(f"longer than {MAX_CHARS} characters")
    out, pos = [], 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            bad = len(stripped) - len(stripped[pos:].lstrip())  # past the spaces
            raise InfixError(f"unexpected character {stripped[bad]!r} at position {bad}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    if not out:
        raise InfixError("empty expression")
    return out


class _Parser:
    """Precedence climbing over a token list; ``depth`` bounds the recursion."""

    def __init__(self, tokens: list[tuple[str, str]], names: Names):
        self.tokens = tokens
        self.names = names
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise InfixError("the expression ends where an operand was expected")
        self.i += 1
        return self.tokens[self.i - 1]

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InfixError(f"nested deeper than {MAX_DEPTH} levels")

    def expr(self) -> Tree:
        self.enter()
        left = self.term()
        while self.peek() in ("+", "-"):
            op = "add" if self.take()[1] == "+" else "sub"
            left = (op, *left, *self.term())
        self.depth -= 1
        return left

    def term(self) -> Tree:
        left = self.unary()
        while self.peek() in ("*", "/"):
            op = "mul" if self.take()[1] == "*" else "div"
            left = (op, *left, *self.unary())
        return left

    def unary(self) -> Tree:
        if self.peek() not in ("-", "+"):
            return self.power()
        sign = self.take()[1]
        self.enter()
        operand = self.unary()
        self.depth -= 1
        if sign == "+":
            return operand
        if len(operand) == 1 and is_int(operand[0]):
            return (int_token(-int(operand[0][1:])),)
        if len(operand) == 1 and is_float(operand[0]):
            return (float_token(-float(operand[0][1:])),)
        return ("mul", "i-1", *operand)

    def power(self) -> Tree:
        base = self.atom()
        if self.peek() in ("**", "^"):
            self.take()
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return ("pow", *base, *exponent)
        return base

    def atom(self) -> Tree:
        kind, text = self.take()
        if kind == "num":
            if _INTEGER.match(text):
                return (int_token(int(text)),)
            return (float_token(float(text)),)
        if kind == "name":
            if text in self.names.functions and self.peek() != "(":
                raise InfixError(f"function {text!r} without '(': write {text}(...)")
            if self.peek() == "(":
                op = self.names.functions.get(text)
                if op is None:
                    allowed = ", ".join(sorted(self.names.functions))
                    raise InfixError(f"unknown function {text!r}; allowed: {allowed}")
                return (op, *self.group())
            token = self.names.leaf(text)
            if token is None:
                raise InfixError(f"unknown name {text!r}{self._allowed_names()}")
            return (token,)
        if text == "(":
            self.i -= 1
            return self.group()
        raise InfixError(f"unexpected {text!r} where an operand was expected")

    def group(self) -> Tree:
        if self.take()[1] != "(":
            raise InfixError("expected '('")
        inner = self.expr()
        if self.peek() != ")":
            found = self.peek()
            raise InfixError(f"expected ')' but found {found!r}" if found else "missing ')'")
        self.take()
        return inner

    def _allowed_names(self) -> str:
        names = [*self.names.variables, *sorted(self.names.constants)]
        if not names:
            return ""
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        return f" (names: {shown})"


def parse_infix(text: str, names: Names) -> Tree:
    """The raw prefix tree of one infix expression; :class:`InfixError` naming the cause."""
    if not isinstance(text, str):
        raise InfixError(f"expected a string, got {type(text).__name__}")
    parser = _Parser(tokenize(text), names)
    tree = parser.expr()
    if parser.i != len(parser.tokens):
        raise InfixError(f"unexpected {parser.tokens[parser.i][1]!r} after a complete expression")
    return tree


def parse_system(text: str, names: Names, dim: int | None = None) -> tuple[Tree, ...]:
    """One tree per ``|``-separated component (``x_1 | -x_0``); with ``dim``, the number of
    components must be ``dim``. Errors name the component (0-based)."""
    if not isinstance(text, str):
        raise InfixError(f"expected a string, got {type(text).__name__}")
    parts = text.split("|")
    if dim is not None and len(parts) != dim:
        raise InfixError(f"{len(parts)} components separated by '|', expected {dim}")
    trees = []
    for k, part in enumerate(parts):
        try:
            trees.append(parse_infix(part, names))
        except InfixError as err:
            raise InfixError(f"component {k}: {err}") from None
    return tuple(trees)


def placeholders(tree: Iterable[str]) -> list[str]:
    """The tokens of ``tree`` that are neither operators nor engine leaves, first occurrence
    order (the symbolic constants of a skeleton)."""
    return list(dict.fromkeys(t for t in tree if t not in OPERATORS and not is_leaf(t)))
