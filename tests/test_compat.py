"""Model directories and trainer states written by rnnkit 0.1.0 keep working.

tests/fixtures/v0.1/ was written by the 0.1.0 release (commands in its README.md): three model
directories (numpy- and torch-trained word LSTMs with a trainer_state/, a tied character GRU),
the scores and evaluation totals that release computed for them, and the weights it reached
when resuming each trainer_state from step 20 to step 40. Later code must load, score and
resume them to the same numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from conftest import has_torch
from rnnkit import checkpoint
from rnnkit.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
SENTS = (FIXTURES / "sents.txt").read_text(encoding="utf-8").split("\n")[:-1]
CORPUS = (FIXTURES / "corpus.txt").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", ["numpy", "torch", "char"])
def test_old_model_scores_and_evaluates_the_same(name):
    lm = rnnkit.load(FIXTURES / name)
    want = EXPECTED[name]
    got = [[t.logprob for t in s.tokens] for s in lm.score_sentences(SENTS)]
    assert len(got) == len(want["scores"])
    for g, w in zip(got, want["scores"]):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)
    stream, sents = lm.evaluate(CORPUS, mode="stream"), lm.evaluate(CORPUS, mode="sentences")
    assert (stream.count, sents.count) == (want["stream_count"], want["sentences_count"])
    assert stream.nats == pytest.approx(want["stream_nats"], abs=1e-4)
    assert sents.nats == pytest.approx(want["sentences_nats"], abs=1e-4)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_old_trainer_state_resumes_to_the_same_weights(engine, tmp_path, capsys):
    if engine == "torch" and not has_torch():
        pytest.skip("torch is not installed")
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / engine, run)
    corpus = tmp_path / "corpus.txt"
    shutil.copy(FIXTURES / "corpus.txt", corpus)
    # the 0.1.0 spellings of the options, as the run was started
    rc = main(["train", str(corpus), "--out", str(run), "--engine", engine, "--cell", "lstm", "--layers", "2",
               "--hidden", "8", "--embed", "8", "--dropout", "0.2", "--batch-size", "4", "--seq-len", "6",
               "--epochs", "2", "--max-steps", "40", "--checkpoint-every", "5", "--quiet", "--seed", "1", "--resume"])
    assert rc == 0, capsys.readouterr().err
    got = checkpoint.load_tensors(run / "trainer_state" / "model.safetensors")
    want = checkpoint.load_tensors(FIXTURES / f"expected-resumed-{engine}.safetensors")
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-6, err_msg=k)
    state = json.loads((run / "trainer_state" / "state.json").read_text())
    assert state["step"] == 40
