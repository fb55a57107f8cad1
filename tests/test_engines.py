"""The engine table (rnnkit.engines) and the one parameter check both engines share."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import has_torch
from rnnkit import checkpoint, engines, numpy_engine
from rnnkit.config import ENGINE_NAMES, ModelConfig, TokenizerConfig
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.params import check_params, init_params
from rnnkit.text import Vocab

CFG = ModelConfig(vocab_size=7, cell="lstm", embed_dim=4, hidden_dim=4, num_layers=2)
ENGINES = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(not has_torch(), reason="torch not installed"))]


def test_the_table_has_every_engine_name_in_order():
    assert tuple(engines.ENGINES) == ENGINE_NAMES


@pytest.mark.parametrize("name", ENGINES)
def test_get_engine_returns_the_package(name):
    mod = engines.get_engine(name)
    assert mod.__name__ == f"rnnkit.{name}_engine"
    assert callable(mod.RNNLM) and callable(mod.Trainer)
    assert isinstance(engines.build_model(name, CFG, device="cpu"), mod.RNNLM)


def test_unknown_engine_and_cuda_on_numpy_refused():
    with pytest.raises(ConfigError, match="--engine must be one of numpy, torch, got 'jax'"):
        engines.get_engine("jax")
    with pytest.raises(ConfigError, match="--device cuda needs --engine torch"):
        engines.build_model("numpy", CFG, device="cuda")


def bad_params() -> dict[str, dict[str, np.ndarray]]:
    good = init_params(CFG, 0)
    return {
        "missing": {k: v for k, v in good.items() if k != "decoder.bias"},
        "unexpected": {**good, "decoder.extra": np.zeros(3, np.float32)},
        "shape": {**good, "rnn.weight_hh_l1": np.zeros((16, 3), np.float32)},
    }


WANT = {"missing": "missing tensor(s) decoder.bias for a lstm model with 2 layer(s)",
        "unexpected": "unexpected tensor(s) decoder.extra for a lstm model with 2 layer(s)",
        "shape": "tensor rnn.weight_hh_l1 has shape (16, 3), the model config needs (16, 4)"}


@pytest.mark.parametrize("case", sorted(WANT))
@pytest.mark.parametrize("engine", ENGINES)
def test_engines_refuse_bad_params_with_the_shared_message(engine, case):
    params = bad_params()[case]
    with pytest.raises(CheckpointError) as e:
        engines.build_model(engine, CFG, params, device="cpu")
    assert str(e.value) == f"{engine}_engine.RNNLM parameters: {WANT[case]}"
    model = engines.build_model(engine, CFG, device="cpu")
    with pytest.raises(CheckpointError, match=f"^{engine}_engine.RNNLM parameters: "):
        model.load_state_dict(params)


@pytest.mark.parametrize("case", sorted(WANT))
def test_checkpoint_save_refuses_with_the_shared_message(tmp_path, case):
    vocab = Vocab(["<unk>", "<s>", "</s>", "a", "b", "c", "d"])
    with pytest.raises(CheckpointError) as e:
        checkpoint.save(tmp_path / "m", CFG, TokenizerConfig(), vocab, bad_params()[case])
    assert str(e.value) == f"{tmp_path / 'm'} (not saved): {WANT[case]}"
    assert not (tmp_path / "m").exists()


def test_dtype_and_finite_only_when_asked():
    params = init_params(CFG, 0, np.float64)
    params["decoder.bias"][0] = np.inf
    check_params(params, CFG, "here")  # engines take any float dtype, and inf (training finds it)
    numpy_engine.RNNLM(CFG, params)
    with pytest.raises(CheckpointError, match=r"^here: tensor embedding.weight is float64, expected float32$"):
        check_params(params, CFG, "here", dtype=np.float32)
    with pytest.raises(CheckpointError, match=r"^here: tensor decoder.bias has non-finite values \(NaN or Inf\)$"):
        check_params(params, CFG, "here", finite=True)
