"""Stream- and sentence-mode evaluation against plain one-token-at-a-time loops written here.

The reference never calls rnnkit.inference.evaluate or rnnkit.data: it builds the stream
`<s> w.. </s> <s> ...` itself, cuts the N - 1 targets into B consecutive columns of
L = ceil((N - 1) / B) targets (the documented layout of evaluate.stream_windows: column b holds
targets [b*L, (b+1)*L), the last one(s) short), and steps each column from a zero state with
`model.step_logprobs`, carrying the state through the WHOLE column and summing -ln p over the
targets that are not `<s>`. Columns are much longer than seq_len, so an implementation that
loses the state at a window boundary, drops the short last column, or counts `<s>` targets
gives a different total.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import rnnkit
from conftest import has_torch, make_model_dir
from rnnkit.cli import main
from rnnkit.inference.evaluate import evaluate_encoded, evaluate_stream
from rnnkit.numpy_engine import RNNLM

ATOL = 1e-9  # float64 models: batched windows and single steps agree to rounding


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """A float64 numpy LSTM over the tiny vocabulary (2 layers, state matters)."""
    lm = rnnkit.load(make_model_dir(tmp_path_factory.mktemp("ev") / "model", cell="lstm", num_layers=2))
    lm.model = RNNLM(lm.config, lm.model.state_dict(), dtype=np.float64)
    return lm


def random_corpus(vocab, n_sent: int, seed: int, max_len: int = 12) -> list[np.ndarray]:
    """Sentences of word ids (no specials), some empty, some with <unk>."""
    rng = np.random.default_rng(seed)
    words = np.arange(3, len(vocab))
    out = []
    for _ in range(n_sent):
        n = int(rng.integers(0, max_len + 1))
        s = rng.choice(words, size=n)
        if n and rng.random() < 0.3:
            s[rng.integers(n)] = vocab.unk_id
        out.append(s.astype(np.int64))
    return out


def my_stream(encoded, vocab) -> list[int]:
    out: list[int] = []
    for s in encoded:
        out += [vocab.bos_id] + [int(i) for i in s] + [vocab.eos_id]
    return out


def step_column(model, inputs: list[int], targets: list[int], vocab) -> tuple[float, int, int]:
    """(nats, count, oov) of one column, stepped from a zero state, state carried throughout."""
    state = model.init_hidden(1)
    nats, count, oov = 0.0, 0, 0
    for x, y in zip(inputs, targets):
        logp, state = model.step_logprobs(np.array([x], dtype=np.int64), state)
        if y == vocab.bos_id:  # <s> is context only, never a target
            continue
        nats -= float(logp[0, y])
        count += 1
        oov += y == vocab.unk_id
    return nats, count, oov


def reference_stream(model, stream: list[int], vocab, batch_size: int) -> tuple[float, int, int]:
    inputs, targets = stream[:-1], stream[1:]
    n = len(targets)
    if n == 0:
        return 0.0, 0, 0
    B = max(1, min(batch_size, n))
    L = -(-n // B)
    nats, count, oov = 0.0, 0, 0
    for b in range(B):
        a, e = b * L, min((b + 1) * L, n)
        if a >= n:
            continue
        cn, cc, co = step_column(model, inputs[a:e], targets[a:e], vocab)
        nats, count, oov = nats + cn, count + cc, oov + co
    return nats, count, oov


def reference_sentences(model, encoded, vocab) -> tuple[float, int, int]:
    nats, count, oov = 0.0, 0, 0
    for s in encoded:
        ids = [int(i) for i in s]
        cn, cc, co = step_column(model, [vocab.bos_id] + ids, ids + [vocab.eos_id], vocab)
        nats, count, oov = nats + cn, count + cc, oov + co
    return nats, count, oov


def check(res, ref, atol=ATOL, rtol=0.0):
    nats, count, oov = ref
    assert (res.count, res.oov) == (count, oov)
    assert res.nats == pytest.approx(nats, abs=atol, rel=rtol)


CORPUS_SEED = 3


@pytest.fixture(scope="module")
def corpus(lm):
    enc = random_corpus(lm.vocab, 48, CORPUS_SEED)
    return enc


# (batch_size, seq_len): columns of ~60 targets cut into windows of 7; one column of ~330 in
# windows of 4; more columns than fit evenly (the last column short); one window per column.
SHAPES = [(5, 7), (1, 50), (6, 4), (7, 3), (3, 1000)]


@pytest.mark.parametrize("batch_size,seq_len", SHAPES)
def test_evaluate_stream_equals_per_column_step_loop(lm, corpus, batch_size, seq_len):
    stream = my_stream(corpus, lm.vocab)
    n = len(stream) - 1
    L = -(-n // batch_size)
    if batch_size > 1 and (batch_size, seq_len) != (3, 1000):
        assert L > 5 * seq_len or seq_len >= 50  # several window boundaries inside each column
    ref = reference_stream(lm.model, stream, lm.vocab, batch_size)
    res = evaluate_stream(lm.model, np.asarray(stream, dtype=np.int64), lm.vocab, batch_size=batch_size,
                          seq_len=seq_len)
    check(res, ref)
    assert ref[2] >= 1  # <unk> targets present, so oov is checked for real
    assert ref[1] == sum(len(s) + 1 for s in corpus)  # every word and every </s>, no <s>
    enc = evaluate_encoded(lm.model, corpus, lm.vocab, "stream", batch_size=batch_size, seq_len=seq_len)
    check(enc, ref)


def test_stream_layout_with_a_short_last_column(lm, corpus):
    """N - 1 not a multiple of B: the last column is short and must still be scored."""
    stream = my_stream(corpus, lm.vocab)
    n = len(stream) - 1
    B = next(b for b in (7, 9, 11, 13) if n % b != 0)
    ref = reference_stream(lm.model, stream, lm.vocab, B)
    check(evaluate_stream(lm.model, np.asarray(stream), lm.vocab, batch_size=B, seq_len=5), ref)


def test_stream_carries_state_across_sentences(lm, corpus):
    """Sanity of the reference itself: stream mode differs from sentence mode (the state is
    carried across `</s> <s>`), and from a reference that resets every 7 steps."""
    stream = my_stream(corpus, lm.vocab)
    carried = reference_stream(lm.model, stream, lm.vocab, 5)
    sentences = reference_sentences(lm.model, corpus, lm.vocab)
    assert carried[1] == sentences[1]
    assert abs(carried[0] - sentences[0]) > 1e-3
    res = evaluate_stream(lm.model, np.asarray(stream), lm.vocab, batch_size=5, seq_len=7)
    assert abs(res.nats - sentences[0]) > 1e-3


def test_tiny_streams(lm):
    """Fewer targets than columns, a single sentence, an empty sentence, nothing at all."""
    v = lm.vocab
    for enc in ([np.array([5], dtype=np.int64)], [np.array([], dtype=np.int64)],
                [np.array([3, 8, 11], dtype=np.int64), np.array([], dtype=np.int64)]):
        stream = my_stream(enc, v)
        for B in (1, 2, 4, 10):  # B=4 on 6 targets: columns of 2, the last one all padding
            ref = reference_stream(lm.model, stream, v, B)
            check(evaluate_stream(lm.model, np.asarray(stream), v, batch_size=B, seq_len=2), ref)
            check(evaluate_encoded(lm.model, enc, v, "stream", batch_size=B, seq_len=2), ref)
    res = evaluate_encoded(lm.model, [], v, "stream")
    assert (res.nats, res.count) == (0.0, 0)


def random_text(lm, n_sent: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = [w for w in lm.vocab.to_list()[3:] if re.fullmatch(r"[a-z]+", w)] + ["zebra"]  # zebra: OOV
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 14)))) for _ in range(n_sent)]


def test_language_model_evaluate_stream_long_columns(lm):
    """LanguageModel.evaluate(mode="stream") walks windows of 128: columns of ~300 targets."""
    text = random_text(lm, 90, seed=11)
    enc = [lm.vocab.encode(lm.tokenize(s)) for s in text]
    stream = my_stream(enc, lm.vocab)
    assert (len(stream) - 1) / 2 > 2 * 128
    for B in (1, 2):
        ref = reference_stream(lm.model, stream, lm.vocab, B)
        check(lm.evaluate(text, mode="stream", batch_size=B), ref)
        assert ref[2] >= 1


@pytest.mark.parametrize("batch_size,seq_len", [(3, 4), (1, 2), (50, 128)])
def test_sentence_mode_equals_per_sentence_step_loop(lm, batch_size, seq_len):
    """State reset per sentence, `<s>` context, `</s>` predicted; sentences longer than seq_len."""
    corpus = random_corpus(lm.vocab, 25, seed=5, max_len=20)
    assert max(len(s) for s in corpus) > 3 * seq_len or seq_len == 128
    ref = reference_sentences(lm.model, corpus, lm.vocab)
    check(evaluate_encoded(lm.model, corpus, lm.vocab, "sentences", batch_size=batch_size, seq_len=seq_len), ref)


def test_language_model_evaluate_sentences(lm):
    text = random_text(lm, 30, seed=12)
    enc = [lm.vocab.encode(lm.tokenize(s)) for s in text]
    ref = reference_sentences(lm.model, enc, lm.vocab)
    check(lm.evaluate(text, mode="sentences", batch_size=4), ref)


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_torch_engine_float64_equals_step_loop(lm, corpus, mode):
    """The torch engine (built float64 from the same parameters) against the numpy step loop."""
    from rnnkit.torch_engine import RNNLM as TorchRNNLM

    tm = TorchRNNLM(lm.config, lm.model.state_dict(), dtype=np.float64, device="cpu")
    if mode == "stream":
        ref = reference_stream(lm.model, my_stream(corpus, lm.vocab), lm.vocab, 5)
        check(evaluate_encoded(tm, corpus, lm.vocab, "stream", batch_size=5, seq_len=7), ref)
        # and the torch model's own step loop gives the same reference
        check(evaluate_encoded(tm, corpus, lm.vocab, "stream", batch_size=5, seq_len=7),
              reference_stream(tm, my_stream(corpus, lm.vocab), lm.vocab, 5))
    else:
        ref = reference_sentences(lm.model, corpus, lm.vocab)
        check(evaluate_encoded(tm, corpus, lm.vocab, "sentences", batch_size=3, seq_len=4), ref)


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_torch_engine_float32_stream(lm, corpus):
    from rnnkit.torch_engine import RNNLM as TorchRNNLM

    tm = TorchRNNLM(lm.config, lm.model.state_dict(), dtype=np.float32, device="cpu")
    ref = reference_stream(lm.model, my_stream(corpus, lm.vocab), lm.vocab, 4)
    check(evaluate_encoded(tm, corpus, lm.vocab, "stream", batch_size=4, seq_len=7), ref, atol=0, rtol=1e-4)


def test_cli_eval_stream_prints_reference_perplexity(tmp_path, capsys):
    model_dir = make_model_dir(tmp_path / "m", cell="gru", num_layers=2, seed=4)
    ref_lm = rnnkit.load(model_dir)
    ref_model = RNNLM(ref_lm.config, ref_lm.model.state_dict(), dtype=np.float64)  # the saved float32 weights
    text = random_text(ref_lm, 70, seed=13)
    path = tmp_path / "eval.txt"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    enc = [ref_lm.vocab.encode(ref_lm.tokenize(s)) for s in text]
    for B in (1, 3):
        nats, count, oov = reference_stream(ref_model, my_stream(enc, ref_lm.vocab), ref_lm.vocab, B)
        assert main(["eval", str(model_dir), str(path), "--mode", "stream", "--batch-size", str(B)]) == 0
        out = capsys.readouterr().out
        m = re.search(r"([\d,]+) tokens predicted, ([\d,]+) OOV; loss ([\d.]+) nats, perplexity ([\d,.]+)", out)
        assert m, out
        assert "(stream mode)" in out
        assert int(m.group(1).replace(",", "")) == count and int(m.group(2).replace(",", "")) == oov
        assert float(m.group(3)) == pytest.approx(nats / count, abs=6e-5)
        assert float(m.group(4).replace(",", "")) == pytest.approx(math.exp(nats / count), abs=6e-3)
