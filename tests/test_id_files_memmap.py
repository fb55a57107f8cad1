"""Training and evaluation read the memory-mapped id file window by window: training on the map
is bitwise training on the same ids held in memory, and neither copies the stream whole
(tracemalloc peaks far below an int64 copy), nor leaves a whole id file resident once read.

Every check compares with a reference that does not go through rnnkit.data.encode.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import id_files_kit
from id_files_kit import WORDS, random_lines, write
from rnnkit import checkpoint
from rnnkit.config import TrainConfig
from rnnkit.data import EncodedIds, StreamBatcher
from rnnkit.inference.evaluate import evaluate_stream
from rnnkit.text import Vocab
from rnnkit.training import driver, setup

# the kit's fixture (autouse: every test here gets an id cache of its own, RNNKIT_CACHE)
cache = id_files_kit.cache


# --------------------------------------------------------------------------- training reads the memory map


def grammar_lines(n: int, seed: int) -> list[str]:
    return random_lines(n, seed, words=WORDS[:10])


@pytest.mark.parametrize("batching", ["stream", "sentences"])
def test_training_on_the_memory_map_is_bitwise_training_on_ids_in_memory(tmp_path, monkeypatch, batching):
    """The same run three times: from the memory-mapped id file, from an in-memory copy of it
    (np.array), and from int64 arrays per sentence as the in-memory pipeline held them."""
    path = write(tmp_path / "train.txt", grammar_lines(60, seed=7))
    cfg = {"batch_size": 4, "seq_len": 5, "epochs": 2, "batching": batching, "lr": 0.01}
    real = setup.prepare_corpus
    kinds = []

    def prepared(*a, held: str, **kw):
        data = real(*a, **kw)
        kinds.append(type(data.train.stream))
        if held == "copy":
            data.train, data.valid = data.train.in_memory(), data.valid.in_memory()
        elif held == "arrays":
            data.train = EncodedIds.from_arrays(list(data.train), data.vocab)
            data.valid = EncodedIds.from_arrays(list(data.valid), data.vocab)
        return data

    states = []
    for held in ("mmap", "copy", "arrays"):
        monkeypatch.setattr(setup, "prepare_corpus", lambda *a, held=held, **kw: prepared(*a, held=held, **kw))
        res = driver.train(str(path), tmp_path / held, model={"cell": "lstm", "hidden_dim": 8, "embed_dim": 8, "dropout": 0.2},
                           config=TrainConfig(**cfg), progress=False, log=lambda m: None)
        d = res.model_dir / "trainer_state"
        states.append(((d / "model.safetensors").read_bytes(), (d / "optimizer.safetensors").read_bytes(),
                       res.valid.nats, res.unigram.nats))
    assert kinds == [np.memmap] * 3
    assert states[0] == states[1] == states[2]
    start = checkpoint.load_tensors(tmp_path / "mmap" / "trainer_state" / "model.safetensors")
    assert all(np.isfinite(v).all() for v in start.values())


def test_stream_windows_are_gathered_per_window_not_copied(tmp_path):
    """A 1.5M-token memory map read through a whole epoch: the windows of the columns cut by
    hand, and no allocation anywhere near an int64 (12 MB) or transposed copy of the stream."""
    n, B, T = 1_500_000, 8, 35
    ids = np.random.default_rng(8).integers(1, 500, n).astype(np.uint16)
    ids.tofile(tmp_path / "ids.bin")
    mm = np.memmap(tmp_path / "ids.bin", dtype=np.uint16, mode="r")
    L = n // B
    cols = ids[:B * L].reshape(B, L).T.astype(np.int64)  # (L, B): column b is ids[b*L:(b+1)*L]
    batcher = StreamBatcher(mm, B, T)
    tracemalloc.start()
    try:
        for i, (x, y, m) in enumerate(batcher.windows()):
            if i % 997 == 0 or i == len(batcher) - 1:
                t = min(T, L - 1 - i * T)
                assert x.dtype == np.int64 and np.array_equal(x, cols[i * T:i * T + t])
                assert np.array_equal(y, cols[i * T + 1:i * T + 1 + t]) and np.array_equal(m, y != 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert i + 1 == len(batcher) == -(-(L - 1) // T)
    assert peak < 200_000, peak


class CountingModel:
    """Stands in for a model in evaluate_stream: ln p = -1 per target; records the window shapes."""

    def __init__(self):
        self.shapes = []

    def init_hidden(self, batch_size):
        return None

    def token_logprobs(self, x, y, hidden=None, mask=None):
        self.shapes.append(x.shape)
        return np.where(mask, -1.0, 0.0), hidden


def test_evaluation_reads_the_memory_map_window_by_window(tmp_path):
    n = 1_000_000
    ids = np.random.default_rng(9).integers(1, 300, n).astype(np.uint16)
    ids.tofile(tmp_path / "ids.bin")
    mm = np.memmap(tmp_path / "ids.bin", dtype=np.uint16, mode="r")
    model = CountingModel()
    tracemalloc.start()
    try:
        res = evaluate_stream(model, mm, Vocab(["<unk>", "<s>", "</s>"]), batch_size=10, seq_len=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    targets = int(np.count_nonzero(ids[1:] != 1))
    assert (res.nats, res.count) == (targets, targets)
    assert max(model.shapes) == (64, 10) and peak < 200_000, peak


def _resident_kb(path: Path) -> int:
    """Resident kB of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("reader", ["train", "eval"])
def test_reading_a_whole_id_file_does_not_keep_it_resident(tmp_path, reader):
    """Pages of the memory map count as the process's memory once read: a pass over a 16 MB id
    file (training windows, or evaluation) must not leave it resident (release_pages). Two
    columns: the kernel may map a large folio (up to 2 MB) around each column's position, so
    what stays resident is bounded by the columns, not by the file."""
    from rnnkit.inference.evaluate import stream_windows

    n = 8_000_000
    path = tmp_path / "ids.bin"
    np.random.default_rng(0).integers(1, 500, n).astype(np.uint16).tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    windows = StreamBatcher(mm, 2, 500).windows() if reader == "train" else \
        stream_windows(mm, Vocab.build([["a"]]), 2, 500)
    seen = sum(int(x.shape[0]) * int(x.shape[1]) for x, _, _ in windows)
    assert seen >= n - 2 * 501  # the whole file was read
    assert _resident_kb(path) < 0.25 * n * 2 / 1024  # less than a quarter of its 15.6 MB still resident
