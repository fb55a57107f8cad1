"""Reading an ARPA back-off file into an `ArpaModel`, with its checks.

The format: a `\\data\\` section of `ngram N=COUNT` lines, then one `\\N-grams:` section per order
(lines `LOG10PROB W1 .. WN [LOG10BOW]`, back-off weights optional per line), then `\\end\\`.
Checked: orders 1..N in sequence, each section present and holding the count `\\data\\` gives,
numbers, the number of fields on each line, words of higher orders present as unigrams, duplicate
n-grams, `\\end\\`. Each problem is one `InputError` "FILE:LINE: problem".

Parsing is in bulk: a section is cut into chunks of whole lines; in each, the fields are split by
`bytes.split`, counted per line with numpy, and converted a column at a time.
"""

from __future__ import annotations

import math
import mmap
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .backoff import ArpaModel
from .tables import build_tables

CHUNK_BYTES = 1 << 20  # bytes of one section parsed together
_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True
_DATA = re.compile(rb"^[ \t]*\\data\\[ \t\r]*$", re.MULTILINE)
_COUNT = re.compile(rb"^ngram\s+(\d+)\s*=\s*(\d+)$")


@dataclass
class _Order:
    """One order's entries in file order while reading."""

    n: int
    line: int  # the section header's line number
    words: list[np.ndarray] = field(default_factory=list)  # chunks of (rows, n) int32 word ids
    logp: list[np.ndarray] = field(default_factory=list)
    bow: list[np.ndarray] = field(default_factory=list)

    def join(self) -> None:
        """The chunks made one array each (the chunks let go as each is joined)."""
        if not self.logp:
            self.words = [np.zeros((0, self.n), np.int32)]
            self.logp, self.bow = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
        for name in ("words", "logp", "bow"):
            setattr(self, name, [np.concatenate(getattr(self, name))])


