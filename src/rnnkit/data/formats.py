"""Corpus formats: the lines of one file in, its sentences out, one line, paragraph or row at a time.

- lines: one sentence per line; ptb: the same, each line stripped;
- text: running text, `split_sentences` one paragraph at a time (a line of only spaces and
  tabs ends a paragraph, as it does for `split_sentences` on the whole text);
- csv: column `csv_column` (by header name, then case-insensitively), each cell
  html-unescaped and sentence-split, read row by row.

Level word drops blank lines; level char keeps them as "" (lines and ptb), so that a
char-level stream with one </s> per line has as many targets as the file has characters.
The lines come from `rnnkit.data.lines.iter_lines` (or `split_lines` of a whole text): no
newline, CRLF already LF. Errors are InputErrors naming `label` (the file).
"""

from __future__ import annotations

import csv
import html
from collections.abc import Iterable, Iterator

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
    """The sentences of column `column`, row by row."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, MAX_CSV_FIELD))
    reader = csv.reader(_csv_lines(lines))
    try:
        idx = _column_index(reader, label, column)
        for row in reader:
            if idx < len(row) and row[idx].strip():
                yield from split_sentences(html.unescape(row[idx]))
    except csv.Error as e:
        raise InputError(f"{label}: malformed CSV at line {reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(old)


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
