"""Streaming scoring: the same numbers as the list API, in input order, a chunk at a time (the
input is read only as far as the results need), no per-token records unless asked for."""

from __future__ import annotations

import contextlib
import gc

import numpy as np
import pytest

import rnnkit
from conftest import TINY_CORPUS, make_model_dir
from rnnkit.errors import ConfigError
from rnnkit.inference import score as score_mod
from rnnkit.inference.score import SentenceScore, Summary, score_sentences, score_stream
from rnnkit.numpy_engine import RNNLM

WORDS = " ".join(TINY_CORPUS).split() + ["zebra", "okapi"]


def random_sentences(n: int, seed: int = 0, longest: int = 15) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, int(rng.integers(0, longest)))) for _ in range(n)]


SENTS = random_sentences(60)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A float64 numpy model: batches of other shapes agree with each other to ~1e-14."""
    lm = rnnkit.load(make_model_dir(tmp_path_factory.mktemp("m") / "model"))
    lm.model = RNNLM(lm.config, lm.model.state_dict(), dtype=np.float64)
    return lm


def stream(lm, lines, **kw):
    return score_stream(lm.model, lm.vocab, lm.tokenizer, lines, **kw)


def numbers(s: SentenceScore) -> tuple:
    """Everything a result holds (a skipped token's nan as None, so that equal compares equal)."""
    toks = None if s.tokens is None else [(t.token, t.logprob if t.scored else None, t.is_oov, t.scored)
                                          for t in s.tokens]
    return (s.text, s.logprob, s.num_scored, s.num_words, s.num_oov, s.scored_eos, toks)


class Feed:
    """Lines handed out one by one, counting how many have been taken."""

    def __init__(self, lines):
        self.lines, self.taken = lines, 0

    def __iter__(self):
        for line in self.lines:
            self.taken += 1
            yield line


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 16, 59, 60, 1000])
@pytest.mark.parametrize("per_token", [False, True])
def test_stream_is_the_list_api_chunk_by_chunk(lm, chunk, per_token):
    """Exactly (the same floats) the list API run on each chunk; chunk sizes that cut through
    the length-sorted batches change only the float rounding, as batching always could."""
    kw = {"batch_size": 3, "oov": "skip", "per_token": per_token}
    got = list(stream(lm, iter(SENTS), chunk_sentences=chunk, **kw))
    by_chunk = [s for c0 in range(0, len(SENTS), chunk)
                for s in score_sentences(lm.model, lm.vocab, lm.tokenizer, SENTS[c0:c0 + chunk], **kw)]
    assert [numbers(s) for s in got] == [numbers(s) for s in by_chunk]
    assert [s.text for s in got] == SENTS  # input order
    whole = score_sentences(lm.model, lm.vocab, lm.tokenizer, SENTS, **kw)
    np.testing.assert_allclose([s.logprob for s in got], [s.logprob for s in whole], rtol=0, atol=1e-12)
    assert [numbers(s)[2:6] for s in got] == [numbers(s)[2:6] for s in whole]
    if chunk >= len(SENTS):
        assert [numbers(s) for s in got] == [numbers(s) for s in whole]


def test_totals_are_the_per_token_sums(lm):
    for s in score_sentences(lm.model, lm.vocab, lm.tokenizer, SENTS, oov="skip"):
        scored = [t for t in s.tokens if t.scored]
        assert s.logprob == sum(t.logprob for t in scored) and s.num_scored == len(scored)
        assert s.num_words == sum(t.token != "</s>" for t in s.tokens)
        assert s.num_oov == sum(t.is_oov for t in s.tokens) and s.scored_eos == 1


def test_no_token_records_without_per_token(lm, monkeypatch):
    def refuse(*args):
        raise AssertionError("a TokenScore was made without per-token output")

    monkeypatch.setattr(score_mod, "TokenScore", refuse)
    got = list(stream(lm, SENTS, chunk_sentences=7))
    assert all(s.tokens is None for s in got) and sum(s.num_scored for s in got) > len(SENTS)
    assert lm.perplexity(SENTS) > 1 and lm.score(SENTS[0]) < 0  # the API's totals need none either


