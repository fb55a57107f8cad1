"""Held-out evaluation: summed nats and target counts over every token, and a unigram baseline.

Metrics are sums and counts divided once by the caller: loss = nats / count, ppl = exp(loss),
bits per character = loss / ln 2. Targets are the tokens of each sentence plus its `</s>`;
`<s>` is context only and never a target.

Nothing here copies the whole data: a stream (any integer array, the memory map of an id file
too) is gathered window by window from its columns, and sentence mode pads one length-sorted
batch at a time. `evaluate_file` encodes a file with the model's vocabulary into the id cache
(`rnnkit.data.encode_source`) and evaluates it from the memory map.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import TokenizerConfig
from ..data import (
    EncodedIds,
    count_ids,
    encode_source,
    padded_batches,
    sentence_lengths,
    stream_ids,
)
from ..data.batching import RELEASE_EVERY, release_pages
from ..text import Vocab

Window = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y int64 (t, B); mask bool (t, B)


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


def stream_windows(ids: np.ndarray, vocab: Vocab, batch_size: int, seq_len: int) -> Iterator[Window]:
    """The stream's N - 1 targets as B = min(batch_size, N - 1) time-major columns of
    L = ceil((N - 1) / B) targets each (column b holds targets [b*L, (b+1)*L); the last one(s)
    padded with mask 0 so no target is lost), read seq_len steps at a time and gathered one
    window at a time (an id file's memory map is never copied whole)."""
    n = len(ids) - 1
    B = max(1, min(batch_size, n))
    L = -(-n // B)
    columns = np.arange(B, dtype=np.int64) * L
    for i, t0 in enumerate(range(0, L, seq_len)):
        if i % RELEASE_EVERY == 0:
            release_pages(ids)  # the pages read so far need not stay resident
        pos = np.arange(t0, min(t0 + seq_len, L), dtype=np.int64)[:, None] + columns[None, :]
        real = pos < n
        pos = np.minimum(pos, n - 1)
        x = np.where(real, ids[pos], vocab.eos_id).astype(np.int64)
        y = np.where(real, ids[pos + 1], vocab.eos_id).astype(np.int64)
        yield x, y, real & (y != vocab.bos_id)


def _time_windows(batch: tuple[np.ndarray, np.ndarray, np.ndarray], seq_len: int) -> Iterator[Window]:
    """A padded (x, y, mask) batch seq_len steps at a time."""
    x, y, mask = batch
    for t0 in range(0, x.shape[0], seq_len):
        sl = slice(t0, t0 + seq_len)
        yield x[sl], y[sl], mask[sl].astype(bool)


def _masked_sum(model, windows: Iterator[Window], hidden, unk_id: int) -> EvalResult:
    """Sum ln p over the masks of consecutive windows, carrying the hidden state."""
    res = EvalResult(0.0, 0)
    for x, y, m in windows:
        logp, hidden = model.token_logprobs(x, y, hidden, mask=m)
        res.nats -= float(logp[m].sum())
        res.count += int(m.sum())
        res.oov += int((y[m] == unk_id).sum())
    return res


def evaluate_stream(model, ids: np.ndarray, vocab: Vocab, batch_size: int = 10, seq_len: int = 128) -> EvalResult:
    """Stream evaluation (hidden carried across sentences), as PTB results are reported."""
    if len(ids) < 2:
        return EvalResult(0.0, 0)
    B = max(1, min(batch_size, len(ids) - 1))
    return _masked_sum(model, stream_windows(ids, vocab, batch_size, seq_len), model.init_hidden(B), vocab.unk_id)


def evaluate_sentences(model, encoded: Sequence[np.ndarray], vocab: Vocab, batch_size: int = 32,
                       seq_len: int = 128) -> EvalResult:
    """Sentence evaluation: hidden reset per sentence, `<s>` as context, `</s>` predicted.
    `encoded`: arrays of word ids, or EncodedIds."""
    from .parallel import map_batches

    order = np.argsort(np.asarray(sentence_lengths(encoded), dtype=np.int64), kind="stable")  # similar lengths share a batch
    batches = padded_batches(encoded, vocab, (order[i:i + batch_size] for i in range(0, len(order), batch_size)))

    def batch_sum(batch) -> EvalResult:
        return _masked_sum(model, _time_windows(batch, seq_len), model.init_hidden(batch[0].shape[1]), vocab.unk_id)

    total = EvalResult(0.0, 0)
    for res in map_batches(model, batch_sum, batches):  # summed in batch order: same result either way
        total.nats, total.count, total.oov = total.nats + res.nats, total.count + res.count, total.oov + res.oov
    return total


def evaluate_encoded(model, encoded: Sequence[np.ndarray], vocab: Vocab, mode: str, batch_size: int = 10,
                     seq_len: int = 128) -> EvalResult:
    """Sentences as ids (arrays of word ids, or EncodedIds), in stream mode (hidden carried
    across them) or sentence mode (reset)."""
    if mode == "stream":
        ids = encoded.ids if isinstance(encoded, EncodedIds) else stream_ids(encoded, vocab)
        return evaluate_stream(model, ids, vocab, batch_size, seq_len)
    return evaluate_sentences(model, encoded, vocab, batch_size, seq_len)


def evaluate_file(model, vocab: Vocab, tok_cfg: TokenizerConfig, source: str | os.PathLike, mode: str, *,
                  corpus_format: str = "auto", csv_column: str = "body", batch_size: int = 10,
                  seq_len: int = 128) -> EvalResult:
    """A corpus file, directory, glob or dataset split evaluated with the model's vocabulary and
    tokenizer settings, through its id file (rnnkit.data.encode_source: cached)."""
    encoded = encode_source(source, tok_cfg, vocab, format=corpus_format, csv_column=csv_column)
    return evaluate_encoded(model, encoded, vocab, mode, batch_size, seq_len)


def unigram_baseline(train: EncodedIds | np.ndarray, held_out: EncodedIds | np.ndarray, vocab: Vocab) -> EvalResult:
    """Add-one unigram model estimated on training targets, evaluated on the held-out targets.

    Each is EncodedIds (its unigram counts come from the pass that wrote its id file) or a
    stream as made by `rnnkit.data.stream_ids`; `<s>` is never a target.
    """
    K = len(vocab)
    counts = _counts(train, K).astype(np.float64) + 1.0
    counts[vocab.bos_id] = 0.0
    logp = np.log(counts / counts.sum(), where=counts > 0, out=np.full(K, -np.inf))
    targets = _counts(held_out, K).copy()
    targets[vocab.bos_id] = 0
    return EvalResult(float(-(targets * np.where(targets > 0, logp, 0.0)).sum()), int(targets.sum()))


def _counts(data: EncodedIds | np.ndarray, size: int) -> np.ndarray:
    return data.counts(size) if isinstance(data, EncodedIds) else count_ids(np.asarray(data), size)
