"""Evaluating from id files: evaluate_file equals evaluating the sentences in memory, the
unigram baseline and sentence batches from offsets equal those from arrays.

Every check compares with a reference that does not go through rnnkit.data.encode.
"""

from __future__ import annotations

import numpy as np
import pytest

import id_files_kit
import rnnkit
from conftest import make_model_dir
from id_files_kit import random_lines, write
from rnnkit.data import EncodedIds, read_sentences, sentence_batches
from rnnkit.inference.evaluate import EvalResult, evaluate_encoded, evaluate_file, unigram_baseline
from rnnkit.text import Vocab

# the kit's fixture (autouse: every test here gets an id cache of its own, RNNKIT_CACHE)
cache = id_files_kit.cache


# --------------------------------------------------------------------------- evaluating a file


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("idm") / "model", cell="gru"))


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_evaluate_file_equals_evaluating_the_sentences_in_memory(lm, tmp_path, mode):
    path = write(tmp_path / "eval.txt", random_lines(120, seed=10) + ["zebra crossing ."])
    sents = read_sentences(path)
    enc = [np.array(lm.vocab.encode(lm.tokenize(s)), dtype=np.int64) for s in sents]
    ref = evaluate_encoded(lm.model, enc, lm.vocab, mode, batch_size=3, seq_len=16)
    got = evaluate_file(lm.model, lm.vocab, lm.tokenizer_config, path, mode, batch_size=3, seq_len=16)
    assert (got.nats, got.count, got.oov) == (ref.nats, ref.count, ref.oov) and got.oov > 0


def test_unigram_baseline_from_counts_is_the_one_from_streams():
    vocab = Vocab(["<unk>", "<s>", "</s>", "a", "b", "c"])
    train = [np.array([3, 3, 4]), np.array([5]), np.array([], dtype=np.int64)]
    valid = [np.array([3, 0, 4, 4])]
    a = unigram_baseline(EncodedIds.from_arrays(train, vocab), EncodedIds.from_arrays(valid, vocab), vocab)
    # by hand: training targets a a b </s> c </s> </s> (+1 each, <unk> 0+1): 12 in all
    p = {3: 3 / 12, 0: 1 / 12, 4: 2 / 12, 2: 4 / 12}
    want = -sum(np.log(p[i]) for i in (3, 0, 4, 4, 2))
    assert a.count == 5 and a.nats == pytest.approx(want, rel=1e-12)
    b = unigram_baseline(EncodedIds.from_arrays(train, vocab).ids, EncodedIds.from_arrays(valid, vocab).ids, vocab)
    assert isinstance(b, EvalResult) and b.nats == pytest.approx(a.nats, rel=1e-12) and b.count == a.count


def test_sentence_batches_from_offsets_are_those_from_arrays():
    vocab = Vocab(["<unk>", "<s>", "</s>", "a", "b"])
    rng = np.random.default_rng(11)
    enc = [rng.integers(3, 5, rng.integers(0, 9)) for _ in range(77)]
    ids = EncodedIds.from_arrays(enc, vocab)
    for seed in (None, 3):
        for (x, y, m), (rx, ry, rm) in zip(sentence_batches(ids, vocab, 6, rng=seed), sentence_batches(enc, vocab, 6, rng=seed),
                                           strict=True):
            assert np.array_equal(x, rx) and np.array_equal(y, ry) and np.array_equal(m, rm)
