"""Scoring arithmetic against hand computation, and invariance to batching and chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnkit
from conftest import TINY_CORPUS, make_model_dir, reference_logprobs
from rnnkit.api import LanguageModel
from rnnkit.inference.score import Summary, score_sentences
from rnnkit.numpy_engine import RNNLM

SENTS = TINY_CORPUS + ["the cat saw a zebra .", "", "dog"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> LanguageModel:
    """A float64 numpy model, so batched and step-by-step scoring agree to rounding (1e-9)."""
    lm = rnnkit.load(make_model_dir(tmp_path_factory.mktemp("m") / "model", cell="lstm", num_layers=2))
    lm.model = RNNLM(lm.config, lm.model.state_dict(), dtype=np.float64)
    return lm




def test_per_token_scores_match_a_plain_step_loop(lm):
    for s in SENTS:
        got = [t[0] for t in lm.full_scores(s)]
        np.testing.assert_allclose(got, reference_logprobs(lm, s), rtol=0, atol=1e-9)


def test_score_is_sum_of_full_scores_and_bases_agree(lm):
    for s in SENTS:
        total = sum(lp for lp, _, _ in lm.full_scores(s))
        assert lm.score(s) == pytest.approx(total, abs=1e-9)
        assert lm.score(s, log_base=10) == pytest.approx(total / math.log(10), abs=1e-9)
        assert lm.score(s, log_base="2") == pytest.approx(total / math.log(2), abs=1e-9)
        assert sum(lp for lp, _, _ in lm.full_scores(s, log_base=10)) == pytest.approx(lm.score(s, log_base=10), abs=1e-9)


def test_srilm_ppl_and_ppl1_by_hand(lm):
    scores = lm.score_sentences(SENTS, oov="skip")
    # by hand from per-token log-probabilities (SRILM: OOVs are not scored; ppl counts </s>, ppl1 does not)
    logprob10, words, oovs, n_eos = 0.0, 0, 0, 0
    for s in SENTS:
        toks = lm.tokenize(s)
        lps = reference_logprobs(lm, s)
        for tok, lp in zip(toks + ["</s>"], lps):
            is_oov = tok != "</s>" and lm.vocab.encode([tok])[0] == lm.vocab.unk_id
            if tok == "</s>":
                n_eos += 1
            else:
                words += 1
                oovs += is_oov
            if not is_oov:
                logprob10 += lp / math.log(10)
    summ = Summary.of(scores)
    assert (summ.sentences, summ.words, summ.oovs) == (len(SENTS), words, oovs)
    assert oovs >= 1  # "zebra" is unknown
    assert summ.logprob / math.log(10) == pytest.approx(logprob10, abs=1e-9)
    assert summ.ppl == pytest.approx(10 ** (-logprob10 / (words - oovs + n_eos)), rel=1e-9)
    assert summ.ppl1 == pytest.approx(10 ** (-logprob10 / (words - oovs)), rel=1e-9)


def test_batched_alone_and_chunked_agree(lm):
    together = lm.score_sentences(SENTS, batch_size=64)
    for i, s in enumerate(SENTS):
        alone = lm.score_sentences([s])[0]
        assert alone.logprob == pytest.approx(together[i].logprob, abs=1e-6)
    chunked = score_sentences(lm.model, lm.vocab, lm.tokenizer, SENTS, batch_size=2, seq_len=3)
    for a, b in zip(together, chunked):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-6)
        assert [t.token for t in a.tokens] == [t.token for t in b.tokens]


def test_long_sentence_beyond_any_training_length(lm):
    long = " ".join(["the cat sat on the mat ."] * 80)  # 560 tokens, chunked into windows of 256
    got = lm.score_sentences([long])[0]
    np.testing.assert_allclose([t.logprob for t in got.tokens], reference_logprobs(lm, long), atol=1e-6)


def test_bos_eos_options_and_empty_line(lm):
    s = "the cat sat"
    full = [t[0] for t in lm.full_scores(s)]
    assert [t[1] for t in lm.full_scores(s)] == ["the", "cat", "sat", "</s>"]
    assert [t[1] for t in lm.full_scores(s, eos=False)] == ["the", "cat", "sat"]
    assert lm.score(s, eos=False) == pytest.approx(sum(full[:3]), abs=1e-9)
    no_bos = list(lm.full_scores(s, bos=False))
    assert [t[1] for t in no_bos] == ["cat", "sat", "</s>"]  # the first word is context only
    empty = lm.score_sentences([""])[0]
    assert [t.token for t in empty.tokens] == ["</s>"] and empty.logprob < 0


def test_oov_unk_scores_as_unk(lm):
    res = lm.score_sentences(["the zebra sat"], oov="unk")[0]
    z = res.tokens[1]
    assert z.is_oov and z.scored and z.logprob < 0
    skipped = lm.score_sentences(["the zebra sat"], oov="skip")[0]
    assert not skipped.tokens[1].scored
    assert skipped.logprob == pytest.approx(res.logprob - z.logprob, abs=1e-9)


def test_perplexity_is_exp_of_mean_nats(lm):
    scores = lm.score_sentences(SENTS)
    nats = -sum(s.logprob for s in scores)
    count = sum(s.num_scored for s in scores)
    assert lm.perplexity(SENTS) == pytest.approx(math.exp(nats / count), rel=1e-12)


def test_evaluate_modes_agree_with_scoring(lm):
    """Sentence-mode evaluation = SRILM-style scoring totals; stream mode counts the same targets."""
    sents = [s for s in SENTS if s]
    scores = lm.score_sentences(sents)
    res = lm.evaluate(sents, mode="sentences", batch_size=3)
    assert res.count == sum(s.num_scored for s in scores)
    assert res.nats == pytest.approx(-sum(s.logprob for s in scores), abs=1e-6)
    assert res.oov == sum(s.num_oov for s in scores) >= 1
    stream = lm.evaluate(sents, mode="stream", batch_size=2)
    assert stream.count == res.count and stream.oov == res.oov


def test_progress_counts_every_sentence_once(lm):
    sents = ["the cat sat .", "", "the dog", "a b c d e f g h", "the"] * 7
    seen = []
    scores = lm.score_sentences(sents, batch_size=4, progress=seen.append)
    assert sum(seen) == len(sents) and all(n > 0 for n in seen)
    assert [s.logprob for s in scores] == [s.logprob for s in lm.score_sentences(sents, batch_size=4)]
    seen.clear()
    lm.rescore([("u1", "the cat"), ("u1", "cat the"), ("u2", "the dog .")], progress=seen.append)
    assert sum(seen) == 3
