"""Distributed data parallel helpers around torch.distributed, for runs under torchrun.

`setup(device)` is what a training run calls first: it joins the group and picks this
process's device. `init_distributed(device)` reads torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and joins the process group: nccl on CUDA, gloo on CPU. With
nothing set (a plain `python` run) it returns (0, 1, 0) and initialises nothing, so every
helper here is a cheap no-op in a single process. The Trainer wraps the module in
DistributedDataParallel when the group has more than one process. `main_first()` lets rank 0
prepare the data (the id cache) before the other ranks map the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from ..errors import ConfigError


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {v!r}") from None


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def init_distributed(device: str = "auto") -> tuple[int, int, int]:
    """Join torchrun's process group; returns (rank, world_size, local_rank).

    device: cpu | cuda | auto (cuda when available). On CUDA the process binds to
    cuda:LOCAL_RANK and uses nccl; on CPU gloo. WORLD_SIZE unset or 1 -> (0, 1, 0)."""
    if is_initialized():
        return dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0)
    ws = _env_int("WORLD_SIZE", 1)
    if ws <= 1:
        return 0, 1, 0
    r, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise ConfigError("device: 'cuda' requested for distributed training but CUDA "
                              "is not available")
        torch.cuda.set_device(local)
        backend = "nccl"
    else:
        backend = "gloo"
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"WORLD_SIZE={ws} but {name} is not set: launch with torchrun")
    dist.init_process_group(backend=backend, init_method="env://", rank=r, world_size=ws)
    return r, ws, local


def setup(device: str = "auto") -> tuple[int, int, str]:
    """Join torchrun's process group when launched by it; returns (rank, world_size, device):
    cuda:LOCAL_RANK for each process of a CUDA group (device cuda, or auto with CUDA present),
    else `device` as given. In a plain `python` run: (0, 1, device)."""
    rank, world, local = init_distributed(device)
    if world > 1 and device in ("cuda", "auto") and torch.cuda.is_available():
        device = f"cuda:{local}"
    return rank, world, device


def local_device(device: str = "auto") -> str:
    """The device string this process should use: cuda:LOCAL_RANK under a CUDA group."""
    if is_initialized() and dist.get_backend() == "nccl":
        return f"cuda:{torch.cuda.current_device()}"
    return device


def is_main() -> bool:
    """True on rank 0 (and in a single process): only it writes checkpoints and logs."""
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the body first and the others after it (all of them wait at a barrier): rank 0
    fills a cache (the corpus's id files) that the others then only read."""
    first = rank() == 0
    if not first:
        barrier()
    try:
        yield
    finally:
        if first:
            barrier()


def all_reduce_sum(value: float, device: str | torch.device | None = None) -> float:
    """Sum a Python number over all ranks (float64; the identity in a single process)."""
    return all_reduce_sums([value], device)[0]


def all_reduce_sums(values: list[float], device: str | torch.device | None = None) -> list[float]:
    """Sum several Python numbers over all ranks in one collective (NaN/Inf propagate)."""
    if not is_initialized() or dist.get_world_size() == 1:
        return [float(v) for v in values]
    if device is None:
        device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.tolist()]


def finish() -> None:
    """The end of a run: wait for every process (rank 0 may still be writing files), then leave
    the group. A process leaving alone can abort the others' gloo connections."""
    barrier()
    cleanup()


def cleanup() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if is_initialized():
        dist.destroy_process_group()
