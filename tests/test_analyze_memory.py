"""`rnnkit analyze memory`: the change in the next-token distribution when one input token is
replaced, checked against whole-window reruns and by-hand KL / total variation; an LSTM whose
forget gates start open remembers further back than a tanh RNN; the command's table and plot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import TINY_CORPUS, has_torch, make_model_dir
from rnnkit.analysis.inputs import fresh_model, random_windows, text_windows, unigram
from rnnkit.analysis.memory import changes, divergence, measure_memory, replacements
from rnnkit.cli import main
from rnnkit.errors import ConfigError

ENGINES = ["numpy"] + (["torch"] if has_torch() else [])


def test_kl_and_total_variation_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 5)) * 3, rng.normal(size=(3, 5)) * 3
    for row in range(3):
        p = [math.exp(v) for v in a[row]]
        q = [math.exp(v) for v in b[row]]
        p, q = [v / sum(p) for v in p], [v / sum(q) for v in q]
        kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
        tv = 0.5 * sum(abs(pi - qi) for pi, qi in zip(p, q))
        assert divergence(a, b, "kl")[row] == pytest.approx(kl, rel=1e-12)
        assert divergence(a, b, "tv")[row] == pytest.approx(tv, rel=1e-12)
    assert not divergence(a, a + 7.0, "kl").any() and not divergence(a, a, "tv").any()  # a shift is no change


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("gru", 2), ("lstm", 2)])
def test_changes_equal_rerunning_the_whole_window(engine, cell, layers):
    """The shortcut (one warm-up run, then both continuations from its state) gives what two
    full runs over the original and the edited window give."""
    model = fresh_model(cell, 8, layers, seed=2, engine=engine, vocab_size=12)
    x, _ = random_windows(12, 9, 5, seed=3)
    new = replacements(x[4], unigram(x, 12), seed=1)
    got = changes(model, x, new, warmup=4, measure="kl")
    edited = x.copy()
    edited[4] = new
    want = divergence(model.forward(x)[0][4:], model.forward(edited)[0][4:], "kl")
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    assert got.shape == (5, 5) and (got > 0).all()


def test_replacements_are_other_tokens_from_the_distribution():
    x = np.array([3, 4, 5, 3, 3, 4] * 50)
    probs = unigram(np.array([0, 1, 2, 3, 3, 4, 5, 5]), 8)  # specials get no mass
    new = replacements(x, probs, seed=0)
    assert (new != x).all() and set(new) <= {3, 4, 5}
    assert probs[:3].sum() == 0 and probs[6:].sum() == 0


def _memory(cell, forget_bias=0.0, seed=0, K=30):
    model = fresh_model(cell, 32, seed=seed, forget_bias=forget_bias)
    x, _ = random_windows(64, 10 + K + 1, 64, seed=seed)
    return measure_memory(model, x, warmup=10, probs=unigram(x, 64), measure="tv", seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_an_lstm_with_open_forget_gates_remembers_further_back_than_a_tanh_rnn(seed):
    rnn, lstm = _memory("rnn", seed=seed), _memory("lstm", forget_bias=2.0, seed=seed)
    assert rnn.reach(0.01) < lstm.reach(0.01)
    assert rnn.mean[30] / rnn.mean[0] < 1e-2 * lstm.mean[30] / lstm.mean[0]
    assert rnn.decay() < lstm.decay()


def test_the_text_path_of_the_command_and_its_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    text = tmp_path / "held-out.txt"
    text.write_text("\n".join(TINY_CORPUS * 6) + "\n")
    a, b = make_model_dir(tmp_path / "a"), make_model_dir(tmp_path / "b", cell="gru", num_layers=1)
    png = tmp_path / "m.png"
    assert main(["analyze", "memory", str(a), str(text), "--compare", str(b), "--steps", "6", "--warmup", "3",
                 "--batch-size", "8", "--measure", "kl", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    table = out.split("a (lstm 2x8)\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split()[:3] == ["k", "mean", "KL"]
    assert [int(line.split()[0]) for line in table[1:8]] == list(range(7))
    assert "KL(p || p') (nats): decay per step x" in table[8] and "8 windows" in table[8]
    assert "b (gru 1x8)" in out and f"figure: {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_windows_are_consecutive_tokens_and_their_successors():
    ids = np.arange(100)
    x, y = text_windows(ids, 10, 4, seed=0)
    assert x.shape == y.shape == (10, 4)
    assert (np.diff(x, axis=0) == 1).all() and (y == x + 1).all()
    x, y = text_windows(ids, 99, 2)  # just fits
    assert (x[:, 0] == ids[:-1]).all() and (y[:, 0] == ids[1:]).all()
    with pytest.raises(ConfigError, match="the text has 100 tokens; this analysis needs at least 101"):
        text_windows(ids, 100, 1)


def test_the_fresh_path_of_the_command_prints_the_reach(capsys):
    assert main(["analyze", "memory", "--cell", "rnn", "lstm", "--forget-bias", "2", "--hidden", "8", "--steps", "8",
                 "--warmup", "2", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "total variation |p - p'|: decay per step x" in out
    assert "lstm, forget bias 2 (1x8, fresh)" in out and "1% at k" in out


def test_a_bad_measure_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        main(["analyze", "memory", "--cell", "rnn", "--measure", "js"])
    assert e.value.code == 2 and "invalid choice: 'js'" in capsys.readouterr().err
