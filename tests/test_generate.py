"""Sampling filters on fixed logits, determinism, greedy vs beam, and generation constraints."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.config import SampleConfig
from rnnkit.errors import ConfigError
from rnnkit.inference.generate import beam_search, filter_logprobs, generate, sample
from rnnkit.numpy_engine import RNNLM

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


@pytest.fixture(scope="module")
def eos_lm(tmp_path_factory):
    """The same kind of model (float64) with the </s> logit raised by 2: it likes to stop, so
    min_len and the length penalty decide the output."""
    lm = rnnkit.load(make_model_dir(tmp_path_factory.mktemp("e") / "m", cell="gru", num_layers=1))
    sd = lm.model.state_dict()
    sd["decoder.bias"] = sd["decoder.bias"].astype(np.float64)
    sd["decoder.bias"][lm.vocab.eos_id] += 2.0
    lm.model = RNNLM(lm.config, sd, dtype=np.float64)
    return lm


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


def stepped_logprob(lm, prompt: list[int], ids: list[int], finished: bool, min_len: int) -> float:
    """ln p of `ids` (then </s> when finished) after <s> prompt, by stepping the model here, each
    step renormalised after banning <unk>, <s> and (before min_len) </s>, as the search does."""
    v = lm.vocab
    state, total = lm.model.init_hidden(1), 0.0
    context = [v.bos_id] + prompt
    for tok in context[:-1]:
        _, state = lm.model.step_logprobs(np.array([tok]), state)
    cur = context[-1]
    for t, nxt in enumerate(ids + ([v.eos_id] if finished else [])):
        logp, state = lm.model.step_logprobs(np.array([cur]), state)
        z = logp[0].copy()
        z[[v.unk_id, v.bos_id] + ([v.eos_id] if t < min_len else [])] = -np.inf
        total += z[nxt] - np.logaddexp.reduce(z)
        cur = nxt
    return float(total)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("min_len", [0, 3])
@pytest.mark.parametrize("which", ["lm", "eos_lm"])
def test_beam_hypothesis_is_what_it_claims(request, which, alpha, min_len):
    """Every length penalty: the returned ids respect min/max_len, the reported logprob is the
    model's (stepped here), and the normalised score is logprob / length**alpha."""
    lm = request.getfixturevalue(which)
    prompt = [lm.vocab.encode(["the"])[0]]
    hyp = beam_search(lm.model, lm.vocab, prompt, SampleConfig(beam=4, max_len=9, min_len=min_len,
                                                               length_penalty=alpha))
    assert min_len <= len(hyp.ids) <= 9 and (hyp.finished or len(hyp.ids) == 9)
    assert lm.vocab.unk_id not in hyp.ids and lm.vocab.bos_id not in hyp.ids and lm.vocab.eos_id not in hyp.ids
    assert hyp.logprob == pytest.approx(stepped_logprob(lm, prompt, hyp.ids, hyp.finished, min_len), abs=1e-6)
    length = len(hyp.ids) + hyp.finished
    assert hyp.score(alpha) == pytest.approx(hyp.logprob / length ** alpha, abs=1e-12)


def test_length_penalty_orders_by_length(eos_lm):
    """The search's pool does not depend on alpha, only the final pick does: a larger alpha
    never picks a shorter hypothesis; alpha 0 picks the highest total log-probability; each
    pick is the best of the three under its own alpha. On this model alpha 2 differs."""
    lm = eos_lm
    prompt = lm.vocab.encode(["the"])
    alphas = (0.0, 1.0, 2.0)
    hyps = [beam_search(lm.model, lm.vocab, prompt, SampleConfig(beam=5, max_len=10, length_penalty=a))
            for a in alphas]
    lengths = [len(h.ids) + h.finished for h in hyps]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    assert hyps[0].logprob == max(h.logprob for h in hyps)
    for a, h in zip(alphas, hyps):
        assert h.score(a) >= max(g.score(a) for g in hyps) - 1e-12
        assert h.score(a) == pytest.approx(h.logprob / (len(h.ids) + h.finished) ** a, abs=1e-12)


def argmax_chain(lm, prompt: list[int], max_len: int, min_len: int) -> list[int]:
    v, out = lm.vocab, []
    state = lm.model.init_hidden(1)
    context = [v.bos_id] + prompt
    for tok in context[:-1]:
        _, state = lm.model.step_logprobs(np.array([tok]), state)
    cur = context[-1]
    for t in range(max_len):
        logp, state = lm.model.step_logprobs(np.array([cur]), state)
        z = logp[0].copy()
        z[[v.unk_id, v.bos_id] + ([v.eos_id] if t < min_len else [])] = -np.inf
        cur = int(np.argmax(z))
        if cur == v.eos_id:
            break
        out.append(cur)
    return out


@pytest.mark.parametrize("min_len", [0, 1, 2, 5])
def test_greedy_with_min_len_below_max_len(eos_lm, min_len):
    """This model prefers </s> as soon as it is allowed: greedy stops exactly at min_len."""
    lm = eos_lm
    for prompt in ([], lm.vocab.encode(["a", "cat"])):
        want = argmax_chain(lm, prompt, 12, min_len)
        assert len(want) == min_len
        assert generate(lm.model, lm.vocab, prompt, SampleConfig(greedy=True, max_len=12, min_len=min_len)) == [want]
        assert beam_search(lm.model, lm.vocab, prompt, SampleConfig(beam=1, max_len=12, min_len=min_len)).ids == want


def test_sampling_min_len_below_max_len(eos_lm):
    lm = eos_lm
    outs = generate(lm.model, lm.vocab, [], SampleConfig(num_samples=200, seed=3, max_len=8, min_len=3,
                                                          temperature=3.0))
    lengths = [len(o) for o in outs]
    assert min(lengths) == 3 and max(lengths) == 8  # </s> happens as soon as it is allowed, not before
    for o in outs:
        assert lm.vocab.unk_id not in o and lm.vocab.bos_id not in o and lm.vocab.eos_id not in o


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
