"""The training driver's data: sentence mode (every sentence once per epoch, reshuffled from
the seed, state reset per batch) and --valid FILE (validation is that file, scored as one
stream by a forward pass over the saved model written here; nothing held out of training).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from driver_kit import (
    SMALL,
    grammar_sentences,
    metrics,
    record_steps,
    ref_stream,
    ref_windows,
    run_cli,
    saved_extra,
    valid_rows,
    vocab_ids,
    write_lines,
)
from rnnkit.numpy_engine import Trainer as NumpyTrainer

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
