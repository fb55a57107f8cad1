"""The training driver in stream mode: what it feeds the engine's Trainer, window by window.

The hidden state is carried from each window to the next and reset at each epoch's start
(checked against windows cut here by hand and a loop driving the Trainer directly, numpy and
torch), and --bptt-truncate reaches the engine unchanged (the numpy Trainer's step is SGD on
forward_backward with the same truncation). Each run is tiny (hidden 8, a few hundred tokens).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import driver_kit
from driver_kit import (
    SMALL,
    record_steps,
    ref_stream,
    ref_windows,
    run_cli,
    saved_extra,
    small_train,
    vocab_ids,
)
from rnnkit import checkpoint
from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.numpy_engine import RNNLM as NumpyRNNLM
from rnnkit.numpy_engine import Trainer as NumpyTrainer
from rnnkit.training import driver

files = driver_kit.files  # the kit's fixture, found by pytest under this name


# --------------------------------------------------------------------------- 1. stream state carry


def check_stream_carry(calls, windows, epochs):
    """Windows are the hand-cut ones in order, every epoch; the state is carried from each step
    to the next and is zeros (or None) exactly at the first window of an epoch."""
    assert len(calls) == epochs * len(windows)
    for i, c in enumerate(calls):
        x, y, m = windows[i % len(windows)]
        np.testing.assert_array_equal(c["x"], x, err_msg=f"step {i + 1}: x")
        np.testing.assert_array_equal(c["y"], y, err_msg=f"step {i + 1}: y")
        np.testing.assert_array_equal(np.asarray(c["mask"], dtype=np.float32), m, err_msg=f"step {i + 1}: mask")
        if i % len(windows) == 0:
            assert c["hidden_in"] is None or all(not a.any() for a in c["hidden_in"]), f"step {i + 1}: not reset at epoch start"
        else:
            prev = calls[i - 1]["hidden_out"]
            assert c["hidden_in"] is not None, f"step {i + 1}: state not carried (None passed)"
            assert all(a.any() for a in prev), "the carried state should be non-zero"
            assert len(c["hidden_in"]) == len(prev)
            for a, b in zip(c["hidden_in"], prev):
                assert np.array_equal(a, b), f"step {i + 1}: state in is not the previous window's final state"


def test_stream_mode_carries_state_across_windows_numpy(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    calls = record_steps(monkeypatch, NumpyTrainer)
    res = small_train(tmp_path, train_file, valid_file)
    out = res.model_dir
    windows = ref_windows(ref_stream(train_file.read_text().splitlines(), vocab_ids(out)), B=4, T=6)
    assert len(windows) > 5
    check_stream_carry(calls, windows, 2)
    assert res.steps == 2 * len(windows) and res.stopped == "epochs"

    # a loop written here, driving the engine's Trainer directly, ends at the same weights
    saved = json.loads((out / "config.json").read_text())["model"]
    lm = NumpyRNNLM(ModelConfig.from_dict(saved), seed=0, dtype=np.float32)
    cfg = TrainConfig(batch_size=4, seq_len=6, optimizer="sgd", lr=0.5, schedule="constant", epochs=2)
    tr = NumpyTrainer(lm, cfg)
    monkeypatch.undo()
    for _ in range(2):
        state = lm.init_hidden(4)
        for x, y, m in windows:
            _, _, state = tr.step(x, y, m, state)
    final = checkpoint.load_tensors(out / "trainer_state" / "model.safetensors")
    for k, v in lm.state_dict().items():
        np.testing.assert_array_equal(final[k], v, err_msg=k)


def test_stream_mode_carries_state_across_windows_torch(tmp_path, files, monkeypatch):
    torch = pytest.importorskip("torch")
    from rnnkit.engines import build_model
    from rnnkit.torch_engine import Trainer as TorchTrainer

    train_file, valid_file = files
    calls = record_steps(monkeypatch, TorchTrainer)
    cfg = {"batch_size": 4, "seq_len": 6, "optimizer": "sgd", "lr": 0.5, "schedule": "constant", "epochs": 2,
           "engine": "torch", "device": "cpu"}
    res = driver.train(str(train_file), tmp_path / "t", valid=str(valid_file),
                          model={"cell": "lstm", "hidden_dim": 8, "embed_dim": 8}, config=TrainConfig(**cfg),
                          progress=False, log=lambda m: None)
    out = res.model_dir
    windows = ref_windows(ref_stream(train_file.read_text().splitlines(), vocab_ids(out)), B=4, T=6)
    check_stream_carry(calls, windows, 2)

    monkeypatch.undo()
    saved = json.loads((out / "config.json").read_text())["model"]
    lm = build_model("torch", ModelConfig.from_dict(saved), None, seed=0, device="cpu")
    tr = TorchTrainer(lm, TrainConfig(**cfg))
    for _ in range(2):
        state = lm.init_hidden(4)
        for x, y, m in windows:
            _, _, state = tr.step(x, y, m, state)
    final = checkpoint.load_tensors(out / "trainer_state" / "model.safetensors")
    for k, v in lm.state_dict().items():
        np.testing.assert_allclose(final[k], v, rtol=1e-6, atol=1e-7, err_msg=k)
    assert torch.is_tensor(lm.init_hidden(1)[0][0])


# --------------------------------------------------------------------------- 2. bptt truncation


@pytest.mark.parametrize("k", range(6))
def test_numpy_trainer_step_is_sgd_on_forward_backward_with_the_same_truncation(k):
    cfg = ModelConfig(vocab_size=11, cell="gru", embed_dim=6, hidden_dim=8, num_layers=2)
    rng = np.random.default_rng(3)
    T, B = 9, 3
    x, y = rng.integers(0, 11, (T, B)), rng.integers(0, 11, (T, B))
    mask = np.ones((T, B))
    mask[6:, 1] = 0
    state = [rng.normal(0, 0.5, (B, 8)) for _ in range(2)]
    ref = NumpyRNNLM(cfg, dtype=np.float64, seed=4)
    p0 = {n: v.copy() for n, v in ref.state_dict().items()}
    loss, n, grads, st_ref = ref.forward_backward(x, y, mask, [s.copy() for s in state], bptt_truncate=k)
    # the truncation really changes the gradient, so k and k + 1 are told apart
    _, _, grads_next, _ = ref.forward_backward(x, y, mask, [s.copy() for s in state], bptt_truncate=k + 1)
    assert not np.allclose(grads["rnn.weight_hh_l0"], grads_next["rnn.weight_hh_l0"])

    model = NumpyRNNLM(cfg, p0, dtype=np.float64)
    tr = NumpyTrainer(model, TrainConfig(optimizer="sgd", lr=1.0, clip=0.0, bptt_truncate=k))
    loss2, n2, st = tr.step(x, y, mask, [s.copy() for s in state])
    assert loss2 == pytest.approx(loss, rel=1e-13) and n2 == n
    for name, before in p0.items():
        np.testing.assert_allclose(model.params[name], before - grads[name] / n, rtol=1e-12, atol=1e-14, err_msg=name)
    for a, b in zip(st, st_ref):
        np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("k", [0, 3])
def test_bptt_truncate_flag_reaches_the_engine_unchanged(tmp_path, files, capsys, monkeypatch, k):
    train_file, valid_file = files
    seen = []
    real = NumpyRNNLM.forward_backward

    def fb(self, *a, **kw):
        seen.append(kw["bptt_truncate"] if "bptt_truncate" in kw else (a[4] if len(a) > 4 else 0))
        return real(self, *a, **kw)

    monkeypatch.setattr(NumpyRNNLM, "forward_backward", fb)
    run_cli(capsys, "train", str(train_file), "--valid", str(valid_file), "--out", str(tmp_path / "m"), *SMALL,
            "--batch-size", "4", "--seq-len", "8", "--max-steps", "3", "--bptt-truncate", str(k))
    assert seen == [k, k, k]
    assert saved_extra(tmp_path / "m")["train"]["bptt_truncate"] == k
