"""`rnnkit analyze gradients`: dL_t/dh_{t-k} and the step Jacobians equal autograd's (torch
engine) and finite differences through the engine's public forward; the tanh RNN's gradient
vanishes orders of magnitude faster than an LSTM's; the command's table, plot and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS, has_torch, make_model_dir
from rnnkit.analysis.gradients import backprop_to_past, measure_gradients, step_jacobians
from rnnkit.analysis.inputs import fresh_model, random_windows
from rnnkit.cli import main

CASES = [("rnn", "tanh", 1), ("rnn", "relu", 2), ("gru", "tanh", 1), ("gru", "tanh", 2), ("lstm", "tanh", 1),
         ("lstm", "tanh", 2)]
needs_torch = pytest.mark.skipif(not has_torch(), reason="torch not installed")


def tiny(cell, nonlinearity, layers, engine="numpy", seed=3):
    return fresh_model(cell, 4, layers, seed=seed, engine=engine, nonlinearity=nonlinearity, forget_bias=0.5,
                       vocab_size=9)


def windows(T=9, B=3, seed=1):
    return random_windows(9, T, B, seed=seed)


@needs_torch
@pytest.mark.parametrize("cell,nonlinearity,layers", CASES)
def test_numpy_bptt_equals_torch_autograd(cell, nonlinearity, layers):
    x, y = windows(T=12)
    dh, dc = backprop_to_past(tiny(cell, nonlinearity, layers), x, y, steps=6, origins=4)
    th, tc = backprop_to_past(tiny(cell, nonlinearity, layers, engine="torch"), x, y, steps=6, origins=4)
    assert dh.shape == (7, 4, 3, 4)
    assert np.abs(dh).min() < np.abs(dh).max() * 0.5  # not all alike: the comparison means something
    np.testing.assert_allclose(dh, th, rtol=1e-10, atol=1e-14)
    if cell == "lstm":
        np.testing.assert_allclose(dc, tc, rtol=1e-10, atol=1e-14)
    else:
        assert dc is None and tc is None


def _top_loss(model, x, y, t, hidden_after, start):
    """L_t summed over rows, running the engine's forward from `hidden_after` (the state after
    x[:start]) over x[start:t+1]."""
    logits = model.forward(x[start:t + 1], hidden=hidden_after)[0][-1]  # (B, K)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(y[t])), y[t]]  # (B,) each row's own loss


def _perturbed(hidden, part, j, eps):
    """The hidden list with component j of the top layer's `part` (0: h, 1: c) moved by eps."""
    out = [tuple(a.copy() for a in s) if isinstance(s, tuple) else s.copy() for s in hidden]
    top = out[-1]
    if isinstance(top, tuple):
        top[part][:, j] += eps
    else:
        top[:, j] += eps
    return out


@pytest.mark.parametrize("cell,nonlinearity,layers", CASES)
def test_bptt_equals_finite_differences_through_the_engine_forward(cell, nonlinearity, layers):
    model = tiny(cell, nonlinearity, layers)
    x, y = windows()
    K, P = 4, 2
    dh, dc = backprop_to_past(model, x, y, steps=K, origins=P)
    T, H, eps = x.shape[0], 4, 1e-6
    parts = [(0, dh)] + ([(1, dc)] if cell == "lstm" else [])
    for i, t in enumerate(range(T - P, T)):
        for k in range(1, K + 1):  # the state after x[:t-k+1] is h_{t-k}
            hidden = model.forward(x[:t - k + 1])[3]
            for part, grad in parts:
                for j in range(H):
                    up = _top_loss(model, x, y, t, _perturbed(hidden, part, j, eps), t - k + 1)
                    down = _top_loss(model, x, y, t, _perturbed(hidden, part, j, -eps), t - k + 1)
                    np.testing.assert_allclose(grad[k, i, :, j], (up - down) / (2 * eps), rtol=1e-5, atol=1e-9)


