"""Sampling filters on fixed logits, determinism, greedy vs beam, and generation constraints."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.config import SampleConfig
from rnnkit.errors import ConfigError
from rnnkit.generate import beam_search, filter_logprobs, generate, sample

LOGP = np.log(np.array([[0.05, 0.4, 0.3, 0.15, 0.1]]))


def kept(z):
    return set(np.flatnonzero(np.isfinite(z[0])).tolist())


def test_top_k_keeps_the_k_largest():
    assert kept(filter_logprobs(LOGP, top_k=2)) == {1, 2}
    assert kept(filter_logprobs(LOGP, top_k=0)) == {0, 1, 2, 3, 4}
    z = filter_logprobs(LOGP, top_k=2)
    np.testing.assert_allclose(np.exp(z[0, [1, 2]]), [0.4 / 0.7, 0.3 / 0.7])


def test_top_p_keeps_smallest_prefix_reaching_p():
    assert kept(filter_logprobs(LOGP, top_p=0.4)) == {1}
    assert kept(filter_logprobs(LOGP, top_p=0.5)) == {1, 2}  # 0.4 < 0.5, add 0.3
    assert kept(filter_logprobs(LOGP, top_p=0.7)) == {1, 2}  # 0.4 + 0.3 reaches 0.7
    assert kept(filter_logprobs(LOGP, top_p=0.71)) == {1, 2, 3}
    assert kept(filter_logprobs(LOGP, top_p=0.01)) == {1}  # the top token always survives


def test_temperature_and_ban():
    z = filter_logprobs(LOGP, temperature=0.5, banned=np.array([1]))
    p = np.array([0.05, 0, 0.3, 0.15, 0.1]) ** 2
    np.testing.assert_allclose(np.exp(z[0]), p / p.sum(), atol=1e-12)


def test_sample_is_pure_function_of_logits_and_rng():
    z = filter_logprobs(np.repeat(LOGP, 1000, axis=0))
    a = sample(z, np.random.default_rng(7))
    b = sample(z, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    freq = np.bincount(a, minlength=5) / len(a)
    np.testing.assert_allclose(freq, np.exp(LOGP[0]), atol=0.05)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("g") / "m", cell="gru", num_layers=1))


def test_same_seed_same_output(lm):
    a = lm.generate(num_samples=3, seed=5, max_len=12)
    b = lm.generate(num_samples=3, seed=5, max_len=12)
    c = lm.generate(num_samples=3, seed=6, max_len=12)
    assert a == b and a != c


def test_beam_width_one_equals_greedy(lm):
    for prompt in ([], [lm.vocab.encode(["the"])[0]]):
        greedy = generate(lm.model, lm.vocab, prompt, SampleConfig(greedy=True, max_len=15))[0]
        beam = beam_search(lm.model, lm.vocab, prompt, SampleConfig(beam=1, max_len=15))
        assert beam.ids == greedy


def test_beam_search_beats_or_ties_greedy_in_logprob(lm):
    greedy = beam_search(lm.model, lm.vocab, [], SampleConfig(beam=1, max_len=10, length_penalty=0.0))
    wide = beam_search(lm.model, lm.vocab, [], SampleConfig(beam=5, max_len=10, length_penalty=0.0))
    assert wide.logprob >= greedy.logprob - 1e-9


def test_no_unk_min_len_and_max_len(lm):
    outs = generate(lm.model, lm.vocab, [], SampleConfig(num_samples=20, seed=1, max_len=8, min_len=8, temperature=3.0))
    for o in outs:
        assert len(o) == 8  # </s> banned before min_len, stopped at max_len
        assert lm.vocab.unk_id not in o and lm.vocab.bos_id not in o


def test_prompt_of_only_unknown_words_is_refused(lm):
    with pytest.raises(ConfigError, match="unknown"):
        lm.generate(prompt="zebra xylophone")


def test_bad_options_refused(lm):
    for kw in ({"temperature": 0}, {"top_p": 0}, {"top_k": -1}, {"max_len": 0}, {"num_samples": 0}):
        with pytest.raises(ConfigError):
            lm.generate(**kw)


def test_character_models_write_across_lines(tmp_path):
    """For a character model </s> is a newline: generation goes on after it (as `</s> <s>`,
    like the training stream) until max_len or a stop string; prompt newlines work too."""
    lm = rnnkit.load(make_model_dir(tmp_path / "c", level="char", cell="lstm", num_layers=1))
    text = lm.generate(prompt="the cat\nsat", max_len=300, seed=2, temperature=1.5)
    assert text.startswith("the cat\nsat")
    assert len(text) == len("the cat\nsat") + 300  # every step adds one character, newlines included
    assert text.count("\n") >= 3  # it went on past line ends
    stopped = lm.generate(prompt="the", max_len=300, seed=2, temperature=1.5, stop=["\n"])
    assert stopped.endswith("\n") and stopped.count("\n") == 1
    many = lm.generate(prompt="a", max_len=50, seed=4, num_samples=3)
    assert many == lm.generate(prompt="a", max_len=50, seed=4, num_samples=3) and len(set(many)) == 3
