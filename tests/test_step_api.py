"""The step API for decoders (inference/state.py) against independent references: stepping a
sentence token by token sums to score_sentences' log-probabilities, batched steps equal single
ones, states copy and compare as values, and the numpy and torch engines agree."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from conftest import TINY_CORPUS, has_torch, make_model_dir
from rnnkit import checkpoint
from rnnkit.config import ModelConfig
from rnnkit.engines import build_model
from rnnkit.errors import ConfigError
from rnnkit.inference.score import score_sentences
from rnnkit.inference.state import Stepper
from rnnkit.params import init_params
from rnnkit.text import Vocab

SENTENCES = TINY_CORPUS + ["the zebra sat .", "dog"]  # "zebra" is out of the vocabulary
ENGINES = ["numpy"] + (["torch"] if has_torch() else [])


@pytest.fixture(scope="module", params=["lstm", "gru"])
def model_dir(request, tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("step") / "m", cell=request.param, num_layers=2)


def _setup(model_dir, engine, dtype):
    """(model, vocab, tokenizer) of the model directory on an engine in a dtype."""
    ck = checkpoint.load(model_dir)
    lm = rnnkit.load(model_dir)
    return build_model(engine, ck.model, ck.params, device="cpu", dtype=dtype), ck.vocab, lm.tokenizer


def _stepped(st: Stepper, tokens: list[str], bos: bool) -> list[float]:
    """ln p of each token of `tokens` then </s>, one score() call per token."""
    state, out = st.begin(bos=bos), []
    for t in tokens:
        (state,), lp = st.score([state], [t])
        out.append(float(lp[0]))
    return out + [float(st.end([state])[0])]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("bos", [True, False])
def test_stepping_a_sentence_equals_scoring_it(model_dir, engine, dtype, tol, bos):
    model, vocab, tok = _setup(model_dir, engine, dtype)
    st = Stepper(model, vocab)
    ref = score_sentences(model, vocab, tok, SENTENCES, bos=bos, per_token=True)
    for text, r in zip(SENTENCES, ref):
        lps = _stepped(st, tok.tokenize(text), bos)
        if not bos:  # the first word is context: 0.0 here, not a term of the reference
            assert lps[0] == 0.0
            lps = lps[1:]
        np.testing.assert_allclose(lps, [t.logprob for t in r.tokens], rtol=tol, atol=tol)
        assert sum(lps) == pytest.approx(r.logprob, rel=tol, abs=tol * len(lps))
        assert lps[-1] == pytest.approx(r.tokens[-1].logprob, rel=tol, abs=tol)  # end() is the </s> term


def _advance_path(st: Stepper, tokens: list[str]):
    """The state after <s> tokens, advanced one state at a time."""
    state = st.begin()
    for t in tokens:
        (state,), _ = st.advance([state], [t])
    return state


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_of_different_histories_equals_each_alone(model_dir, engine):
    model, vocab, _ = _setup(model_dir, engine, np.float64)
    st = Stepper(model, vocab)
    histories = [[], ["the"], ["a", "cat", "and"], ["the", "dog", "sat", "on"]]
    states = [_advance_path(st, h) for h in histories]
    states.append(st.begin(bos=False))
    nxt = ["cat", "dog", "a", "the", "bird"]
    batch_states, batch_lp = st.advance(states, nxt)
    _, batch_scores = st.score(states, nxt)
    for b, (s, t) in enumerate(zip(states, nxt)):
        (alone,), lp = st.advance([s], [t])
        # equal up to rounding: BLAS may sum a batch of 5 rows in another order than 1 row
        np.testing.assert_allclose(batch_states[b].hidden, alone.hidden, rtol=1e-12, atol=1e-12)
        assert batch_states[b].length == alone.length and batch_states[b].last == alone.last
        np.testing.assert_allclose(batch_lp[b], lp[0], rtol=1e-12, atol=1e-12)
        (_,), score = st.score([s], [t])
        assert batch_scores[b] == pytest.approx(score[0], abs=1e-12)
        # the full distribution after the new token is the next score's
        (_,), nxt_lp = st.score([alone], ["."])
        assert nxt_lp[0] == pytest.approx(lp[0, vocab.encode(["."])[0]], abs=1e-12)
    assert batch_scores[-1] == 0.0  # empty context: the first word is not predicted
    _, some = st.advance(states, nxt, targets=["the", "</s>", "zebra"])
    np.testing.assert_array_equal(some, batch_lp[:, [vocab.encode(["the"])[0], vocab.eos_id, vocab.unk_id]])


@pytest.mark.parametrize("engine", ENGINES)
def test_states_copy_and_compare_as_values(model_dir, engine):
    model, vocab, _ = _setup(model_dir, engine, np.float32)
    st = Stepper(model, vocab)
    a = _advance_path(st, ["the", "cat"])
    before = (a.hidden.copy(), a.logp.copy(), a.length, a.last)
    c = a.copy()
    assert c == a and hash(c) == hash(a) and c is not a and c.hidden is not a.hidden
    (c2,), _ = st.advance([c], ["sat"])
    np.testing.assert_array_equal(a.hidden, before[0])
    np.testing.assert_array_equal(a.logp, before[1])
    assert (a.length, a.last) == before[2:] == (3, vocab.encode(["cat"])[0])
    assert c2 != a and c2.length == 4
    assert _advance_path(st, ["the", "cat"]) == a  # the same history again: an equal state
    assert len({a, c, _advance_path(st, ["the", "cat"])}) == 1  # hashable: recombination in a set
    assert _advance_path(st, ["the", "dog"]) != a
    assert st.begin() != st.begin(bos=False) and st.begin() == st.begin()
    with pytest.raises(ValueError):
        a.hidden[...] = 0  # read-only: states never change
    other = Stepper(model, vocab)
    assert other.begin() != st.begin()  # states of different steppers never compare equal


@pytest.mark.parametrize("engine", ENGINES)
def test_adaptive_softmax_and_a_plain_rnn_follow_the_whole_sequence_forward(engine):
    """Stepping ids one by one equals token_logprobs over the whole sequence (one forward)."""
    K = 40
    cfg = ModelConfig(vocab_size=K, embed_dim=6, hidden_dim=8, num_layers=1, cell="rnn", softmax="adaptive",
                      cutoffs=[8, 20], div_value=2.0)
    model = build_model(engine, cfg, init_params(cfg, seed=3), device="cpu", dtype=np.float64)
    vocab = Vocab.from_list(["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(K - 3)])
    seq = np.array([1, 5, 30, 12, 39, 7, 2])  # <s> ... </s>, ids in every cluster
    ref, _ = model.token_logprobs(seq[:-1, None], seq[1:, None])  # (T, 1)
    st = Stepper(model, vocab)
    state, got = st.begin(), []
    for i in seq[1:-1]:
        (state,), lp = st.score([state], [int(i)])
        got.append(lp[0])
    got.append(st.end([state])[0])
    np.testing.assert_allclose(got, ref[:, 0], rtol=1e-10, atol=1e-10)


def test_unknown_tokens_and_bad_arguments(model_dir):
    model, vocab, _ = _setup(model_dir, "numpy", np.float64)
    st = Stepper(model, vocab)
    s = st.begin()
    _, by_word = st.score([s], ["zebra"])
    _, by_unk = st.score([s], [vocab.unk_id])
    assert by_word[0] == by_unk[0]
    with pytest.raises(ConfigError, match="2 tokens for 1 states"):
        st.advance([s], ["the", "cat"])
    with pytest.raises(ConfigError, match="outside"):
        st.advance([s], [len(vocab)])
    with pytest.raises(ConfigError, match="begin\\(bos=False\\)"):
        st.logprobs([st.begin(bos=False)])
    with pytest.raises(ConfigError, match="another stepper"):
        Stepper(model, vocab).advance([s], ["the"])
    np.testing.assert_allclose(np.exp(st.logprobs([s])).sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_numpy_and_torch_agree(model_dir):
    steppers = [Stepper(_setup(model_dir, e, np.float32)[0], _setup(model_dir, e, np.float32)[1])
                for e in ("numpy", "torch")]
    paths = [["the", "cat", "sat"], ["a"], []]
    results = []
    for st in steppers:
        states = [_advance_path(st, p) for p in paths]
        new, lp = st.advance(states, ["on", "dog", "it's"])
        results.append((np.stack([s.hidden for s in new]), lp, st.end(new)))
    (h0, lp0, e0), (h1, lp1, e1) = results
    np.testing.assert_allclose(h0, h1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lp0, lp1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(e0, e1, rtol=1e-5, atol=1e-5)


def test_language_model_stepper_readme_example(model_dir):
    """The README's example: two sentences stepped as one batch sum to LanguageModel.score."""
    lm = rnnkit.load(model_dir)
    st = lm.stepper()
    s0 = st.begin()
    states, lp = st.score([s0, s0], ["the", "a"])
    assert st.logprobs(states).shape == (2, len(lm.vocab))
    states, lp2 = st.score(states, ["cat", "dog"])
    total = lp + lp2 + st.end(states)
    np.testing.assert_allclose(total, [lm.score("the cat"), lm.score("a dog")], rtol=1e-5, atol=1e-5)
