"""Corpus sources: a file, a directory or a glob of files (shards), or a known dataset, read as a
stream of sentences.

- source: a path; a directory (its files, not those in subdirectories nor hidden ones); a glob
  pattern such as "shards/news-*.txt" (when no file has that name); or a known dataset name,
  optionally with a split: "ptb", "ptb:valid", "tinyshakespeare:valid", "python-docs:all" (a
  bare name means split train; a local file named like a dataset is read as "./NAME").
  Several files are read in sorted order, one after another.
- format: lines | ptb | text | csv (`rnnkit.data.formats`), or auto: decided per file by
  `detect_format`; a dataset name uses its own format.

`corpus_parts` says what a source is made of, `iter_sentences` yields its sentences holding
about one line, paragraph or CSV row at a time (a single-file dataset is small and read whole),
`read_sentences` is their list, `fingerprint` identifies the parts' content for the id cache
(each file's resolved path, size, modification time and inode).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .datasets import KNOWN_DATASETS, parse_source, resolve_dataset
from .formats import format_sentences
from .lines import iter_lines
from .readers import (
    check_not_binary,
    check_options,
    detect_format,
    os_problem,
    read_single_file_dataset,
)

_GLOB_CHARS = "*?["
SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Part:
    """One file of a corpus, or one split of a dataset shipped as one file."""

    label: str  # how messages name it
    format: str  # lines | ptb | text | csv
    path: Path  # the file (python-docs: the module its text comes from)
    dataset: tuple[str, str] | None = None  # (name, split) of a dataset shipped as one file


def corpus_parts(source: str | os.PathLike, format: str = "auto") -> list[Part]:
    """The parts of a source, in reading order (InputError when it names nothing readable)."""
    if isinstance(source, str) and "/" not in source and os.sep not in source:
        parsed = parse_source(source)
        if parsed is not None:
            return [_dataset_part(*parsed, format)]
    label = str(source)
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
        if not files:
            raise InputError(f"{label}: is a directory with no files in it")
    elif path.exists() or path.is_symlink():
        files = [path]
    elif any(c in label for c in _GLOB_CHARS):
        files = sorted(Path(p) for p in glob.glob(label) if Path(p).is_file())
        if not files:
            raise InputError(f"{label}: no file matches this pattern")
    else:
        known = ", ".join(sorted(KNOWN_DATASETS))
        raise InputError(f"{label}: no such file, and not a known dataset name (known datasets: {known})")
    return [Part(label if f is path else str(f), detect_format(f) if format == "auto" else format, f)
            for f in files]


def _dataset_part(name: str, split: str, format: str) -> Part:
    spec = KNOWN_DATASETS[name]
    if split not in spec.splits:
        raise InputError(f"{name}:{split}: unknown split (known: {', '.join(spec.splits)})")
    fmt = spec.format if format == "auto" else format
    path = resolve_dataset(name, split)
    if not spec.single_file:
        return Part(str(path), fmt, path)
    return Part(name if spec.builtin else str(path), fmt, path, (name, split))


def part_sentences(part: Part, level: str = "word", csv_column: str = "body") -> Iterator[str]:
    """The sentences of one part."""
    if part.dataset is not None:
        return iter(read_single_file_dataset(*part.dataset, part.format, level, csv_column))
    _sniff(part)
    return format_sentences(iter_lines(part.path, part.label), part.format, level, csv_column, part.label)


def _sniff(part: Part) -> None:
    """A binary file is refused as read_text refuses it, before any line is decoded (its first
    bytes are seldom valid UTF-8: that would be the message otherwise)."""
    try:
        with open(part.path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return  # iter_lines says what is wrong
    check_not_binary(head, part.label)


def iter_sentences(source: str | os.PathLike, format: str = "auto", csv_column: str = "body",
                   level: str = "word") -> Iterator[str]:
    """The sentences of every part of `source`, one part after another."""
    check_options(format, level)
    parts = corpus_parts(source, format)
    return _chain_parts(parts, level, csv_column)


def _chain_parts(parts: list[Part], level: str, csv_column: str) -> Iterator[str]:
    for part in parts:
        yield from part_sentences(part, level, csv_column)


def read_sentences(source: str | os.PathLike, format: str = "auto", csv_column: str = "body",
                   level: str = "word") -> list[str]:
    """All the sentences of a source, as a list (see the module docstring)."""
    return list(iter_sentences(source, format, csv_column, level))


def fingerprint(parts: list[Part]) -> list[list]:
    """What identifies the parts' content: per part its format, dataset split and file (resolved
    path, size, modification time in ns, inode)."""
    out = []
    for part in parts:
        try:
            st = part.path.stat()
        except OSError as e:
            raise InputError(f"{part.label}: {os_problem(e)}") from None
        split = part.dataset[1] if part.dataset else None
        out.append([part.format, split, str(part.path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino])
    return out
