"""The numpy reference engine: cells with forward/backward, the output layers (full and adaptive
softmax, output.py), the RNNLM, optimizers (sparse-row aware), Trainer, gradcheck.

Readable from-scratch code in the spirit of the classic RNN LM tutorial, vectorized over the
batch and time-major, with PyTorch's parameter names, layouts and equations (rnnkit.params).
"""

from .gradcheck import gradcheck, numerical_gradients, relative_error
from .model import RNNLM
from .optim import SGD, Adam, RMSProp, clip_by_global_norm_, global_norm, make_optimizer
from .trainer import Trainer

__all__ = [
    "RNNLM",
    "SGD",
    "Adam",
    "RMSProp",
    "Trainer",
    "clip_by_global_norm_",
    "global_norm",
    "gradcheck",
    "make_optimizer",
    "numerical_gradients",
    "relative_error",
]
