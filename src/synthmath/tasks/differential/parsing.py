"""User-written equations: infix text -> raw trees, by our own tokeniser and parser.

Nothing here hands a string to SymPy or Python (no ``sympify``, ``parse_expr``, ``eval``):
the text is split into tokens by one regular expression and parsed by precedence climbing
into a raw prefix tree (:mod:`synthmath.expressions.operators`). Grammar::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := ("-" | "+") unary | power
    power := atom (("**" | "^") unary)?          right-associative: 2**-x, -x**2 = -(x**2)
    atom  := integer | decimal | name | function "(" expr ")" | "(" expr ")"

Names: state variables ``x0``/``x_0``, controls ``u0``/``u_0``, time ``t``, the constants
``pi`` and ``E``; functions: the analytic unary operators by their SymPy names (``sqrt exp log sin cos
tan asin acos atan sinh ...``; ``ln`` too). -k for a literal k is the integer ``i-k``; any
other negation is ``mul i-1 (.)``, as the engine writes it.
"""

from __future__ import annotations

import re

from synthmath.expressions.operators import CONSTANTS, OPERATORS, Tree, float_token, int_token
from synthmath.tasks.differential.systems import ANALYTIC

#: most characters of one equation, and the deepest nesting of parentheses and operators
MAX_CHARS = 10_000
MAX_DEPTH = 200

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[-+*/^()]))"
)
_STATE = re.compile(r"^x_?(\d+)$")
_CONTROL = re.compile(r"^u_?(\d+)$")

#: function name (SymPy's infix) -> operator, for the analytic unary operators
FUNCTIONS: dict[str, str] = {
    op.infix.split("(")[0]: name
    for name, op in OPERATORS.items()
    if op.arity == 1 and name in ANALYTIC and re.match(r"^[a-z]+\(\{0\}\)$", op.infix)
}
FUNCTIONS["ln"] = "ln"
_CONSTANT_NAMES = {infix: token for token, (_, _, infix) in CONSTANTS.items()}


class InfixError(ValueError):
    """The text is not an equation this parser reads; the message says where and why."""


def tokenize(text: str) -> list[tuple[str, str]]:
    """``[(kind, text)]`` with kind ``num``, ``name`` or ``op``; InfixError at an unknown
    character."""
    if len(text) > MAX_CHARS:
        raise InfixError(f"longer than {MAX_CHARS} characters")
    out, pos = [], 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise InfixError(f"unexpected character {stripped[pos]!r} at position {pos}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    if not out:
        raise InfixError("empty equation")
    return out


def variable_token(name: str) -> str | None:
    """``x3``/``x_3`` -> ``x_3``, ``u1``/``u_1`` -> ``u_1``, else None."""
    for pattern, head in ((_STATE, "x"), (_CONTROL, "u")):
        m = pattern.match(name)
        if m:
            return f"{head}_{int(m.group(1))}"
    return None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise InfixError("the equation ends where an operand was expected")
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
        if self.peek() in ("-", "+"):
            sign = self.take()[1]
            self.enter()
            operand = self.unary()
            self.depth -= 1
            if sign == "+":
                return operand
            if len(operand) == 1 and operand[0].startswith("i"):
                return (int_token(-int(operand[0][1:])),)
            if len(operand) == 1 and operand[0].startswith("f"):
                return (float_token(-float(operand[0][1:])),)
            return ("mul", "i-1", *operand)
        return self.power()

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
            if re.fullmatch(r"\d+", text):
                return (int_token(int(text)),)
            return (float_token(float(text)),)
        if kind == "name":
            if self.peek() == "(":
                if text not in FUNCTIONS:
                    raise InfixError(
                        f"unknown function {text!r}; allowed: {', '.join(sorted(FUNCTIONS))}"
                    )
                return (FUNCTIONS[text], *self.group())
            var = "t" if text == "t" else variable_token(text)
            if var is not None:
                return (var,)
            if text in _CONSTANT_NAMES:
                return (_CONSTANT_NAMES[text],)
            raise InfixError(f"unknown name {text!r} (variables: x0, x1, ...; controls: u0, ...)")
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


def parse_infix(text: str) -> Tree:
    """The raw prefix tree of one infix equation; :class:`InfixError` naming the cause."""
    if not isinstance(text, str):
        raise InfixError(f"expected a string, got {type(text).__name__}")
    parser = _Parser(tokenize(text))
    tree = parser.expr()
    if parser.i != len(parser.tokens):
        raise InfixError(f"unexpected {parser.tokens[parser.i][1]!r} after a complete expression")
    return tree


def display_infix(infix_text: str) -> str:
    """The engine's infix (variables ``x_3``, ``u_1``) with the CLI's names ``x3``, ``u1``."""
    return re.sub(r"\b([xu])_(\d+)\b", r"\1\2", infix_text)
