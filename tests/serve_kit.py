"""What the serve tests (tests/test_serve_*.py) share: the tiny random models they serve, as
module-scoped fixtures `lm` (word) and `char_lm` (characters) that a test module takes in with
`lm = serve_kit.lm`, and `sse`, a server-sent-event stream read into (event, data) pairs."""

from __future__ import annotations

import json

import pytest

import rnnkit
from conftest import make_model_dir


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """An untrained word model over conftest's tiny corpus, loaded once per test module."""
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("serve") / "word"))


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    """An untrained character model over conftest's tiny corpus, loaded once per test module."""
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("serve") / "char", level="char"))


def sse(text: str) -> list[tuple[str, dict]]:
    """(event, data) per server-sent event."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields["event"], json.loads(fields["data"])))
    return out
