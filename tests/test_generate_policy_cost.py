"""Generation policy: cost per token. Each new token costs one step (greedy, sampling, beam; a
character model's line break one more), and the prompt is primed once, counted on a real
tiny model and on the fake one (tests/generate_policy_kit.py).
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from generate_policy_kit import K_EOS, FakeLM, eos_lover, fake_vocab
from rnnkit.config import SampleConfig
from rnnkit.inference.generate import beam_search, generate

# ------------------------------------------------------------------ cost per token


class Counting:
    """Wraps a real engine model, counting step calls / rows and primed time steps."""

    def __init__(self, model):
        self.model = model
        self.step_calls = self.step_rows = self.primed_steps = 0

    def init_hidden(self, batch_size):
        return self.model.init_hidden(batch_size)

    def step_logprobs(self, tokens, state):
        self.step_calls += 1
        self.step_rows += len(np.asarray(tokens).reshape(-1))
        return self.model.step_logprobs(tokens, state)

    def token_logprobs(self, x, y, state=None, mask=None):
        self.primed_steps += np.asarray(x).shape[0]
        return self.model.token_logprobs(x, y, state, mask=mask)

    def reorder_hidden(self, state, index):
        return self.model.reorder_hidden(state, index)


@pytest.fixture(scope="module")
def word_lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("gp") / "model", cell="lstm", num_layers=2))


@pytest.mark.parametrize("prompt_len", [0, 1, 4])
def test_each_new_token_costs_one_step(word_lm, prompt_len):
    v = word_lm.vocab
    prompt = v.encode(["the", "cat", "sat", "on"][:prompt_len])
    primed: dict[str, set[int]] = {"greedy": set(), "sample": set(), "beam": set()}
    for N in (1, 5, 20):
        # greedy, one row: N step calls (+ at most one), the prompt primed once
        m = Counting(word_lm.model)
        out = generate(m, v, prompt, SampleConfig(greedy=True, min_len=N, max_len=N))
        assert len(out[0]) == N
        assert m.primed_steps <= prompt_len + 1
        assert N <= m.step_calls <= N + 1
        primed["greedy"].add(m.primed_steps)
        # three samples: one step per row and token (batched or not), priming at most once per row
        m = Counting(word_lm.model)
        outs = generate(m, v, prompt, SampleConfig(min_len=N, max_len=N, num_samples=3, seed=1))
        assert [len(o) for o in outs] == [N] * 3
        assert m.primed_steps <= 3 * (prompt_len + 1)
        assert 3 * N <= m.step_rows <= 3 * (N + 1)
        primed["sample"].add(m.primed_steps)
        # beam: one step call per generated position, at most `beam` rows each
        m = Counting(word_lm.model)
        hyp = beam_search(m, v, prompt, SampleConfig(beam=3, min_len=N, max_len=N))
        assert len(hyp.ids) == N
        assert m.primed_steps <= prompt_len + 1
        assert m.step_calls == N and m.step_rows <= 3 * N
        primed["beam"].add(m.primed_steps)
    assert all(len(p) == 1 for p in primed.values()), primed  # priming does not depend on N


def test_each_new_token_costs_one_step_fake_model():
    """Same with the fake model, where ending early is impossible only through min_len."""
    v = fake_vocab(K_EOS)
    for P in (0, 3):
        prompt = [3, 4, 5][:P]
        for N in (2, 9):
            lm = FakeLM(K_EOS, eos_lover)
            generate(lm, v, prompt, SampleConfig(greedy=True, min_len=N, max_len=N))
            assert lm.primed_steps <= P + 1 and N <= lm.step_calls <= N + 1
            lm = FakeLM(K_EOS, eos_lover)
            generate(lm, v, prompt, SampleConfig(beam=2, min_len=N, max_len=N))
            assert lm.primed_steps <= P + 1 and lm.step_calls == N


def test_character_model_line_break_costs_one_extra_step(tmp_path):
    """A character model: every character one step, a newline (`</s>` then `<s>`) two."""
    lm = rnnkit.load(make_model_dir(tmp_path / "c", level="char", cell="gru", num_layers=1))
    m = Counting(lm.model)
    lm.model = m
    for N in (40, 200):
        m.step_calls = m.step_rows = m.primed_steps = 0
        text = lm.generate(prompt="the", max_len=N, seed=2, temperature=1.5)
        new = text[len("the"):]
        assert len(new) == N
        assert m.step_rows == N + new.count("\n")
        assert m.primed_steps <= 4
