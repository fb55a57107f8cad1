"""The one trainer-state key scheme (rnnkit.trainer_keys): both engines write it, the 0.1.0
schemes translate into it, and what does not fit the trainer is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import has_torch
from rnnkit import checkpoint, numpy_engine
from rnnkit import trainer_keys as keys
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import CheckpointError
from rnnkit.params import param_shapes

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1"
CFG = ModelConfig(vocab_size=9, cell="gru", embed_dim=4, hidden_dim=5, num_layers=2)
OPTIMIZERS = ["sgd", "rmsprop", "adam"]
MOMENTS = {"sgd": set(), "rmsprop": {"v"}, "adam": {"m", "v"}}


def batch(seed=0, T=4, B=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 9, (T, B)), rng.integers(0, 9, (T, B))


def trained(engine, optimizer, steps=2):
    if engine == "torch":
        pytest.importorskip("torch")
        from rnnkit import torch_engine as eng
    else:
        eng = numpy_engine
    tr = eng.Trainer(eng.RNNLM(CFG, dtype=np.float64, seed=1), TrainConfig(optimizer=optimizer, lr=0.01))
    for i in range(steps):
        tr.step(*batch(i))
    return tr


def expected_keys(optimizer, rng_key):
    moments = {keys.moment_key(m, p) for m in MOMENTS[optimizer] for p in param_shapes(CFG)}
    return {keys.STEP, keys.LR, rng_key} | moments


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("engine,rng_key", [("numpy", keys.RNG_NUMPY), ("torch", keys.RNG_TORCH_CPU)])
def test_both_engines_write_the_scheme(engine, rng_key, optimizer):
    d = trained(engine, optimizer).state_dict()
    assert set(d) == expected_keys(optimizer, rng_key)
    assert d[keys.STEP].dtype == np.int64 and int(d[keys.STEP]) == 2
    assert d[keys.LR].dtype == np.float64 and d[rng_key].dtype == np.uint8
    assert keys.translate(d).keys() == d.keys()  # already in the scheme: nothing to translate


def test_numpy_moments_are_the_optimizer_slots():
    tr = trained("numpy", "adam")
    d = tr.state_dict()
    for m in ("m", "v"):
        for p, v in tr.optimizer.slots[m].items():
            np.testing.assert_array_equal(d[keys.moment_key(m, p)], v)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_0_1_0_trainer_states_translate(engine):
    if engine == "torch" and not has_torch():
        pytest.skip("torch is not installed")
    old = checkpoint.load_tensors(FIXTURES / engine / "trainer_state" / "optimizer.safetensors")
    old = {k: v for k, v in old.items() if not k.startswith("carry.")}
    new = keys.translate(old)
    params = {"embedding.weight", "decoder.weight", "decoder.bias"} | {
        f"rnn.{w}_l{n}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for n in (0, 1)}
    moments = {keys.moment_key(m, p) for m in "mv" for p in params}
    rng = keys.RNG_NUMPY if engine == "numpy" else keys.RNG_TORCH_CPU
    assert set(new) == {keys.STEP, keys.LR, rng} | moments
    assert int(new[keys.STEP]) == 20 and float(new[keys.LR]) == pytest.approx(0.002)
    if engine == "torch":
        np.testing.assert_array_equal(new["optimizer.v.decoder.bias"], old["optim.exp_avg_sq.decoder.bias"])
    else:
        np.testing.assert_array_equal(new["rng.numpy"], old["rng"])


def test_translate_renames_rmsprop_and_refuses_two_names_for_one_key():
    old = {"optim.step": np.array(3), "optim.lr": np.array(0.1), "optim.square_avg.decoder.bias": np.zeros(2),
           "rng.torch_cpu": np.zeros(4, np.uint8), "amp.scale": np.array(8.0)}
    assert set(keys.translate(old)) == {"step", "lr", "optimizer.v.decoder.bias", "rng.torch_cpu", "amp.scale"}
    with pytest.raises(CheckpointError, match="step"):
        keys.translate({"step": np.array(1), "optim.step": np.array(1)})


def test_refusals_name_the_key():
    shapes = param_shapes(CFG)
    good = trained("numpy", "adam").state_dict()
    with pytest.raises(CheckpointError, match="'lr' is missing"):
        keys.read_progress({k: v for k, v in good.items() if k != keys.LR})
    unexpected = r"unexpected optimizer\.m\.embedding\.weight \(the rmsprop optimizer keeps v "
    with pytest.raises(CheckpointError, match=unexpected):
        keys.read_moments(good, "rmsprop", ("v",), shapes)
    bad = {**good, "optimizer.v.decoder.bias": np.zeros(3)}
    with pytest.raises(CheckpointError, match=r"optimizer\.v\.decoder\.bias has shape \(3,\), expected \(9,\)"):
        keys.read_moments(bad, "adam", ("m", "v"), shapes)
    tr = trained("numpy", "sgd", steps=0)
    with pytest.raises(CheckpointError, match="sgd optimizer keeps no moments"):
        tr.load_state_dict(good)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_missing_moments_start_at_zero(engine):
    """A state saved before the first update (torch.optim has no moments yet) still loads."""
    fresh = trained(engine, "adam", steps=0).state_dict()
    tr = trained(engine, "adam")
    tr.load_state_dict({k: v for k, v in fresh.items() if not k.startswith(keys.MOMENT_PREFIX)})
    assert tr.steps == 0
    assert not any(v.any() for k, v in tr.state_dict().items() if k.startswith(keys.MOMENT_PREFIX))
