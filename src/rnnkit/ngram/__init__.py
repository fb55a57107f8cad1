"""n-gram models next to the RNN: ARPA back-off models (read and score) and interpolation.

`arpa.read_arpa` reads a file into a `backoff.ArpaModel` (tables built by `tables`); `mix` mixes
its probabilities with the RNN's per token and finds the mixture weight by EM. numpy only.
"""

from __future__ import annotations

from .arpa import read_arpa
from .backoff import ArpaModel
from .mix import best_lambda, mix_ln, token_logprobs

__all__ = ["ArpaModel", "best_lambda", "mix_ln", "read_arpa", "token_logprobs"]
