"""Shared fixtures: a tiny random model directory, the shared-data location, torch availability."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.config import ModelConfig, TokenizerConfig
from rnnkit.params import init_params
from rnnkit.text import Vocab, WordTokenizer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"



@pytest.fixture(scope="session", autouse=True)
def _id_cache_of_the_session(tmp_path_factory):
    """Corpora the tests encode go to an id cache of this session, not the user's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNKIT_CACHE", str(tmp_path_factory.mktemp("id-cache")))
    yield
    mp.undo()


TINY_CORPUS = [
    "the cat sat on the mat .",
    "the dog sat on the log .",
    "a cat and a dog played in the garden .",
    "the bird sang a song .",
    "it's a dog's life , isn't it ?",
]


def make_model_dir(path: Path, cell: str = "lstm", num_layers: int = 2, tie: bool = False, seed: int = 0,
                   level: str = "word") -> Path:
    """A randomly initialised (untrained) model directory over TINY_CORPUS's vocabulary."""
    tok = WordTokenizer()
    if level == "char":
        vocab = Vocab.build([list(s) for s in TINY_CORPUS])
    else:
        vocab = Vocab.build([tok.tokenize(s) for s in TINY_CORPUS])
    H = 8
    cfg = ModelConfig(vocab_size=len(vocab), cell=cell, embed_dim=H if tie else 6, hidden_dim=H,
                      num_layers=num_layers, tie_weights=tie)
    params = init_params(cfg, seed=seed)
    rng = np.random.default_rng(seed + 1)
    params = {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in params.items()}  # less uniform
    checkpoint.save(path, cfg, TokenizerConfig(level=level), vocab, params)
    return path


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return make_model_dir(tmp_path / "model")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_DATA} (a fresh clone has no ../shared/data)")
    return SHARED_DATA


def has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_main(capsys, *argv, stdin: str | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `rnnkit ARGV` in this process, `stdin` as its standard input."""
    from rnnkit.cli import main

    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")))
    try:
        rc = main([str(a) for a in argv])
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return rc, out, err


def reference_logprobs(lm, text: str) -> list[float]:
    """ln p of each word and </s> of `text`, running lm's model one token at a time from <s>
    (step_logprobs): the reference that batched scoring is checked against."""
    ids = lm.vocab.encode(lm.tokenize(text)) + [lm.vocab.eos_id]
    state, cur, out = lm.model.init_hidden(1), np.array([lm.vocab.bos_id]), []
    for i in ids:
        logp, state = lm.model.step_logprobs(cur, state)
        out.append(float(logp[0, i]))
        cur = np.array([i])
    return out
