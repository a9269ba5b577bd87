"""``synthmath predict RUN_DIR 1,1,2,3,5,8,13``: a trained model's recurrence for a user's terms.

The terms are given directly (comma- or space-separated) or as a file holding them. Each beam
hypothesis is shown as ``u_n = <infix>`` (``u_k`` = u_(n-k)) with whether it reproduces the
given terms (rolled from the first terms it needs) and the next terms it predicts; numeric
models show their predicted terms.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from synthmath.core.errors import ConfigError, DecodeError
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.operators import infix
from synthmath.tasks.recurrence.generator import format_term, roll, shift

_SPLIT = re.compile(r"[,\s]+")


def read_terms(text_or_path: str, mode: str, min_terms: int, max_terms: int) -> list:
    """The terms written in ``text_or_path`` (a file if one exists there); a one-line
    :class:`ConfigError` for a non-numeric term, a float in integer mode, or too few/many."""
    path = Path(text_or_path)
    where = str(text_or_path)
    text = path.read_text(encoding="utf-8") if path.is_file() else text_or_path
    items = [t for t in _SPLIT.split(text.strip()) if t]
    values: list = []
    for item in items:
        try:
            value = int(item) if mode == "int" else float(item)
        except ValueError:
            kind = "an integer" if mode == "int" else "a number"
            raise ConfigError(f"{where}: term {item!r} is not {kind} (mode {mode})") from None
        if mode == "float" and not math.isfinite(value):
            raise ConfigError(f"{where}: term {item!r} is not finite")
        values.append(value)
    if len(values) < min_terms:
        raise ConfigError(
            f"{where}: {len(values)} terms; the model needs at least {min_terms} (min_len)"
        )
    if len(values) > max_terms:
        raise ConfigError(f"{where}: {len(values)} terms; the model reads at most {max_terms}")
    return values


def predict_terms(model, task, text_or_path: str, beam_size: int = 1) -> str:
    """The model's hypotheses for the terms of ``text_or_path``, as text to print."""
    from synthmath.eval.predict import predict_nbest
    from synthmath.train.batches import EncodedSet

    if task.name != "recurrence":
        raise ConfigError(f"{text_or_path}: terms need a recurrence run, not {task.name!r}")
    mode, n_pred = task.mode, task.params["n_predict"]
    given = read_terms(text_or_path, mode, task.params["min_len"], task.params["max_len"])
    raw = {
        "terms": np.array([" ".join(format_term(t, mode) for t in given)], dtype=str),
        "n_input": np.array([len(given)], dtype=np.int32),
        "tree": np.array(["n"], dtype=str),
        "degree": np.array([0], dtype=np.int32),
        "n_ops": np.array([0], dtype=np.int32),
    }
    hyps = predict_nbest(model, task, EncodedSet(task, raw), beam_size=beam_size)[0]
    lines = [f"terms: {', '.join(format_term(t, mode) for t in given)}"]
    for k, tokens in enumerate(hyps):
        lines += [f"beam {k + 1}:"] if len(hyps) > 1 else []
        lines += [f"  {line}" for line in describe(task, given, tokens, n_pred)]
    return "\n".join(lines) + "\n"


def describe(task, given: list, tokens, n_pred: int) -> list[str]:
    """Lines describing one hypothesis for the terms ``given``."""
    mode = task.mode
    if task.params["output"] == "numeric":
        try:
            values = task.decode_terms(tokens, n_pred)
        except DecodeError as err:
            return [f"does not decode ({err}): {' '.join(tokens)}"]
        return [f"next terms: {', '.join(format_term(v, mode) for v in values)}"]
    try:
        tree = task.tgt_codec.parse(list(tokens))
        k = shift(tree)
    except (ExprParseError, ValueError) as err:
        return [f"not a recurrence ({err}): {' '.join(tokens)}"]
    lines = [f"u_n = {infix(tree)}   (u_k = u_(n-k); prefix: {' '.join(tree)})"]
    start = max(k, 1)
    if start < len(given):
        rebuilt = roll(tree, given[:start], len(given) - start, mode)
        fits = not isinstance(rebuilt, str) and _close(rebuilt, given[start:], mode)
        lines.append(f"reproduces the given terms from term {start + 1}: {'yes' if fits else 'no'}")
    ahead = roll(tree, given, n_pred, mode)
    if isinstance(ahead, str):
        lines.append(f"next terms: cannot roll forward ({ahead})")
    else:
        lines.append(f"next terms: {', '.join(format_term(v, mode) for v in ahead)}")
    return lines


def _close(pred: list, true: list, mode: str) -> bool:
    if mode == "int":
        return pred == true
    return all(abs(p - t) <= 1e-10 * max(abs(t), 1e-300) for p, t in zip(pred, true))
