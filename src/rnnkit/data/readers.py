"""Corpus readers: a file or a known dataset name in, a list of sentence strings out.

`read_text` reads a file as UTF-8 (BOM and CRLF accepted) or raises an InputError starting
with the path and saying what is wrong. `read_sentences` turns a source into sentences:

- source: a path, or a known dataset name, optionally with a split: "ptb", "ptb:valid",
  "ptb:test", "tinyshakespeare" (= "tinyshakespeare:train"), "tinyshakespeare:valid",
  "tinyshakespeare:all", "reddit-sample[:train|valid|all]", "python-docs[:train|valid|all]".
  A bare name means split train. Single-file datasets are cut into the first 90% (train) and
  the last 10% (valid) by character position, rounded to the next line boundary (formats
  lines, ptb) or sentence boundary (text, csv). A local file that happens to be named like a
  dataset is read as "./NAME".
- formats: lines (one sentence per line), ptb (one per line, stripped), text (running text,
  split_sentences; blank lines separate paragraphs), csv (column `csv_column` by header name,
  each cell html-unescaped and sentence-split). auto: *.csv -> csv, ptb.*.txt and *.tokens
  -> ptb, otherwise lines; a dataset name uses its own format.
- level word drops blank lines; level char keeps them as "" (lines and ptb formats), so that
  a char-level stream with one </s> per line has as many targets as the file has characters.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import html
import io
import os
import re
from pathlib import Path

from ..config import CORPUS_FORMATS as FORMATS
from ..config import LEVELS
from ..errors import ConfigError, InputError
from ..text.sentences import split_sentences
from .datasets import (
    HOLDOUT_FRACTION,
    KNOWN_DATASETS,
    parse_source,
    python_docs_text,
    resolve_dataset,
)

MAX_LINE_CHARS = 1_000_000
_UNDERLINE_RE = re.compile(r"(?m)^[ \t]*([*=\-~^\"#+])\1{2,}[ \t]*$")  # reST heading underlines


def read_text(path: str | os.PathLike) -> str:
    """The file's text (UTF-8, BOM stripped, CRLF -> LF), or InputError "PATH: problem"."""
    p = Path(path)
    label = str(path)
    try:
        if p.is_dir():
            raise InputError(f"{label}: is a directory, not a text file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as e:
        raise InputError(f"{label}: cannot read: {e.strerror or e}") from None
    return decode_text(data, label)


def decode_text(data: bytes, label: str) -> str:
    """Bytes read from `label` (a path, or <stdin>) as text, with read_text's checks and messages."""
    if not data:
        raise InputError(f"{label}: empty file (0 bytes)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{label}: looks like a binary file (NUL byte at offset {nul}); "
                         "expected UTF-8 text (a UTF-16 file must be converted to UTF-8)")
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        off = e.start + skip
        line = data.count(b"\n", 0, off) + 1
        raise InputError(f"{label}: invalid UTF-8 at line {line}, byte offset {off} "
                         f"(byte 0x{data[off]:02x}); convert the file to UTF-8") from None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if not text.strip():
        raise InputError(f"{label}: empty file (only whitespace)")
    if len(text) > MAX_LINE_CHARS:
        start, lineno = 0, 1
        while True:
            end = text.find("\n", start)
            stop = len(text) if end < 0 else end
            if stop - start > MAX_LINE_CHARS:
                raise InputError(f"{label}: line {lineno} is {stop - start:,} characters long "
                                 f"(limit {MAX_LINE_CHARS:,}); is this really a text corpus?")
            if end < 0:
                break
            start, lineno = end + 1, lineno + 1
    return text


def split_lines(text: str) -> list[str]:
    """Lines without their newline; a final newline does not start an extra empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _from_lines(text: str, fmt: str, level: str) -> list[str]:
    lines = split_lines(text)
    if fmt == "ptb":
        lines = [ln.strip() for ln in lines]
    if level == "word":
        return [ln.strip() for ln in lines if ln.strip()]
    return lines


def _from_csv(text: str, label: str, column: str) -> list[str]:
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, 10 * MAX_LINE_CHARS))
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(f"{label}: CSV file has no header row") from None
        names = [h.strip() for h in header]
        if column in names:
            idx = names.index(column)
        else:
            folded = [h.lower() for h in names]
            if column.lower() not in folded:
                found = ", ".join(repr(h) for h in names) or "none"
                raise InputError(f"{label}: no column {column!r} in the CSV header; columns found: {found}")
            idx = folded.index(column.lower())
        out: list[str] = []
        for row in reader:
            if idx < len(row) and row[idx].strip():
                out.extend(split_sentences(html.unescape(row[idx])))
        return out
    except csv.Error as e:
        raise InputError(f"{label}: malformed CSV at line {reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(old)


def parse_corpus(text: str, fmt: str, level: str = "word", csv_column: str = "body",
                 label: str = "<text>") -> list[str]:
    """Sentences of `text` in format lines | ptb | text | csv (`label` names it in errors)."""
    if fmt in ("lines", "ptb"):
        return _from_lines(text, fmt, level)
    if fmt == "text":
        return split_sentences(text)
    if fmt == "csv":
        return _from_csv(text, label, csv_column)
    raise ConfigError(f"corpus_format must be one of {', '.join(FORMATS[1:])}, got {fmt!r}")


def detect_format(path: str | os.PathLike) -> str:
    """auto format of a path: *.csv -> csv; ptb.*.txt, *.tokens -> ptb; otherwise lines."""
    name = Path(path).name.lower()
    if name.endswith(".csv"):
        return "csv"
    if fnmatch.fnmatch(name, "ptb.*.txt") or name.endswith(".tokens"):
        return "ptb"
    return "lines"


def holdout_text(text: str, split: str, fraction: float = HOLDOUT_FRACTION) -> str:
    """First (1 - fraction) of `text` (train) or the rest (valid), cut at the line boundary at
    or after that character position; split all gives the whole text."""
    if split == "all":
        return text
    cut = text.find("\n", int(len(text) * (1.0 - fraction)))
    cut = len(text) if cut < 0 else cut + 1
    return text[:cut] if split == "train" else text[cut:]


def holdout_sentences(sentences: list[str], split: str, fraction: float = HOLDOUT_FRACTION) -> list[str]:
    """First sentences up to (1 - fraction) of the characters (train) or the rest (valid)."""
    if split == "all":
        return sentences
    total = sum(len(s) + 1 for s in sentences)
    limit, acc, k = total * (1.0 - fraction), 0, len(sentences)
    for i, s in enumerate(sentences):
        if acc >= limit:
            k = i
            break
        acc += len(s) + 1
    return sentences[:k] if split == "train" else sentences[k:]


def python_docs_corpus() -> str:
    """python_docs_text() with reST heading underlines turned into paragraph breaks."""
    return _UNDERLINE_RE.sub("", python_docs_text())


def _read_dataset(name: str, split: str, fmt: str, level: str, csv_column: str) -> list[str]:
    spec = KNOWN_DATASETS[name]
    if split not in spec.splits:
        raise InputError(f"{name}:{split}: unknown split (known: {', '.join(spec.splits)})")
    fmt = spec.format if fmt == "auto" else fmt
    if spec.builtin:
        text, label = python_docs_corpus(), name
    else:
        path = resolve_dataset(name, split)
        text, label = read_text(path), str(path)
    if not spec.single_file:
        return parse_corpus(text, fmt, level, csv_column, label)
    if fmt in ("lines", "ptb"):
        return parse_corpus(holdout_text(text, split), fmt, level, csv_column, label)
    return holdout_sentences(parse_corpus(text, fmt, level, csv_column, label), split)


def read_sentences(source: str | os.PathLike, format: str = "auto", csv_column: str = "body",
                   level: str = "word") -> list[str]:
    """Sentences of a corpus file or known dataset (see the module docstring)."""
    if format not in FORMATS:
        raise ConfigError(f"corpus_format must be one of {', '.join(FORMATS)}, got {format!r}")
    if level not in LEVELS:
        raise ConfigError(f"level must be word or char, got {level!r}")
    if isinstance(source, str) and "/" not in source and os.sep not in source:
        parsed = parse_source(source)
        if parsed is not None:
            return _read_dataset(*parsed, format, level, csv_column)
    path = Path(source)
    if not path.exists() and not path.is_symlink():
        known = ", ".join(sorted(KNOWN_DATASETS))
        raise InputError(f"{source}: no such file, and not a known dataset name (known datasets: {known})")
    fmt = detect_format(path) if format == "auto" else format
    return parse_corpus(read_text(path), fmt, level, csv_column, str(source))
