"""Finite-difference gradient check of every parameter (float64, full BPTT).

Relative error per entry: |analytic - numeric| / max(|analytic| + |numeric|, 1e-4), numeric
from the 4-point centred difference with h = 1e-3 (see rnnkit.numpy_engine.gradcheck).
Each problem has K=7, D=5 (4 when tied), H=4, T=5, B=3, a mask that zeroes some targets and
a random non-zero initial state. The adaptive-softmax problems split the 7 ids into a head and
one cluster (cut-off [4]) or two ([3, 5]), div_value 2, with a kept target in every cluster.
"""

import numpy as np
import pytest

from rnnkit.errors import ConfigError
from rnnkit.numpy_engine import gradcheck
from rnnkit.numpy_engine.gradcheck import (
    make_problem,
    numerical_gradients,
    relative_error,
    relu_margin,
)

CASES = [
    ("rnn", "tanh", 1, False), ("rnn", "tanh", 2, True),
    ("rnn", "relu", 1, False), ("rnn", "relu", 2, False),
    ("gru", "tanh", 1, False), ("gru", "tanh", 2, True),
    ("lstm", "tanh", 1, True), ("lstm", "tanh", 2, False),
]


@pytest.mark.parametrize("cell,nl,layers,tie", CASES)
def test_every_parameter(cell, nl, layers, tie):
    errs = gradcheck(cell, num_layers=layers, nonlinearity=nl, seed=0, tie_weights=tie)
    names = set(errs)
    assert ("decoder.weight" in names) != tie
    assert {f"rnn.weight_hh_l{n}" for n in range(layers)} <= names
    worst = max(errs, key=errs.get)
    assert errs[worst] <= 1e-6, f"{worst}: {errs[worst]:.2e}"


ADAPTIVE_CASES = [(cell, layers, cutoffs) for cell in ("rnn", "gru", "lstm") for layers in (1, 2)
                  for cutoffs in ([4], [3, 5])]


@pytest.mark.parametrize("cell,layers,cutoffs", ADAPTIVE_CASES,
                         ids=[f"{c}-{n}layer-{len(k)}cluster" for c, n, k in ADAPTIVE_CASES])
def test_every_parameter_of_the_adaptive_softmax(cell, layers, cutoffs):
    errs = gradcheck(cell, num_layers=layers, seed=0, softmax="adaptive", cutoffs=cutoffs)
    tails = {f"decoder.tail.{i}.{j}.weight" for i in range(len(cutoffs)) for j in (0, 1)}
    assert {"decoder.head.weight", "decoder.head.bias", "embedding.weight"} | tails <= set(errs)
    assert not any(name.startswith("decoder.weight") or name == "decoder.bias" for name in errs)
    worst = max(errs, key=errs.get)
    assert errs[worst] <= 1e-6, f"{worst}: {errs[worst]:.2e}"


def test_adaptive_problem_reaches_every_cluster():
    model, _, y, mask, _ = make_problem("lstm", 1, softmax="adaptive", cutoffs=[3, 5])
    _, cluster = model.output.head_targets(y[mask > 0])
    assert set(cluster.tolist()) == {-1, 0, 1}


def test_relu_problem_is_away_from_the_kink():
    model, x, _, _, state = make_problem("rnn", 2, "relu", 0)
    assert relu_margin(model, x, state) > 20 * 2e-3  # 4-point stencil reaches 2h = 2e-3


def test_gradcheck_catches_a_wrong_gradient():
    model, x, y, mask, state = make_problem("gru", 1, "tanh", 0)
    _, _, g, _ = model.forward_backward(x, y, mask, state)
    num = numerical_gradients(model, x, y, mask, state, order=2, step=1e-5)
    assert relative_error(g["rnn.weight_hh_l0"], num["rnn.weight_hh_l0"]).max() < 1e-4
    g["rnn.weight_hh_l0"][0, 0] *= 1.01
    assert relative_error(g["rnn.weight_hh_l0"], num["rnn.weight_hh_l0"]).max() > 1e-3


def test_relu_kink_refused():
    with pytest.raises(ConfigError, match="seed 1: .*choose another seed"):
        gradcheck("rnn", nonlinearity="relu", num_layers=2, seed=1)


def test_numeric_gradient_restores_weights():
    model, x, y, mask, state = make_problem("lstm", 1, "tanh", 3)
    before = model.state_dict()
    numerical_gradients(model, x, y, mask, state)
    for k, v in before.items():
        assert np.array_equal(model.params[k], v)
