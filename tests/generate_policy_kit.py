"""What the generation-policy tests (tests/test_generate_policy_*.py) share: `FakeLM`, a model
with fully controlled log-probabilities behind the engine contract rnnkit.inference.generate
uses, its vocabulary, and `eos_lover`, a distribution that always prefers </s>.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.text import BOS, EOS, UNK, Vocab

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
NEG = -np.inf


class FakeLM:
    """The engine contract rnnkit.inference.generate uses (init_hidden, step_logprobs, token_logprobs,
    reorder_hidden) over a distribution `dist(history)`, where history is the tuple of every
    input fed so far (`<s>` first). The state is that history per row. Calls are counted."""

    def __init__(self, K: int, dist):
        self.K, self.dist = K, dist
        self.step_calls = 0  # step_logprobs calls
        self.step_rows = 0  # rows stepped by them (batch sizes summed)
        self.primed_steps = 0  # time steps passed to token_logprobs
        self.token_calls = 0

    def init_hidden(self, batch_size: int):
        return [() for _ in range(batch_size)]

    def _logp(self, hist) -> np.ndarray:
        lp = np.asarray(self.dist(hist), dtype=np.float64)
        assert lp.shape == (self.K,)
        return lp

    def step_logprobs(self, tokens, state):
        tokens = np.asarray(tokens).reshape(-1)
        assert len(tokens) == len(state)
        self.step_calls += 1
        self.step_rows += len(tokens)
        new = [h + (int(t),) for h, t in zip(state, tokens)]
        return np.stack([self._logp(h) for h in new]), new

    def token_logprobs(self, x, y, state=None, mask=None):
        x, y = np.asarray(x), np.asarray(y)
        T, B = x.shape
        self.token_calls += 1
        self.primed_steps += T
        state = self.init_hidden(B) if state is None else list(state)
        out = np.zeros((T, B))
        for t in range(T):
            state = [h + (int(x[t, b]),) for b, h in enumerate(state)]
            for b in range(B):
                out[t, b] = self._logp(state[b])[y[t, b]]
        return out, state

    def reorder_hidden(self, state, index):
        return [state[int(i)] for i in np.asarray(index).reshape(-1)]


def fake_vocab(K: int) -> Vocab:
    return Vocab([UNK, BOS, EOS] + [f"w{i}" for i in range(3, K)])


def dist_from(probs: dict[int, float], K: int) -> np.ndarray:
    lp = np.full(K, NEG)
    for i, p in probs.items():
        lp[i] = math.log(p)
    return lp


K_EOS = 8  # ids 3..7 are words


def pref(hist) -> int:
    """The preferred word after `hist`: changes with the position so the chain is not constant."""
    return 3 + len(hist) % 5


def eos_lover(hist):
    """</s> 0.6, <unk> 0.2, <s> 0.1 (both banned by generation), the preferred word 0.06,
    the other four words 0.01 each."""
    p = {EOS_ID: 0.6, UNK_ID: 0.2, BOS_ID: 0.1}
    for w in range(3, K_EOS):
        p[w] = 0.06 if w == pref(hist) else 0.01
    return dist_from(p, K_EOS)
