"""Token offsets of the regex WordTokenizer on real corpora: every line of the PTB test split and
of the Reddit sample (each sentence as training reads it, and each raw line of the CSV file).

For every token of `tokenize_with_spans(line)` (default WordTokenizer: regex split, no
lower-casing) the tokens equal `tokenize(line)`, the spans are in order, and line[start:end]
is the token's surface text: exactly, or, where the slice holds an HTML character reference or
U+2019, after the tokenizer's documented normalisation (html.unescape, U+2019 read as ')
the slice contains the token (two tokens out of one reference share its span). The check is
written from the docstring's definition, not from the implementation.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from rnnkit.data import read_sentences
from rnnkit.text import WordTokenizer

REDDIT = Path("reddit") / "reddit-comments-2015-08-sample.csv"


def _normalised(s: str) -> str:
    """The documented preparation of a slice: HTML references decoded, U+2019 made '."""
    return html.unescape(s).replace("\u2019", "'")


def check_line(tok: WordTokenizer, line: str) -> int:
    """Assert the span properties of one line; returns the number of tokens checked."""
    triples = tok.tokenize_with_spans(line)
    assert [t for t, _, _ in triples] == tok.tokenize(line), line
    prev_start, prev_end = 0, 0
    for token, start, end in triples:
        assert 0 <= start <= end <= len(line), (line, token, start, end)
        assert start >= prev_start and end >= prev_end, (line, token, start, end)
        if start < prev_end:  # overlap: only where tokens come out of one character reference
            assert "&" in line[start:prev_end], (line, token, start, end)
        piece = line[start:end]
        if "&" not in piece and "\u2019" not in piece:
            assert piece == token, (line, token, start, end, piece)
        else:
            assert token in _normalised(piece), (line, token, start, end, piece)
        prev_start, prev_end = start, end
    return len(triples)


def test_ptb_test_every_line(shared_data):
    tok = WordTokenizer()
    lines = (shared_data / "ptb" / "ptb.test.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) > 3000
    n = sum(check_line(tok, line) for line in lines)
    assert n > 70000  # the whole test split (82k tokens) was looked at


def test_reddit_sentences_as_training_reads_them(shared_data):
    tok = WordTokenizer()
    sents = read_sentences(shared_data / REDDIT)
    assert len(sents) > 1000
    n = sum(check_line(tok, s) for s in sents)
    assert n > 10000


def test_reddit_raw_csv_lines(shared_data):
    tok = WordTokenizer()
    lines = (shared_data / REDDIT).read_text(encoding="utf-8").splitlines()
    assert len(lines) > 900
    assert sum(check_line(tok, line) for line in lines) > 10000


def test_reddit_has_references_and_they_are_checked(shared_data):
    """The normalisation branch is exercised: the sample holds HTML references (&amp; &gt; ...)."""
    text = (shared_data / REDDIT).read_text(encoding="utf-8")
    with_refs = [line for line in text.splitlines() if "&" in line and html.unescape(line) != line]
    if not with_refs:
        pytest.skip("no HTML references in this copy of the Reddit sample")
    tok = WordTokenizer()
    for line in with_refs:
        check_line(tok, line)
