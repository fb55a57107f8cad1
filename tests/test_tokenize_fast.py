"""The fast word tokenizer (whitespace chunks, a bounded chunk cache) against the definition.

`WordTokenizer(split="regex").tokenize` must give exactly the tokens of `_tokenize_reference`,
the one regex scan over the whole text: on every line of the corpora (PTB, the Reddit sample,
tiny-shakespeare from ../shared/data, skipped when absent; python-docs, built in), on random
strings full of the tricky characters (hypothesis when installed, and a seeded generator that
always runs), with lower-casing on and off, cold and warm cache. Also the facts the chunking
rests on, checked over all code points, and the cache's bounds.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest

from rnnkit.data import read_sentences
from rnnkit.data.datasets import python_docs_text
from rnnkit.text import WordTokenizer
from rnnkit.text.tokenize import _CHUNKS, _TOKEN_RE, _ChunkCache, _needs_next, _tokenize_reference

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # not a declared dependency: the seeded random test still runs
    st = None

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REDDIT = SHARED / "reddit" / "reddit-comments-2015-08-sample.csv"

# Pieces that exercise every branch of the regex: specials, URLs, e-mails, currency, years,
# clitics, escaped stars, word separators, abbreviations, "No. 5", entities, odd whitespace.
FRAGMENTS = [
    "no.", "No.", "NO.", "nO.", "No. 5", "no. N", "no. #1", "no.5", "no.,", "N", "Nx", "N-", "#",
    "&amp;", "&#39;", "&gt;", "&lt;unk&gt;", "&nbsp;", "&#32;", "&quot;", "&", "&amp", ";",
    "<unk>", "<s>", "</s>", "<", ">", "/", "\\", "\\/", "\\*", "*", "-", "--", ".", "..", "...",
    ",", "'", "\u2019", '"', "(", ")", "$", "US$", "c$", "$5", "'80s", "'80", "'s", "'S", "n't",
    "don't", "can\u2019t", "o'brien", "couldn't've", "1,000", "12:30", "3.14", "1.", "mr.",
    "Mr.", "U.S.", "u.s", "e.g.", "I.", "etc.", "mass.", "well-known", ".-", "s&p", "a.b@c.org",
    "x@y", "http://x.org/a.b", "https://e.com/x?y=1&z=2.", "www.a.com", "www.", "http:",
    "a", "Z", "7", "\u0663", "é", "\u0130", "ß", "_", "\u00b2", "\u2163",
    " ", " ", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2003",
    "\u3000", "\u2028",
]
_TOKENIZERS = {lc: WordTokenizer(lowercase=lc) for lc in (False, True)}


def assert_same_as_reference(lines, lowercases=(False, True)) -> None:
    """Fast path == reference on every line, with the first difference in the message."""
    for lc in lowercases:
        tok = _TOKENIZERS[lc]
        for line in lines:
            want = _tokenize_reference(line, lowercase=lc)
            assert tok.tokenize(line) == want, (lc, line)


def shared_file(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_identical_on_ptb(split):
    path = shared_file("ptb", f"ptb.{split}.txt")
    assert_same_as_reference(path.read_text(encoding="utf-8").splitlines())


def test_identical_on_reddit_sample():
    """The CSV's sentences (cells html-unescaped) and its raw lines (entities still in)."""
    path = shared_file("reddit", REDDIT.name)
    assert_same_as_reference(read_sentences(str(path)))
    assert_same_as_reference(path.read_text(encoding="utf-8").splitlines())


def test_identical_on_tinyshakespeare():
    path = shared_file("tinyshakespeare", "input.txt")
    assert_same_as_reference(path.read_text(encoding="utf-8").splitlines())


def test_identical_on_python_docs():
    """Built in, never skipped: the sentences and the raw text's lines."""
    assert_same_as_reference(read_sentences("python-docs:all"))
    assert_same_as_reference(python_docs_text().splitlines())


@pytest.mark.parametrize("text", [
    "No. 5", "no. N", "no. #1", "No.\t5", "No.\n\n5", "No.\xa05", "(no. 5)", "&no. 5", "no.5",
    "no., 5", "NO. N.", "no. Nx", "no. N-", "no. N'", "no.", "no. x", "say no. No. 5 no.",
    "no. no. no. 5", "piano. 5", "x.no. 5", "mass. 5", "No. \u0663", "No. &#35;3",
    "(no. 5 no.", "(no. 5 (no. 5 no.",  # a chunk's tokens may equal a later odd chunk
])
def test_no_period_depends_on_next_chunk(text):
    """The one context dependency: "no." keeps its period before a number, N or #."""
    for _ in range(2):  # cold, then warm cache
        assert_same_as_reference([text, text + " x", "x " + text])


def random_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randrange(12)):
        if rng.random() < 0.8:
            parts.append(rng.choice(FRAGMENTS))
        else:
            parts.append(chr(rng.randrange(sys.maxunicode + 1)))
    return "".join(parts)


