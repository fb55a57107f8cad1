"""rnnkit's fast engine: the same model and contract as numpy_engine, in PyTorch.

`RNNLM` (numpy in, numpy out; cuDNN on a GPU; the full or the adaptive softmax: adaptive.py),
`Trainer` (SGD / RMSprop / Adam, sparse embedding updates, clipping,
mixed precision on CUDA, DistributedDataParallel under torchrun) and the distributed helpers.
Importing this package imports torch; the rest of rnnkit does not.
"""

from .distributed import (
    all_reduce_sum,
    all_reduce_sums,
    barrier,
    cleanup,
    init_distributed,
    is_main,
)
from .model import RNNLM, LMModule, resolve_device, resolve_dtype
from .trainer import Trainer

__all__ = [
    "RNNLM",
    "LMModule",
    "Trainer",
    "all_reduce_sum",
    "all_reduce_sums",
    "barrier",
    "cleanup",
    "init_distributed",
    "is_main",
    "resolve_device",
    "resolve_dtype",
]
