"""Token vocabularies; the special tokens ``<pad> <s> </s>`` always take ids 0, 1, 2."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from synthmath.core.errors import DecodeError

PAD, BOS, EOS = 0, 1, 2


SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")


class Vocab:
    """An ordered token list; the special tokens ``<pad> <s> </s>`` always take ids 0, 1, 2."""

    def __init__(self, tokens: Iterable[str]):
        self.tokens: list[str] = list(SPECIAL_TOKENS)
        seen = set(self.tokens)
        for tok in tokens:
            if tok not in seen:
                seen.add(tok)
                self.tokens.append(tok)
        self.index: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def offset(self, token: str) -> int:
        """Id of ``token``; encodings use it as the base of a contiguous id range."""
        return self.index[token]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        try:
            return [self.index[t] for t in tokens]
        except KeyError as err:
            raise DecodeError(f"unknown token {err.args[0]!r}") from None

    def padded_ids(self, seqs: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Token sequences as ``(ids (n, L) int32 padded with PAD, lengths (n,) int64)``, L the
        longest (at least 1); KeyError for a token outside the vocabulary."""
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        ids = np.full((len(seqs), max(1, int(lengths.max(initial=1)))), PAD, dtype=np.int32)
        index = self.index
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = [index[t] for t in s]
        return ids, lengths

    def to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Token strings of ``ids``, stopping at the first EOS and skipping PAD/BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            out.append(self.tokens[i])
        return out
