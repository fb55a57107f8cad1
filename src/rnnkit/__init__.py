"""rnnkit: recurrent-neural-network language models (numpy reference engine, PyTorch fast engine)."""

__version__ = "0.1.0"
