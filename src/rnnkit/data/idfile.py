"""Id files: encoded sentences as one flat stream of ids on disk, read back as a memory map.

A directory holds

    ids.bin       the stream `<s> w.. </s> <s> w.. </s> ...`, raw little-endian uint16 (when
                  the vocabulary has at most 65,536 entries) or uint32
    offsets.bin   raw int64, one more than there are sentences: sentence i is
                  ids[offsets[i]:offsets[i+1]], its <s> and </s> included
    counts.npy    how often each id occurs in the stream (the unigram counts), int64
    meta.json     (rnnkit.data.cache) the dtype and the numbers of ids ("tokens") and sentences

`id_writer` writes one block of sentences at a time; `open_ids` maps a directory back as
`EncodedIds`, which reads like a list of int64 arrays of word ids (what `encode_sentences`
gives) and also hands out the stream, the offsets and the sentence lengths without copying.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..text.vocab import Vocab
from .batching import stream_ids

IDS, OFFSETS, COUNTS = "ids.bin", "offsets.bin", "counts.npy"
OFFSET_DTYPE = np.dtype("<i8")
COUNT_CHUNK = 1 << 22  # ids per bincount when counting a stream in pieces


def id_dtype(vocab_size: int) -> np.dtype:
    """Little-endian uint16 when every id fits, else uint32."""
    return np.dtype("<u2") if vocab_size <= 1 << 16 else np.dtype("<u4")


def count_ids(ids: np.ndarray, size: int) -> np.ndarray:
    """np.bincount of a (possibly memory-mapped) id array, `size` long, a piece at a time."""
    out = np.zeros(size, dtype=np.int64)
    for start in range(0, len(ids), COUNT_CHUNK):
        out += np.bincount(ids[start:start + COUNT_CHUNK], minlength=size)
    return out


class EncodedIds:
    """Sentences as one id stream with offsets (see the module docstring); a sequence of int64
    arrays of word ids (no specials), one per sentence."""

    def __init__(self, stream: np.ndarray, offsets: np.ndarray, counts: np.ndarray | None = None) -> None:
        self.stream = stream  # the whole stream these sentences are part of (a memory map or an array)
        self.offsets = offsets  # int64 positions in `stream`, len(self) + 1 of them
        self._counts = counts  # np.bincount of self.ids, when known

    @classmethod
    def from_arrays(cls, encoded: Sequence[np.ndarray], vocab: Vocab) -> EncodedIds:
        """In memory, from word-id arrays (as `encode_sentences` gives them)."""
        sizes = np.fromiter((len(e) + 2 for e in encoded), dtype=np.int64, count=len(encoded))
        offsets = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(sizes)])
        return cls(stream_ids(encoded, vocab), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sentence {i} out of range ({len(self)} sentences)")
        i %= len(self)
        return np.asarray(self.stream[self.offsets[i] + 1:self.offsets[i + 1] - 1], dtype=np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    @property
    def ids(self) -> np.ndarray:
        """The stream of these sentences: `<s> w.. </s> <s> ...` (a view, not a copy)."""
        return self.stream[self.offsets[0]:self.offsets[-1]]

    @property
    def lengths(self) -> np.ndarray:
        """Words per sentence (int64, specials not counted)."""
        return np.diff(self.offsets) - 2

    @property
    def num_targets(self) -> int:
        """Every word and one </s> per sentence."""
        return len(self.ids) - len(self)

    def counts(self, size: int) -> np.ndarray:
        """How often each id occurs in the stream (np.bincount, `size` long)."""
        if self._counts is None or len(self._counts) != size:
            self._counts = count_ids(self.ids, size)
        return self._counts

    def split(self, n_first: int) -> tuple[EncodedIds, EncodedIds]:
        """The first n_first sentences and the rest (views; the counts of both from the whole's
        and those of the rest)."""
        first = EncodedIds(self.stream, self.offsets[:n_first + 1])
        rest = EncodedIds(self.stream, self.offsets[n_first:])
        if self._counts is not None:
            rest._counts = count_ids(rest.ids, len(self._counts))
            first._counts = self._counts - rest._counts
        return first, rest

    def in_memory(self) -> EncodedIds:
        """A copy held in memory (np.array of the stream and offsets)."""
        return EncodedIds(np.array(self.stream), np.array(self.offsets), self._counts)


class IdWriter:
    """Writes blocks of sentences (their stream and their sizes, specials included) to an ids
    file and an offsets file, counting the ids."""

    def __init__(self, ids: BinaryIO, offsets: BinaryIO, dtype: np.dtype) -> None:
        self._ids, self._offsets, self.dtype = ids, offsets, np.dtype(dtype)
        self._offsets.write(np.zeros(1, dtype=OFFSET_DTYPE).tobytes())
        self.tokens, self.sentences = 0, 0
        self.counts = np.zeros(0, dtype=np.int64)

    def write(self, stream: np.ndarray, sizes: np.ndarray) -> None:
        self._ids.write(stream.astype(self.dtype, copy=False).tobytes())
        self._offsets.write((self.tokens + np.cumsum(sizes)).astype(OFFSET_DTYPE).tobytes())
        self.tokens += len(stream)
        self.sentences += len(sizes)
        block = np.bincount(stream)
        if len(block) > len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(len(block) - len(self.counts), np.int64)])
        self.counts[:len(block)] += block


@contextmanager
def id_writer(directory: Path, dtype: np.dtype, ids_name: str = IDS) -> Iterator[IdWriter]:
    """An IdWriter into DIRECTORY/ids_name and DIRECTORY/offsets.bin (closed on leaving)."""
    d = Path(directory)
    with open(d / ids_name, "wb") as ids, open(d / OFFSETS, "wb") as offsets:
        yield IdWriter(ids, offsets, dtype)


def complete(directory: Path, meta: dict) -> bool:
    """Do the files have the sizes meta.json gives them?"""
    d = Path(directory)
    try:
        return ((d / IDS).stat().st_size == meta["tokens"] * np.dtype(meta["dtype"]).itemsize
                and (d / OFFSETS).stat().st_size == (meta["sentences"] + 1) * 8 and (d / COUNTS).is_file())
    except (OSError, KeyError, TypeError):
        return False


def open_ids(directory: Path, dtype: str, ids_name: str = IDS, counts: np.ndarray | None = None) -> EncodedIds:
    """An id directory as EncodedIds over memory maps of its files (`dtype`: meta.json's; the
    counts from counts.npy unless given)."""
    d = Path(directory)
    if counts is None:
        counts = np.load(d / COUNTS)
    return EncodedIds(_map(d / ids_name, np.dtype(dtype)), _map(d / OFFSETS, OFFSET_DTYPE), counts)


def _map(path: Path, dtype: np.dtype) -> np.ndarray:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=dtype)  # mmap refuses empty files
    return np.memmap(path, dtype=dtype, mode="r")