def test_seeded_random_strings():
    """Random strings of the tricky pieces; each tokenized twice (the cache filled the 2nd time)."""
    rng = random.Random(20150801)
    texts = [random_text(rng) for _ in range(3000)]
    texts = [t for t in texts if not any(0xD800 <= ord(c) <= 0xDFFF for c in t)]
    assert_same_as_reference(texts)
    assert_same_as_reference(texts)


if st is not None:
    _piece = st.one_of(st.sampled_from(FRAGMENTS), st.characters(exclude_categories=["Cs"]))

    @settings(max_examples=400, deadline=None, database=None)
    @given(st.lists(_piece, max_size=16), st.booleans())
    def test_hypothesis_fast_equals_reference(parts, lowercase):
        text = "".join(parts)
        assert_same_as_reference([text, text], lowercases=(lowercase,))
else:
    def test_hypothesis_fast_equals_reference():
        pytest.skip("hypothesis is not installed (test_seeded_random_strings covers the same ground)")


def test_whitespace_of_regex_is_that_of_str_split():
    """Over all code points: re's \\s (as in _TOKEN_RE, no flags) is str.split's whitespace,
    so no regex match crosses a chunk boundary and no chunk holds regex whitespace."""
    space = re.compile(r"\s", _TOKEN_RE.flags & ~re.VERBOSE)
    differ = [hex(c) for c in range(sys.maxunicode + 1)
              if (space.match(chr(c)) is not None) != (len(f"a{chr(c)}a".split()) == 2)]
    assert differ == []


def test_isalnum_chunk_is_one_token():
    """Over all code points: an alphanumeric character is a regex word character, so a chunk
    made only of them is one token, itself (the shortcut in the chunk cache)."""
    word = re.compile(r"\w")
    bad = [hex(c) for c in range(sys.maxunicode + 1) if chr(c).isalnum() and not word.match(chr(c))]
    assert bad == []
    samples = ["a", "Z9", "\u0663\u0664", "é\u00b2\u2163", "x" * 300]
    for chunk in samples:
        assert _tokenize_reference(chunk) == [chunk]


def test_only_n_and_o_lower_to_n_and_o():
    """_needs_next looks at chunk[-3:].lower() == "no.": no other code point lowers to n or o
    (or to "no"), so every chunk whose last word is "no." (any case) is caught."""
    odd = [hex(c) for c in range(sys.maxunicode + 1)
           if chr(c).lower() in ("n", "o", "no") and chr(c) not in "nNoO"]
    assert odd == []
    assert all(_needs_next(c) for c in ["no.", "No.", "NO.", "(nO.", "&no."])
    assert not any(_needs_next(c) for c in ["no", "no.5", "on.", "o."])


@pytest.mark.parametrize("size, max_chars", [(100, 10**6), (10**6, 600)])
def test_chunk_cache_is_bounded_and_right(size, max_chars):
    """Either bound (chunk count, characters) empties the cache; a long chunk is not kept."""
    cache = _ChunkCache(size=size, max_chars=max_chars, max_chunk=20)
    for i in range(3000):
        for chunk in (f"w{i}", f"w{i},", f"({i})", "x" * (i % 40)):
            if not chunk:
                continue
            assert cache[chunk] == tuple(_tokenize_reference(chunk))
            assert len(cache) <= size and sum(map(len, cache)) == cache.chars <= max_chars
            assert cache.identity <= cache.keys()
    assert all(len(k) <= 20 for k in cache)
    assert all(cache[k] == (k,) for k in cache.identity)


def test_module_cache_bounded_under_many_distinct_chunks(monkeypatch):
    """A tiny module cache, emptied again and again in the middle of lines: tokens unchanged."""
    monkeypatch.setattr(_CHUNKS, "size", 50)
    monkeypatch.setattr(_CHUNKS, "max_chars", 300)
    _CHUNKS.clear()
    try:
        lines = read_sentences("python-docs:all")[:800]
        assert_same_as_reference(lines)
        assert len(_CHUNKS) <= 50 and _CHUNKS.chars <= 300 and len(_CHUNKS.identity) <= 50
    finally:
        _CHUNKS.clear()


def test_default_cache_limits():
    assert _CHUNKS.size <= 1 << 16 and _CHUNKS.max_chars <= 1 << 20 and _CHUNKS.max_chunk <= 256
    assert len(_CHUNKS) <= _CHUNKS.size and _CHUNKS.chars <= _CHUNKS.max_chars


def test_output_is_a_fresh_list():
    """Callers may change the list they get: the cache is not affected."""
    tok = WordTokenizer()
    first = tok.tokenize("the cat 's hat , no.")
    first.append("X")
    first[0] = "Y"
    assert tok.tokenize("the cat 's hat , no.") == ["the", "cat", "'s", "hat", ",", "no", "."]
