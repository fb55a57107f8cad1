"""Corpus sources read for id files: directories and globs in sorted order with per-file formats,
and the streamed CSV and text readers against the whole-text parsers of earlier releases.

Every check compares with a reference that does not go through rnnkit.data.encode.
"""

from __future__ import annotations

import csv
import html
import io

import pytest

import id_files_kit
from id_files_kit import write
from rnnkit.config import TokenizerConfig
from rnnkit.data import encode_corpus, read_sentences, split_lines
from rnnkit.data.formats import format_sentences
from rnnkit.errors import InputError
from rnnkit.text import split_sentences

# the kit's fixture (autouse: every test here gets an id cache of its own, RNNKIT_CACHE)
cache = id_files_kit.cache


# --------------------------------------------------------------------------- sources


def test_directories_and_globs_are_read_in_sorted_order_with_per_file_formats(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    write(shards / "b.txt", ["second file"])
    write(shards / "a.txt", ["first file", "", "more"])
    (shards / "c.csv").write_text('body\n"A csv cell. Two sentences."\n', encoding="utf-8")
    write(shards / ".hidden", ["never read"])
    (shards / "sub").mkdir()
    expected = ["first file", "more", "second file", "A csv cell.", "Two sentences."]
    assert read_sentences(shards) == expected
    assert read_sentences(str(shards / "*.txt")) == expected[:3]
    whole, vocab = encode_corpus(str(shards / "[ab].txt"), TokenizerConfig())
    assert [vocab.decode(s) for s in whole] == [s.split() for s in expected[:3]]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: is a directory with no files"):
        read_sentences(tmp_path / "empty")
    with pytest.raises(InputError, match=r"nothing\*\.txt: no file matches"):
        read_sentences(str(tmp_path / "nothing*.txt"))


def old_csv(text: str, column: str) -> list[str]:
    """The whole-text CSV reader of earlier releases."""
    reader = csv.reader(io.StringIO(text, newline=""))
    names = [h.strip() for h in next(reader)]
    idx = names.index(column)
    out: list[str] = []
    for row in reader:
        if idx < len(row) and row[idx].strip():
            out.extend(split_sentences(html.unescape(row[idx])))
    return out


@pytest.mark.parametrize("text", [
    'id,body\n1,"First &gt; one.\n\nSecond, ""quoted"". Third"\n2,\n3,Plain &amp; simple\n',
    'id,body\r\n1,"a\rb. C d."\r\n2,lone\rcr row\n3,"ends with cr\r"\n4,last row without newline',
    'body,x\n"multi\n line\n\n para. Next one"\n,\n"x\r\r\ny. Z"\n',
])
def test_csv_rows_streamed_as_the_whole_text_reader_parsed_them(text):
    lines = split_lines(text.replace("\r\n", "\n"))
    assert list(format_sentences(lines, "csv", csv_column="body")) == old_csv(text.replace("\r\n", "\n"), "body")


@pytest.mark.parametrize("text", [
    "Mr. Smith came. He saw\nit all!\n\nA new paragraph\n \t \nand one. More\n",
    "No breaks here. Just\nwrapped lines. Of text.\n",
    "\n\n  \nLeading blank lines. Then\r\rtext after a cr pair. And\x0c\nform feed.\n\n",
])
def test_text_format_by_paragraph_is_split_sentences_of_the_whole(text):
    assert list(format_sentences(split_lines(text), "text")) == split_sentences(text)
