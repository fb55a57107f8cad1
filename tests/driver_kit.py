"""What the training-driver tests (tests/test_driver_*.py) share: a small grammar corpus, the
`files` fixture (a training and a validation file), the stream/window cut written by hand,
readers of metrics.jsonl and config.json, recorders of the engine Trainer's steps, scripted
validation losses, and a tiny numpy-GRU run of the driver (`small_train`).

The fixture is used by name: a test module binds it with `files = driver_kit.files`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from rnnkit.cli import main
from rnnkit.config import TokenizerConfig, TrainConfig
from rnnkit.inference.evaluate import EvalResult
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
