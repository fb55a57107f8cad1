"""The feed-forward classifier of the series' first post (analysis.feedforward), its blocks
(numpy_engine.layers), the two moons (analysis.moons), the figures and `rnnkit analyze
feedforward`: checked against finite differences, plain loops and the post's own equations."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from rnnkit.analysis import feedforward as ff
from rnnkit.analysis.moons import make_moons
from rnnkit.cli import main
from rnnkit.errors import ConfigError, NonFiniteError
from rnnkit.numpy_engine import layers

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- the data


def test_moons_are_two_half_circles_seeded_and_balanced():
    X, y = make_moons(201, noise=0.0, seed=3)
    assert X.shape == (201, 2) and y.shape == (201,) and X.dtype == np.float64
    assert (y == 0).sum() == 100 and (y == 1).sum() == 101
    outer, inner = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*outer.T), 1.0)  # (cos t, sin t)
    assert (outer[:, 1] >= 0).all()  # t in [0, pi]
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0)  # (1 - cos t, 1 - sin t - 0.5)
    assert (inner[:, 1] <= 0.5).all()
    assert y[:100].any() and not y[:100].all()  # rows shuffled, not one class then the other
    a, b, c = make_moons(50, 0.2, 7), make_moons(50, 0.2, 7), make_moons(50, 0.2, 8)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])


def test_moons_noise_has_the_asked_spread():
    X0, y0 = make_moons(4000, 0.0, seed=1)
    X, y = make_moons(4000, 0.3, seed=1)
    assert (y == y0).all()
    assert abs((X - X0).std() - 0.3) < 0.01


def test_moons_refuse_too_few_points_and_negative_noise():
    with pytest.raises(ConfigError, match="--samples"):
        make_moons(1)
    with pytest.raises(ConfigError, match="--noise"):
        make_moons(10, noise=-0.1)


# ---------------------------------------------------------------- the blocks


def centred_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by (f(x + h) - f(x - h)) / 2h, one entry at a time (x perturbed in place)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x0 = x[i]
        x[i] = x0 + h
        up = f()
        x[i] = x0 - h
        down = f()
        x[i] = x0
        g[i] = (up - down) / (2 * h)
    return g


def test_affine_and_tanh_backward_match_finite_differences():
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4)), rng.standard_normal(4)
    G = rng.standard_normal((5, 4))  # the scalar checked is sum(G * tanh(x W + b))

    def f():
        z, _ = layers.affine_forward(x, W, b)
        return float((G * layers.tanh_forward(z)[0]).sum())

    z, affine_cache = layers.affine_forward(x, W, b)
    a, tanh_cache = layers.tanh_forward(z)
    np.testing.assert_allclose(z, x @ W + b)
    np.testing.assert_allclose(a, np.tanh(x @ W + b))
    dx, dW, db = layers.affine_backward(layers.tanh_backward(G, tanh_cache), affine_cache)
    for analytic, wrt in ((dx, x), (dW, W), (db, b)):
        np.testing.assert_allclose(analytic, centred_difference(f, wrt), rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------- the network


def plain_objective(params, X, y, reg):
    """The post's loss, one example at a time with math.tanh and math.exp (hidden network)."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    total = 0.0
    for n in range(len(y)):
        a1 = [math.tanh(sum(X[n, i] * W1[i, j] for i in range(2)) + b1[j]) for j in range(W1.shape[1])]
        z2 = [sum(a1[j] * W2[j, k] for j in range(len(a1))) + b2[k] for k in range(2)]
        total -= math.log(math.exp(z2[y[n]]) / sum(math.exp(v) for v in z2))
    return total + reg / 2 * (float((W1**2).sum()) + float((W2**2).sum()))


def test_objective_matches_a_plain_loop():
    X, y = make_moons(30, 0.2, seed=2)
    params = ff.init_params((2, 4, 2), seed=5)
    params["b1"] += 0.3
    params["b2"] -= 0.2
    assert ff.objective(params, X, y, 0.05) == pytest.approx(plain_objective(params, X, y, 0.05), rel=1e-12)
    J, _ = ff.objective_and_grads(params, X, y, 0.05)
    assert J == pytest.approx(plain_objective(params, X, y, 0.05), rel=1e-12)


