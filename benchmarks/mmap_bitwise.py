"""Memory-mapped ids train bitwise like ids in memory, on PTB, and a SIGKILLed run resumes to the same bits.

Four runs of `rnnkit train ptb` (CPU, fixed seed, the same options), compared byte for byte on
model.safetensors and trainer_state/{model,optimizer}.safetensors:

1. mmap:    as rnnkit trains: windows read from the memory-mapped id file of the id cache;
2. memory:  the same ids copied into memory (`EncodedIds.in_memory()`, np.array of the map);
3. arrays:  int64 arrays per sentence re-encoded as the in-memory pipeline of rnnkit 0.1 held them
            (`EncodedIds.from_arrays`);
4. killed:  run 1's command in a subprocess, SIGKILLed once its saved step passes half the run,
            then `--resume`d to the end.

    python benchmarks/mmap_bitwise.py [--steps 400] [--engine torch] [--work /tmp/rnnkit-mmap]

Exit status 1 when any file differs. Results go to benchmarks/results/mmap_bitwise.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import write_results

ROOT = Path(__file__).resolve().parents[1]
FILES = ("model.safetensors", "trainer_state/model.safetensors", "trainer_state/optimizer.safetensors")


def options(steps: int, engine: str) -> list[str]:
    return ["--engine", engine, "--max-steps", str(steps), "--eval-every", str(steps // 4), "--hidden-dim", "200",
            "--embed-dim", "200", "--layers", "2", "--dropout", "0.2", "--seed", "7", "--quiet"]


def train_in_process(out: Path, steps: int, engine: str, held: str) -> None:
    """A run whose prepared corpus is swapped for an in-memory form (`held`) before training."""
    from rnnkit.cli import main
    from rnnkit.data import EncodedIds
    from rnnkit.training import setup

    real = setup.prepare_corpus

    def prepared(*a, **kw):
        data = real(*a, **kw)
        if held == "memory":
            data.train, data.valid = data.train.in_memory(), data.valid.in_memory()
        elif held == "arrays":
            data.train = EncodedIds.from_arrays(list(data.train), data.vocab)
            data.valid = EncodedIds.from_arrays(list(data.valid), data.vocab)
        return data

    setup.prepare_corpus = prepared
    try:
        rc = main(["train", "ptb", "--out", str(out), *options(steps, engine)])
    finally:
        setup.prepare_corpus = real
    if rc != 0:
        raise SystemExit(f"training ({held}) failed: rc {rc}")


def saved_step(out: Path) -> int:
    try:
        return json.loads((out / "trainer_state" / "state.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return -1


def killed_then_resumed(out: Path, steps: int, engine: str) -> int:
    """Run 1's command in a subprocess, SIGKILL after half the steps are saved, then --resume."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "rnnkit", "train", "ptb", "--out", str(out), *options(steps, engine)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and saved_step(out) < steps // 2:
        time.sleep(0.01)
    killed_at = saved_step(out)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run([*cmd, "--resume"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return killed_at


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="training steps per run (default %(default)s)")
    ap.add_argument("--engine", default="torch", choices=("numpy", "torch"), help="default %(default)s")
    ap.add_argument("--work", default="/tmp/rnnkit-mmap", help="run directories (default %(default)s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mmap_bitwise.json"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for held in ("mmap", "memory", "arrays"):
        train_in_process(work / held, args.steps, args.engine, held)
    killed_at = killed_then_resumed(work / "killed", args.steps, args.engine)
    same = {}
    for run in ("memory", "arrays", "killed"):
        same[run] = all((work / "mmap" / f).read_bytes() == (work / run / f).read_bytes() for f in FILES)
        print(f"{run:7s} vs mmap: {'bitwise identical' if same[run] else 'DIFFERENT'}"
              + (f" (killed after step {killed_at}, resumed)" if run == "killed" else ""))
    write_results(args.out, {"steps": args.steps, "engine": args.engine, "killed_at": killed_at, "identical": same})
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
