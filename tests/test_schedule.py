"""Learning-rate schedules and the batch-size scaling rule."""

from __future__ import annotations

import math

import pytest

from rnnkit.config import TrainConfig
from rnnkit.training.schedule import Schedule, scaled_lr


def test_cosine_with_warmup():
    s = Schedule.from_config(TrainConfig(schedule="cosine", lr=1.0, warmup_steps=10), total_steps=110)
    assert s.lr_at(0) == pytest.approx(0.1) and s.lr_at(9) == pytest.approx(1.0)
    assert s.lr_at(10) == pytest.approx(1.0)
    assert s.lr_at(60) == pytest.approx(0.5)  # half way through the decay
    assert s.lr_at(110) == pytest.approx(0.0, abs=1e-12)


def test_plateau_and_halve_on_rise():
    p = Schedule.from_config(TrainConfig(schedule="plateau", lr=1.0, lr_decay=0.25), 100)
    assert not p.after_eval(improved=True) and p.lr_at(5) == 1.0
    assert p.after_eval(improved=False) and p.lr_at(5) == 0.25
    h = Schedule.from_config(TrainConfig(schedule="halve-on-rise", lr=0.005, lr_decay=0.5), 100)
    assert not h.after_epoch(5.0) and not h.after_epoch(4.0)
    assert h.after_epoch(4.5) and h.lr_at(0) == pytest.approx(0.0025)  # the tutorial's rule
    assert Schedule.from_dict(h.to_dict()) == h


def test_lr_scaling_rule():
    base = TrainConfig(lr=0.1, batch_size=32, lr_base_batch=32)
    assert scaled_lr(base) == pytest.approx(0.1)
    big = TrainConfig(lr=0.1, batch_size=128, lr_base_batch=32, lr_scaling="linear")
    assert scaled_lr(big) == pytest.approx(0.4) and scaled_lr(big, world_size=2) == pytest.approx(0.8)
    sq = TrainConfig(lr=0.1, batch_size=128, lr_base_batch=32, lr_scaling="sqrt")
    assert scaled_lr(sq) == pytest.approx(0.1 * math.sqrt(4))
    assert Schedule.from_config(big, 10, world_size=2).lr_at(5) == pytest.approx(0.8)
