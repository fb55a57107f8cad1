"""data.lines.iter_lines: the lines read_text + split_lines give, one block at a time, with the same errors."""

from __future__ import annotations

import io

import pytest

from rnnkit.data.lines import iter_lines
from rnnkit.data.readers import MAX_LINE_CHARS, decode_text, split_lines
from rnnkit.errors import InputError

CASES = [
    b"one\ntwo\n", b"one\ntwo", b"\xef\xbb\xbfbom first\nx\n", b"crlf\r\nends\r\n", b"lone\rcr\nend\r",
    b"\n\nblank lines first\n\n", "unicode \u00e9\u2028inside\x0cff\n".encode(), b"a" * 5000 + b"\nb\n",
    b"\r\n\r\nx", b"last line without newline",
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_same_lines_as_reading_the_whole_file(data, block, tmp_path):
    want = split_lines(decode_text(data, "f"))
    assert list(iter_lines(io.BytesIO(data), "f", block_bytes=block)) == want
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    assert list(iter_lines(path, block_bytes=block)) == want


@pytest.mark.parametrize("data, words", [
    (b"", "empty file (0 bytes)"),
    (b" \n\t\n\n", "only whitespace"),
    (b"ok\nbad \xff byte\n", "invalid UTF-8 at line 2, byte offset 7"),
    (b"ok\nnul\x00here\n", "NUL byte at offset 6"),
])
@pytest.mark.parametrize("block", [2, 1 << 20])
def test_same_errors_as_reading_the_whole_file(data, words, block):
    with pytest.raises(InputError) as whole:
        decode_text(data, "f")
    with pytest.raises(InputError) as streamed:
        list(iter_lines(io.BytesIO(data), "f", block_bytes=block))
    assert words in str(whole.value) and str(streamed.value) == str(whole.value)


def test_a_too_long_line_is_refused_with_its_number():
    data = b"short\n" + b"x" * (MAX_LINE_CHARS + 1) + b"\n"
    with pytest.raises(InputError, match=r"^f: line 2 is 1,000,001 characters long"):
        list(iter_lines(io.BytesIO(data), "f"))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(iter_lines(tmp_path / "nope.txt"))
    with pytest.raises(InputError, match="is a directory"):
        list(iter_lines(tmp_path))