@pytest.mark.parametrize("chunk", [1, 4, 10])
def test_results_come_before_the_input_ends(lm, chunk):
    """Engine without workers: result i is out when at most one chunk beyond it has been read."""
    feed = Feed(SENTS)
    for i, _ in enumerate(stream(lm, feed, chunk_sentences=chunk, batch_size=4)):
        assert feed.taken <= (i // chunk + 1) * chunk
    assert feed.taken == len(SENTS)


class WithWorkers:
    """The numpy model asking map_batches for n workers (the torch engine's CPU path)."""

    def __init__(self, model, n):
        self.model, self.n = model, n

    def __getattr__(self, name):
        return getattr(self.model, name)

    @contextlib.contextmanager
    def batch_workers(self):
        yield self.n


def test_with_workers_the_same_results_and_a_bounded_look_ahead(lm):
    chunk, n = 5, 2
    feed = Feed(SENTS)
    par = WithWorkers(lm.model, n)
    got = []
    for s in score_stream(par, lm.vocab, lm.tokenizer, feed, chunk_sentences=chunk, batch_size=2, per_token=True):
        got.append(s)
        assert feed.taken - len(got) < (2 * n + 1) * chunk  # the batches in flight reach a few chunks ahead
    assert [numbers(s) for s in got] == [numbers(s) for s in stream(lm, SENTS, chunk_sentences=chunk, batch_size=2,
                                                                    per_token=True)]


def live(cls) -> int:
    return sum(type(o) is cls for o in gc.get_objects())


def test_only_a_chunk_is_held(lm):
    """Counted on the heap while the stream goes: the sentences waiting to be scored and the
    results not yet handed out never exceed a chunk (none of the earlier ones is kept)."""
    chunk, sents = 8, random_sentences(400, seed=1)
    before = live(score_mod.PreparedSentence), live(SentenceScore)
    peak = [0, 0]
    for i, _ in enumerate(stream(lm, iter(sents), chunk_sentences=chunk, batch_size=3)):
        if i % 37 == 0:
            peak = [max(peak[0], live(score_mod.PreparedSentence) - before[0]), max(peak[1], live(SentenceScore) - before[1])]
    assert 0 < peak[0] <= chunk and peak[1] <= 1


def test_summary_as_the_stream_goes(lm):
    summ = Summary()
    got = [summ.add(s) for s in stream(lm, SENTS, chunk_sentences=len(SENTS), oov="skip")]
    assert summ == Summary.of(score_sentences(lm.model, lm.vocab, lm.tokenizer, SENTS, oov="skip"))
    assert summ.sentences == len(got) == len(SENTS) and summ.oovs >= 1 and summ.scored_eos == len(SENTS)
    small = Summary.of(stream(lm, SENTS, chunk_sentences=4, oov="skip"))
    assert small.logprob == pytest.approx(summ.logprob, abs=1e-9) and small.ppl1 == pytest.approx(summ.ppl1, rel=1e-12)


def test_options_are_checked_before_anything_is_read(lm):
    feed = Feed(SENTS)
    for kw in ({"oov": "drop"}, {"batch_size": 0}, {"chunk_sentences": 0}):
        with pytest.raises(ConfigError):
            stream(lm, feed, **kw)
    assert feed.taken == 0


def test_bos_eos_and_empty_lines_stream_like_the_list(lm):
    sents = ["", "the cat", "", "dog", "zebra the cat sat"] * 3
    for bos in (True, False):
        for eos in (True, False):
            got = list(stream(lm, sents, bos=bos, eos=eos, chunk_sentences=4, per_token=True))
            want = [s for c0 in range(0, len(sents), 4) for s in
                    score_sentences(lm.model, lm.vocab, lm.tokenizer, sents[c0:c0 + 4], bos=bos, eos=eos)]
            assert [numbers(s) for s in got] == [numbers(s) for s in want]


def test_progress_counts_every_sentence_once(lm):
    seen = []
    list(stream(lm, ["", "the cat", "a b c d"] * 11, chunk_sentences=4, batch_size=2, eos=False, bos=False,
                progress=seen.append))
    assert sum(seen) == 33 and all(n > 0 for n in seen)


def test_language_model_score_iter(lm):
    feed = Feed(SENTS)
    it = lm.score_iter(feed, chunk_sentences=10)
    assert feed.taken == 0  # lazy
    first = next(it)
    assert feed.taken == 10 and first.text == SENTS[0] and first.tokens is None
    rest = list(it)
    assert [s.logprob for s in [first, *rest]] == [s.logprob for s in stream(lm, SENTS, chunk_sentences=10)]
    with_tokens = next(lm.score_iter(SENTS, per_token=True))
    assert [t.token for t in with_tokens.tokens] == lm.tokenize(SENTS[0]) + ["</s>"]
