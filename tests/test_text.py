"""Tests for rnnkit.text: word/char tokenizers, sentence splitting, Vocab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnkit.config import TokenizerConfig
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.text import (
    BOS,
    EOS,
    UNK,
    CharTokenizer,
    Vocab,
    WordTokenizer,
    make_tokenizer,
    split_sentences,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
tok = WordTokenizer()


@pytest.mark.parametrize("text, expected", [
    ("I don't know.", ["I", "do", "n't", "know", "."]),
    ("It's fine, isn't it?", ["It", "'s", "fine", ",", "is", "n't", "it", "?"]),
    ("I'm sure we can't and won't.", ["I", "'m", "sure", "we", "ca", "n't", "and", "wo", "n't", "."]),
    ("They're here; we've gone, you'll see, he'd go.",
     ["They", "'re", "here", ";", "we", "'ve", "gone", ",", "you", "'ll", "see", ",", "he", "'d", "go", "."]),
    ("couldn't've", ["could", "n't", "'ve"]),
    ("the company's students' o'brien '80s", ["the", "company", "'s", "students", "'", "o'brien", "'80s"]),
    ("&gt;quote &amp; more &quot;x&quot;", [">", "quote", "&", "more", '"', "x", '"']),
    ("Hello, world! (really) [yes] {no} \"q\"",
     ["Hello", ",", "world", "!", "(", "really", ")", "[", "yes", "]", "{", "no", "}", '"', "q", '"']),
    ("pi is 3.14, 1,000 people at 12:30 cost $5.", ["pi", "is", "3.14", ",", "1,000", "people", "at",
                                                     "12:30", "cost", "$", "5", "."]),
    ("See https://example.com/a?b=1&c=2. Or www.python.org, ok",
     ["See", "https://example.com/a?b=1&c=2", ".", "Or", "www.python.org", ",", "ok"]),
    ("mail a.b@x.org.", ["mail", "a.b@x.org", "."]),
    ("<s> hello <unk> world </s>", ["<s>", "hello", "<unk>", "world", "</s>"]),
    ("<s>hi</s>", ["<s>", "hi", "</s>"]),
    ("Mr. Smith of the U.S. e.g. this, etc. Then I.", ["Mr.", "Smith", "of", "the", "U.S.", "e.g.", "this",
                                                      ",", "etc.", "Then", "I", "."]),
    ("well-known state-of-the-art -- wait... yes", ["well-known", "state-of-the-art", "--", "wait", "...", "yes"]),
    ("I said no. No. 5 wins", ["I", "said", "no", ".", "No.", "5", "wins"]),
    ("Room no. 5, NO. N and no.", ["Room", "no.", "5", ",", "NO.", "N", "and", "no", "."]),
    ("(no.\t#1) no.5", ["(", "no.", "#", "1", ")", "no.5"]),
    ("don’t", ["do", "n't"]),
])
def test_word_tokenizer_cases(text, expected):
    assert tok.tokenize(text) == expected
    assert tok.tokenize(" ".join(expected)) == expected  # idempotent on its own output


def test_lowercase_and_whitespace_split():
    assert WordTokenizer(lowercase=True).tokenize("The CAT's Hat.") == ["the", "cat", "'s", "hat", "."]
    ws = WordTokenizer(split="whitespace")
    assert ws.tokenize("  a  b,c\td \n") == ["a", "b,c", "d"]
    assert ws.detokenize(["a", "b"]) == "a b"
    with pytest.raises(ConfigError):
        WordTokenizer(split="nltk")


@pytest.mark.parametrize("text", [
    "Hello, world! I don't know (really).",
    "It's 3.14 and 1,000 people; I'm sure you can't.",
    'He said "stop." Then he left.',
    "Mr. Smith paid $5 for 10% of it: a bargain?",
])
def test_detokenize_round_trip(text):
    assert tok.detokenize(tok.tokenize(text)) == text


def test_idempotent_on_ptb_lines():
    """PTB's own tokens survive, except state abbreviations that are ordinary words (mass., ill.)."""
    path = SHARED / "ptb" / "ptb.valid.txt"
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    allowed = {"mass.", "ill.", "wash.", "ind.", "del.", "ore.", "mo."}
    lines = path.read_text().splitlines()
    changed = 0
    for line in lines:
        got = tok.tokenize(line)
        if got != line.split():
            changed += 1
            assert set(line.split()) - set(got) <= allowed, line
    assert changed < len(lines) * 0.01  # 18 of 3,370 lines
    ptb = "he does n't like the company 's plan"
    assert tok.tokenize(ptb) == ptb.split(" ")


