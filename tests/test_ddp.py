"""Distributed data parallel on CPU: 2 gloo processes with batch B each == 1 process with 2B.

The stream is cut into world_size*B columns and rank r takes columns [r*B, (r+1)*B), as
rnnkit.data.StreamBatcher does (built here with plain numpy). The mask is 0 where the target
is BOS, so the two ranks see different token counts: the Trainer must all-reduce the count
and scale the loss by world_size / global_tokens for the result to equal the single-process
mean. The model is float64 and the tolerance 1e-10 relative: the two runs add the same
terms in a different order (DDP sums per-rank gradients; one process sums over all columns
at once), which changes rounding near 1e-16 per operation and nothing else. Beside it,
`distributed.main_first`: rank 0 prepares (the id cache) before the other ranks read.
"""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from rnnkit.config import ModelConfig, TrainConfig
from rnnkit.errors import ConfigError, NonFiniteError
from rnnkit.torch_engine import RNNLM, Trainer, distributed

B, T, STEPS, WORLD = 3, 6, 5, 2
BOS = 1
MODEL = ModelConfig(vocab_size=12, cell="lstm", embed_dim=8, hidden_dim=8, num_layers=2)
TRAIN = TrainConfig(engine="torch", device="cpu", optimizer="sgd", lr=0.5, clip=0.5,
                    weight_decay=1e-3, seed=0)


def stream() -> np.ndarray:
    rng = np.random.default_rng(123)
    ids = rng.integers(2, MODEL.vocab_size, WORLD * B * T * STEPS + 1)
    ids[rng.random(ids.shape) < 0.15] = BOS  # sentence starts: masked targets
    return ids


def windows(ids: np.ndarray, batch: int, rank: int, world: int):
    """StreamBatcher's cut: world*batch columns, this rank's slice, windows of T."""
    cols = world * batch
    L = (len(ids) - 1) // cols
    xs = ids[: L * cols].reshape(cols, L).T[:, rank * batch:(rank + 1) * batch]
    ys = ids[1: L * cols + 1].reshape(cols, L).T[:, rank * batch:(rank + 1) * batch]
    for s in range(0, L - T + 1, T):
        x, y = xs[s:s + T], ys[s:s + T]
        yield x, y, (y != BOS).astype(np.float32)


def train(batch: int, rank: int, world: int, nonfinite_check: bool = False):
    model = RNNLM(MODEL, dtype=np.float64, seed=0, device="cpu")
    trainer = Trainer(model, TRAIN)
    state = None
    for x, y, mask in windows(stream(), batch, rank, world):
        _, _, state = trainer.step(x, y, mask, state)
    assert trainer.steps == STEPS
    weights = model.state_dict()
    raised = False
    if nonfinite_check:
        # an Inf only on rank 1's replica: its local loss is Inf, rank 0's is finite; both
        # ranks must raise (a rank raising alone would leave the other waiting in backward)
        if rank == 1:
            with torch.no_grad():
                model.module.decoder.bias[0] = float("inf")
        try:
            trainer.step(x, y, mask, state)
        except NonFiniteError as e:
            raised = "step 6" in str(e)
    return weights, raised


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    r, ws, local = distributed.init_distributed("cpu")
    assert (r, ws, local) == (rank, WORLD, rank)
    try:
        after_rank0 = _main_first(r, out)
        weights, raised = train(B, r, ws, nonfinite_check=True)
        total = distributed.all_reduce_sum(float(r + 1))
        np.savez(os.path.join(out, f"rank{r}.npz"), total=total, raised=raised, after_rank0=after_rank0, **weights)
        if distributed.is_main():  # only rank 0 writes checkpoints
            open(os.path.join(out, "checkpoint-written-by-rank0"), "w").close()
        distributed.barrier()
    finally:
        distributed.cleanup()


def _main_first(rank: int, out: str) -> bool:
    """Inside main_first rank 0 takes its time to write a file (as it fills the id cache); the
    other rank must find it there when its turn comes."""
    marker = os.path.join(out, "written-first-by-rank0")
    with distributed.main_first():
        if rank == 0:
            time.sleep(0.5)
            open(marker, "w").close()
        return os.path.exists(marker)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_distributed_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_distributed("cpu") == (0, 1, 0)
    assert not dist.is_initialized()
    assert distributed.is_main() and distributed.all_reduce_sum(2.5) == 2.5
    distributed.barrier()
    with distributed.main_first():  # a no-op in one process
        pass
    distributed.cleanup()


def test_init_distributed_needs_torchrun_rendezvous(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR is not set: launch with torchrun"):
        distributed.init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE must be an integer"):
        distributed.init_distributed("cpu")
    assert not dist.is_initialized()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_two_ranks_equal_one_rank_with_double_batch(tmp_path):
    import torch.multiprocessing as mp

    ctx = mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail("DDP workers did not finish within 120 s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    ref, _ = train(WORLD * B, 0, 1)  # one process, both ranks' columns
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(WORLD)]
    for r in ranks:
        assert float(r.pop("total")) == 3.0  # all_reduce_sum(1) + all_reduce_sum(2)
        assert bool(r.pop("raised"))  # NonFiniteError on both ranks
        assert bool(r.pop("after_rank0"))  # main_first: rank 1 ran its part after rank 0's
        for k in ref:
            np.testing.assert_allclose(r[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)
    start = RNNLM(MODEL, dtype=np.float64, seed=0).state_dict()
    assert any(not np.allclose(ref[k], start[k]) for k in ref)  # training did move the weights
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint")) == [
        "checkpoint-written-by-rank0"]
