"""The training driver's decisions from validation: the best model kept, the plateau and
halve-on-rise schedules, early stopping, --eval-every and --max-minutes.

Validation losses are scripted and the expected decisions worked out by hand; time comes
from an injected clock, never from the wall. Each run is tiny (numpy GRU, hidden 8).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import driver_kit
import rnnkit
from driver_kit import (
    metrics,
    record_steps,
    saved_extra,
    script_validation,
    small_train,
    valid_rows,
    windows_per_epoch,
)
from rnnkit import checkpoint
from rnnkit.numpy_engine import Trainer as NumpyTrainer

files = driver_kit.files  # the kit's fixture, found by pytest under this name


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