def test_k_zero_is_the_decoders_gradient():
    """dL_t/dh_t = W^T (softmax(W h_t + b) - onehot(y_t)), from the engine's top state."""
    model = tiny("lstm", "tanh", 2)
    x, y = windows()
    dh, dc = backprop_to_past(model, x, y, steps=2, origins=1)
    h = model.forward(x)[3][-1][0]  # (B, H) the top layer's h at the last step
    W, b = model.params["decoder.weight"], model.params["decoder.bias"]
    p = np.exp(h @ W.T + b)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(h)), y[-1]] -= 1.0
    np.testing.assert_allclose(dh[0, 0], p @ W, rtol=1e-12)
    assert not dc[0].any()  # L_t does not depend on c_t itself


@pytest.mark.parametrize("cell,nonlinearity,layers", CASES)
def test_step_jacobians_equal_finite_differences_and_autograd(cell, nonlinearity, layers):
    model = tiny(cell, nonlinearity, layers)
    x, _ = windows()
    times, rows = np.array([1, 4, 8]), np.array([0, 2, 1])
    J = step_jacobians(model, x, times, rows)
    m = 8 if cell == "lstm" else 4
    assert J.shape == (3, m, m)
    eps = 1e-6
    for s, (t, r) in enumerate(zip(times, rows)):
        hidden = model.forward(x[:t])[3]  # the state before step t
        for j in range(m):
            part, unit = divmod(j, 4)
            new = [model.forward(x[t:t + 1], hidden=_perturbed(hidden, part, unit, d))[3][-1] for d in (eps, -eps)]
            flat = [np.concatenate(n, axis=1) if isinstance(n, tuple) else n for n in new]
            np.testing.assert_allclose(J[s, :, j], (flat[0][r] - flat[1][r]) / (2 * eps), rtol=1e-5, atol=1e-9)
    if has_torch():
        Jt = step_jacobians(tiny(cell, nonlinearity, layers, engine="torch"), x, times, rows)
        np.testing.assert_allclose(J, Jt, rtol=1e-10, atol=1e-14)


def test_jacobians_made_a_few_samples_at_a_time_are_the_same(monkeypatch):
    from rnnkit.analysis import gradients

    model, (x, _) = tiny("lstm", "tanh", 2), windows()
    times, rows = np.array([2, 3, 8, 5]), np.array([0, 1, 2, 1])
    whole = step_jacobians(model, x, times, rows)
    monkeypatch.setattr(gradients, "SEED_ENTRIES", 1)  # one sample per batch of seeds
    np.testing.assert_allclose(step_jacobians(model, x, times, rows), whole, rtol=1e-12, atol=1e-15)


@needs_torch
def test_the_report_is_the_same_on_both_engines():
    x, y = random_windows(64, 30, 4, seed=2)
    a = measure_gradients(fresh_model("gru", 16, 2, seed=1), x, y, steps=10, origins=5, jacobians=3, seed=4)
    b = measure_gradients(fresh_model("gru", 16, 2, seed=1, engine="torch"), x, y, steps=10, origins=5,
                          jacobians=3, seed=4)
    np.testing.assert_allclose(a.norms, b.norms, rtol=1e-10)
    np.testing.assert_allclose(a.jacobian_norms, b.jacobian_norms, rtol=1e-10)


