"""Character model word scores: the words' log-probabilities add up to the sentence's.

On the tiny-shakespeare validation text (the first 300 non-empty lines), a random float64
character model over that text's characters: for every line, the sum of `char_word_scores`'
word logprobs equals the sentence logprob of `score_sentences` within 1e-9, every character
and `</s>` lies in exactly one word, and each word's logprob is the sum of its characters'.
The sentence logprob itself is checked against stepping the same float64 model one character
at a time (`step_logprobs`) on a sample of lines.

A hand-built two-word case, "ab c": the per-character log-probabilities are taken from
`step_logprobs` after <s>, and the two words' logprobs are written out by hand:
"ab" = ln p(a | <s>) + ln p(b | <s> a) + ln p(" " | <s> a b) (the space ends the word) and
"c" = ln p(c | <s> a b " ") + ln p(</s> | <s> a b " " c) (the line's end ends it).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.api import load
from rnnkit.config import ModelConfig
from rnnkit.data import read_sentences
from rnnkit.inference.score import score_sentences
from rnnkit.inference.words import char_word_scores
from rnnkit.numpy_engine import RNNLM
from rnnkit.params import init_params
from rnnkit.text import CharTokenizer, Vocab

N_LINES = 300
TOL = 1e-9


def step_logprobs_of(model: RNNLM, vocab: Vocab, text: str) -> list[float]:
    """ln p of each character of `text` and of </s>, <s> the context, one step at a time."""
    seq = [vocab.bos_id] + vocab.encode(list(text)) + [vocab.eos_id]
    state, out = model.init_hidden(1), []
    for a, b in itertools.pairwise(seq):
        logp, state = model.step_logprobs(np.array([a]), state)
        out.append(float(logp[0, b]))
    return out


@pytest.fixture
def shakespeare_lines(shared_data, monkeypatch) -> list[str]:
    monkeypatch.setenv("RNNKIT_DATA", str(shared_data))
    sents = read_sentences("tinyshakespeare:valid", level="char")
    lines = [s for s in sents if s.strip()][:N_LINES]
    assert len(lines) == N_LINES
    return lines


def test_word_logprobs_sum_to_sentence_logprob(shakespeare_lines):
    vocab = Vocab.build([list(s) for s in shakespeare_lines])
    cfg = ModelConfig(vocab_size=len(vocab), cell="lstm", embed_dim=12, hidden_dim=16, num_layers=1)
    rng = np.random.default_rng(5)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in init_params(cfg, seed=4).items()}
    model = RNNLM(cfg, params, dtype=np.float64)
    scores = score_sentences(model, vocab, CharTokenizer(), shakespeare_lines, per_token=True)
    assert len(scores) == N_LINES
    for text, s in zip(shakespeare_lines, scores):
        assert s.text == text
        words = char_word_scores(s, text)
        assert abs(math.fsum(w.logprob for w in words) - s.logprob) <= TOL, text
        assert [w.word for w in words if w.word] == text.split(), text
        chars = [c for w in words for c, _ in w.chars]
        assert chars == list(text) + ["</s>"], text
        for w in words:
            assert w.word == text[w.start:w.end]
            assert abs(w.logprob - math.fsum(lp for _, lp in w.chars)) <= TOL
    for text, s in list(zip(shakespeare_lines, scores))[::25]:  # the sentence logprob, independently
        ref = step_logprobs_of(model, vocab, text)
        assert abs(math.fsum(ref) - s.logprob) <= TOL, text
        assert [t.logprob for t in s.tokens] == pytest.approx(ref, abs=1e-12)


@pytest.fixture(scope="module")
def char_model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("charwords") / "model", cell="gru", num_layers=1, level="char")


def test_two_words_by_hand(char_model):
    ck = checkpoint.load(char_model)
    model = RNNLM(ck.model, ck.params, dtype=np.float64)
    v = ck.vocab
    for c in "abc ":
        assert c in v
    # the characters' log-probabilities, each from its own history, stepped one at a time
    state = model.init_hidden(1)
    rows = []
    for tok in ["<s>", "a", "b", " ", "c"]:
        logp, state = model.step_logprobs(np.array([v.encode([tok])[0] if tok != "<s>" else v.bos_id]), state)
        rows.append(logp[0])
    lp_a, lp_b, lp_sp = rows[0][v.encode(["a"])[0]], rows[1][v.encode(["b"])[0]], rows[2][v.encode([" "])[0]]
    lp_c, lp_eos = rows[3][v.encode(["c"])[0]], rows[4][v.eos_id]
    word_ab = lp_a + lp_b + lp_sp
    word_c = lp_c + lp_eos

    s = score_sentences(model, v, CharTokenizer(), ["ab c"], per_token=True)[0]
    words = char_word_scores(s, "ab c")
    assert [(w.word, w.start, w.end) for w in words] == [("ab", 0, 2), ("c", 3, 4)]
    assert [c for c, _ in words[0].chars] == ["a", "b", " "]
    assert [c for c, _ in words[1].chars] == ["c", "</s>"]
    assert words[0].logprob == pytest.approx(word_ab, abs=TOL)
    assert words[1].logprob == pytest.approx(word_c, abs=TOL)
    assert s.logprob == pytest.approx(word_ab + word_c, abs=TOL)

    # the API's float32 model gives the same words, to float32 precision
    lm = load(char_model, engine="numpy")
    api_words = lm.word_scores("ab c")
    assert [(w.word, w.start, w.end) for w in api_words] == [("ab", 0, 2), ("c", 3, 4)]
    assert [w.logprob for w in api_words] == pytest.approx([word_ab, word_c], abs=1e-5)
