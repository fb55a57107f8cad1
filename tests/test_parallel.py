"""Independent batches on worker threads: same results, in order, thread count restored."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest

from rnnkit.config import ModelConfig
from rnnkit.inference.parallel import map_batches


class Workers:
    """A stand-in model that asks for n workers and records which threads ran the batches."""

    def __init__(self, n):
        self.n, self.threads = n, set()

    @contextlib.contextmanager
    def batch_workers(self):
        yield self.n


@pytest.mark.parametrize("n", [1, 3])
def test_map_batches_keeps_order(n):
    m = Workers(n)

    def fn(i):
        m.threads.add(threading.get_ident())
        time.sleep(0.002 * ((7 * i) % 5))  # finish out of order
        return i * i

    assert list(map_batches(m, fn, iter(range(40)))) == [i * i for i in range(40)]
    assert (len(m.threads) > 1) == (n > 1)
    assert list(map_batches(object(), fn, range(5))) == [0, 1, 4, 9, 16]  # no batch_workers: serial


def test_map_batches_error_propagates():
    def fn(i):
        if i == 5:
            raise ValueError("batch 5")
        return i

    with pytest.raises(ValueError, match="batch 5"):
        list(map_batches(Workers(2), fn, range(20)))


def test_torch_scoring_in_parallel_is_bitwise_serial_and_restores_threads(monkeypatch):
    torch = pytest.importorskip("torch")
    from rnnkit.inference.score import score_sentences
    from rnnkit.params import init_params
    from rnnkit.text import Vocab, WordTokenizer
    from rnnkit.torch_engine import RNNLM

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    sents = [" ".join(rng.choice(words, int(rng.integers(0, 30)))) for _ in range(90)]
    tok = WordTokenizer(split="whitespace")
    vocab = Vocab.build([tok.tokenize(s) for s in sents])
    cfg = ModelConfig(vocab_size=len(vocab), cell="lstm", embed_dim=8, hidden_dim=8, num_layers=2)
    model = RNNLM(cfg, init_params(cfg, seed=0))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        par = score_sentences(model, vocab, tok, sents, batch_size=7)
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(RNNLM, "batch_workers", lambda self: contextlib.nullcontext(1))
        ser = score_sentences(model, vocab, tok, sents, batch_size=7)
    finally:
        torch.set_num_threads(before)
    assert [t.logprob for s in par for t in s.tokens] == [t.logprob for s in ser for t in s.tokens]

    def boom(rows):
        raise RuntimeError("inside a batch")

    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="inside a batch"):
            list(map_batches(model, boom, [[0], [1]]))
        assert torch.get_num_threads() == 2  # restored on error too
    finally:
        torch.set_num_threads(before)
