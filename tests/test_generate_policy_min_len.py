"""Generation policy: min_len. </s> becomes possible exactly at min_len, greedy, sampling and
beam, with and without a prompt, against a fake model with fully controlled log-probabilities
(tests/generate_policy_kit.py) that always prefers </s>.
"""

from __future__ import annotations

import math

import pytest

from generate_policy_kit import BOS_ID, EOS_ID, K_EOS, UNK_ID, FakeLM, eos_lover, fake_vocab, pref
from rnnkit.config import SampleConfig
from rnnkit.inference.generate import beam_search, generate

# ------------------------------------------------------------------ min_len


def preferred_chain(prefix: tuple, n: int) -> list[int]:
    hist, out = prefix, []
    for _ in range(n):
        w = pref(hist)
        out.append(w)
        hist = hist + (w,)
    return out


@pytest.mark.parametrize("m", [0, 1, 3])
def test_eos_possible_exactly_at_min_len_greedy(m):
    """A model that always prefers </s>: greedy stops exactly at min_len (max_len is larger)."""
    v = fake_vocab(K_EOS)
    for max_len in (m + 1, m + 4):
        lm = FakeLM(K_EOS, eos_lover)
        out = generate(lm, v, [], SampleConfig(greedy=True, min_len=m, max_len=max_len))
        assert out == [preferred_chain((BOS_ID,), m)]
        assert lm.step_calls == m + 1  # m words, then the step that chose </s>


@pytest.mark.parametrize("m", [0, 1, 3])
def test_eos_possible_exactly_at_min_len_sampling(m):
    """Sampling: never shorter than min_len, and (p(</s>) = 0.6/0.7 once allowed) most
    samples stop exactly at min_len."""
    v = fake_vocab(K_EOS)
    outs = generate(FakeLM(K_EOS, eos_lover), v, [], SampleConfig(min_len=m, max_len=m + 6, num_samples=60, seed=3))
    lengths = [len(o) for o in outs]
    assert min(lengths) == m
    assert lengths.count(m) >= 40  # binomial(60, 6/7): mean 51
    for o in outs:
        assert UNK_ID not in o and BOS_ID not in o and EOS_ID not in o


@pytest.mark.parametrize("m", [0, 1, 3])
@pytest.mark.parametrize("beam", [1, 3])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_eos_possible_exactly_at_min_len_beam(m, beam, alpha):
    v = fake_vocab(K_EOS)
    lm = FakeLM(K_EOS, eos_lover)
    hyp = beam_search(lm, v, [], SampleConfig(beam=beam, min_len=m, max_len=m + 4, length_penalty=alpha))
    assert hyp.finished and hyp.ids == preferred_chain((BOS_ID,), m)
    # renormalised after banning <unk> and <s> (and </s> before min_len)
    want = sum(math.log(0.06 / 0.1) for _ in range(m)) + math.log(0.6 / 0.7)
    assert hyp.logprob == pytest.approx(want, abs=1e-12)
    # also through generate(beam=...)
    assert generate(FakeLM(K_EOS, eos_lover), v, [], SampleConfig(beam=beam, min_len=m, max_len=m + 4,
                                                                  length_penalty=alpha)) == [hyp.ids]


def test_min_len_with_a_prompt():
    v = fake_vocab(K_EOS)
    prompt = [4, 6]
    out = generate(FakeLM(K_EOS, eos_lover), v, prompt, SampleConfig(greedy=True, min_len=2, max_len=9))
    assert out == [preferred_chain((BOS_ID, 4, 6), 2)]
    hyp = beam_search(FakeLM(K_EOS, eos_lover), v, prompt, SampleConfig(beam=2, min_len=2, max_len=9))
    assert hyp.ids == preferred_chain((BOS_ID, 4, 6), 2)
