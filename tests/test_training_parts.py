"""The training driver's parts on their own: the progress record against 0.1.0's state.json,
the one place of the stop conditions, the resume point's hidden-state arrays, and the torch
engine's distributed set-up in a plain process."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import has_torch
from rnnkit.config import TrainConfig
from rnnkit.training.driver import stop_condition
from rnnkit.training.progress import Progress
from rnnkit.training.resume import hidden_from_arrays, hidden_to_arrays

FIXTURE_STATE = Path(__file__).parent / "fixtures" / "v0.1" / "numpy" / "trainer_state" / "state.json"


def test_progress_reads_and_writes_the_keys_of_0_1_0s_state_json():
    saved = json.loads(FIXTURE_STATE.read_text(encoding="utf-8"))
    progress = Progress.from_dict(saved)
    assert (progress.step, progress.epoch, progress.batch, progress.tokens) == (20, 0, 20, 433)
    assert progress.best_loss == saved["best_loss"] and progress.epoch_nats == saved["epoch_nats"]
    written = progress.to_dict()
    assert written == {k: v for k, v in saved.items() if k not in ("schedule", "train")}
    assert list(written) == [k for k in saved if k not in ("schedule", "train")]  # the same order too


def test_progress_counts_steps_epochs_and_judges_evaluations():
    p = Progress()
    p.count_step(30.0, 10, 20)
    p.count_step(10.0, 10, 20)
    assert (p.step, p.batch, p.tokens, p.epoch_loss, p.epochs_done(4)) == (2, 2, 40, 2.0, 0.5)
    assert p.judge(3.0) and not p.judge(3.0) and not p.judge(4.0) and p.bad_evals == 2
    assert p.judge(2.5) and (p.best_loss, p.bad_evals) == (2.5, 0)
    p.next_epoch()
    assert (p.epoch, p.batch, p.epoch_loss, p.step, p.best_loss) == (1, 0, None, 2, 2.5)


def fake_run(seconds: float = 0.0, **progress) -> SimpleNamespace:
    return SimpleNamespace(cfg=None, progress=Progress(**progress), seconds=lambda: seconds)


@pytest.mark.parametrize("options,progress,seconds,expected", [
    ({"epochs": 2}, {"epoch": 1, "step": 10}, 0.0, None),
    ({"epochs": 2}, {"epoch": 2, "step": 20}, 0.0, "epochs"),
    ({"epochs": 2, "max_steps": 10}, {"epoch": 1, "step": 10}, 0.0, "max_steps"),
    ({"epochs": 2, "max_steps": 20}, {"epoch": 2, "step": 20}, 0.0, "max_steps"),  # both: max_steps says it
    ({"epochs": 2, "max_minutes": 1.0}, {"epoch": 0, "step": 3}, 59.9, None),
    ({"epochs": 2, "max_minutes": 1.0}, {"epoch": 0, "step": 3}, 60.0, "max_minutes"),
    ({"epochs": 2, "early_stop": 2}, {"epoch": 1, "bad_evals": 1}, 0.0, None),
    ({"epochs": 2, "early_stop": 2}, {"epoch": 1, "bad_evals": 2}, 0.0, "early_stop"),
    ({"epochs": 2, "early_stop": 2}, {"epoch": 2, "bad_evals": 2}, 0.0, "early_stop"),
])
def test_stop_conditions(options, progress, seconds, expected):
    run = fake_run(seconds, **progress)
    run.cfg = TrainConfig(**options)
    assert stop_condition(run) == expected


@pytest.mark.parametrize("layers", [[(3, 4)], [(2, 5), (2, 5)]])
@pytest.mark.parametrize("lstm", [False, True])
def test_hidden_arrays_round_trip_under_the_carry_prefix(layers, lstm):
    rng = np.random.default_rng(0)
    hidden = [(rng.normal(size=s), rng.normal(size=s)) if lstm else rng.normal(size=s) for s in layers]
    arrays = hidden_to_arrays(hidden)
    assert all(k.startswith("carry.l") for k in arrays) and len(arrays) == len(layers) * (2 if lstm else 1)
    back = hidden_from_arrays(arrays)
    for a, b in zip(back, hidden):
        for x, y in zip(a if lstm else (a,), b if lstm else (b,)):
            np.testing.assert_array_equal(x, y)


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_distributed_setup_in_a_plain_process(monkeypatch):
    from rnnkit.torch_engine import distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.setup("cpu") == (0, 1, "cpu")
    assert distributed.setup("auto") == (0, 1, "auto")  # one process: the engine resolves "auto"
    assert not distributed.is_initialized()
