"""The training driver (`rnnkit.training.driver.train`, `rnnkit train`): what it feeds the engine's
Trainer and what it decides from validation.

Every check compares the driver with a reference that does not go through the driver: a
stream/window loop written here, the engine's own `forward_backward`, scripted validation
losses with the expected decisions worked out by hand, or a forward pass over the saved
model. Each run is tiny (hidden 8-16, a few hundred tokens); time comes from an injected
clock, never from the wall.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TokenizerConfig, TrainConfig
from rnnkit.inference.evaluate import EvalResult
from rnnkit.numpy_engine import RNNLM as NumpyRNNLM
from rnnkit.numpy_engine import Trainer as NumpyTrainer
from rnnkit.training import driver, validation

# --------------------------------------------------------------------------- corpora

DETS = ["the", "a"]
ADJS = ["big", "small", "red", "old"]
NOUNS = ["cat", "dog", "bird", "fox", "man"]
VERBS = ["sat", "ran", "slept", "sang"]
PLACES = ["mat", "log", "tree", "hill"]


def grammar_sentences(n: int, seed: int) -> list[str]:
    """Lower-case alphabetic words only, so the tokenizer's output is just str.split()."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(DETS)] + ([rng.choice(ADJS)] if rng.random() < 0.5 else []) + [rng.choice(NOUNS)]
        words.append(rng.choice(VERBS))
        if rng.random() < 0.7:
            words += ["on", "the", rng.choice(PLACES)]
        out.append(" ".join(words))
    return out


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    """A training file and a validation file (the validation words all occur in training)."""
    train_lines = grammar_sentences(30, seed=1)
    valid_lines = grammar_sentences(6, seed=2)
    vocab = {w for s in train_lines for w in s.split()}
    valid_lines = [s for s in valid_lines if set(s.split()) <= vocab] or train_lines[:3]
    return write_lines(tmp_path / "train.txt", train_lines), write_lines(tmp_path / "valid.txt", valid_lines)


def vocab_ids(model_dir: Path) -> dict[str, int]:
    return {w: i for i, w in enumerate(json.loads((model_dir / "vocab.json").read_text(encoding="utf-8")))}


def ref_stream(lines: list[str], ids: dict[str, int]) -> np.ndarray:
    """`<s> w .. </s> <s> ...`, built here by hand (BOS = 1, EOS = 2)."""
    out: list[int] = []
    for s in lines:
        out += [1] + [ids[w] for w in s.split()] + [2]
    return np.array(out, dtype=np.int64)


