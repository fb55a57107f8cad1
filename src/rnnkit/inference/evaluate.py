"""Held-out evaluation: summed nats and target counts over every token, and a unigram baseline.

Metrics are sums and counts divided once by the caller: loss = nats / count, ppl = exp(loss),
bits per character = loss / ln 2. Targets are the tokens of each sentence plus its `</s>`;
`<s>` is context only and never a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..text import Vocab


@dataclass
class EvalResult:
    nats: float  # summed negative log-likelihood, natural log
    count: int  # number of predicted tokens
    oov: int = 0  # of those, how many are <unk> (unknown to the vocabulary)

    @property
    def loss(self) -> float:
        return self.nats / self.count if self.count else float("nan")

    @property
    def ppl(self) -> float:
        return math.exp(self.loss) if self.count else float("nan")

    @property
    def bpc(self) -> float:
        return self.loss / math.log(2)


def stream_columns(ids: np.ndarray, vocab: Vocab, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole stream as B time-major columns, the last padded with mask 0 so no target is lost.

    Returns x, y, mask of shape (L, B) with L = ceil((N - 1) / B).
    """
    inputs, targets = ids[:-1], ids[1:]
    n = len(targets)
    B = max(1, min(batch_size, n))
    L = -(-n // B)
    pad = L * B - n
    x = np.concatenate([inputs, np.full(pad, vocab.eos_id, dtype=ids.dtype)]).reshape(B, L).T  # (L, B)
    y = np.concatenate([targets, np.full(pad, vocab.eos_id, dtype=ids.dtype)]).reshape(B, L).T
    mask = np.concatenate([(targets != vocab.bos_id), np.zeros(pad, dtype=bool)]).reshape(B, L).T
    return np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(mask.astype(np.float32))


def _masked_sum(model, x, y, mask, hidden, seq_len: int, unk_id: int) -> EvalResult:
    """Sum ln p over the mask, walking windows of seq_len and carrying the hidden."""
    res = EvalResult(0.0, 0)
    for t0 in range(0, x.shape[0], seq_len):
        sl = slice(t0, t0 + seq_len)
        m = mask[sl].astype(bool)
        logp, hidden = model.token_logprobs(x[sl], y[sl], hidden, mask=m)
        res.nats -= float(logp[m].sum())
        res.count += int(m.sum())
        res.oov += int((y[sl][m] == unk_id).sum())
    return res


def evaluate_stream(model, ids: np.ndarray, vocab: Vocab, batch_size: int = 10, seq_len: int = 128) -> EvalResult:
    """Stream evaluation (hidden carried across sentences), as PTB results are reported."""
    if len(ids) < 2:
        return EvalResult(0.0, 0)
    x, y, mask = stream_columns(ids, vocab, batch_size)
    return _masked_sum(model, x, y, mask, model.init_hidden(x.shape[1]), seq_len, vocab.unk_id)


def evaluate_sentences(model, encoded: list[np.ndarray], vocab: Vocab, batch_size: int = 32, seq_len: int = 128) -> EvalResult:
    """Sentence evaluation: hidden reset per sentence, `<s>` as context, `</s>` predicted."""
    from ..data import sentence_batches
    from .parallel import map_batches

    total = EvalResult(0.0, 0)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths share a batch

    def batch_sum(batch) -> EvalResult:
        x, y, mask = batch
        return _masked_sum(model, x, y, mask, model.init_hidden(x.shape[1]), seq_len, vocab.unk_id)

    batches = sentence_batches([encoded[i] for i in order], vocab, batch_size, rng=None)
    for res in map_batches(model, batch_sum, batches):  # summed in batch order: same result either way
        total.nats, total.count, total.oov = total.nats + res.nats, total.count + res.count, total.oov + res.oov
    return total


def evaluate_encoded(model, encoded: list[np.ndarray], vocab: Vocab, mode: str, batch_size: int = 10,
                     seq_len: int = 128) -> EvalResult:
    """Sentences as ids, in stream mode (hidden carried across them) or sentence mode (reset)."""
    if mode == "stream":
        from ..data import stream_ids

        return evaluate_stream(model, stream_ids(encoded, vocab), vocab, batch_size, seq_len)
    return evaluate_sentences(model, encoded, vocab, batch_size, seq_len)


def unigram_baseline(train_ids: np.ndarray, eval_ids: np.ndarray, vocab: Vocab) -> EvalResult:
    """Add-one unigram model estimated on training targets, evaluated on the held-out targets.

    Both id arrays are streams as made by `rnnkit.data.stream_ids`; `<s>` is never a target.
    """
    K = len(vocab)
    counts = np.bincount(train_ids[train_ids != vocab.bos_id], minlength=K).astype(np.float64) + 1.0
    counts[vocab.bos_id] = 0.0
    logp = np.log(counts / counts.sum(), where=counts > 0, out=np.full(K, -np.inf))
    targets = eval_ids[1:]
    targets = targets[targets != vocab.bos_id]
    return EvalResult(float(-logp[targets].sum()), len(targets))
