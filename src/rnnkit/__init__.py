"""rnnkit: recurrent-neural-network language models (numpy reference engine, PyTorch fast engine).

Public API:
    rnnkit.load(path, engine="numpy", device="auto") -> LanguageModel
    rnnkit.train(corpus, out, ...) -> TrainResult
    ModelConfig, TokenizerConfig, TrainConfig, SampleConfig, RnnkitError
"""

__version__ = "0.1.0"

from .api import LanguageModel, load
from .config import ModelConfig, SampleConfig, TokenizerConfig, TrainConfig
from .errors import RnnkitError
from .training import train

__all__ = ["LanguageModel", "ModelConfig", "RnnkitError", "SampleConfig", "TokenizerConfig", "TrainConfig",
           "__version__", "load", "train"]
