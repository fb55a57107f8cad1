"""Training survives what real runs meet: a NaN mid-run, and SIGKILL at any moment."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.numpy_engine import RNNLM

ARGS = ["--cell", "lstm", "--hidden", "16", "--embed", "16", "--batch-size", "4", "--seq-len", "6", "--quiet",
        "--lr", "0.01", "--checkpoint-every", "2", "--seed", "3"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(TINY_CORPUS * 40) + "\n", encoding="utf-8")
    return p


def snapshot(d: Path) -> dict[str, bytes]:
    files = [d / "model.safetensors", *sorted((d / "trainer_state").iterdir())]
    return {str(f.relative_to(d)): f.read_bytes() for f in files}


def test_nan_stops_before_the_update_and_disk_is_unchanged(corpus, tmp_path, capsys, monkeypatch):
    ref = tmp_path / "ref"
    assert main(["train", str(corpus), "--out", str(ref), "--epochs", "1", *ARGS]) == 0
    steps_per_epoch = max(r["step"] for r in map(eval_json, (ref / "metrics.jsonl").read_text().splitlines()))
    real = RNNLM.forward_backward
    calls = {"n": 0}

    def poisoned(self, *a, **kw):
        loss, count, grads, state = real(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 3:  # in the second epoch, after a checkpoint
            grads["rnn.weight_hh_l0"][0, 0] = np.nan
        return loss, count, grads, state

    monkeypatch.setattr(RNNLM, "forward_backward", poisoned)
    out = tmp_path / "run"
    argv = ["train", str(corpus), "--out", str(out), "--epochs", "3", *ARGS[:-4], "--checkpoint-every", "0", "--seed", "3"]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "rnn.weight_hh_l0" in err and "nan" in err.lower() and f"step {steps_per_epoch + 3}" in err
    # what is on disk is exactly what the first epoch left: the poisoned step never reached it
    a, b = snapshot(out), snapshot(ref)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith("state.json"):  # wall-clock seconds and options differ; the position must not
            assert eval_json(a[k])["step"] == eval_json(b[k])["step"] == steps_per_epoch
        else:
            assert a[k] == b[k], k
    for v in checkpoint.load(out).params.values():
        assert np.isfinite(v).all()


def eval_json(line: str) -> dict:
    import json

    return json.loads(line)


def saved_step(d: Path) -> int:
    """The step of the last complete checkpoint in run directory d (-1 if none yet)."""
    try:
        return eval_json((d / "trainer_state" / "state.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def test_sigkill_at_random_points_then_resume_is_bitwise_identical(corpus, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "rnnkit", "train", str(corpus), "--epochs", "6", *ARGS]
    ref = tmp_path / "ref"
    subprocess.run([*cmd, "--out", str(ref)], env=env, check=True, capture_output=True, timeout=300)
    total = saved_step(ref)
    assert total >= 20, f"only {total} steps; the run is too short to test"

    # Kill points follow the run's progress, not the wall clock (a fast or slow machine lands
    # them all the same): once the saved step passes a random target, wait a random few
    # milliseconds -- often mid-step, sometimes mid-write -- and SIGKILL.
    out = tmp_path / "killed"
    rng = random.Random(1234)
    targets = sorted(rng.sample(range(1, int(total * 0.8)), 3))
    kills = 0
    for target in targets:
        proc = subprocess.Popen([*cmd, "--out", str(out), "--resume"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        while proc.poll() is None and saved_step(out) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read().decode()[-2000:]
    proc = subprocess.run([*cmd, "--out", str(out), "--resume"], env=env, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert kills >= 2, f"only {kills} kill(s) landed before the run ended"
    a, b = snapshot(ref), snapshot(out)
    assert a.keys() == b.keys()
    for k in a:
        if k.endswith("state.json"):
            continue  # holds wall-clock seconds
        assert a[k] == b[k], f"{k} differs after {kills} kill(s)"
