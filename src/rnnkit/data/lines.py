"""Reading text line by line in bounded memory, with the checks and messages of `read_text`.

`iter_lines(source)` yields the lines of a file (or of a binary stream such as stdin) without
their newline, as `split_lines(read_text(path))` would return them, but holding one block of
the file at a time: a leading UTF-8 BOM is dropped, `\\r\\n` ends a line like `\\n` (a lone `\\r`
stays), and a NUL byte, invalid UTF-8 or a line longer than MAX_LINE_CHARS raises an
InputError naming the source, the line and the byte offset. An empty file, or one of only
whitespace, is an InputError too (the latter found at its end, after its blank lines).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError
from .readers import MAX_LINE_CHARS

BLOCK_BYTES = 1 << 20


def iter_lines(source: str | os.PathLike | BinaryIO, label: str | None = None,
               block_bytes: int = BLOCK_BYTES) -> Iterator[str]:
    """The lines of a path, or of an open binary stream (named `label` in messages)."""
    if isinstance(source, (str, os.PathLike)):
        label = label or str(source)
        with _open(Path(source), label) as f:
            yield from _lines(f, label, block_bytes)
    else:
        yield from _lines(source, label or "<stdin>", block_bytes)


def _open(path: Path, label: str) -> BinaryIO:
    try:
        if path.is_dir():
            raise InputError(f"{label}: is a directory, not a text file")
        return open(path, "rb")  # closed by the caller's with-block
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except PermissionError:
        raise InputError(f"{label}: permission denied") from None
    except OSError as e:
        raise InputError(f"{label}: cannot read: {e.strerror or e}") from None


def _blocks(f: BinaryIO, label: str, block_bytes: int) -> Iterator[bytes]:
    while True:
        try:
            block = f.read(block_bytes)
        except OSError as e:
            raise InputError(f"{label}: cannot read: {e.strerror or e}") from None
        if not block:
            return
        yield block


def _lines(f: BinaryIO, label: str, block_bytes: int) -> Iterator[str]:
    """Split blocks at b"\n"; decode and check each line (line numbers count from 1, byte
    offsets from the start of the file, BOM included)."""
    pending, offset, lineno, bom_checked, seen_text = b"", 0, 1, False, False
    for block in _blocks(f, label, block_bytes):
        data = pending + block
        if not bom_checked:
            if len(data) < len(codecs.BOM_UTF8) and codecs.BOM_UTF8.startswith(data):
                pending = data  # not enough bytes yet to tell
                continue
            bom_checked = True
            if data.startswith(codecs.BOM_UTF8):
                data, offset = data[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
        parts = data.split(b"\n")
        pending = parts.pop()
        if len(pending) > 4 * MAX_LINE_CHARS:  # no line end in sight: too long whatever it decodes to
            raise InputError(_too_long(label, lineno, len(pending)))
        for raw in parts:
            line = _decode(raw[:-1] if raw.endswith(b"\r") else raw, label, lineno, offset)
            seen_text = seen_text or (line != "" and not line.isspace())
            yield line
            offset += len(raw) + 1
            lineno += 1
    if not bom_checked and not pending:
        raise InputError(f"{label}: empty file (0 bytes)")
    if pending == codecs.BOM_UTF8[:len(pending)] and not bom_checked:
        pending = b""  # the file is (part of) a BOM and nothing else
    if pending:
        line = _decode(pending, label, lineno, offset)
        seen_text = seen_text or (line != "" and not line.isspace())
        yield line
    if not seen_text:
        raise InputError(f"{label}: empty file (only whitespace)")


def _decode(raw: bytes, label: str, lineno: int, offset: int) -> str:
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{label}: looks like a binary file (NUL byte at offset {offset + nul}); "
                         "expected UTF-8 text (a UTF-16 file must be converted to UTF-8)")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{label}: invalid UTF-8 at line {lineno}, byte offset {offset + e.start} "
                         f"(byte 0x{raw[e.start]:02x}); convert the file to UTF-8") from None
    if len(line) > MAX_LINE_CHARS:
        raise InputError(_too_long(label, lineno, len(line)))
    return line


def _too_long(label: str, lineno: int, n: int) -> str:
    return (f"{label}: line {lineno} is {n:,} characters long (limit {MAX_LINE_CHARS:,}); "
            "is this really a text corpus?")
