"""Encoding corpora into id files: sentences in, blocks of ids written to the id cache, memory maps out.

- `encode_source(source, tok_cfg, vocab)`: the sentences of a source with a given vocabulary
  (validation data, evaluation, a resumed run): one pass over the text, unknown tokens <unk>.
- `encode_corpus(source, tok_cfg, holdout=None)`: a training corpus and the vocabulary counted
  from it (from all sentences but the last `holdout` share, when given: see `holdout_count`).
  One pass over the text gives every token an id in order of first appearance (a provisional
  vocabulary of every type) and counts them; the vocabulary is ranked from the counts of the
  training sentences (`Vocab.from_counts`: the order of `Vocab.build`), then a numpy pass maps
  the provisional ids to its ids through a table.

Both keep what they make in the id cache (`rnnkit.data.cache`): run again on the same corpus
files (path, size, modification time), reading options and tokenizer settings, they read the
vocabulary and the ids back without reading the text. The hot loop works a block of sentences
at a time with C-speed idioms: map the tokenizer over the block, flatten with chain, look the
ids up with map over a dict whose __missing__ handles unseen tokens into an array('I'), add
the sentence ends with numpy, one write; the garbage collector rests meanwhile.
"""

from __future__ import annotations

import gc
import json
import os
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path

import numpy as np

from .. import files
from ..config import TokenizerConfig
from ..text import SPECIALS, Vocab, make_tokenizer
from . import cache
from .idfile import (
    COUNT_CHUNK,
    COUNTS,
    IDS,
    OFFSET_DTYPE,
    OFFSETS,
    EncodedIds,
    complete,
    id_dtype,
    id_writer,
    open_ids,
)
from .readers import check_options
from .sources import Part, corpus_parts, fingerprint, part_sentences

BLOCK_SENTENCES = 8192
_UINT32 = next(code for code in "IL" if array(code).itemsize == 4)  # array typecode of uint32
RAW = "raw.bin"  # provisional ids (uint32) while a corpus's vocabulary is being counted
VOCAB = "vocab.json"


class KnownIds(dict):
    """token -> id of a fixed vocabulary; an unknown token is <unk>."""

    def __missing__(self, token: str) -> int:
        return Vocab.unk_id


class NewIds(dict):
    """token -> provisional id, the next one for a token not seen before."""

    def __missing__(self, token: str) -> int:
        i = self[token] = len(self)
        return i


def known_ids(vocab: Vocab) -> KnownIds:
    """The lookup of `vocab` (what Vocab.encode does, token by token)."""
    return KnownIds(zip(vocab.to_list(), range(len(vocab))))


def holdout_count(n_sentences: int, fraction: float) -> int:
    """How many of the last sentences are held out for validation: round(n * fraction), at least 1."""
    return max(1, round(n_sentences * fraction))


# --------------------------------------------------------------------------- the pass over the text


def sentence_blocks(sentences: Iterable[str], size: int = BLOCK_SENTENCES) -> Iterator[list[str]]:
    """The sentences in lists of `size`."""
    it = iter(sentences)
    while block := list(islice(it, size)):
        yield block


def encode_block(block: list[str], tokenize, lookup: dict) -> tuple[np.ndarray, np.ndarray]:
    """(stream, sizes) of a block: `<s> ids </s>` per sentence (uint32) and each one's length."""
    toks = list(map(tokenize, block))
    sizes = np.frombuffer(array("q", map(len, toks)), dtype=np.int64) + 2
    words = np.frombuffer(array(_UINT32, map(lookup.__getitem__, chain.from_iterable(toks))), dtype=np.uint32)
    return with_specials(words, sizes), sizes


