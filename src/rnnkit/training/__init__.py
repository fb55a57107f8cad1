"""rnnkit.training: the training driver, its progress record, schedules and resumable state."""

from .driver import TrainResult, train

__all__ = ["TrainResult", "train"]
