"""The input side shared by the regression tasks whose input is a set of points (``symreg``:
(x, y) rows; ``odeformer``: (t, x) rows): every row's numbers in the codec's float encoding
(``P10000``: 3 tokens a number), one encoder position per row, unused coordinates and rows
PAD. Subclasses set ``codec`` and ``config.max_dim`` and define ``_tgt_vocab``.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from synthmath.core.task import NBestTask
from synthmath.core.vocab import PAD, Vocab


class PointsTask(NBestTask):
    """A task whose input is ``max_dim + 1`` numbers per point (see the module docstring)."""

    input_kind = "point_set"

    @cached_property
    def _src_vocab(self) -> Vocab:
        return Vocab(self.codec.encoding.vocabulary())

    def src_vocab(self) -> Vocab:
        return self._src_vocab

    def tgt_vocab(self) -> Vocab:
        return self._tgt_vocab

    def tokens_per_point(self) -> int:
        return self.codec.encoding.tokens_per_number * (self.config.max_dim + 1)

    def encode_rows(
        self, values: np.ndarray, unused: np.ndarray, counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Padded id arrays of ``values`` (n, width, max_dim + 1): ``unused`` (n, max_dim + 1)
        marks the coordinates of each example that are PAD; rows at or past ``counts`` are PAD.
        Returns (ids (n, width, tokens_per_point) int32, counts)."""
        vocab = self._src_vocab
        table = np.array([vocab.index[t] for t in self.codec.encoding.vocabulary()])
        ids = table[self.codec.encoding.encode_ids(values)]  # (n, P, D + 1, tokens)
        ids[np.broadcast_to(unused[:, None, :], ids.shape[:3])] = PAD
        width = values.shape[1]
        ids = ids.reshape(len(counts), width, -1)
        ids[np.arange(width)[None, :] >= counts[:, None]] = PAD
        return ids.astype(np.int32), counts
