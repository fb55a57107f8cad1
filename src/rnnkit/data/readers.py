"""Whole-text readers: a file's text with its checks, and the small single-file known datasets.

`read_text` reads a file as UTF-8 (BOM and CRLF accepted) or raises an InputError starting
with the path and saying what is wrong (`rnnkit.data.lines.iter_lines` gives the same lines
and errors one block at a time). `parse_corpus` gives the sentences of a whole text in a
corpus format (`rnnkit.data.formats`); `detect_format` is the auto format of a path: *.csv ->
csv, ptb.*.txt and *.tokens -> ptb, otherwise lines.

Datasets shipped as one file (tinyshakespeare, reddit-sample, reddit, python-docs) are read
whole and cut into the first 90% (split train) and the last 10% (split valid) by character
position, rounded to the next line boundary (formats lines, ptb) or sentence boundary (text,
csv); split all is the whole file. Sources in general (files, directories, globs, dataset
names) are read by `rnnkit.data.sources`.
"""

from __future__ import annotations

import codecs
import fnmatch
import os
import re
from pathlib import Path

from ..config import CORPUS_FORMATS as FORMATS
from ..config import LEVELS
from ..errors import ConfigError, InputError
from .datasets import HOLDOUT_FRACTION, KNOWN_DATASETS, python_docs_text, resolve_dataset
from .formats import format_sentences

MAX_LINE_CHARS = 1_000_000
_UNDERLINE_RE = re.compile(r"(?m)^[ \t]*([*=\-~^\"#+])\1{2,}[ \t]*$")  # reST heading underlines


def read_text(path: str | os.PathLike) -> str:
    """The file's text (UTF-8, BOM stripped, CRLF -> LF), or InputError "PATH: problem"."""
    label = str(path)
    try:
        if Path(path).is_dir():
            raise InputError(f"{label}: is a directory, not a text file")
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{label}: {os_problem(e)}") from None
    return decode_text(data, label)


def os_problem(e: OSError) -> str:
    """What went wrong opening or reading a file, as the messages say it."""
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, PermissionError):
        return "permission denied"
    return f"cannot read: {e.strerror or e}"


def decode_text(data: bytes, label: str) -> str:
    """Bytes read from `label` (a path, or <stdin>) as text, with read_text's checks and messages."""
    if not data:
        raise InputError(f"{label}: empty file (0 bytes)")
    check_not_binary(data, label)
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


def check_not_binary(data: bytes, label: str) -> None:
    """InputError "LABEL: looks like a binary file" when `data` (a file, or its first block) has a NUL byte."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{label}: looks like a binary file (NUL byte at offset {nul}); "
                         "expected UTF-8 text (a UTF-16 file must be converted to UTF-8)")


def split_lines(text: str) -> list[str]:
    """Lines without their newline; a final newline does not start an extra empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_corpus(text: str, fmt: str, level: str = "word", csv_column: str = "body",
                 label: str = "<text>") -> list[str]:
    """Sentences of a whole `text` in format lines | ptb | text | csv (`label` names it in errors)."""
    return list(format_sentences(split_lines(text), fmt, level, csv_column, label))


def check_options(format: str, level: str) -> None:
    """ConfigError for a corpus format or level that does not exist."""
    if format not in FORMATS:
        raise ConfigError(f"corpus_format must be one of {', '.join(FORMATS)}, got {format!r}")
    if level not in LEVELS:
        raise ConfigError(f"level must be word or char, got {level!r}")


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


def read_single_file_dataset(name: str, split: str, fmt: str, level: str, csv_column: str) -> list[str]:
    """Sentences of split train | valid | all of a dataset shipped as one file (read whole: these
    are small), cut as the module docstring says."""
    spec = KNOWN_DATASETS[name]
    if spec.builtin:
        text, label = python_docs_corpus(), name
    else:
        path = resolve_dataset(name, split)
        text, label = read_text(path), str(path)
    if fmt in ("lines", "ptb"):
        return parse_corpus(holdout_text(text, split), fmt, level, csv_column, label)
    return holdout_sentences(parse_corpus(text, fmt, level, csv_column, label), split)
