"""Words from a character model's characters, and regions (inference/words.py, LanguageModel.word_scores
and .region_scores), checked against per-token scores added up by hand and against the step API."""

from __future__ import annotations

import math

import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.errors import ConfigError, InputError
from rnnkit.inference.words import read_regions

LINES = ["the cat sat on the mat .", "  two  spaces  ", "", "   ", "a", "it's a dog's life , isn't it ?",
         "tab\tand new-line? no.", "x  "]


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("words") / "char", level="char"))


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("words") / "word"))


def _chars(lm, text: str) -> list[float]:
    """ln p of each character then </s>, from the per-token scores."""
    return [t.logprob for t in lm.score_sentences([text], per_token=True)[0].tokens]


@pytest.mark.parametrize("text", LINES)
def test_word_logprobs_add_up_to_the_sentence(char_lm, text):
    words = char_lm.word_scores(text)
    assert math.isclose(sum(w.logprob for w in words), char_lm.score(text), rel_tol=0, abs_tol=1e-9)
    assert sum(len(w.chars) for w in words) == len(text) + 1  # every character and </s>, once
    assert [w.word for w in words if w.word] == text.split()
    assert all(text[w.start:w.end] == w.word for w in words)


def test_each_word_is_its_characters_and_the_boundary_after_it(char_lm):
    text = " ab  c."
    lp = _chars(char_lm, text)  # ' ' a b ' ' ' ' c . </s>
    words = char_lm.word_scores(text)
    assert [(w.word, w.start, w.end) for w in words] == [("", 0, 0), ("ab", 1, 3), ("c.", 5, 7)]
    expect = [lp[0], lp[1] + lp[2] + lp[3] + lp[4], lp[5] + lp[6] + lp[7]]
    for w, e in zip(words, expect):
        assert math.isclose(w.logprob, e, rel_tol=0, abs_tol=1e-12)
    assert [c for c, _ in words[1].chars] == ["a", "b", " ", " "]
    assert [c for c, _ in words[2].chars] == ["c", ".", "</s>"]


def test_word_probabilities_match_the_step_api(char_lm):
    text = "the dog ."
    st = char_lm.stepper()
    state, lps = st.begin(), []
    for ch in text:
        (state,), lp = st.score([state], [ch])
        lps.append(float(lp[0]))
    lps.append(float(st.end([state])[0]))
    words = char_lm.word_scores(text)
    assert [w.word for w in words] == ["the", "dog", "."]
    for w, e in zip(words, [sum(lps[0:4]), sum(lps[4:8]), sum(lps[8:10])]):
        assert math.isclose(w.logprob, e, rel_tol=0, abs_tol=1e-4)


def test_word_scores_need_a_character_model(word_lm):
    with pytest.raises(ConfigError, match="character models.*per-token"):
        word_lm.word_scores("the cat")


def test_char_regions_sum_the_characters_inside(char_lm):
    text = "the cat sat ."
    lp = _chars(char_lm, text)
    got = char_lm.region_scores(text, [(4, 7, "cat"), (0, 13, "all"), (3, 5, "gap")])
    assert [(r.label, r.text, r.n_tokens, r.cut_tokens) for r in got] == [
        ("cat", "cat", 3, []), ("all", text, 13, []), ("gap", " c", 2, [])]
    for r, e in zip(got, [sum(lp[4:7]), sum(lp[0:13]), sum(lp[3:5])]):
        assert math.isclose(r.logprob, e, rel_tol=0, abs_tol=1e-12)


def test_word_regions_aggregate_and_report_cut_tokens(word_lm):
    text = "it's a dog's life , isn't it ?"
    toks = word_lm.score_sentences([text], per_token=True)[0].tokens
    assert [t.token for t in toks] == ["it", "'s", "a", "dog", "'s", "life", ",", "is", "n't", "it", "?", "</s>"]
    lp = [t.logprob for t in toks]
    got = word_lm.region_scores(text, [(7, 12, "dogs"), (0, 3, "it'"), (21, 24, "sn'"), (0, len(text), "all")])
    assert [(r.label, r.n_tokens, r.cut_tokens) for r in got] == [
        ("dogs", 2, []), ("it'", 1, [("'s", 2, 4)]), ("sn'", 0, [("is", 20, 22), ("n't", 22, 25)]),
        ("all", 11, [])]
    for r, e in zip(got, [lp[3] + lp[4], lp[0], 0.0, sum(lp[:11])]):
        assert math.isclose(r.logprob, e, rel_tol=0, abs_tol=1e-12)


def test_regions_outside_the_line_are_errors(word_lm):
    with pytest.raises(InputError, match=r"^regions.txt:3: region 2-40 ends past the line's 7 characters$"):
        word_lm.region_scores("the cat", [(2, 40, "x")], where="regions.txt:3")


def test_read_regions(tmp_path):
    path = tmp_path / "regions.tsv"
    path.write_text("# line start end label\n1\t0\t3\tthe cat\n\n3\t4\t7\tx\n1\t4\t5\tlabel\twith tab\n")
    assert read_regions(path) == {1: [(0, 3, "the cat"), (4, 5, "label\twith tab")], 3: [(4, 7, "x")]}


@pytest.mark.parametrize("row, problem", [
    ("1\t0\t3", "expected 4 tab-separated fields"),
    ("1\ta\t3\tx", "must be integers"),
    ("0\t0\t3\tx", "line numbers start at 1"),
    ("1\t3\t3\tx", "region 3-3 must have 0 <= start < end"),
    ("1\t-1\t3\tx", "region -1-3 must have"),
])
def test_read_regions_errors_name_file_and_line(tmp_path, row, problem):
    path = tmp_path / "bad.tsv"
    path.write_text(f"1\t0\t1\tok\n{row}\n")
    with pytest.raises(InputError) as e:
        read_regions(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:2: ") and problem in msg and "\n" not in msg


def test_skipped_characters_are_left_out_of_their_word(char_lm):
    text = "Zap the"  # Z is not in the model's vocabulary
    sent = char_lm.score_sentences([text], oov="skip", per_token=True)[0]
    lp = [t.logprob for t in sent.tokens]
    words = char_lm.word_scores(text, oov="skip")
    assert math.isnan(lp[0]) and sent.num_skipped == 1
    assert math.isclose(words[0].logprob, sum(lp[1:4]), rel_tol=0, abs_tol=1e-12)
    assert math.isclose(sum(w.logprob for w in words), sent.logprob, rel_tol=0, abs_tol=1e-9)


def test_regions_without_bos_leave_the_first_token_out(word_lm):
    text = "the cat sat"
    lp = [t.logprob for t in word_lm.score_sentences([text], bos=False, per_token=True)[0].tokens]  # cat sat </s>
    got = word_lm.region_scores(text, [(0, 7, "the cat"), (4, 11, "cat sat")], bos=False)
    assert [(r.n_tokens, r.cut_tokens) for r in got] == [(1, []), (2, [])]
    assert math.isclose(got[0].logprob, lp[0], rel_tol=0, abs_tol=1e-12)
    assert math.isclose(got[1].logprob, lp[0] + lp[1], rel_tol=0, abs_tol=1e-12)
