"""Vocabularies: special ids, padded id arrays."""

import numpy as np
import pytest

from synthmath.core.vocab import BOS, EOS, PAD, Vocab


def test_padded_ids_pad_to_the_longest_and_keep_lengths():
    vocab = Vocab(["a", "b", "c"])
    assert (vocab.index["<pad>"], vocab.index["<s>"], vocab.index["</s>"]) == (PAD, BOS, EOS)
    ids, lengths = vocab.padded_ids([["a", "b", "c"], [], ["c"]])
    assert ids.dtype == np.int32 and lengths.dtype == np.int64
    np.testing.assert_array_equal(lengths, [3, 0, 1])
    a, b, c = (vocab.index[t] for t in "abc")
    np.testing.assert_array_equal(ids, [[a, b, c], [PAD, PAD, PAD], [c, PAD, PAD]])
    empty, none = vocab.padded_ids([])
    assert empty.shape == (0, 1) and none.shape == (0,)
    with pytest.raises(KeyError):
        vocab.padded_ids([["d"]])