def test_init_is_randn_over_sqrt_fan_in_and_zero_biases():
    params = ff.init_params((2, 3, 2), seed=0)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(params["W1"], rng.standard_normal((2, 3)) / np.sqrt(2))
    np.testing.assert_array_equal(params["W2"], rng.standard_normal((3, 2)) / np.sqrt(3))
    assert not params["b1"].any() and not params["b2"].any()
    assert list(ff.init_params((2, 2))) == ["W1", "b1"]  # logistic regression: one affine layer


@pytest.mark.parametrize("sizes", [(2, 3, 2), (2, 2), (2, 20, 2)], ids=["hidden-3", "logistic", "hidden-20"])
def test_gradient_check_of_every_parameter(sizes):
    errors = ff.gradcheck(sizes, samples=20, reg=0.01, seed=0)
    assert set(errors) == set(ff.init_params(sizes))
    assert max(errors.values()) <= 1e-6, errors


def test_gradient_check_catches_a_wrong_backward(monkeypatch):
    """Not vacuous: a backward that forgets tanh's derivative fails it."""
    monkeypatch.setattr(ff, "tanh_backward", lambda da, cache: da)
    errors = ff.gradcheck((2, 3, 2), samples=20, seed=0)
    assert errors["W1"] > 1e-2 and errors["b1"] > 1e-2
    assert errors["W2"] <= 1e-6  # the layer above tanh is untouched


def posts_training_loop(X, y, params, passes, epsilon, reg_lambda):
    """The post's train loop, written out with its own names (delta3, delta2)."""
    W1, b1, W2, b2 = (params[k].copy() for k in ("W1", "b1", "W2", "b2"))
    for _ in range(passes):
        a1 = np.tanh(X.dot(W1) + b1)
        scores = np.exp(a1.dot(W2) + b2)
        probs = scores / scores.sum(axis=1, keepdims=True)
        delta3 = probs
        delta3[range(len(X)), y] -= 1
        dW2 = a1.T.dot(delta3) + reg_lambda * W2
        db2 = delta3.sum(axis=0)
        delta2 = delta3.dot(W2.T) * (1 - a1**2)
        dW1 = X.T.dot(delta2) + reg_lambda * W1
        db1 = delta2.sum(axis=0)
        W1, b1, W2, b2 = W1 - epsilon * dW1, b1 - epsilon * db1, W2 - epsilon * dW2, b2 - epsilon * db2
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def test_training_takes_the_posts_steps():
    X, y = make_moons(200, 0.2, seed=0)
    trained = ff.train_network(X, y, 3, passes=300, lr=0.01, reg=0.01, seed=4)
    expected = posts_training_loop(X, y, ff.init_params((2, 3, 2), seed=4), 300, 0.01, 0.01)
    for k, v in expected.items():
        np.testing.assert_allclose(trained.params[k], v, rtol=1e-10, atol=1e-12)
    assert trained.loss == pytest.approx(plain_objective(expected, X, y, 0.01) / 200, rel=1e-10)
    assert [p for p, _ in trained.history] == [0, 300]


def test_three_hidden_units_beat_logistic_regression_on_the_seeded_moons():
    """The post's settings: 200 points, noise 0.2, 20,000 passes, lr 0.01, L2 0.01, seed 0."""
    X, y = make_moons(200, 0.2, seed=0)
    net = ff.train_network(X, y, 3)
    baseline = ff.train_logistic_regression(X, y)
    assert net.accuracy == np.mean(np.argmax(ff.forward(net.params, X)[0], axis=1) == y)
    assert net.accuracy >= 0.95
    assert net.accuracy > baseline.accuracy
    assert net.loss < baseline.loss
    losses = [loss for _, loss in net.history]
    assert len(losses) == 21 and losses[-1] < losses[0]


