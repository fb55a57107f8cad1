"""Runs repeat exactly: a run stopped and resumed with dropout on ends bit for bit like one that
was never stopped (both engines, through the CLI), and the vocabulary does not depend on
Python's string hashing (PYTHONHASHSEED) and is ordered count-descending, then token-ascending.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS, has_torch
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.engines import get_engine
from rnnkit.text import Vocab

needs_torch = pytest.mark.skipif(not has_torch(), reason="torch not installed")


@pytest.fixture
def corpus(tmp_path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(TINY_CORPUS * 12) + "\n", encoding="utf-8")
    return p


def train_args(corpus: Path, out: Path, engine: str, batching: str, *extra: str) -> list[str]:
    args = ["train", str(corpus), "--out", str(out), "--engine", engine, "--batching", batching,
            "--cell", "lstm", "--layers", "2", "--hidden", "8", "--embed", "8", "--batch-size", "4", "--seq-len", "6",
            "--dropout", "0.3", "--embed-dropout", "0.2", "--lr", "0.01", "--epochs", "2", "--seed", "3", "--quiet"]
    if engine == "torch":
        args += ["--device", "cpu"]
    return args + list(extra)


def run_ok(argv: list[str], capsys) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 0, err


def trainer_state(out: Path) -> dict:
    d = out / "trainer_state"
    st = json.loads((d / "state.json").read_text(encoding="utf-8"))
    for k in ("seconds", "train"):  # wall clock; the options (max_steps differs by design)
        st.pop(k)
    return {"model": (d / "model.safetensors").read_bytes(), "optimizer": (d / "optimizer.safetensors").read_bytes(),
            "model_arrays": checkpoint.load_tensors(d / "model.safetensors"),
            "optimizer_arrays": checkpoint.load_tensors(d / "optimizer.safetensors"), "state": st}


def assert_same_state(a: dict, b: dict) -> None:
    for part in ("model_arrays", "optimizer_arrays"):
        assert a[part].keys() == b[part].keys(), part
        for k in a[part]:
            assert a[part][k].dtype == b[part][k].dtype and np.array_equal(a[part][k], b[part][k]), f"{part}: {k} differs"
    assert a["model"] == b["model"] and a["optimizer"] == b["optimizer"]
    assert a["state"] == b["state"]


def weights_differ(a: dict, b: dict) -> bool:
    return any(not np.array_equal(a["model_arrays"][k], b["model_arrays"][k]) for k in a["model_arrays"])


def forget_rng(engine: str, monkeypatch) -> None:
    """Make Trainer.load_state_dict restore everything but the dropout RNG (as the bug would)."""
    Trainer = get_engine(engine).Trainer
    real = Trainer.load_state_dict

    def load_without_rng(self, d):
        if engine == "numpy":
            real(self, d)
            self.rng = np.random.default_rng(self.train.seed)  # as freshly constructed
        else:
            real(self, {k: v for k, v in d.items() if not k.startswith("rng.")})

    monkeypatch.setattr(Trainer, "load_state_dict", load_without_rng)


@pytest.fixture
def one_thread():
    """torch on one intra-op thread while the test runs (tiny models; a busy 2-core machine
    makes torch's thread pool spin); restored afterwards."""
    if not has_torch():
        yield
        return
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


# (engine, batching, stop after this many steps): in epoch 1, or in epoch 2 (stream: the carried
# state crosses the stop as well); the last flag: also show that forgetting the RNG is caught
CASES = [("numpy", "stream", 5, True), ("numpy", "stream", 30, False), ("numpy", "sentences", 20, False),
         pytest.param("torch", "stream", 30, True, marks=needs_torch)]


@pytest.mark.parametrize("engine,batching,stop,sensitivity", CASES)
def test_resume_with_dropout_is_bitwise_identical(engine, batching, stop, sensitivity, corpus, tmp_path, capsys,
                                                  monkeypatch, one_thread):
    """Stopped by --max-steps, then --resume: the same weights, optimizer moments, RNG state
    and position as the run that never stopped. Dropout draws fresh masks at every step, so
    this holds only when the dropout RNG is saved and restored."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    run_ok(train_args(corpus, ref, engine, batching), capsys)
    a = trainer_state(ref)
    assert a["state"]["epoch"] == 2 and a["state"]["step"] > stop
    run_ok(train_args(corpus, run, engine, batching, "--max-steps", str(stop)), capsys)
    assert trainer_state(run)["state"]["step"] == stop
    assert (stop > a["state"]["step"] // 2) == (trainer_state(run)["state"]["epoch"] == 1)  # where it stopped
    if sensitivity:
        shutil.copytree(run, tmp_path / "forgot")
    run_ok(train_args(corpus, run, engine, batching, "--resume"), capsys)
    assert_same_state(a, trainer_state(run))

    if sensitivity:  # the same resume with the RNG left at its fresh seed ends elsewhere
        forget_rng(engine, monkeypatch)
        run_ok(train_args(corpus, tmp_path / "forgot", engine, batching, "--resume"), capsys)
        assert weights_differ(a, trainer_state(tmp_path / "forgot")), "resuming without the dropout RNG gave the same weights"


def test_resume_after_max_steps_follows_the_cosine_plan_of_the_resumed_options(corpus, tmp_path, capsys):
    """--max-steps 5 plans cosine over 5 steps; resumed without it, the plan is the whole run's
    (max_steps may change on resume): from step 6 on the lr is the uninterrupted run's. (It
    used to keep the stopped run's plan and train on at lr 0.)"""
    ref, run = tmp_path / "ref", tmp_path / "run"
    run_ok(train_args(corpus, ref, "numpy", "stream", "--schedule", "cosine"), capsys)
    run_ok(train_args(corpus, run, "numpy", "stream", "--schedule", "cosine", "--max-steps", "5"), capsys)
    run_ok(train_args(corpus, run, "numpy", "stream", "--schedule", "cosine", "--resume"), capsys)

    def lrs(out: Path) -> dict[int, float]:
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
        return {r["step"]: r["lr"] for r in rows if r["kind"] == "train" and r["step"] > 5}

    a, b = lrs(ref), lrs(run)
    assert len(a) > 20 and a.keys() == b.keys()
    assert b == a


def script_validation(monkeypatch, loss_at) -> None:
    """Validation loss = loss_at(step), the step being the numpy Trainer's update count (the
    model at that step is the same in every run, so the score may be too)."""
    from rnnkit.inference.evaluate import EvalResult
    from rnnkit.numpy_engine import Trainer
    from rnnkit.training import validation

    now = {"step": 0}
    real_step = Trainer.step

    def step(self, *a, **kw):
        out = real_step(self, *a, **kw)
        now["step"] = self.steps
        return out

    monkeypatch.setattr(Trainer, "step", step)
    monkeypatch.setattr(validation, "evaluate_encoded", lambda *a, **kw: EvalResult(loss_at(now["step"]), 1))


def stop_and_resume(corpus: Path, tmp_path: Path, capsys, stop: int, *args: str) -> tuple[dict, dict]:
    ref, run = tmp_path / "ref", tmp_path / "run"
    run_ok(train_args(corpus, ref, "numpy", "stream", *args), capsys)
    run_ok(train_args(corpus, run, "numpy", "stream", *args, "--max-steps", str(stop)), capsys)
    run_ok(train_args(corpus, run, "numpy", "stream", *args, "--resume"), capsys)
    return trainer_state(ref), trainer_state(run)


def test_resume_after_max_steps_keeps_the_plateau_decisions(corpus, tmp_path, capsys, monkeypatch):
    """Validation losses scripted by step: improving at every epoch end (no lr decay in the
    run that never stops), but the model happens to score best exactly where the other run is
    stopped, mid-epoch 2. That stop is not an evaluation of the uninterrupted run, so after
    --resume epoch 2 must still count as improved and the lr stays where it was. (The stop's
    validation used to set best_loss, and the lr was cut twice.)"""
    stop = 30
    script_validation(monkeypatch, lambda step: 1.0 if step == stop else 5.0 - 0.01 * step)
    a, b = stop_and_resume(corpus, tmp_path, capsys, stop, "--schedule", "plateau", "--epochs", "3")
    per_epoch = a["state"]["step"] // 3
    assert per_epoch < stop < 2 * per_epoch
    assert a["state"]["schedule"]["base_lr"] == 0.01  # never decayed: every epoch improved
    assert b["state"]["schedule"]["base_lr"] == 0.01
    assert_same_state(a, b)


def test_resume_after_a_stop_on_an_eval_every_step_keeps_that_evaluation(corpus, tmp_path, capsys, monkeypatch):
    """--eval-every 10, stopped at step 30: the run that never stops validates there, finds no
    improvement and cuts the lr; the stopped and resumed run must do the same. (The stop used
    to break before that evaluation, and --resume never made it up.)"""
    stop = 30
    script_validation(monkeypatch, lambda step: 9.0 if step == stop else 5.0 - 0.01 * step)
    a, b = stop_and_resume(corpus, tmp_path, capsys, stop, "--schedule", "plateau", "--epochs", "3",
                           "--eval-every", "10")
    assert a["state"]["schedule"]["base_lr"] == 0.0025  # cut once, at step 30
    assert b["state"]["schedule"]["base_lr"] == 0.0025
    assert_same_state(a, b)


# ----------------------------------------------------------------- the vocabulary is deterministic
def tie_corpus() -> tuple[list[str], list[str]]:
    """Training lines whose words fall into few count classes (many ties), first seen in an
    order that is neither sorted nor reverse sorted; upper case and non-ASCII pin the order to
    code points. Returns (train lines, valid lines)."""
    rng = random.Random(7)
    words = [f"{c}{n}" for c in "qazXwsxEdcé" for n in range(6)] + ["Zebra", "apple", "Äpfel", "zoo", "ápice"]
    rng.shuffle(words)
    counts = {w: rng.choice([1, 2, 2, 3, 3, 3, 5]) for w in words}
    bag = [w for w in words for _ in range(counts[w])]
    rng.shuffle(bag)
    lines = [" ".join(bag[i:i + 7]) for i in range(0, len(bag), 7)]
    return lines, ["q0 a1 Zebra", "zoo x2 unseenword"]


def reference_order(lines: list[str], max_size: int = 0, min_count: int = 1) -> list[str]:
    counts = Counter(tok for line in lines for tok in line.split())
    words = sorted((t for t in counts if counts[t] >= min_count), key=lambda t: (-counts[t], t))
    if max_size:
        words = words[: max_size - 3]
    return ["<unk>", "<s>", "</s>", *words]


def test_vocab_build_order_matches_counter_reference():
    lines, _ = tie_corpus()
    toks = [line.split() for line in lines]
    ref = reference_order(lines)
    counts = Counter(t for line in toks for t in line)
    assert len(set(counts.values())) <= 4 and len(counts) > 50  # the ties are really there
    assert Vocab.build(toks).to_list() == ref
    assert Vocab.build(reversed(toks)).to_list() == ref  # input order does not matter
    # a cap and a minimum count cut inside groups of equal counts: the same tokens survive
    assert Vocab.build(toks, max_size=20).to_list() == reference_order(lines, max_size=20)
    assert Vocab.build(toks, min_count=2, max_size=30).to_list() == reference_order(lines, 30, 2)
    # specials in the text are not counted as words
    assert Vocab.build([["<s>", "b", "a", "</s>", "<unk>", "b"]]).to_list() == ["<unk>", "<s>", "</s>", "b", "a"]


def test_vocab_file_is_the_same_under_different_hash_seeds(tmp_path):
    lines, valid = tie_corpus()
    corpus, valid_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    valid_file.write_text("\n".join(valid) + "\n", encoding="utf-8")
    src = Path(__import__("rnnkit").__file__).resolve().parents[1]
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"run-hash{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
        cmd = [sys.executable, "-m", "rnnkit", "train", str(corpus), "--valid", str(valid_file), "--out", str(out),
               "--word-split", "whitespace", "--cell", "rnn", "--hidden", "4", "--embed", "4", "--batch-size", "2",
               "--seq-len", "4", "--epochs", "1", "--max-steps", "1", "--quiet", "--engine", "numpy"]
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        outs.append(out)
    a, b = (o / "vocab.json" for o in outs)
    assert a.read_bytes() == b.read_bytes()
    assert (outs[0] / "trainer_state" / "vocab.json").read_bytes() == a.read_bytes()
    assert json.loads(a.read_text(encoding="utf-8")) == reference_order(lines)  # from training lines only
    # the rest of the run does not depend on the hash seed either
    for name in ("model.safetensors", "optimizer.safetensors"):
        assert (outs[0] / "trainer_state" / name).read_bytes() == (outs[1] / "trainer_state" / name).read_bytes(), name
