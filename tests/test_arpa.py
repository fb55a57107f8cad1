"""ARPA back-off models (rnnkit.ngram): a Witten-Bell trigram from PTB train, written by the tests'
own counter (tests/ngram_build.py), scores every PTB test sentence as its counts say and as KenLM
does; hand-computed cases on a tiny model; every malformed file is one "FILE:LINE: problem" line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import SHARED_DATA
from ngram_build import WittenBell, read_sentences
from rnnkit.errors import InputError
from rnnkit.ngram import read_arpa

TINY = """\\data\\
ngram 1=5
ngram 2=4
ngram 3=1

\\1-grams:
-1.0\t<unk>\t-0.2
-99\t<s>\t-0.5
-0.5\t</s>
-0.7\ta\t-0.3
-0.9\tb\t-0.1

\\2-grams:
-0.3\t<s> a\t-0.05
-0.4\ta b\t-0.15
-0.2\tb </s>
-0.6\ta a

\\3-grams:
-0.1\t<s> a b

\\end\\
"""
NO_UNK = TINY.replace("ngram 1=5", "ngram 1=4").replace("-1.0\t<unk>\t-0.2\n", "")


def write(tmp_path, text: str, name: str = "lm.arpa"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ptb_trigram(tmp_path_factory):
    """(the WittenBell counts, the ARPA file they wrote, PTB test sentences), built once."""
    ptb = SHARED_DATA / "ptb"
    if not (ptb / "ptb.train.txt").is_file():
        pytest.skip(f"PTB not found at {ptb} (a fresh clone has no ../shared/data)")
    wb = WittenBell(read_sentences(str(ptb / "ptb.train.txt")), order=3)
    path = tmp_path_factory.mktemp("ngram") / "ptb3.arpa"
    wb.write_arpa(str(path))
    return wb, path, read_sentences(str(ptb / "ptb.test.txt"))


def test_ptb_trigram_equals_the_counts_on_every_test_sentence(ptb_trigram):
    wb, path, test = ptb_trigram
    lm = read_arpa(path)
    assert lm.order == 3 and lm.has_unk and len(lm.vocab) == 10001
    ours = lm.batch_log10(test)
    worst = max(np.abs(np.asarray(wb.sentence_log10(s)) - o).max() for s, o in zip(test, ours))
    assert worst < 1e-4
    one = lm.sentence_log10(test[7])  # the one-sentence form agrees with the batch
    np.testing.assert_allclose(one, ours[7], rtol=0, atol=1e-12)
    assert len(one) == len(test[7]) + 1


def test_ptb_trigram_equals_kenlm(ptb_trigram):
    kenlm = pytest.importorskip("kenlm", reason="the kenlm module is not installed")
    _, path, test = ptb_trigram
    lm, ken = read_arpa(path), kenlm.Model(str(path))
    ours = lm.batch_log10(test)
    for s, o in zip(test, ours):
        theirs = [p for p, _, _ in ken.full_scores(" ".join(s), bos=True, eos=True)]
        assert np.abs(np.asarray(theirs) - o).max() < 1e-4
    s = " ".join(test[0]).split()
    theirs = [p for p, _, _ in ken.full_scores(" ".join(s), bos=False, eos=False)]
    np.testing.assert_allclose(lm.sentence_log10(s, bos=False, eos=False), theirs, atol=1e-4)


@pytest.mark.parametrize(("words", "bos", "eos", "expected"), [
    ("a b", True, True, [-0.3, -0.1, -0.15 - 0.2]),  # trigram hit; </s> backs off from "a b"
    ("b a", True, True, [-0.5 - 0.9, -0.1 - 0.7, -0.3 - 0.5]),  # contexts "<s> b", "b a" unlisted: bow 0
    ("a zz", True, True, [-0.3, -0.05 - 0.3 - 1.0, -0.2 - 0.5]),  # zz is <unk>, in the word and the context
    ("b a", False, False, [-0.9, -0.1 - 0.7]),  # no <s>: the first word's unigram
    ("a b", True, False, [-0.3, -0.1]),
    ("", True, True, [-0.5 - 0.5]),
])
def test_tiny_model_by_hand(tmp_path, words, bos, eos, expected):
    lm = read_arpa(write(tmp_path, TINY))
    np.testing.assert_allclose(lm.sentence_log10(words.split(), bos=bos, eos=eos), expected, atol=1e-6)


def test_tiny_model_vocabulary(tmp_path):
    lm = read_arpa(write(tmp_path, TINY))
    assert (lm.order, lm.vocab, lm.has_unk) == (3, ["<unk>", "<s>", "</s>", "a", "b"], True)
    assert (lm.word_id("b"), lm.word_id("zz"), lm.word_id("<unk>")) == (4, 0, 0)


def test_unknown_word_without_unk(tmp_path):
    lm = read_arpa(write(tmp_path, NO_UNK))
    assert not lm.has_unk and lm.word_id("zz") == -1
    lp = lm.sentence_log10(["a", "zz", "b"])
    assert lp[1] == -math.inf  # the word itself; in the context it matches nothing: shorter contexts
    np.testing.assert_allclose(lp[[0, 2, 3]], [-0.3, -0.9, -0.2], atol=1e-6)


def test_prefix_missing_from_the_file_is_a_placeholder(tmp_path):
    text = TINY.replace("ngram 3=1", "ngram 3=2").replace("-0.1\t<s> a b\n", "-0.1\t<s> a b\n-0.05\tb a b\n")
    lm = read_arpa(write(tmp_path, text))  # "b a" is no bigram: p(a | b) still backs off to p(a)
    np.testing.assert_allclose(lm.sentence_log10(["b", "a", "b"], bos=False, eos=False),
                               [-0.9, -0.1 - 0.7, -0.05], atol=1e-6)


def test_optional_back_off_weights_and_spaces(tmp_path):
    text = TINY.replace("-0.4\ta b\t-0.15", "-0.4 a  b").replace("\t<s> a\t", " <s>   a ")
    lm = read_arpa(write(tmp_path, text))  # "a b" has no weight now: 0
    np.testing.assert_allclose(lm.sentence_log10(["a", "b"]), [-0.3, -0.1, -0.2], atol=1e-6)
    for other in ("made by hand, text before \\data\\\n\n" + TINY, TINY.replace("\n", "\r\n")):
        lm = read_arpa(write(tmp_path, other, "other.arpa"))  # a preamble (skipped, as SRILM does); CRLF
        np.testing.assert_allclose(lm.sentence_log10(["a", "b"]), [-0.3, -0.1, -0.15 - 0.2], atol=1e-6)


def _at(text: str, marker: str) -> int:
    return text[:text.index(marker)].count("\n") + 1


MALFORMED = [
    ("count", TINY.replace("ngram 2=4", "ngram 2=5"), "\\2-grams:", "has 4 entries, \\data\\ says ngram 2=5"),
    ("missing section", TINY.replace("ngram 3=1", "ngram 3=1\nngram 4=1"), "\\end\\", "expected \\4-grams:"),
    ("bad number", TINY.replace("-0.4\ta b", "-0.4x\ta b"), "-0.4x", "bad number '-0.4x'"),
    ("bad weight", TINY.replace("a b\t-0.15", "a b\tnan?"), "-0.4\ta b", "bad number 'nan?'"),
    ("nan", TINY.replace("-0.7\ta", "nan\ta"), "nan\ta", "bad number 'nan'"),
    ("too many words", TINY.replace("-0.2\tb </s>", "-0.2\tb </s> a b"), "-0.2\tb", "expected 3 or 4 fields"),
    ("too few words", TINY.replace("-0.1\t<s> a b", "-0.1\t<s> a"), "-0.1\t<s> a", "expected 4 or 5 fields"),
    ("unknown word", TINY.replace("-0.6\ta a", "-0.6\ta c"), "-0.6\ta c", "word 'c' is not in the \\1-grams:"),
    ("duplicate n-gram", TINY.replace("-0.6\ta a", "-0.6\ta b"), "-0.6\ta b", "duplicate 2-gram"),
    ("duplicate unigram", TINY.replace("-0.9\tb\t-0.1", "-0.9\ta\t-0.1"), "-0.9\ta", "duplicate unigram 'a'"),
    ("no data", TINY.replace("\\data\\", "data"), "data", "expected \\data\\"),
    ("no counts", TINY.replace("ngram 1=5", "ngram 1=x"), "ngram 1=x", "lists no 'ngram N=COUNT'"),
    ("order gap", TINY.replace("ngram 2=4", "ngram 3=4"), "ngram 3=4", "expected 'ngram 2=COUNT'"),
]


@pytest.mark.parametrize(("case", "text", "marker", "problem"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_file_is_one_line_with_file_and_line(tmp_path, case, text, marker, problem):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as e:
        read_arpa(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:{_at(text, marker)}: ") and problem in msg and "\n" not in msg


def test_missing_end_and_empty_and_absent_files(tmp_path):
    text = TINY.replace("\\end\\\n", "")
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=rf"^{path}:{text.count(chr(10)) + 1}: expected \\end\\"):
        read_arpa(path)
    with pytest.raises(InputError, match=r":1: expected \\data\\ .*the end of the file"):
        read_arpa(write(tmp_path, "", "empty.arpa"))
    with pytest.raises(InputError, match="cannot read"):
        read_arpa(tmp_path / "absent.arpa")


def test_big_sections_parse_in_chunks(tmp_path, monkeypatch):
    """A section cut into many chunks reads as one (CHUNK_BYTES made tiny)."""
    from rnnkit.ngram import arpa

    whole = read_arpa(write(tmp_path, TINY)).sentence_log10(["a", "b", "a", "a"])
    monkeypatch.setattr(arpa, "CHUNK_BYTES", 7)
    np.testing.assert_array_equal(read_arpa(write(tmp_path, TINY)).sentence_log10(["a", "b", "a", "a"]), whole)
    text = TINY.replace("-0.4\ta b", "-0.4\ta b b")
    with pytest.raises(InputError, match=rf":{_at(text, '-0.4')}: expected 3 or 4 fields"):
        read_arpa(write(tmp_path, text))
