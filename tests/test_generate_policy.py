"""Generation policy against references written here: a fake model with fully controlled
log-probabilities (min_len, length_penalty, cost per token), and the CLI on a real tiny model
against distributions and argmax chains computed by stepping the model in the test."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.cli import main
from rnnkit.config import SampleConfig
from rnnkit.inference.generate import beam_search, generate
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


# ------------------------------------------------------------------ min_len

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


# ------------------------------------------------------------------ length_penalty

A, B_, C, D = 3, 4, 5, 6
K_LP = 7


def lp_model(hist):
    """After <s>: A .7, B .3. Short `A </s>`: total ln .35 (higher), per token ln(.35)/2.
    Long `B C D </s>`: total ln(.3 * .9^3) (lower), per token higher. Other branches are poor."""
    g = hist[1:]  # generated so far (no prompt)
    if g == ():
        p = {A: 0.7, B_: 0.3}
    elif g == (A,):
        p = {EOS_ID: 0.5, C: 0.5}
    elif g[0] == A:  # A C ...: never ends
        p = {C: 0.5, D: 0.5}
    elif g == (B_,):
        p = {C: 0.9, EOS_ID: 0.1}
    elif g == (B_, C):
        p = {D: 0.9, EOS_ID: 0.1}
    else:  # B C D, B C D D, ...
        p = {EOS_ID: 0.9, D: 0.1}
    return dist_from(p, K_LP)


def brute_force_best(dist, K, min_len, max_len, alpha):
    """Best (score, ids) by enumeration over every hypothesis the search may return: a sequence
    ended by </s> (chosen at a position >= min_len, < max_len; length counts the </s>) or one
    of max_len tokens left unfinished. score = logprob / length ** alpha."""
    best = (-math.inf, None)

    def walk(hist, ids, logprob):
        nonlocal best
        lp = np.array(dist(hist), dtype=np.float64)
        lp[[UNK_ID, BOS_ID]] = NEG
        if len(ids) < min_len:
            lp[EOS_ID] = NEG
        lp = lp - np.logaddexp.reduce(lp)  # renormalised, as the search does
        for tok in np.flatnonzero(np.isfinite(lp)):
            total = logprob + lp[tok]
            if tok == EOS_ID:
                cand = (total / (len(ids) + 1) ** alpha, list(ids))
            elif len(ids) + 1 == max_len:
                cand = (total / (len(ids) + 1) ** alpha, list(ids) + [int(tok)])
            else:
                walk(hist + (int(tok),), ids + [int(tok)], total)
                continue
            if cand[0] > best[0]:
                best = cand

    walk((BOS_ID,), [], 0.0)
    return best


@pytest.mark.parametrize("alpha,want", [(0.0, [A]), (1.0, [B_, C, D])])
def test_length_penalty_changes_the_beam_choice(alpha, want):
    v = fake_vocab(K_LP)
    cfg = SampleConfig(beam=2, min_len=1, max_len=6, length_penalty=alpha)
    hyp = beam_search(FakeLM(K_LP, lp_model), v, [], cfg)
    best_score, best_ids = brute_force_best(lp_model, K_LP, 1, 6, alpha)
    assert best_ids == want  # the constructed case is what it claims
    assert hyp.ids == want and hyp.finished
    by_hand = {(A,): math.log(0.7 * 0.5), (B_, C, D): math.log(0.3 * 0.9 * 0.9 * 0.9)}
    assert hyp.logprob == pytest.approx(by_hand[tuple(want)], abs=1e-12)
    assert hyp.logprob / (len(want) + 1) ** alpha == pytest.approx(best_score, abs=1e-12)
    assert generate(FakeLM(K_LP, lp_model), v, [], cfg) == [want]


def test_length_penalty_default_is_one():
    """SampleConfig's default length_penalty (1) normalises by length: the long one wins."""
    hyp = beam_search(FakeLM(K_LP, lp_model), fake_vocab(K_LP), [], SampleConfig(beam=2, min_len=1, max_len=6))
    assert hyp.ids == [B_, C, D]


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


# ------------------------------------------------------------------ CLI on a real model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("cli") / "model", cell="lstm", num_layers=2, seed=0)


def cli_lines(capsys, argv) -> list[str]:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n")
    return out[:-1].split("\n")


def first_token_probs(lm) -> np.ndarray:
    """p(first token | <s>) with <unk> and <s> banned, renormalised (reference, by stepping)."""
    logp, _ = lm.model.step_logprobs(np.array([lm.vocab.bos_id]), lm.model.init_hidden(1))
    p = np.exp(logp[0].astype(np.float64))
    p[[lm.vocab.unk_id, lm.vocab.bos_id]] = 0.0
    return p / p.sum()


def token_text(lm, tok: int) -> str:
    return "" if tok == lm.vocab.eos_id else lm.tokenizer.detokenize(lm.vocab.decode([tok]))


def check_samples(lm, lines, allowed: list[int], n: int):
    p = first_token_probs(lm)
    texts = {token_text(lm, t): t for t in allowed}
    assert len(texts) == len(allowed)
    assert len(lines) == n
    assert set(lines) <= set(texts), set(lines) - set(texts)
    # frequencies follow the renormalised kept distribution (5 sigma)
    q = p[allowed] / p[allowed].sum()
    for text, t in texts.items():
        qi = q[allowed.index(t)]
        assert abs(lines.count(text) - n * qi) <= 5 * math.sqrt(n * qi * (1 - qi)) + 1


