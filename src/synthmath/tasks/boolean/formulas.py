"""Boolean formulas: prefix tokens, n-ary trees, a rule-based simplifier, and bit-packed evaluation.

A formula is written in prefix over ``and or xor`` (binary), ``not`` (unary) and the leaves
``x_0 x_1 ...``, ``True``, ``False``: (x_0 and not x_1) or x_2 is ``or and x_0 not x_1 x_2``.
Internally it is an n-ary tree of tuples: ``("var", j)``, ``("const", b)``, ``("not", child)``,
``("and", children)``, ``("or", children)``, ``("xor", children)``; chains of one operator are
flattened (arbitrary fan-in), and written back as right-nested binary chains
(``and a and b c``).

Evaluation is vectorised over rows: each variable's column of 0/1 values is packed into
uint64 words (row r is bit ``r % 64`` of word ``r // 64``), so one numpy bitwise operation
evaluates a gate on 64 rows at a time. In a full truth table of n variables, row r has
``x_j = (r >> j) & 1`` (x_0 is the least significant bit).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.core.errors import DecodeError

Tree = tuple
BINARY = ("and", "or", "xor")
TRUE, FALSE = ("const", True), ("const", False)


# ---- tokens <-> trees ------------------------------------------------------------------------
def var_token(j: int) -> str:
    return f"x_{j}"


def parse_prefix(tokens: Sequence[str], n_vars: int | None = None) -> Tree:
    """Prefix tokens -> a flattened n-ary tree; DecodeError for an unknown token, a variable
    ``x_j`` with ``j >= n_vars``, a missing operand or tokens left over."""
    tokens = list(tokens)
    if not tokens:
        raise DecodeError("empty formula")
    stack: list[Tree] = []
    for tok in reversed(tokens):
        if tok in BINARY:
            if len(stack) < 2:
                raise DecodeError(f"{tok!r} misses an operand")
            a, b = stack.pop(), stack.pop()
            stack.append(_join(tok, (a, b)))
        elif tok == "not":
            if not stack:
                raise DecodeError("'not' misses its operand")
            stack.append(("not", stack.pop()))
        elif tok in ("True", "False"):
            stack.append(("const", tok == "True"))
        elif tok.startswith("x_") and tok[2:].isdigit() and (tok == "x_0" or tok[2] != "0"):
            j = int(tok[2:])
            if n_vars is not None and j >= n_vars:
                raise DecodeError(f"{tok}: only {n_vars} variables")
            stack.append(("var", j))
        else:
            raise DecodeError(f"unknown token {tok!r}")
    if len(stack) != 1:
        raise DecodeError(f"{len(stack) - 1} operand(s) left over")
    return stack[0]


def _join(op: str, children: Sequence[Tree]) -> Tree:
    """``op`` over ``children``, absorbing children that are the same (associative) operator."""
    flat: list[Tree] = []
    for c in children:
        flat.extend(c[1] if c[0] == op else (c,))
    return (op, tuple(flat))


def to_prefix(tree: Tree) -> list[str]:
    """A tree as prefix tokens, n-ary gates as right-nested binary chains."""
    out: list[str] = []
    _prefix(tree, out)
    return out


def _prefix(tree: Tree, out: list[str]) -> None:
    kind = tree[0]
    if kind == "var":
        out.append(var_token(tree[1]))
    elif kind == "const":
        out.append("True" if tree[1] else "False")
    elif kind == "not":
        out.append("not")
        _prefix(tree[1], out)
    else:
        children = tree[1]
        for c in children[:-1]:
            out.append(kind)
            _prefix(c, out)
        _prefix(children[-1], out)


_PRECEDENCE = {"or": 1, "xor": 2, "and": 3}
_SYMBOL = {"or": " | ", "xor": " ^ ", "and": " & "}


def to_infix(tree: Tree) -> str:
    """A formula as Python/SymPy logic syntax: ``x_0 & ~x_1 | x_2`` (``~ & ^ |``)."""
    kind = tree[0]
    if kind == "var":
        return var_token(tree[1])
    if kind == "const":
        return "True" if tree[1] else "False"
    if kind == "not":
        inner = to_infix(tree[1])
        return f"~{inner}" if tree[1][0] in ("var", "const", "not") else f"~({inner})"
    parts = []
    for c in tree[1]:
        text = to_infix(c)
        if c[0] in _PRECEDENCE and _PRECEDENCE[c[0]] <= _PRECEDENCE[kind]:
            text = f"({text})"
        parts.append(text)
    return _SYMBOL[kind].join(parts)


def complexity(tree: Tree) -> int:
    """Number of gates (and, or, xor) of the flattened tree; ``not`` is free (the release)."""
    if tree[0] in ("var", "const"):
        return 0
    if tree[0] == "not":
        return complexity(tree[1])
    return 1 + sum(complexity(c) for c in tree[1])


def variables(tree: Tree) -> set[int]:
    if tree[0] == "var":
        return {tree[1]}
    if tree[0] == "const":
        return set()
    if tree[0] == "not":
        return variables(tree[1])
    return set().union(*(variables(c) for c in tree[1]))


def relabel(tree: Tree, mapping: Sequence[int] | dict[int, int]) -> Tree:
    """The tree with variable j renamed ``mapping[j]``."""
    kind = tree[0]
    if kind == "var":
        return ("var", mapping[tree[1]])
    if kind == "const":
        return tree
    if kind == "not":
        return ("not", relabel(tree[1], mapping))
    return (kind, tuple(relabel(c, mapping) for c in tree[1]))


# ---- rule-based simplification -------------------------------------------------------------
def size(tree: Tree) -> int:
    return len(to_prefix(tree))


def _key(tree: Tree) -> tuple:
    tokens = to_prefix(tree)
    return (len(tokens), tokens)


def negate(tree: Tree) -> Tree:
    if tree[0] == "not":
        return tree[1]
    if tree[0] == "const":
        return ("const", not tree[1])
    return ("not", tree)


def simplify_rules(tree: Tree) -> Tree:
    """Sound local rules, bottom-up: flattening, double negation, constant folding,
    idempotence, complements (a & ~a), absorption (a | (a & b) = a), canonical child order,
    and De Morgan where most children of a gate are negated and it shortens the formula."""
    kind = tree[0]
    if kind in ("var", "const"):
        return tree
    if kind == "not":
        return negate(simplify_rules(tree[1]))
    children = [simplify_rules(c) for c in tree[1]]
    if kind == "xor":
        return _xor(children)
    return _gate(kind, children)


def _xor(children: list[Tree]) -> Tree:
    parity, kept = False, []
    for c in _join("xor", children)[1]:
        if c[0] == "const":
            parity ^= c[1]
        else:
            kept.append(c)
    if not kept:
        return ("const", parity)
    out = kept[0] if len(kept) == 1 else ("xor", tuple(sorted(kept, key=_key)))
    return negate(out) if parity else out


def _gate(kind: str, children: list[Tree]) -> Tree:
    absorbing = kind == "or"  # or: True absorbs; and: False absorbs
    unique: dict[tuple, Tree] = {}
    for c in _join(kind, children)[1]:
        if c[0] == "const":
            if c[1] == absorbing:
                return c
            continue  # the neutral constant
        unique.setdefault(tuple(to_prefix(c)), c)
    keys = set(unique)
    if any(tuple(to_prefix(negate(c))) in keys for c in unique.values()):
        return ("const", absorbing)  # a & ~a = False, a | ~a = True
    dual = "and" if kind == "or" else "or"
    kept = []
    for key, c in unique.items():  # absorption: a | (a & b) = a
        if c[0] == dual and any(tuple(to_prefix(d)) in keys - {key} for d in c[1]):
            continue
        kept.append(c)
    if not kept:
        return ("const", not absorbing)
    if len(kept) == 1:
        return kept[0]
    kept.sort(key=_key)
    out = (kind, tuple(kept))
    negated = sum(c[0] == "not" for c in kept)
    if 2 * negated > len(kept):  # De Morgan: and(~a, ~b, c) = ~or(a, b, ~c) when shorter
        flipped = ("not", (dual, tuple(sorted((negate(c) for c in kept), key=_key))))
        if size(flipped) < size(out):
            return flipped
    return out


# ---- bit-packed evaluation ------------------------------------------------------------------
def pack_rows(bits: np.ndarray) -> np.ndarray:
    """0/1 values ``(rows, k)`` -> ``(k, words)`` uint64, row r at bit r % 64 of word r // 64."""
    bits = np.asarray(bits, dtype=np.uint8)
    rows = bits.shape[0]
    words = max(1, -(-rows // 64))
    packed = np.zeros((bits.shape[1], words * 8), dtype=np.uint8)
    if rows:
        packed[:, : -(-rows // 8)] = np.packbits(bits.T, axis=1, bitorder="little")
    return packed.view("<u8").astype(np.uint64)


def row_mask(rows: int) -> np.ndarray:
    """The words of :func:`pack_rows` with the bits of the ``rows`` real rows set."""
    return pack_rows(np.ones((rows, 1), dtype=np.uint8))[0]


def truth_table_columns(n_vars: int) -> np.ndarray:
    """Packed columns ``(n_vars, words)`` of the full table of ``2**n_vars`` rows."""
    r = np.arange(2**n_vars)
    return pack_rows((r[:, None] >> np.arange(n_vars)[None, :]) & 1)


def evaluate(tree: Tree, columns: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The formula on packed rows: ``columns[j]`` holds x_j; bits outside ``mask`` are 0."""
    kind = tree[0]
    if kind == "var":
        return columns[tree[1]] & mask
    if kind == "const":
        return mask.copy() if tree[1] else np.zeros_like(mask)
    if kind == "not":
        return ~evaluate(tree[1], columns, mask) & mask
    values = [evaluate(c, columns, mask) for c in tree[1]]
    out = values[0]
    op = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[kind]
    for v in values[1:]:
        out = op(out, v)
    return out


def evaluate_prefix(tokens: Sequence[str], columns: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`evaluate` on raw binary prefix tokens, iteratively (deep generator trees)."""
    stack: list[np.ndarray] = []
    for tok in reversed(tokens):
        if tok == "not":
            stack.append(~stack.pop() & mask)
        elif tok == "and":
            stack.append(stack.pop() & stack.pop())
        elif tok == "or":
            stack.append(stack.pop() | stack.pop())
        elif tok == "xor":
            stack.append(stack.pop() ^ stack.pop())
        elif tok in ("True", "False"):
            stack.append(mask.copy() if tok == "True" else np.zeros_like(mask))
        else:
            stack.append(columns[int(tok[2:])] & mask)
    return stack[0]


def popcount(words: np.ndarray) -> int:
    return int(np.bitwise_count(words).sum())


def unpack(words: np.ndarray, rows: int) -> np.ndarray:
    """Packed words -> ``(rows,)`` uint8 0/1 values."""
    return np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little")[:rows]
