"""Corpus formats: the lines of one file in, its sentences out, one line, paragraph or row at a time.

- lines: one sentence per line; ptb: the same, each line stripped;
- text: running text, `split_sentences` one paragraph at a time (a line of only spaces and
  tabs ends a paragraph, as it does for `split_sentences` on the whole text);
- csv: column `csv_column` (by header name, then case-insensitively), each cell
  html-unescaped and sentence-split, read row by row; a quote left open at the end of the
  file is an error naming the line where it opened (the csv module would silently take the
  rest of the file as one field), except in a known dataset's file (checked by its sha256).

Level word drops blank lines; level char keeps them as "" (lines and ptb), so that a
char-level stream with one </s> per line has as many targets as the file has characters.
The lines come from `rnnkit.data.lines.iter_lines` (or `split_lines` of a whole text): no
newline, CRLF already LF. Errors are InputErrors naming `label` (the file).
"""

from __future__ import annotations

import csv
import html
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..config import CORPUS_FORMATS
from ..errors import ConfigError, InputError
from ..text.sentences import split_sentences

MAX_CSV_FIELD = 10_000_000
_PARAGRAPH_BLANK = " \t\r\f\v"  # what may stand on a line that separates paragraphs


def format_sentences(lines: Iterable[str], fmt: str, level: str = "word", csv_column: str = "body",
                     label: str = "<text>") -> Iterator[str]:
    """The sentences of a file's lines in format lines | ptb | text | csv."""
    if fmt in ("lines", "ptb"):
        return line_sentences(lines, fmt, level)
    if fmt == "text":
        return paragraph_sentences(lines)
    if fmt == "csv":
        return csv_sentences(lines, label, csv_column)
    raise ConfigError(f"corpus_format must be one of {', '.join(CORPUS_FORMATS[1:])}, got {fmt!r}")


def line_sentences(lines: Iterable[str], fmt: str, level: str) -> Iterator[str]:
    """One sentence per line (ptb: stripped); word level drops blank lines, char level keeps them."""
    if level == "word":
        return filter(None, map(str.strip, lines))
    return map(str.strip, lines) if fmt == "ptb" else iter(lines)


def paragraph_sentences(lines: Iterable[str]) -> Iterator[str]:
    """split_sentences of each paragraph: the same sentences as split_sentences of the whole text."""
    para: list[str] = []
    for line in lines:
        if line.strip(_PARAGRAPH_BLANK):
            para.append(line)
        elif para:
            yield from split_sentences("\n".join(para))
            para = []
    if para:
        yield from split_sentences("\n".join(para))


def csv_sentences(lines: Iterable[str], label: str, column: str) -> Iterator[str]:
    """The sentences of column `column`, row by row. A quoted field still open at the end of
    the file (the csv module would take the rest of the file as its text) is an InputError
    naming the line where its quote opened, unless the file is a known dataset's (by its
    sha256: reddit-sample, the tutorial CSV's first 1,000 lines, is cut inside its last
    comment), whose last field is then read to the end as before."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, MAX_CSV_FIELD))
    source = _RowLines(_csv_lines(lines))
    reader = csv.reader(source)
    rows = _checked_rows(reader, source, label)
    try:
        idx = _column_index(rows, label, column)
        for row in rows:
            if idx < len(row) and row[idx].strip():
                yield from split_sentences(html.unescape(row[idx]))
    except csv.Error as e:
        opened = _open_quote(source)
        hint = f" (the quote that opens at line {opened} is never closed)" if opened else ""
        raise InputError(f"{label}: malformed CSV at line {reader.line_num}: {e}{hint}") from None
    finally:
        csv.field_size_limit(old)


class _RowLines:
    """The csv module's input lines, counted, with those of the row being read kept (only
    until the next row starts) and whether the input has run out."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines, self.count, self.row, self.row_start, self.ended = lines, 0, [], 1, False

    def __iter__(self) -> _RowLines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self.lines)
        except StopIteration:
            self.ended = True
            raise
        self.count += 1
        self.row.append(line)
        return line

    def next_row(self) -> None:
        self.row, self.row_start = [], self.count + 1


def _checked_rows(reader, source: _RowLines, label: str) -> Iterator[list[str]]:
    """The reader's rows; the row that reached the end of the input is checked for a quote
    left open (the csv module ends it there silently)."""
    while True:
        source.next_row()
        row = next(reader, None)
        if row is None:
            return
        if source.ended:
            opened = _open_quote(source)
            if opened and not _known_dataset_file(label):
                raise InputError(f"{label}: unclosed quote: the quoted field that opens at line {opened} "
                                 "runs to the end of the file (close it with \")")
        yield row


def _known_dataset_file(label: str) -> bool:
    """Whether `label` names a file with the sha256 of one of the known datasets' files."""
    from .datasets import KNOWN_DATASETS, file_sha256

    known = {f.sha256 for spec in KNOWN_DATASETS.values() for f in spec.files.values() if f.sha256}
    try:
        return Path(label).is_file() and file_sha256(Path(label)) in known
    except (OSError, ValueError):  # ValueError: a label that cannot be a path (a NUL in it)
        return False


def _open_quote(source: _RowLines) -> int | None:
    """The line where a quoted field of the current row opens and is not closed, else None: the
    csv module's own reading (default dialect, not strict) of quotes, replayed on the row."""
    state, opened = "start", None
    for offset, text in enumerate(source.row):
        for ch in text:
            if state == "quoted":
                state = "quote" if ch == '"' else "quoted"
            elif state == "quote":  # a quote inside a quoted field: "" escapes, anything else closes
                state = "quoted" if ch == '"' else "start" if ch in ",\r\n" else "field"
            elif state == "start" and ch == '"':
                state, opened = "quoted", source.row_start + offset
            else:
                state = "start" if ch in ",\r\n" else "field"
    return opened if state == "quoted" else None


def _column_index(reader, label: str, column: str) -> int:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{label}: CSV file has no header row") from None
    names = [h.strip() for h in header]
    if column in names:
        return names.index(column)
    folded = [h.lower() for h in names]
    if column.lower() not in folded:
        found = ", ".join(repr(h) for h in names) or "none"
        raise InputError(f"{label}: no column {column!r} in the CSV header; columns found: {found}")
    return folded.index(column.lower())


def _csv_lines(lines: Iterable[str]) -> Iterator[str]:
    """The lines as a text file opened with newline="" gives them to the csv module: with their
    ends, a lone \\r ending a line too (a \\r before the newline belongs to that line end)."""
    for line in lines:
        if "\r" not in line:
            yield line + "\n"
            continue
        *head, last = line.split("\r")
        end = "\n"
        if last == "":
            *head, last = head
            end = "\r\n"
        for piece in head:
            yield piece + "\r"
        yield last + end
