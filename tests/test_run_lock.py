"""One run at a time in a run directory: a second training into it is refused at once, naming
who holds the lock, and the first finishes as if undisturbed; the lock of a SIGKILLed run is
taken over; an --overwrite run killed before its first checkpoint leaves the old run intact.

The first run is a real `rnnkit train` process that pauses after a given step until the test
creates a file (a hook around Trainer.step), so "the second run comes while the first trains"
does not depend on timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS
from faultkit import (
    SRC,
    assert_one_line_error,
    assert_unchanged,
    run_cli,
    run_cli_process,
    snapshot,
)
from rnnkit import checkpoint
from rnnkit.training import driver
from rnnkit.training.rundir import RunLock, lock_path, open_run_dir

ARGS = ["--cell", "lstm", "--hidden-dim", "8", "--embed-dim", "8", "--batch-size", "4", "--seq-len", "6",
        "--quiet", "--seed", "3", "--epochs", "2"]

PAUSED = r"""
import os, sys, time
from pathlib import Path
from rnnkit.numpy_engine import Trainer
ready, go, at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
real, calls = Trainer.step, [0]
def step(self, *a, **kw):
    out = real(self, *a, **kw)
    calls[0] += 1
    if calls[0] == at:
        ready.write_text(str(os.getpid()))
        while not go.exists():
            time.sleep(0.01)
    return out
Trainer.step = step
from rnnkit.cli import main
sys.exit(main(sys.argv[4:]))
"""


@pytest.fixture
def corpus(tmp_path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(TINY_CORPUS * 20) + "\n", encoding="utf-8")
    return p


@pytest.fixture
def paused(tmp_path):
    """Paused(at, argv), each killed at the end of the test if it still runs (a failed test
    must not leave it waiting)."""
    started = []

    def start(at: int, argv: list[str]) -> Paused:
        started.append(Paused(tmp_path, at, argv))
        return started[-1]

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.communicate()


class Paused:
    """`rnnkit train ARGV` in a subprocess that stops after step `at` until `resume()`."""

    def __init__(self, tmp_path: Path, at: int, argv: list[str]):
        self.ready, self.go = tmp_path / f"ready-{at}", tmp_path / f"go-{at}"
        env = {**os.environ, "PYTHONPATH": SRC}
        self.proc = subprocess.Popen([sys.executable, "-c", PAUSED, str(self.ready), str(self.go), str(at), *argv],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_paused(self) -> None:
        deadline = time.monotonic() + 300  # a guard against a hang, not a measurement
        while not self.ready.exists() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.ready.exists(), self.proc.communicate()[1][-2000:] if self.proc.poll() is not None else "no pause"

    def finish(self) -> tuple[int, str]:
        self.go.touch()
        _, err = self.proc.communicate(timeout=300)
        return self.proc.returncode, err


def same_weights(a: Path, b: Path) -> None:
    for name in ("model.safetensors", "trainer_state/model.safetensors", "trainer_state/optimizer.safetensors"):
        wa, wb = checkpoint.load_tensors(a / name), checkpoint.load_tensors(b / name)
        assert sorted(wa) == sorted(wb) and all(np.array_equal(wa[k], wb[k]) for k in wa), name


def rows(d: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock seconds."""
    lines = (d / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_run_is_refused_at_once_and_the_first_ends_as_if_alone(corpus, tmp_path, paused, overwrite):
    """The first run trains a new directory, or replaces an old run with --overwrite (paused
    after its first checkpoint, so after the swap: the lock holds across it)."""
    ref, out = tmp_path / "ref", tmp_path / "out"
    argv = ["train", str(corpus), *ARGS, "--checkpoint-every", "2"]
    assert run_cli_process([*argv, "--out", str(ref)]).returncode == 0
    if overwrite:
        assert run_cli_process([*argv, "--out", str(out), "--hidden-dim", "6"]).returncode == 0
    first = paused(5, [*argv, "--out", str(out), *(["--overwrite"] if overwrite else [])])
    first.wait_paused()
    before = snapshot(out)
    for extra in ([], ["--resume"], ["--overwrite"]):
        rc, out_text, err = run_cli([*argv, "--out", str(out), *extra])
        assert_one_line_error(rc, err, str(out), "another training run", f"pid {first.proc.pid}", "lock file")
        assert "corpus:" not in err and not out_text  # refused before reading anything
        assert_unchanged(out, before)
    rc, err = first.finish()
    assert rc == 0, err
    same_weights(out, ref)
    assert rows(out) == rows(ref)
    assert not lock_path(out).exists()


def test_the_lock_of_a_killed_run_is_taken_over(corpus, tmp_path, paused):
    out = tmp_path / "out"
    first = paused(5, ["train", str(corpus), *ARGS, "--checkpoint-every", "2", "--out", str(out)])
    first.wait_paused()
    first.proc.kill()
    first.proc.communicate()
    lock = lock_path(out)
    assert json.loads(lock.read_text())["pid"] == first.proc.pid  # left behind, but no longer held
    rc, _, err = run_cli(["train", str(corpus), *ARGS, "--checkpoint-every", "2", "--out", str(out), "--resume"])
    assert rc == 0, err
    assert "took over the lock" in err and f"pid {first.proc.pid}" in err
    assert json.loads((out / "trainer_state" / "state.json").read_text())["epoch"] == 2
    assert not lock.exists()


def test_an_overwrite_run_killed_before_its_first_checkpoint_leaves_the_old_run(corpus, tmp_path, paused):
    out = tmp_path / "out"
    assert run_cli_process(["train", str(corpus), *ARGS, "--out", str(out), "--epochs", "1"]).returncode == 0
    before = snapshot(out)
    first = paused(3, ["train", str(corpus), *ARGS, "--out", str(out), "--overwrite", "--hidden-dim", "6"])
    first.wait_paused()
    staging = out.with_name(f".{out.name}.new")
    assert (staging / "metrics.jsonl").is_file()  # the new run writes beside the old one
    first.proc.kill()
    first.proc.communicate()
    assert_unchanged(out, before)
    rc, _, err = run_cli(["train", str(corpus), *ARGS, "--out", str(out), "--resume"])  # the old run goes on
    assert rc == 0, err
    assert checkpoint.load(out).model.hidden_dim == 8
    assert not staging.exists() and not lock_path(out).exists()


def test_a_lock_held_in_this_process_refuses_a_run_before_it_writes(corpus, tmp_path):
    out = tmp_path / "out"
    held = RunLock.acquire(lock_path(out.resolve()), str(out))
    try:
        rc, _, err = run_cli(["train", str(corpus), *ARGS, "--out", str(out)])
        assert_one_line_error(rc, err, str(out), f"pid {os.getpid()}")
        assert not out.exists()
    finally:
        held.release()
    assert not lock_path(out.resolve()).exists()
    rc, _, err = run_cli(["train", str(corpus), *ARGS, "--out", str(out), "--epochs", "1"])
    assert rc == 0, err


def test_under_torchrun_only_rank_0_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert driver._launched_rank() == 1
    rundir = open_run_dir(tmp_path / "out", resume=False, overwrite=False, main=False)
    assert rundir.lock is None and rundir.begin() == tmp_path / "out"
    assert not lock_path(tmp_path / "out").exists()
    monkeypatch.setenv("RANK", "0")
    assert driver._launched_rank() == 0
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv("RANK", "3")  # not a torchrun group: a plain run
    assert driver._launched_rank() == 0
