"""The one exception type users see: a one-line message that says what and where.

The CLI catches `RnnkitError` and prints `rnnkit: error: <message>` with a non-zero exit;
anything else escaping is a bug.
"""

from __future__ import annotations


class RnnkitError(Exception):
    """A user-facing error: bad input, a bad option, a model directory that does not fit."""


class InputError(RnnkitError):
    """A corpus or text file that cannot be read as text (names the file and the problem)."""


class CheckpointError(RnnkitError):
    """A model directory that is missing, truncated or does not match its config."""


class ConfigError(RnnkitError):
    """An option or recipe value that is out of range or inconsistent."""


class NonFiniteError(RnnkitError):
    """A NaN or Inf loss or gradient; raised before the update so weights stay unchanged."""


class OutputError(RnnkitError):
    """A file or directory rnnkit cannot write: names the path and what happened (no space
    left on device, read-only file system, permission denied, is a directory, ...)."""