def test_cli_top_k(model_dir, capsys):
    lm = rnnkit.load(model_dir)
    p = first_token_probs(lm)
    order = list(np.argsort(-p, kind="stable"))
    assert p[order[2]] / p[order[:3]].sum() > 0.1  # keeping one more would show up in 200 samples
    for k in (1, 2, 5):
        lines = cli_lines(capsys, ["generate", str(model_dir), "--top-k", str(k), "--num-samples", "200",
                                   "--max-len", "1", "--seed", "1"])
        check_samples(lm, lines, [int(t) for t in order[:k]], 200)
        if k > 1:
            assert len(set(lines)) == k


def test_cli_top_p(model_dir, capsys):
    lm = rnnkit.load(model_dir)
    p = first_token_probs(lm)
    order = list(np.argsort(-p, kind="stable"))
    cum = np.cumsum(p[order])
    for size in (1, 3):
        lo, hi = (cum[size - 2] if size > 1 else 0.0), cum[size - 1]
        top_p = round((lo + hi) / 2, 6)  # the nucleus is exactly the `size` most likely tokens
        assert lo < top_p < hi and 1 - hi > 0.3  # ignoring top-p would show other tokens
        lines = cli_lines(capsys, ["generate", str(model_dir), "--top-p", str(top_p), "--num-samples", "200",
                                   "--max-len", "1", "--seed", "2"])
        check_samples(lm, lines, [int(t) for t in order[:size]], 200)
        assert len(set(lines)) == size


def argmax_chain(lm, prompt_ids: list[int], max_len: int, min_len: int = 0) -> list[int]:
    state, out = lm.model.init_hidden(1), []
    context = [lm.vocab.bos_id] + prompt_ids
    for tok in context[:-1]:
        _, state = lm.model.step_logprobs(np.array([tok]), state)
    cur = context[-1]
    for t in range(max_len):
        logp, state = lm.model.step_logprobs(np.array([cur]), state)
        z = logp[0].copy()
        z[[lm.vocab.unk_id, lm.vocab.bos_id]] = -np.inf
        if t < min_len:
            z[lm.vocab.eos_id] = -np.inf
        cur = int(np.argmax(z))
        if cur == lm.vocab.eos_id:
            break
        out.append(cur)
    return out


def as_text(lm, prompt: str, ids: list[int]) -> str:
    toks = lm.tokenize(prompt) + lm.vocab.decode(ids)
    return lm.tokenizer.detokenize(toks)


@pytest.mark.parametrize("prompt,min_len", [("", 0), ("the cat", 0), ("the", 6)])
def test_cli_greedy_is_the_argmax_chain(model_dir, capsys, prompt, min_len):
    lm = rnnkit.load(model_dir)
    ids = argmax_chain(lm, lm.vocab.encode(lm.tokenize(prompt)), 15, min_len)
    assert len(ids) >= min_len
    lines = cli_lines(capsys, ["generate", str(model_dir), "--prompt", prompt, "--greedy", "--max-len", "15",
                               "--min-len", str(min_len)])
    assert lines == [as_text(lm, prompt, ids)]


@pytest.mark.parametrize("prompt,alpha,min_len", [("", "1", 0), ("the cat", "0", 0), ("a", "1", 4)])
def test_cli_beam_equals_beam_search(model_dir, capsys, prompt, alpha, min_len):
    lm = rnnkit.load(model_dir)
    hyp = beam_search(lm.model, lm.vocab, lm.vocab.encode(lm.tokenize(prompt)),
                      SampleConfig(beam=3, max_len=12, min_len=min_len, length_penalty=float(alpha)))
    assert len(hyp.ids) >= min_len
    lines = cli_lines(capsys, ["generate", str(model_dir), "--prompt", prompt, "--beam", "3", "--max-len", "12",
                               "--length-penalty", alpha, "--min-len", str(min_len)])
    assert lines == [as_text(lm, prompt, hyp.ids)]


def test_cli_beam_length_penalty_reaches_the_search(tmp_path, capsys):
    """On this real model (seed chosen so), some prompt/width makes alpha 0 and 1 disagree; the
    CLI must follow each."""
    lm = rnnkit.load(make_model_dir(tmp_path / "m", cell="rnn", num_layers=1, seed=5))
    found = None
    for prompt, width in itertools.product(["", "the", "a", "the cat", "it"], (2, 3, 5)):
        pids = lm.vocab.encode(lm.tokenize(prompt))
        h0 = beam_search(lm.model, lm.vocab, pids, SampleConfig(beam=width, max_len=10, length_penalty=0.0))
        h1 = beam_search(lm.model, lm.vocab, pids, SampleConfig(beam=width, max_len=10, length_penalty=1.0))
        if h0.ids != h1.ids:
            found = (prompt, width, h0.ids, h1.ids)
            break
    assert found is not None, "alpha 0 and 1 agree everywhere on this model: pick another seed"
    prompt, width, ids0, ids1 = found
    for alpha, ids in (("0", ids0), ("1", ids1)):
        lines = cli_lines(capsys, ["generate", str(tmp_path / "m"), "--prompt", prompt, "--beam", str(width),
                                   "--max-len", "10", "--length-penalty", alpha])
        assert lines == [as_text(lm, prompt, ids)]