def with_specials(words: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The words with <s> before and </s> after each sentence (sizes: specials included)."""
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out = np.empty(int(ends[-1]), dtype=words.dtype)
    is_word = np.ones(len(out), dtype=bool)
    is_word[starts] = is_word[ends - 1] = False
    out[starts], out[ends - 1] = Vocab.bos_id, Vocab.eos_id
    out[is_word] = words
    return out


def _write_pass(parts: list[Part], tok_cfg: TokenizerConfig, csv_column: str, lookup: dict, writer) -> None:
    tokenize = make_tokenizer(tok_cfg).tokenize
    sentences = chain.from_iterable(part_sentences(p, tok_cfg.level, csv_column) for p in parts)
    with _gc_paused():
        for block in sentence_blocks(sentences):
            writer.write(*encode_block(block, tokenize, lookup))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the pass: it makes no cycles, and the collector would
    walk every block's token lists (a quarter of the pass's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --------------------------------------------------------------------------- cache keys


def _key(parts: list[Part], tok_cfg: TokenizerConfig, csv_column: str, **more) -> dict:
    from .. import __version__

    return {"format": cache.FORMAT, "rnnkit": __version__, "source": fingerprint(parts), "csv_column": csv_column,
            "tokenizer": tok_cfg.to_dict(), **more}


def _ids_key(parts: list[Part], tok_cfg: TokenizerConfig, csv_column: str, vocab: Vocab) -> dict:
    key = _key(parts, tok_cfg, csv_column, vocab=vocab.digest())
    for name in ("max_vocab", "min_count"):  # they matter through the vocabulary only
        key["tokenizer"].pop(name)
    return key


def stale(key: dict) -> bool:
    """Have the files an entry was made from changed or gone (so that no key can match it again)?"""
    try:
        files = [(path, (size, mtime, ino)) for _fmt, _split, path, size, mtime, ino in key.get("source", [])]
    except (TypeError, ValueError):
        return False  # not a key of this format: left alone
    for path, was in files:
        try:
            st = os.stat(path)
        except OSError:
            return True
        if (st.st_size, st.st_mtime_ns, st.st_ino) != was:
            return True
    return False


def _vocab_complete(path: Path, meta: dict) -> bool:
    return (Path(path) / VOCAB).is_file()


# --------------------------------------------------------------------------- entry points


def encode_source(source: str | os.PathLike, tok_cfg: TokenizerConfig, vocab: Vocab, *, format: str = "auto",
                  csv_column: str = "body") -> EncodedIds:
    """The sentences of `source` encoded with `vocab`, memory-mapped from the id cache (made
    there first when missing)."""
    check_options(format, tok_cfg.level)
    return _encode_known(corpus_parts(source, format), tok_cfg, csv_column, vocab)


def _encode_known(parts: list[Part], tok_cfg: TokenizerConfig, csv_column: str, vocab: Vocab) -> EncodedIds:
    key = _ids_key(parts, tok_cfg, csv_column, vocab)
    hit = cache.find("ids", key, complete)
    if hit is not None:
        return open_ids(hit[0], hit[1]["dtype"])
    tmp = cache.new_dir("ids", stale)
    with cache.building(tmp):
        with id_writer(tmp, id_dtype(len(vocab))) as w:
            _write_pass(parts, tok_cfg, csv_column, known_ids(vocab), w)
        return _finish_ids(tmp, key, w.dtype, w.tokens, w.sentences, _fit(w.counts, len(vocab)))


def encode_corpus(source: str | os.PathLike, tok_cfg: TokenizerConfig, *, format: str = "auto",
                  csv_column: str = "body", holdout: float | None = None) -> tuple[EncodedIds, Vocab]:
    """(every sentence of `source` encoded, the vocabulary of its training sentences): all of
    them, or all but the last holdout_count(n, holdout)."""
    check_options(format, tok_cfg.level)
    parts = corpus_parts(source, format)
    vkey = _key(parts, tok_cfg, csv_column, holdout=holdout)
    hit = cache.find("vocab", vkey, _vocab_complete)
    if hit is not None:
        vocab = Vocab.from_list(json.loads((hit[0] / VOCAB).read_text(encoding="utf-8")))
        return _encode_known(parts, tok_cfg, csv_column, vocab), vocab
    tmp = cache.new_dir("ids", stale)
    with cache.building(tmp):
        encoded, vocab = _count_and_encode(parts, tok_cfg, csv_column, holdout, tmp)
    _save_vocab(vkey, vocab)
    return encoded, vocab


def _count_and_encode(parts: list[Part], tok_cfg: TokenizerConfig, csv_column: str, holdout: float | None,
                      tmp: Path) -> tuple[EncodedIds, Vocab]:
    """The one pass with provisional ids, the vocabulary from the training part's counts, the
    ids mapped to it and published in the cache. The provisional file is read back in pieces
    (not mapped: its pages would count as the process's memory)."""
    lookup = NewIds(zip(SPECIALS, range(len(SPECIALS))))
    with id_writer(tmp, np.uint32, ids_name=RAW) as w:
        _write_pass(parts, tok_cfg, csv_column, lookup, w)
    n_train = w.sentences - holdout_count(w.sentences, holdout) if holdout else w.sentences
    types = list(lookup)
    every = _fit(w.counts, len(types))
    train = every.copy()
    for piece in _pieces(tmp / RAW, _offset(tmp / OFFSETS, max(0, n_train))):  # the held-out sentences
        train -= np.bincount(piece, minlength=len(types))
    vocab = Vocab.from_counts(dict(zip(types, train.tolist())), tok_cfg.max_vocab, tok_cfg.min_count)
    table = np.fromiter(map(known_ids(vocab).__getitem__, types), dtype=id_dtype(len(vocab)), count=len(types))
    with open(tmp / IDS, "wb") as f:
        for piece in _pieces(tmp / RAW):
            f.write(table[piece].tobytes())
    os.unlink(tmp / RAW)
    counts = np.zeros(len(vocab), dtype=np.int64)
    np.add.at(counts, table, every)  # the counts of the new ids
    key = _ids_key(parts, tok_cfg, csv_column, vocab)
    return _finish_ids(tmp, key, table.dtype, w.tokens, w.sentences, counts), vocab


def _offset(path: Path, i: int) -> int:
    """Entry i of an offsets file."""
    return int(np.fromfile(path, dtype=OFFSET_DTYPE, count=1, offset=i * OFFSET_DTYPE.itemsize)[0])


def _pieces(path: Path, start: int = 0) -> Iterator[np.ndarray]:
    """A raw uint32 id file from id `start` on, COUNT_CHUNK ids at a time."""
    with open(path, "rb") as f:
        f.seek(start * 4)
        while len(piece := np.fromfile(f, dtype="<u4", count=COUNT_CHUNK)):
            yield piece


def _finish_ids(tmp: Path, key: dict, dtype: np.dtype, tokens: int, sentences: int,
                counts: np.ndarray) -> EncodedIds:
    """Counts and meta.json beside the ids; the entry put in place and mapped."""
    np.save(tmp / COUNTS, counts)
    cache.write_meta(tmp, key, dtype=np.dtype(dtype).str, tokens=tokens, sentences=sentences)
    path = cache.publish(tmp, "ids", key, complete)
    return open_ids(path, cache.read_meta(path)["dtype"])


def _save_vocab(key: dict, vocab: Vocab) -> None:
    tmp = cache.new_dir("vocab", stale)
    with cache.building(tmp):
        (tmp / VOCAB).write_text(files.dumps(vocab.to_list()), encoding="utf-8")
        cache.write_meta(tmp, key)
        cache.publish(tmp, "vocab", key, _vocab_complete)


def _fit(counts: np.ndarray, size: int) -> np.ndarray:
    """Counts padded with zeros to `size` entries."""
    return np.concatenate([counts, np.zeros(max(0, size - len(counts)), dtype=np.int64)])[:size]
