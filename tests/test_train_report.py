"""What `rnnkit train` shows while it runs: a live bar on a terminal; elsewhere plain lines every
~5% of an epoch and the evaluation lines, without a carriage return (a log file stays small)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import TINY_CORPUS
from rnnkit.training.progress import Progress
from rnnkit.training.report import Bar, Display, Lines, make_display

LINE = re.compile(r"^step ([\d,]+) \(epoch (\d+\.\d\d)/3\): loss \d+\.\d{3} ppl [\d,.]+, [\d,]+ tok/s$")


def test_train_with_stderr_in_a_file_writes_plain_lines(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 40) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    log = tmp_path / "train.log"
    cmd = [sys.executable, "-m", "rnnkit", "train", str(corpus), "--out", str(tmp_path / "run"), "--engine", "numpy",
           "--cell", "rnn", "--hidden", "4", "--embed", "4", "--batch-size", "2", "--seq-len", "4", "--epochs", "3",
           "--eval-every", "100"]
    with open(log, "wb") as err:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, timeout=300, check=False)
    text = log.read_bytes().decode("utf-8")
    assert proc.returncode == 0, text[-2000:]
    steps = int(re.search(r"done \(epochs\): ([\d,]+) steps", proc.stdout.decode()).group(1).replace(",", ""))
    assert steps >= 300
    assert "\r" not in text
    lines = text.splitlines()
    progress = [m for m in map(LINE.match, lines) if m]
    evaluations = [line for line in lines if line.startswith("valid at step ")]
    assert 18 <= len(progress) <= 21  # about every 5% of the run (3 epochs)
    assert [float(m.group(2)) for m in progress] == sorted(float(m.group(2)) for m in progress)
    assert len(evaluations) == 3 + steps // 100 - (steps % 100 == 0)  # each epoch, and every 100 steps
    assert len(lines) == 1 + len(progress) + len(evaluations)  # the corpus line, and nothing else
    assert len(text) < 100 * len(lines) < 12_000


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_display(display: Display, steps_per_epoch: int = 40, epochs: int = 2) -> None:
    progress = Progress()
    display.start(progress, steps_per_epoch, epochs)
    for _ in range(steps_per_epoch * epochs):
        progress.count_step(nats=30.0, count=10, tokens=10)
        display.update(progress)
        if progress.batch == steps_per_epoch:
            display.write("valid at ...")
            progress.next_epoch()
    display.close()


def test_a_terminal_gets_the_bar_anything_else_the_lines():
    clock = iter(range(10_000)).__next__
    tty, log, quiet = Terminal(), io.StringIO(), io.StringIO()
    displays = [make_display(True, clock, tty), make_display(True, clock, log), make_display(False, clock, quiet)]
    assert [type(d) for d in displays] == [Bar, Lines, Display]
    for d in displays:
        run_display(d)
    assert "\r" in tty.getvalue() and "epoch 2/2" in tty.getvalue() and "valid at ..." in tty.getvalue()
    lines = log.getvalue().splitlines()
    assert len(lines) == 20 + 2 and "\r" not in log.getvalue()  # every 5% of the 80 steps, and the messages
    assert lines[0] == "step 4 (epoch 0.10/2): loss 3.000 ppl 20.1, 10 tok/s"  # 40 tokens in 4 clock ticks
    assert quiet.getvalue() == "valid at ...\nvalid at ...\n"


def test_lines_follow_the_planned_run_not_the_epoch():
    """A line every 5% of --max-steps when it is set (a 60-epoch demo or a 1/10-epoch run alike)."""
    clock = iter(range(10_000)).__next__
    for steps_per_epoch, epochs, max_steps in ((5, 60, 0), (1000, 1, 100)):
        log = io.StringIO()
        display = make_display(True, clock, log)
        progress = Progress()
        display.start(progress, steps_per_epoch, epochs, max_steps)
        for _ in range(max_steps or steps_per_epoch * epochs):
            progress.count_step(nats=30.0, count=10, tokens=10)
            display.update(progress)
            if progress.batch == steps_per_epoch:
                progress.next_epoch()
        assert len(log.getvalue().splitlines()) == 20, (steps_per_epoch, epochs, max_steps)