def test_idempotent_on_reddit_sample():
    path = SHARED / "reddit" / "reddit-comments-2015-08-sample.csv"
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    from rnnkit.data import read_sentences
    for sent in read_sentences(str(path)):
        once = tok.tokenize(sent)
        assert tok.tokenize(" ".join(once)) == once, sent


def test_char_tokenizer_and_factory():
    ct = CharTokenizer()
    assert ct.tokenize("Hi all\n") == ["H", "i", " ", "a", "l", "l", "\n"]
    assert ct.detokenize(ct.tokenize("Héllo &amp;")) == "Héllo &amp;"
    assert CharTokenizer(lowercase=True).tokenize("AbC") == ["a", "b", "c"]
    t = make_tokenizer(TokenizerConfig(level="char", lowercase=True))
    assert isinstance(t, CharTokenizer) and t.lowercase
    t = make_tokenizer(TokenizerConfig(level="word", word_split="whitespace"))
    assert isinstance(t, WordTokenizer) and t.split == "whitespace"
    with pytest.raises(ConfigError):
        make_tokenizer(TokenizerConfig(level="byte"))


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith went to Washington. He arrived at 3.30 today! Was it true? Yes.",
     ["Mr. Smith went to Washington.", "He arrived at 3.30 today!", "Was it true?", "Yes."]),
    ("Use e.g. lists, i.e. arrays, etc. and more. Dr. Who came.",
     ["Use e.g. lists, i.e. arrays, etc. and more.", "Dr. Who came."]),
    ('She said "Stop." Then she left. (Quietly.) Done.',
     ['She said "Stop."', "Then she left.", "(Quietly.)", "Done."]),
    ("Wait... it is fine. Hmm... Okay.", ["Wait... it is fine.", "Hmm...", "Okay."]),
    ("J. R. R. Tolkien wrote it. Pi is 3.14159 roughly.", ["J. R. R. Tolkien wrote it.", "Pi is 3.14159 roughly."]),
    ("Line one\nwrapped here. Next\n\nNew paragraph without end\n\n\nThird.",
     ["Line one wrapped here.", "Next", "New paragraph without end", "Third."]),
    ("1. First item. 2. Second item.", ["1. First item.", "2. Second item."]),
    ("Room No. 5 is free. I said no. Fine.", ["Room No. 5 is free.", "I said no.", "Fine."]),
    ("Windows\r\n\r\nline ends.", ["Windows", "line ends."]),
    ("", []),
    ("   \n\n ", []),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_vocab_build_order_and_caps():
    lists = [["b", "a", "c", "a"], ["c", "a", "d", "<unk>", "</s>"]]
    v = Vocab.build(lists)
    assert v.to_list() == [UNK, BOS, EOS, "a", "c", "b", "d"]  # count desc, then token asc
    assert (v.unk_id, v.bos_id, v.eos_id) == (0, 1, 2)
    assert Vocab.build(lists, max_size=5).to_list() == [UNK, BOS, EOS, "a", "c"]
    assert Vocab.build(lists, min_count=2).to_list() == [UNK, BOS, EOS, "a", "c"]
    assert Vocab.build(lists, max_size=4, min_count=2).to_list() == [UNK, BOS, EOS, "a"]
    assert Vocab.build(list(reversed(lists))) == v  # order of input does not matter
    assert len(v) == 7 and "a" in v and "z" not in v
    assert v.encode(["a", "z", "d"]) == [3, 0, 6]
    assert v.decode([3, 0, 6]) == ["a", UNK, "d"]
    with pytest.raises(ConfigError):
        Vocab.build(lists, max_size=2)
    with pytest.raises(ConfigError):
        Vocab.build(lists, min_count=0)


def test_vocab_json_round_trip(tmp_path):
    v = Vocab.build([["x", "y", "y", "é", "\n"]])
    p = tmp_path / "vocab.json"
    p.write_text(json.dumps(v.to_list()), encoding="utf-8")
    w = Vocab.from_list(json.loads(p.read_text(encoding="utf-8")))
    assert w == v and w.encode(["y", "é", "\n"]) == v.encode(["y", "é", "\n"])


@pytest.mark.parametrize("bad, words", [
    (["a", "<s>", "</s>"], "must start with"),
    ([UNK, EOS, BOS, "a"], "must start with"),
    ([UNK, BOS, EOS, "a", "a"], "duplicates entry 3"),
    ([UNK, BOS, EOS, 5], "not a string"),
    ([UNK, BOS, EOS, ""], "empty string"),
    ({"a": 1}, "JSON array"),
])
def test_vocab_from_list_refuses(bad, words):
    with pytest.raises(CheckpointError) as e:
        Vocab.from_list(bad)
    assert words in str(e.value) and "\n" not in str(e.value)