def ref_windows(stream: np.ndarray, B: int, T: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The stream cut into B equal columns (remainder dropped), read T steps at a time."""
    L = len(stream) // B
    cols = np.stack([stream[b * L:(b + 1) * L] for b in range(B)], axis=1)  # (L, B)
    out = []
    t = 0
    while t < L - 1:
        n = min(T, L - 1 - t)
        x, y = cols[t:t + n], cols[t + 1:t + 1 + n]
        out.append((x, y, (y != 1).astype(np.float32)))
        t += n
    return out


def windows_per_epoch(train_file: Path, B: int, T: int) -> int:
    n = sum(len(s.split()) + 2 for s in train_file.read_text(encoding="utf-8").splitlines())
    return len(ref_windows(np.zeros(n, dtype=np.int64), B, T))


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def valid_rows(out: Path) -> list[dict]:
    return [r for r in metrics(out) if r["kind"] == "valid"]


def saved_extra(out: Path) -> dict:
    return json.loads((out / "config.json").read_text(encoding="utf-8"))["extra"]


def snap(state) -> list[np.ndarray] | None:
    """A hidden state (numpy or torch, per layer h or (h, c)) as a flat list of numpy copies."""
    if state is None:
        return None
    flat = []
    for layer in state:
        for a in (layer if isinstance(layer, (tuple, list)) else (layer,)):
            flat.append(a.detach().cpu().numpy().copy() if hasattr(a, "detach") else np.array(a, copy=True))
    return flat


def record_steps(monkeypatch, trainer_cls, *, after=None) -> list[dict]:
    """Wrap trainer_cls.step: record x, y, mask, hidden in/out, lr and the returned loss."""
    calls: list[dict] = []
    real = trainer_cls.step

    def step(self, x, y, mask=None, hidden=None):
        rec = {"x": np.array(x, copy=True), "y": np.array(y, copy=True),
               "mask": None if mask is None else np.array(mask, copy=True), "hidden_in": snap(hidden), "lr": self.lr}
        nats, count, new_hidden = real(self, x, y, mask, hidden)
        rec.update(hidden_out=snap(new_hidden), nats=nats, count=count)
        calls.append(rec)
        if after is not None:
            nats = after(len(calls), nats, count)
        return nats, count, new_hidden

    monkeypatch.setattr(trainer_cls, "step", step)
    return calls


def script_validation(monkeypatch, losses: list[float]) -> list[dict]:
    """Replace the driver's evaluation with a script of losses; capture the weights evaluated."""
    seen: list[dict] = []
    script = iter(losses)

    def fake(model, encoded, vocab, mode, batch_size=10, seq_len=128):
        seen.append({k: np.array(v, copy=True) for k, v in model.state_dict().items()})
        return EvalResult(next(script) * 100, 100)

    monkeypatch.setattr(validation, "evaluate_encoded", fake)
    return seen


def run_cli(capsys, *argv) -> int:
    rc = main(list(argv))
    _, err = capsys.readouterr()
    assert rc == 0, err
    return rc


SMALL = ["--cell", "gru", "--hidden", "8", "--embed", "8", "--quiet"]


def small_train(tmp_path, train_file, valid_file, name="out", clock=None, resume=False, **cfg):
    """The driver through its Python API with a tiny numpy GRU."""
    base = {"batch_size": 4, "seq_len": 6, "optimizer": "sgd", "lr": 0.5, "schedule": "constant", "epochs": 2}
    base.update(cfg)
    kw = {} if clock is None else {"clock": clock}
    return driver.train(str(train_file), tmp_path / name, valid=str(valid_file),
                        model={"cell": "gru", "hidden_dim": 8, "embed_dim": 8}, tokenizer=TokenizerConfig(),
                        config=TrainConfig(**base), resume=resume, progress=False, log=lambda m: None, **kw)


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


# --------------------------------------------------------------------------- 3. driver policy


def test_the_saved_model_is_the_best_evaluation_not_the_last_or_worst(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    losses = [3.0, 2.0, 2.5, 4.0]  # best is the 2nd; the 1st is neither best nor worst; the last is worst
    weights = script_validation(monkeypatch, losses)
    res = small_train(tmp_path, train_file, valid_file, epochs=4)
    assert len(weights) == 4 and [r["valid_loss"] for r in valid_rows(res.model_dir)] == losses
    assert res.valid.loss == 2.0
    extra = saved_extra(res.model_dir)
    assert extra["valid_loss"] == 2.0 and extra["step"] == 2 * res.steps // 4
    saved = checkpoint.load_tensors(res.model_dir / "model.safetensors")
    for k in saved:
        np.testing.assert_array_equal(saved[k], weights[1][k], err_msg=k)
    # the evaluated weights really differ from evaluation to evaluation
    for other in (0, 2, 3):
        assert any(not np.array_equal(saved[k], weights[other][k]) for k in saved), other
    assert rnnkit.load(res.model_dir).info["valid_loss"] == 2.0


def test_a_stop_evaluation_that_beats_the_best_keeps_its_model_through_resume(tmp_path, files, monkeypatch):
    """Stopped by --max-steps mid-epoch 2, the stop evaluation scores best of all (1.0) and is
    saved; it is not one of the run's evaluations, so best_loss (the plateau / early-stop
    record) stays at epoch 1's 3.0. Resumed, epochs 2 and 3 improve on that record (2.0, 1.5)
    and the lr is never cut, but neither beats the saved model: MODEL_DIR keeps the stop's
    weights. (A resumed run used to overwrite it with the worse epoch-2 model.)"""
    train_file, valid_file = files
    per_epoch = windows_per_epoch(train_file, B=4, T=6)
    weights = script_validation(monkeypatch, [3.0, 1.0, 2.0, 1.5])
    opts = {"epochs": 3, "schedule": "plateau", "lr": 0.1, "lr_decay": 0.5}
    first = small_train(tmp_path, train_file, valid_file, max_steps=per_epoch + 2, **opts)
    assert first.stopped == "max_steps" and first.valid.loss == 1.0
    state = json.loads((first.model_dir / "trainer_state" / "state.json").read_text())
    assert state["best_loss"] == 3.0 and state["bad_evals"] == 0

    res = small_train(tmp_path, train_file, valid_file, resume=True, **opts)
    assert res.stopped == "epochs" and res.steps == 3 * per_epoch
    assert [(r["reason"], r["valid_loss"]) for r in valid_rows(res.model_dir)] == [
        ("epoch", 3.0), ("stop", 1.0), ("epoch", 2.0), ("epoch", 1.5)]
    assert [r["lr"] for r in valid_rows(res.model_dir)] == pytest.approx([0.1] * 4)  # every epoch improved
    state = json.loads((res.model_dir / "trainer_state" / "state.json").read_text())
    assert state["best_loss"] == 1.5 and state["bad_evals"] == 0
    assert res.valid.loss == pytest.approx(1.0) and saved_extra(res.model_dir)["valid_loss"] == 1.0
    assert saved_extra(res.model_dir)["step"] == per_epoch + 2
    saved = checkpoint.load_tensors(res.model_dir / "model.safetensors")
    for k in saved:
        np.testing.assert_array_equal(saved[k], weights[1][k], err_msg=k)
    assert any(not np.array_equal(saved[k], weights[3][k]) for k in saved)


def per_epoch_lrs(calls: list[dict], epochs: int) -> list[list[float]]:
    n = len(calls) // epochs
    assert n * epochs == len(calls)
    return [[c["lr"] for c in calls[e * n:(e + 1) * n]] for e in range(epochs)]


def test_plateau_lowers_lr_exactly_after_evaluations_without_improvement(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    losses = [3.0, 2.0, 2.5, 2.4, 1.0, 1.5]
    script_validation(monkeypatch, losses)
    calls = record_steps(monkeypatch, NumpyTrainer)
    res = small_train(tmp_path, train_file, valid_file, epochs=6, schedule="plateau", lr=0.1, lr_decay=0.5)
    # by hand: improved = [T, T, F, F (2.4 > best 2.0), T, F] -> lr for epochs 1..6
    expected = [0.1, 0.1, 0.1, 0.05, 0.025, 0.025]
    for e, lrs in enumerate(per_epoch_lrs(calls, 6)):
        assert lrs == pytest.approx([expected[e]] * len(lrs)), f"epoch {e + 1}"
    assert [r["lr"] for r in valid_rows(res.model_dir)] == pytest.approx(expected)


def test_plateau_also_follows_step_evaluations(tmp_path, files, monkeypatch):
    """--eval-every evaluations drive the plateau schedule as epoch evaluations do."""
    train_file, valid_file = files
    per_epoch, n, epochs = windows_per_epoch(train_file, B=4, T=6), 4, 2
    losses = [3.0, 3.5, 2.0, 2.5, 2.6, 1.0, 0.9, 0.8, 0.7]
    script_validation(monkeypatch, losses)
    calls = record_steps(monkeypatch, NumpyTrainer)
    res = small_train(tmp_path, train_file, valid_file, epochs=epochs, schedule="plateau", lr=0.1, lr_decay=0.5,
                      eval_every=n)
    # a loop written here: evaluations after steps that are multiples of n (not at an epoch's end,
    # where the epoch evaluation happens), and at each epoch's end; lr halves after each one
    # that does not beat the best so far
    lr, best, k, expected_lr = 0.1, float("inf"), 0, []
    for step in range(1, epochs * per_epoch + 1):
        expected_lr.append(lr)
        if step % per_epoch == 0 or step % n == 0:
            if losses[k] < best:
                best = losses[k]
            else:
                lr *= 0.5
            k += 1
    assert len(valid_rows(res.model_dir)) == k and k >= 5
    assert [c["lr"] for c in calls] == pytest.approx(expected_lr)
    assert len(set(expected_lr)) >= 3


def test_halve_on_rise_lowers_lr_when_the_epochs_training_loss_rose(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    script_validation(monkeypatch, [3.0, 3.1, 3.2, 3.3, 3.4])  # validation only worsens: must not matter
    per_epoch = windows_per_epoch(train_file, B=4, T=6)
    train_losses = [2.0, 1.5, 1.8, 1.9, 1.0]  # epoch means; rises after epochs 3 and 4

    def scripted(n, nats, count):
        return train_losses[(n - 1) // per_epoch] * count

    calls = record_steps(monkeypatch, NumpyTrainer, after=scripted)
    res = small_train(tmp_path, train_file, valid_file, epochs=5, schedule="halve-on-rise", lr=0.1, lr_decay=0.5)
    expected = [0.1, 0.1, 0.1, 0.05, 0.025]
    assert len(calls) == 5 * per_epoch
    for e, lrs in enumerate(per_epoch_lrs(calls, 5)):
        assert lrs == pytest.approx([expected[e]] * len(lrs)), f"epoch {e + 1}"
    rows = valid_rows(res.model_dir)
    assert [r["train_loss"] for r in rows] == pytest.approx(train_losses)


@pytest.mark.parametrize("losses,patience,evals", [
    ([3.0, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0], 2, 3),
    ([3.0, 3.5, 2.0, 2.5, 2.6, 1.0, 0.5], 2, 5),  # an improvement resets the count
    ([3.0, 2.9, 2.8, 3.7, 3.8, 3.9, 4.0], 1, 4),
])
def test_early_stop_after_exactly_n_evaluations_without_improvement(tmp_path, files, monkeypatch, losses, patience,
                                                                    evals):
    train_file, valid_file = files
    script_validation(monkeypatch, losses)
    calls = record_steps(monkeypatch, NumpyTrainer)
    res = small_train(tmp_path, train_file, valid_file, epochs=7, early_stop=patience)
    rows = valid_rows(res.model_dir)
    assert res.stopped == "early_stop"
    assert len(rows) == evals and [r["valid_loss"] for r in rows] == losses[:evals]
    assert len(calls) == res.steps == evals * (len(calls) // evals)
    assert res.valid.loss == min(losses[:evals])


def test_early_stop_counts_step_evaluations_too(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    script_validation(monkeypatch, [3.0, 3.5, 3.6] + [9.0] * 50)
    calls = record_steps(monkeypatch, NumpyTrainer)
    res = small_train(tmp_path, train_file, valid_file, epochs=3, early_stop=2, eval_every=2)
    rows = valid_rows(res.model_dir)
    assert res.stopped == "early_stop" and [r["step"] for r in rows] == [2, 4, 6] and len(calls) == 6


def test_eval_every_evaluates_at_multiples_of_n_and_each_epoch(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    calls = record_steps(monkeypatch, NumpyTrainer)
    n = 3
    res = small_train(tmp_path, train_file, valid_file, epochs=2, eval_every=n)
    per_epoch = len(calls) // 2
    assert per_epoch % n != 0  # the schedule below has step evaluations in both epochs
    expected = []
    for step in range(1, 2 * per_epoch + 1):
        if step % per_epoch == 0:
            expected.append((step, "epoch"))
        elif step % n == 0:
            expected.append((step, "step"))
    rows = valid_rows(res.model_dir)
    assert [(r["step"], r["reason"]) for r in rows] == expected
    assert all(r["valid_loss"] > 0 for r in rows)


def test_eval_every_on_an_epoch_boundary_evaluates_once(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    calls = record_steps(monkeypatch, NumpyTrainer)
    probe = small_train(tmp_path, train_file, valid_file, name="probe", epochs=1)
    per_epoch = len(calls)
    res = small_train(tmp_path, train_file, valid_file, epochs=2, eval_every=per_epoch)
    assert [(r["step"], r["reason"]) for r in valid_rows(res.model_dir)] == [(per_epoch, "epoch"), (2 * per_epoch, "epoch")]
    assert probe.steps == per_epoch


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.now


@pytest.mark.parametrize("minutes,advance,stop_step", [(0.5, 7.0, 5), (1.0, 10.0, 6), (0.25, 20.0, 1)])
def test_max_minutes_stops_at_the_step_that_crosses_the_budget(tmp_path, files, monkeypatch, minutes, advance,
                                                               stop_step):
    """The clock moves only when a training step runs (`advance` seconds each): evaluation,
    saving and logging take no time, so the stop is exact."""
    train_file, valid_file = files
    clock = FakeClock()

    def tick(n, nats, count):
        clock.now += advance
        return nats

    calls = record_steps(monkeypatch, NumpyTrainer, after=tick)
    res = small_train(tmp_path, train_file, valid_file, epochs=5, clock=clock, max_minutes=minutes)
    # by hand: the first step k with k * advance >= minutes * 60
    assert res.stopped == "max_minutes"
    assert res.steps == len(calls) == stop_step
    assert res.seconds == pytest.approx(stop_step * advance)
    rows = valid_rows(res.model_dir)
    assert rows[-1]["reason"] == "stop" and rows[-1]["step"] == stop_step
    assert rows[-1]["seconds"] == pytest.approx(stop_step * advance)
    assert clock.calls > 0


def test_fake_clock_without_a_budget_runs_all_epochs(tmp_path, files, monkeypatch):
    train_file, valid_file = files
    clock = FakeClock()

    def tick(n, nats, count):
        clock.now += 3600.0
        return nats

    record_steps(monkeypatch, NumpyTrainer, after=tick)
    res = small_train(tmp_path, train_file, valid_file, epochs=2, clock=clock)
    assert res.stopped == "epochs" and res.seconds == pytest.approx(3600.0 * res.steps)
    # every time the driver writes down comes from the injected clock
    rows = metrics(res.model_dir)
    assert any(r["kind"] == "train" for r in rows) and any(r["kind"] == "valid" for r in rows)
    for r in rows:
        assert r["seconds"] == pytest.approx(3600.0 * r["step"]), r
    state = json.loads((res.model_dir / "trainer_state" / "state.json").read_text())
    assert state["seconds"] == pytest.approx(3600.0 * res.steps)


# --------------------------------------------------------------------------- 4. sentence mode


def sentence_run(tmp_path, capsys, monkeypatch, train_file, valid_file, name, seed, epochs=3):
    calls = record_steps(monkeypatch, NumpyTrainer)
    run_cli(capsys, "train", str(train_file), "--valid", str(valid_file), "--out", str(tmp_path / name), "--cell", "gru",
            "--hidden", "16", "--embed", "16", "--quiet", "--batching", "sentences", "--batch-size", "4",
            "--seq-len", "20", "--epochs", str(epochs), "--lr", "0.02", "--seed", str(seed), "--schedule", "constant")
    monkeypatch.undo()
    return calls


def decode_batch(x: np.ndarray, mask: np.ndarray, words: list[str]) -> list[str]:
    """The sentences of one padded batch (x = <s> ids, mask 1 up to and including </s>)."""
    out = []
    for b in range(x.shape[1]):
        n = int(mask[:, b].sum())  # <s> w1 .. wn: n inputs
        assert x[0, b] == 1
        out.append(" ".join(words[i] for i in x[1:n, b]))
    return out


def test_sentence_mode_trains_and_reshuffles_every_epoch_from_the_seed(tmp_path, capsys, monkeypatch):
    train_lines = grammar_sentences(32, seed=5)
    vocab = {w for s in train_lines for w in s.split()}
    valid_lines = [s for s in grammar_sentences(12, seed=6) if set(s.split()) <= vocab]
    train_file, valid_file = write_lines(tmp_path / "tr.txt", train_lines), write_lines(tmp_path / "va.txt", valid_lines)

    a = sentence_run(tmp_path, capsys, monkeypatch, train_file, valid_file, "a", seed=1)
    per_epoch = -(-len(train_lines) // 4)
    assert len(a) == 3 * per_epoch  # seq_len 20 > every sentence: one step per batch
    words = json.loads((tmp_path / "a" / "vocab.json").read_text())
    epochs = [[decode_batch(c["x"], c["mask"], words) for c in a[e * per_epoch:(e + 1) * per_epoch]] for e in range(3)]
    for e, batches in enumerate(epochs):
        assert sorted(s for b in batches for s in b) == sorted(train_lines), f"epoch {e + 1}: not every sentence once"
    for c in a:  # state reset per batch in sentence mode
        assert c["hidden_in"] is None or all(not s.any() for s in c["hidden_in"])
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2] and epochs[0] != epochs[2]

    rows = valid_rows(tmp_path / "a")
    assert len(rows) == 3 and rows[-1]["valid_loss"] < rows[0]["valid_loss"] < np.log(len(words))
    assert saved_extra(tmp_path / "a")["train"]["batching"] == "sentences"

    b = sentence_run(tmp_path, capsys, monkeypatch, train_file, valid_file, "b", seed=1)
    assert len(b) == len(a)
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca["x"], cb["x"])
    c = sentence_run(tmp_path, capsys, monkeypatch, train_file, valid_file, "c", seed=2, epochs=1)
    first_c = [decode_batch(s["x"], s["mask"], words) for s in c]
    assert first_c != epochs[0]


# --------------------------------------------------------------------------- 5. --valid FILE


def hand_stream_loss(model_dir: Path, lines: list[str]) -> tuple[float, int]:
    """Mean nats per target over the whole file as ONE stream column, by the engine's forward."""
    lm = rnnkit.load(model_dir)
    stream = ref_stream(lines, vocab_ids(model_dir))
    x, y = stream[:-1, None], stream[1:, None]
    mask = (y != 1).astype(np.float32)
    _, loss_sum, n, _ = lm.model.forward(x, y, mask)
    return loss_sum / n, n


def test_validation_comes_from_the_valid_file(tmp_path, capsys):
    train_lines = grammar_sentences(30, seed=1)
    vocab = {w for s in train_lines for w in s.split()}
    v1 = [s for s in grammar_sentences(10, seed=7) if set(s.split()) <= vocab][:5]
    v2 = ["the cat sat on the mat", "a dog ran", "the fox sang on the hill"] * 3  # different content and size
    train_file = write_lines(tmp_path / "train.txt", train_lines)
    f1, f2 = write_lines(tmp_path / "v1.txt", v1), write_lines(tmp_path / "v2.txt", v2)
    results = {}
    for name, f, lines in (("m1", f1, v1), ("m2", f2, v2)):
        out = tmp_path / name
        run_cli(capsys, "train", str(train_file), "--valid", str(f), "--out", str(out), *SMALL, "--batch-size", "4",
                "--seq-len", "6", "--epochs", "2", "--eval-batch-size", "1", "--lr", "0.02")
        extra = saved_extra(out)
        ref_loss, ref_n = hand_stream_loss(out, lines)
        assert extra["valid_tokens"] == ref_n == sum(len(s.split()) + 1 for s in lines)
        assert extra["valid_loss"] == pytest.approx(ref_loss, rel=1e-5)
        api = rnnkit.load(out).evaluate(lines, mode="stream", batch_size=1)
        assert api.count == ref_n and api.loss == pytest.approx(extra["valid_loss"], rel=1e-5)
        # training used the whole train file (nothing held out when --valid is given)
        windows = ref_windows(ref_stream(train_lines, vocab_ids(out)), 4, 6)
        assert metrics(out)[-1]["tokens"] == 2 * int(sum(m.sum() for _, _, m in windows))
        results[name] = extra["valid_loss"]
    assert results["m1"] != pytest.approx(results["m2"], rel=1e-3)
