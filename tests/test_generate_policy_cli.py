"""Generation policy through `rnnkit generate` on a real tiny model: --top-k and --top-p sample
from the renormalised kept distribution, --greedy is the argmax chain, --beam and
--length-penalty are beam_search's, all computed here by stepping the model.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.cli import main
from rnnkit.config import SampleConfig
from rnnkit.inference.generate import beam_search

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
