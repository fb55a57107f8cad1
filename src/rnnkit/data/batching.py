"""Batching: sentences of ids in, time-major int64 (x, y, mask) batches out.

Two modes (DESIGN.md, Data): **stream** — the corpus as one long sequence [BOS] s1 [EOS]
[BOS] s2 [EOS] ... cut into equal columns and read in windows of T steps (hidden state is
carried across windows; BOS targets are masked since nothing predicts the start of the next
sentence); **sentences** — [BOS]+ids -> ids+[EOS], padded to the longest sentence in the batch,
with a mask that is 0 on padding.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError
from ..text.vocab import Vocab

BOS_ID = Vocab.bos_id
EOS_ID = Vocab.eos_id
BUCKET_BATCHES = 50  # sentence mode: sort chunks of this many batches by length


def encode_sentences(sentences: Iterable[str], tokenizer, vocab: Vocab) -> list[np.ndarray]:
    """Each sentence as an int64 array of token ids (no specials; unknown -> unk_id)."""
    return [np.asarray(vocab.encode(tokenizer.tokenize(s)), dtype=np.int64) for s in sentences]


def stream_ids(encoded: Sequence[np.ndarray], vocab: Vocab) -> np.ndarray:
    """One int64 array: [BOS] + ids + [EOS] for every sentence, in order."""
    n = sum(len(e) + 2 for e in encoded)
    out = np.empty(n, dtype=np.int64)
    pos = 0
    for e in encoded:
        out[pos] = vocab.bos_id
        out[pos + 1:pos + 1 + len(e)] = e
        pos += len(e) + 1
        out[pos] = vocab.eos_id
        pos += 1
    return out


RELEASE_EVERY = 256  # windows read between two release_pages calls


def release_pages(ids: np.ndarray) -> None:
    """Let go of the pages of an id file's memory map that this process has read so far
    (madvise MADV_DONTNEED: they stay in the page cache and fault back in cheaply when read
    again). The pages a memory map has touched count in the process's resident memory; without
    this, reading a whole corpus would raise it by the size of the id file. Anything that is not
    a memory map (or a platform without madvise) is left alone."""
    base = ids
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is not None and hasattr(base, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        try:
            base.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


class StreamBatcher:
    """Stream batches: the ids cut into world_size * batch_size equal columns (the remainder is
    dropped); rank r reads columns [r*B, (r+1)*B). Windows are T steps long except perhaps the
    last; every rank has the same number of windows.

    `ids` may be any integer array, a memory map of an id file too: each window is gathered
    from this rank's columns and cast to int64 on its own, so no transposed or int64 copy of
    the stream is ever made."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int, rank: int = 0,
                 world_size: int = 1, bos_id: int = BOS_ID) -> None:
        for name, v in (("batch_size", batch_size), ("seq_len", seq_len), ("world_size", world_size)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in 0..{world_size - 1}, got {rank!r}")
        ids = ids.reshape(-1) if isinstance(ids, np.ndarray) else np.asarray(ids, dtype=np.int64).reshape(-1)
        ncols = batch_size * world_size
        col_len = len(ids) // ncols
        if col_len < 2:
            raise ConfigError(f"batch_size: a stream of {len(ids)} tokens is too short for "
                              f"{ncols} columns (batch_size {batch_size} x world_size {world_size})")
        self.ids, self.col_len = ids, col_len
        self.starts = (rank * batch_size + np.arange(batch_size, dtype=np.int64)) * col_len  # this rank's columns
        self.batch_size, self.seq_len, self.rank, self.world_size = batch_size, seq_len, rank, world_size
        self.bos_id = bos_id

    def __len__(self) -> int:
        return max(0, (self.col_len - 2) // self.seq_len + 1)

    @property
    def num_targets(self) -> int:
        """Unmasked targets over one pass (this rank)."""
        return sum(int(np.count_nonzero(self.ids[s + 1:s + self.col_len] != self.bos_id)) for s in self.starts)

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, mask) of window i: int64 (T, B) and float32 (T, B)."""
        t0 = i * self.seq_len
        t = min(self.seq_len, self.col_len - 1 - t0)
        rows = np.arange(t0, t0 + t + 1, dtype=np.int64)
        w = self.ids[rows[:, None] + self.starts[None, :]].astype(np.int64)  # (t + 1, B)
        x, y = w[:-1], w[1:]
        return x, y, (y != self.bos_id).astype(np.float32)

    def windows(self, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(x, y, mask) for windows start, start+1, ..., len(self)-1."""
        for i in range(start, len(self)):
            if i % RELEASE_EVERY == 0:
                release_pages(self.ids)  # the pages read so far need not stay resident
            yield self.window(i)


def _pad_batch(batch: Sequence[np.ndarray], vocab: Vocab) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    T = max(len(e) for e in batch) + 1
    B = len(batch)
    x = np.zeros((T, B), dtype=np.int64)
    y = np.zeros((T, B), dtype=np.int64)
    mask = np.zeros((T, B), dtype=np.float32)
    for b, e in enumerate(batch):
        n = len(e)
        x[0, b] = vocab.bos_id
        x[1:n + 1, b] = e
        y[:n, b] = e
        y[n, b] = vocab.eos_id
        mask[:n + 1, b] = 1.0
    return x, y, mask


def sentence_order(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Index arrays, one per batch. rng None: corpus order. Otherwise shuffled, then sorted by
    length within chunks of BUCKET_BATCHES batches (little padding), then the batches shuffled."""
    n = len(lengths)
    if rng is None:
        return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    lengths = np.asarray(lengths)
    perm = rng.permutation(n)
    chunk = batch_size * BUCKET_BATCHES
    batches: list[np.ndarray] = []
    for c in range(0, n, chunk):
        part = perm[c:c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def sentence_lengths(encoded: Sequence[np.ndarray]) -> np.ndarray | list[int]:
    """Words per sentence: from the offsets of EncodedIds, else len() of each array."""
    lengths = getattr(encoded, "lengths", None)
    return lengths if lengths is not None else [len(e) for e in encoded]


def padded_batches(encoded: Sequence[np.ndarray], vocab: Vocab,
                   order: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One padded (x, y, mask) batch per index array of `order`."""
    for idx in order:
        yield _pad_batch([encoded[int(i)] for i in idx], vocab)


def sentence_batches(encoded: Sequence[np.ndarray], vocab: Vocab, batch_size: int,
                     rng: np.random.Generator | int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Padded sentence batches (x, y, mask), time-major (T, B); every sentence exactly once.
    `encoded`: arrays of word ids, or EncodedIds. `rng` (a numpy Generator, or an int seed)
    shuffles deterministically; None keeps corpus order."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(int(rng))
    return padded_batches(encoded, vocab, sentence_order(sentence_lengths(encoded), batch_size, rng))