def test_a_diverging_run_stops_before_the_update():
    X, y = make_moons(40, 0.2, seed=0)
    with pytest.raises(NonFiniteError, match="--lr"):
        ff.train_network(X, y, 3, passes=50, lr=1e200)


def test_bad_settings_are_one_line_errors(capsys):
    assert main(["analyze", "feedforward", "--lr", "0"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "rnnkit: error: --lr must be a positive number, got 0.0\n"  # before any work
    X, y = make_moons(20, 0.2, seed=0)
    for kw, flag in (({"passes": -1}, "--passes"), ({"lr": 0.0}, "--lr"), ({"reg": -1.0}, "--reg")):
        with pytest.raises(ConfigError, match=flag):
            ff.train_network(X, y, 3, **kw)
    with pytest.raises(ConfigError, match="--hidden"):
        ff.network_sizes(0)


# ---------------------------------------------------------------- figures and the command


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_boundary_grid_covers_the_data_and_classes_follow_predict():
    from rnnkit.analysis.boundaries import decision_grid, grid_classes

    X, y = make_moons(50, 0.2, seed=0)
    trained = ff.train_network(X, y, 3, passes=200)
    xx, yy = decision_grid(X, step=0.05)
    assert xx.min() <= X[:, 0].min() - 0.45 and xx.max() >= X[:, 0].max() + 0.45
    assert yy.min() <= X[:, 1].min() - 0.45 and yy.max() >= X[:, 1].max() + 0.45
    Z = grid_classes(trained, xx, yy)
    r, c = 3, 7
    assert Z[r, c] == ff.predict(trained.params, np.array([[xx[r, c], yy[r, c]]]))[0]


def test_command_prints_accuracies_and_draws_both_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out, grid = tmp_path / "boundary.png", tmp_path / "grid.png"
    rc = main(["analyze", "feedforward", "--hidden", "3", "--passes", "2000", "--samples", "100",
               "--out", str(out), "--grid-out", str(grid), "--hidden-sizes", "1", "3", "5"])
    text = capsys.readouterr().out
    assert rc == 0
    X, y = make_moons(100, 0.2, seed=0)
    net = ff.train_network(X, y, 3, passes=2000)
    baseline = ff.train_logistic_regression(X, y, passes=2000)
    assert f"3 hidden units                  loss {net.loss:.4f}  training accuracy {net.accuracy:.3f}" in text
    assert f"logistic regression (baseline)  loss {baseline.loss:.4f}  training accuracy {baseline.accuracy:.3f}" \
        in text
    assert "gradient check" in text and "ok" in text
    assert "1 hidden unit " in text and "5 hidden units" in text
    width, height = png_size(out)
    assert width > 600 and height > 400
    grid_width, grid_height = png_size(grid)
    assert grid_width > 3 * grid_height / 2  # four panels in a row, one row


def test_command_defaults_are_the_posts():
    from rnnkit.cli import build_parser

    args = build_parser().parse_args(["analyze", "feedforward"])
    assert (args.hidden, args.samples, args.noise, args.passes, args.lr, args.reg, args.seed) == \
        (3, 200, 0.2, 20_000, 0.01, 0.01, 0)
    assert args.hidden_sizes == [1, 2, 3, 4, 5, 20, 50] and args.out is None and args.grid_out is None


def test_figure_names_are_checked_before_training(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(ff, "train", lambda *a, **k: pytest.fail("trained before checking the output"))
    assert main(["analyze", "feedforward", "--out", str(tmp_path / "b.jpg")]) == 1
    assert "b.jpg: figures are written as PNG" in capsys.readouterr().err
    assert main(["analyze", "feedforward", "--grid-out", str(tmp_path / "no" / "g.png")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1


def test_missing_matplotlib_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert main(["analyze", "feedforward", "--passes", "1", "--out", str(tmp_path / "b.png")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'rnnkit[plot]'" in err and err.count("\n") == 1
    assert not (tmp_path / "b.png").exists()