class _Reader:
    """One pass over the file's bytes (a memory map): the header, each section, the end."""

    def __init__(self, path: str, data) -> None:
        self.path, self.data = path, data
        self.offset = 0  # where the next part to read begins
        self.ids: dict[bytes, int] = {}
        self.vocab: list[bytes] = []
        self._at, self._lines = 0, 0  # newlines counted before offset _at

    def line_no(self, offset: int) -> int:
        """The line number at offset, counting forward from the last call (a chunk at a time)."""
        if offset < self._at:
            self._at, self._lines = 0, 0
        while self._at < offset:
            stop = min(offset, self._at + CHUNK_BYTES)
            self._lines += self.data[self._at:stop].count(b"\n")
            self._at = stop
        return self._lines + 1

    def fail(self, offset: int, problem: str):
        line = self.data[:offset].count(b"\n") + 1
        return InputError(f"{self.path}:{line}: {problem}")

    def line_at(self, offset: int) -> tuple[bytes, int]:
        end = self.data.find(b"\n", offset)
        end = len(self.data) if end < 0 else end
        return self.data[offset:end].strip(), end + 1

    def next_line(self, offset: int) -> tuple[bytes, int, int]:
        """The next non-blank line from offset: (stripped text, its offset, offset after it)."""
        while offset < len(self.data):
            text, after = self.line_at(offset)
            if text:
                return text, offset, after
            offset = after
        return b"", len(self.data), len(self.data)

    def header(self) -> list[int]:
        """The counts of \\data\\ (text before it is skipped, as SRILM does)."""
        m = _DATA.search(self.data)
        if m is None:
            text, at, _ = self.next_line(0)
            raise self.fail(at, f"expected \\data\\ (an ARPA file's header), found {_show(text)}")
        off = m.end()
        counts: list[int] = []
        while True:
            text, at, after = self.next_line(off)
            m = _COUNT.match(text)
            if not m:
                break
            if int(m.group(1)) != len(counts) + 1:
                raise self.fail(at, f"expected 'ngram {len(counts) + 1}=COUNT', found {_show(text)}")
            counts.append(int(m.group(2)))
            off = after
        if not counts:
            raise self.fail(at, f"\\data\\ lists no 'ngram N=COUNT' line, found {_show(text)}")
        self.offset = off
        return counts

    def section(self, n: int, count: int) -> _Order:
        text, at, off = self.next_line(self.offset)
        if text != f"\\{n}-grams:".encode():
            raise self.fail(at, f"expected \\{n}-grams: (\\data\\ lists order {n}), found {_show(text)}")
        order = _Order(n, self.line_no(at))
        self.line_no(off)  # from here the chunks keep the count
        start = end = off
        while start < len(self.data):  # chunk by chunk up to the next line that starts with a backslash
            stop = self.chunk_end(start)
            header = self.data.find(b"\n\\", start - 1, stop)
            end = stop if header < 0 else header + 1
            if end > start:
                self.chunk(order, start, end)
                self.release(start, end)
            start = end
            if header >= 0:
                break
        order.join()
        rows = len(order.logp[0])
        if rows != count:
            raise self.fail(at, f"\\{n}-grams: has {rows} entries, \\data\\ says ngram {n}={count}")
        self.offset = end
        return order

    def chunk_end(self, start: int) -> int:
        """Where a chunk from start ends: a line end about CHUNK_BYTES on (whole lines)."""
        stop = start + CHUNK_BYTES
        if stop >= len(self.data):
            return len(self.data)
        nl = self.data.rfind(b"\n", start, stop)
        return nl + 1 if nl >= 0 else (self.data.find(b"\n", stop) + 1 or len(self.data))

    def release(self, start: int, stop: int) -> None:
        """Let the kernel drop the file pages of a parsed chunk (they are not counted in RSS then)."""
        if isinstance(self.data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            a = start - start % mmap.PAGESIZE
            b = stop - stop % mmap.PAGESIZE
            if b > a:
                self.data.madvise(mmap.MADV_DONTNEED, a, b - a)

    def chunk(self, order: _Order, start: int, stop: int) -> None:
        n, raw = order.n, self.data[start:stop]
        if self._at == start:  # keep the line count going without reading the pages again
            self._at, self._lines = stop, self._lines + raw.count(b"\n")
        fields = _fields_per_line(raw)
        lines = np.flatnonzero(fields)
        bad = lines[(fields[lines] != n + 1) & (fields[lines] != n + 2)]
        if len(bad):
            off = start + _line_offset(raw, int(bad[0]))
            raise self.fail(off, f"expected {n + 1} or {n + 2} fields in a {n}-gram line "
                                 f"(log10 prob, {n} word(s), optional back-off), found {fields[bad[0]]}")
        tokens = np.array(raw.split(), dtype=object)
        first = np.cumsum(fields[lines]) - fields[lines]
        logp = self.numbers(tokens[first], start, raw, lines)
        has_bow = fields[lines] == n + 2
        bow = np.zeros(len(lines), dtype=np.float32)
        bow[has_bow] = self.numbers(tokens[first[has_bow] + n + 1], start, raw, lines[has_bow])
        words = tokens[(first[:, None] + np.arange(1, n + 1)).ravel()]
        if n == 1:
            ids = self.add_words(words, start, raw, lines)
        else:
            ids = self.word_ids(words, n, start, raw, lines)
        order.words.append(ids.reshape(len(lines), n))
        order.logp.append(logp.astype(np.float32))
        order.bow.append(bow)

    def numbers(self, tokens: np.ndarray, start: int, raw: bytes, lines: np.ndarray) -> np.ndarray:
        try:
            values = tokens.astype(np.float64)
        except ValueError:
            values = None
        if values is not None and not np.isnan(values).any():
            return values
        for i, t in enumerate(tokens):
            try:
                bad = math.isnan(float(t))
            except ValueError:
                bad = True
            if bad:
                raise self.fail(start + _line_offset(raw, int(lines[i])), f"bad number {_show(t)}")
        raise AssertionError("unreachable")

    def add_words(self, words: np.ndarray, start: int, raw: bytes, lines: np.ndarray) -> np.ndarray:
        ids = np.empty(len(words), dtype=np.int32)
        for i, w in enumerate(words):
            if w in self.ids:
                raise self.fail(start + _line_offset(raw, int(lines[i])), f"duplicate unigram {_show(w)}")
            ids[i] = self.ids[w] = len(self.vocab)
            self.vocab.append(w)
        return ids

    def word_ids(self, words: np.ndarray, n: int, start: int, raw: bytes, lines: np.ndarray) -> np.ndarray:
        try:
            return np.fromiter(map(self.ids.__getitem__, words), dtype=np.int32, count=len(words))
        except KeyError as e:
            i = int(np.flatnonzero(words == e.args[0])[0]) // n
            raise self.fail(start + _line_offset(raw, int(lines[i])),
                            f"word {_show(e.args[0])} is not in the \\1-grams: section") from None


def _show(text: bytes) -> str:
    s = text.decode("utf-8", "replace")
    return repr(s if len(s) <= 60 else s[:57] + "...") if s else "the end of the file"


def _fields_per_line(raw: bytes) -> np.ndarray:
    """How many whitespace-separated fields each line of raw holds."""
    a = np.frombuffer(raw, dtype=np.uint8)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    space = _SPACE[a]
    starts = ~space
    starts[1:] &= space[:-1]
    newlines = np.flatnonzero(a == 10)
    line = np.searchsorted(newlines, np.flatnonzero(starts))  # a token's line: newlines before it
    return np.bincount(line, minlength=len(newlines) + 1).astype(np.int64)


def _line_offset(raw: bytes, i: int) -> int:
    off = 0
    for _ in range(i):
        off = raw.index(b"\n", off) + 1
    return off


def read_arpa(path: str | os.PathLike) -> ArpaModel:
    """Read an ARPA back-off model (any order; log10 values)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None
    try:
        return _read(_Reader(name, data))
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _read(r: _Reader) -> ArpaModel:
    counts = r.header()
    orders = [r.section(n, c) for n, c in enumerate(counts, start=1)]
    text, at, _ = r.next_line(r.offset)
    if text != b"\\end\\":
        raise r.fail(at, f"expected \\end\\ after the \\{len(counts)}-grams: section, found {_show(text)}")
    try:
        vocab = [w.decode("utf-8") for w in r.vocab]
    except UnicodeDecodeError as e:
        raise InputError(f"{r.path}:{orders[0].line}: a unigram is not UTF-8 ({e.reason})") from None
    return build_tables(r.path, vocab, [_stack(o) for o in orders], [o.line for o in orders])


def _stack(o: _Order) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return o.words.pop(), o.logp.pop(), o.bow.pop()