def _at_50(cell, seed, forget_bias=0.0):
    x, y = random_windows(64, 10 + 50 + 4, 16, seed=seed)
    model = fresh_model(cell, 64, seed=seed, forget_bias=forget_bias)
    return measure_gradients(model, x, y, steps=50, origins=4, jacobians=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_tanh_rnn_vanishes_orders_of_magnitude_faster_than_an_lstm(seed):
    """Fresh cells of equal size: at k = 50 the tanh RNN's gradient is at least 1000x below an
    LSTM's whose forget gates start open (bias 1, TensorFlow's default), both starting equal."""
    rnn, lstm = _at_50("rnn", seed), _at_50("lstm", seed, forget_bias=1.0)
    assert rnn.mean[0] == pytest.approx(lstm.mean[0], rel=0.1)  # the same decoder error at k = 0
    assert rnn.mean[50] < 1e-3 * lstm.mean[50]
    assert rnn.decay() < 0.8 < lstm.decay()


def test_with_pytorchs_initialisation_the_lstm_starts_no_better():
    """Forget gates at sigmoid(~0) = 0.5 halve the error on the cell path every step: at
    PyTorch's (and rnnkit's) initialisation an LSTM's gradient vanishes as fast as the RNN's
    (at k = 50 it is no more than a few times the RNN's, here below it)."""
    rnn, lstm = _at_50("rnn", 0), _at_50("lstm", 0)
    assert lstm.mean[50] < 10 * rnn.mean[50]
    assert lstm.mean[50] < 1e-9 * lstm.mean[0]


def test_the_command_prints_one_row_per_k_and_the_decay(capsys):
    assert main(["analyze", "gradients", "--cell", "rnn", "lstm", "--forget-bias", "0", "1", "--hidden", "8",
                 "--steps", "6", "--batch-size", "4", "--positions", "2", "--warmup", "3", "--jacobians", "2"]) == 0
    out = capsys.readouterr().out
    assert "rnn tanh (1x8, fresh)" in out and "lstm, forget bias 1 (1x8, fresh)" in out
    table = out.split("lstm, forget bias 0 (1x8, fresh)\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split()[:3] == ["k", "mean", "|dL_t/dh_t-k|"] and table[0].rstrip().endswith("|dL_t/dc_t-k|")
    assert [int(line.split()[0]) for line in table[1:8]] == list(range(7))
    assert float(table[1].split()[1]) > float(table[7].split()[1]) > 0  # k, then the mean norm: falling
    assert "decay per step: x0." in table[8] and "step Jacobian ||ds_t/ds_t-1||_2 (2 sampled steps)" in table[9]
    assert out.count("decay per step: x") == 3


def test_trained_models_on_a_file_on_one_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    text = tmp_path / "held-out.txt"
    text.write_text("\n".join(TINY_CORPUS * 4) + "\n")
    a, b = make_model_dir(tmp_path / "a"), make_model_dir(tmp_path / "b", cell="rnn", num_layers=1)
    png = tmp_path / "g.png"
    assert main(["analyze", "gradients", str(a), str(text), "--compare", str(b), "--steps", "5", "--positions", "3",
                 "--batch-size", "4", "--warmup", "2", "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "a (lstm 2x8)" in out and "b (rnn 1x8)" in out and f"figure: {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv,message", [
    ([], "give MODEL_DIR FILE (a trained model on held-out text) or --cell CELL"),
    (["MODEL"], "give the held-out text FILE after MODEL_DIR"),
    (["--cell", "rnn", "--forget-bias", "1"], "--forget-bias applies to fresh LSTMs"),
    (["--cell", "rnn", "--steps", "40", "--positions", "1", "--warmup", "0", "--batch-size", "1",
      "--out", "x.txt"], "x.txt: matplotlib cannot write .txt images"),
])
def test_bad_requests_are_one_line_errors(argv, message, capsys, tmp_path, monkeypatch):
    if argv[-1:] == ["x.txt"]:
        pytest.importorskip("matplotlib")
        monkeypatch.chdir(tmp_path)
    assert main(["analyze", "gradients", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and message in err and err.count("\n") == 1


def test_a_plot_without_matplotlib_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["analyze", "gradients", "--cell", "rnn", "--out", "g.png"]) == 1
    assert "pip install 'rnnkit[plot]'" in capsys.readouterr().err


SCRIPT = r"""
import sys
sys.modules["torch"] = None
from rnnkit.cli import main
assert main(["analyze", "gradients", "--cell", "gru", "--hidden", "6", "--steps", "4", "--batch-size", "2"]) == 0
assert main(["analyze", "memory", "--cell", "lstm", "--hidden", "6", "--steps", "4", "--batch-size", "2"]) == 0
assert main(["analyze", "gradients", "--cell", "rnn", "--engine", "torch"]) == 1
assert "torch" not in {m for m in sys.modules if sys.modules[m] is not None}
print("NO-TORCH-OK")
"""


def test_without_torch():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "NO-TORCH-OK" in proc.stdout and "pip install 'rnnkit[torch]'" in proc.stderr
