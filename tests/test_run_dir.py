"""The run directory (--out) is never replaced by accident: what is refused without --resume or
--overwrite (before anything in it is written), what --overwrite keeps until the new run's first
checkpoint, and what --resume checks against the saved run (model, tokenizer, batching, data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS
from faultkit import assert_one_line_error, assert_unchanged, run_cli, snapshot
from rnnkit import checkpoint
from rnnkit.config import TrainConfig
from rnnkit.numpy_engine import RNNLM
from rnnkit.training import train
from rnnkit.training.options import RESUMABLE_CHANGES

ARGS = ["--cell", "lstm", "--hidden-dim", "8", "--embed-dim", "8", "--batch-size", "4", "--seq-len", "6",
        "--quiet", "--seed", "3"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text("\n".join(TINY_CORPUS * 20) + "\n", encoding="utf-8")
    return p


def train_ok(corpus: Path, out: Path, *args: str) -> str:
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), *ARGS, *args])
    assert rc == 0, err
    return err


@pytest.fixture
def finished(corpus, tmp_path) -> Path:
    """A directory holding a finished run: model, vocabulary, metrics and trainer_state/."""
    out = tmp_path / "model"
    train_ok(corpus, out, "--epochs", "1")
    return out


def weights(d: Path) -> dict[str, np.ndarray]:
    return checkpoint.load_tensors(d / "trainer_state" / "model.safetensors")


def assert_nothing_beside(out: Path) -> None:
    """No staging directory or lock file left next to the run directory."""
    left = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))
    assert left == [], left


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("extra", [[], ["--epochs", "0"], ["--hidden-dim", "4"]])
def test_a_directory_holding_a_run_is_refused_and_left_byte_identical(corpus, finished, extra):
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--epochs", "1", *extra])
    line = assert_one_line_error(rc, err, str(finished), "--resume", "--overwrite")
    assert "metrics.jsonl" in line and "trainer_state/" in line
    assert_unchanged(finished, before)
    assert_nothing_beside(finished)


@pytest.mark.parametrize("name,content", [("config.json", b'{"app": "not a model"}\n'),
                                          ("metrics.jsonl", b'{"kind": "train", "step": 1}\n'),
                                          ("model.safetensors", b"\0" * 16), ("vocab.json", b"[]")])
def test_any_one_file_of_a_model_or_run_is_enough_to_refuse(corpus, tmp_path, name, content):
    out = tmp_path / "other"
    out.mkdir()
    (out / name).write_bytes(content)
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), *ARGS, "--epochs", "1"])
    assert name in assert_one_line_error(rc, err, str(out), "--overwrite")
    assert_unchanged(out, before)


def test_an_empty_or_missing_directory_is_a_new_run_and_other_files_are_kept(corpus, tmp_path):
    empty, missing, shared = tmp_path / "empty", tmp_path / "a" / "b", tmp_path / "shared"
    empty.mkdir()
    shared.mkdir()
    (shared / "notes.txt").write_text("mine\n")
    for out in (empty, missing, shared):
        train_ok(corpus, out, "--epochs", "1")
        assert (out / "trainer_state" / "state.json").is_file()
        assert_nothing_beside(out)
    assert (shared / "notes.txt").read_text() == "mine\n"


def test_epochs_0_fails_before_anything_is_written(corpus, tmp_path, finished):
    out = tmp_path / "new"
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), *ARGS, "--epochs", "0"])
    assert_one_line_error(rc, err, "--epochs 0")
    assert not out.exists()
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--epochs", "0", "--overwrite"])
    assert_one_line_error(rc, err, "--epochs 0")
    assert_unchanged(finished, before)
    assert_nothing_beside(finished)


def test_resume_without_a_trainer_state_is_refused(corpus, finished):
    shutil.rmtree(finished / "trainer_state")  # the run's model stays; its resume point is gone
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--resume"])
    assert_one_line_error(rc, err, str(finished), "trainer_state/", "--overwrite")
    assert_unchanged(finished, before)


def test_resume_on_an_empty_directory_starts_a_new_run(corpus, tmp_path):
    err = train_ok(corpus, tmp_path / "fresh", "--epochs", "1", "--resume")
    assert "starting a new run" in err


def test_resume_and_overwrite_together_are_refused(corpus, finished):
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--resume", "--overwrite"])
    assert_one_line_error(rc, err, str(finished), "--resume", "--overwrite")
    assert_unchanged(finished, before)


def test_out_that_is_a_file_is_refused(corpus, tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), *ARGS, "--epochs", "1"])
    assert_one_line_error(rc, err, str(out), "--out")
    assert out.read_text() == "x"


# ---------------------------------------------------------------------------- --overwrite


def test_overwrite_replaces_the_run(corpus, finished):
    old = snapshot(finished)
    train_ok(corpus, finished, "--epochs", "1", "--overwrite", "--hidden-dim", "6")
    assert checkpoint.load(finished).model.hidden_dim == 6
    assert checkpoint.load(finished / "trainer_state").model.hidden_dim == 6
    rows = [json.loads(r) for r in (finished / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)  # one run's rows, not two
    assert snapshot(finished)["model.safetensors"] != old["model.safetensors"]
    assert_nothing_beside(finished)


def test_overwrite_that_fails_before_its_first_checkpoint_loses_nothing(corpus, finished, monkeypatch):
    """A NaN at the third step (the first checkpoint is at the end of the epoch): the old run is
    byte-identical and the staging directory is gone."""
    real, calls = RNNLM.forward_backward, {"n": 0}

    def poisoned(self, *a, **kw):
        loss, count, grads, state = real(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 3:
            grads["rnn.weight_hh_l0"][0, 0] = np.nan
        return loss, count, grads, state

    monkeypatch.setattr(RNNLM, "forward_backward", poisoned)
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--epochs", "1", "--overwrite"])
    assert_one_line_error(rc, err, "nan")
    assert calls["n"] == 3
    assert_unchanged(finished, before)
    assert_nothing_beside(finished)


def test_overwrite_with_a_missing_corpus_loses_nothing(tmp_path, finished):
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(tmp_path / "nope.txt"), "--out", str(finished), *ARGS, "--overwrite"])
    assert_one_line_error(rc, err, "nope.txt")
    assert_unchanged(finished, before)
    assert_nothing_beside(finished)


def test_overwrite_refuses_to_delete_files_rnnkit_did_not_write(corpus, finished, monkeypatch):
    (finished / "notes.txt").write_text("mine\n")
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--overwrite"])
    assert_one_line_error(rc, err, str(finished), "notes.txt")
    assert_unchanged(finished, before)
    (finished / "notes.txt").unlink()
    monkeypatch.chdir(finished)
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", ".", *ARGS, "--overwrite"])
    assert_one_line_error(rc, err, "current directory")
    assert_unchanged(finished, before)


# ---------------------------------------------------------------------------- --resume checks


@pytest.mark.parametrize("given,named", [
    (["--hidden-dim", "6"], ["hidden_dim saved 8, given 6"]),
    (["--level", "char"], ["level saved word, given char"]),
    (["--cell", "gru", "--max-vocab", "20"], ["cell saved lstm, given gru", "max_vocab saved 10000, given 20"]),
    (["--batch-size", "2", "--seq-len", "5"], ["batch_size saved 4, given 2", "seq_len saved 6, given 5"]),
    (["--batching", "sentences", "--lr", "0.1"], ["batching saved stream, given sentences", "lr saved 0.002, given 0.1"]),
])
def test_resume_refuses_every_option_that_differs_in_one_line(corpus, finished, given, named):
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--resume", "--epochs", "2", *given])
    line = assert_one_line_error(rc, err, str(finished), *named)
    assert all(name in line for name in RESUMABLE_CHANGES)  # what may change is said
    assert_unchanged(finished, before)


def test_resume_refuses_another_corpus_or_validation_file(corpus, finished, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(TINY_CORPUS * 30) + "\n", encoding="utf-8")
    before = snapshot(finished)
    rc, _, err = run_cli(["train", str(other), "--out", str(finished), *ARGS, "--resume", "--epochs", "2"])
    assert_one_line_error(rc, err, "corpus saved", str(corpus.resolve()), str(other.resolve()))
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--resume", "--valid", str(other)])
    assert_one_line_error(rc, err, "valid saved none", str(other.resolve()))
    corpus.write_text(corpus.read_text() + "one more line .\n")  # the same file, grown
    rc, _, err = run_cli(["train", str(corpus), "--out", str(finished), *ARGS, "--resume", "--epochs", "2"])
    assert_one_line_error(rc, err, "corpus saved", "bytes")
    assert_unchanged(finished, before)


def test_a_resume_point_without_a_data_record_is_not_checked_for_it(corpus, finished, tmp_path):
    """Resume points of rnnkit 0.1.0 do not record their data: the check is skipped."""
    state = finished / "trainer_state" / "state.json"
    saved = json.loads(state.read_text())
    del saved["data"]
    state.write_text(json.dumps(saved))
    other = tmp_path / "other.txt"
    other.write_text("\n".join(TINY_CORPUS * 30) + "\n", encoding="utf-8")
    train_ok(other, finished, "--resume", "--epochs", "2")
    assert json.loads(state.read_text())["data"]["corpus"] == [[str(other.resolve()), other.stat().st_size]]


def test_options_not_given_on_resume_take_the_saved_values(corpus, tmp_path):
    """Stopped after 7 steps, resumed with --resume alone (nothing else given): the run goes on
    with its saved options (hidden 8, batch 4, seq 6, seed 3, 2 epochs) to the same weights as
    the run that never stopped; the budget --max-steps is not carried over."""
    whole, part = tmp_path / "whole", tmp_path / "part"
    train_ok(corpus, whole, "--epochs", "2", "--checkpoint-every", "3", "--dropout", "0.2")
    train_ok(corpus, part, "--epochs", "2", "--checkpoint-every", "3", "--dropout", "0.2", "--max-steps", "7")
    rc, _, err = run_cli(["train", str(corpus), "--out", str(part), "--resume", "--quiet"])
    assert rc == 0, err
    a, b = weights(whole), weights(part)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    state = json.loads((part / "trainer_state" / "state.json").read_text())
    assert state["train"]["max_steps"] == 0 and state["train"]["batch_size"] == 4


def test_the_api_takes_dicts_of_chosen_options(corpus, tmp_path):
    out = tmp_path / "api"
    quiet = {"progress": False, "log": lambda m: None}
    train(str(corpus), out, model={"hidden_dim": 8, "embed_dim": 8}, config={"batch_size": 4, "seq_len": 6,
                                                                            "max_steps": 5}, **quiet)
    res = train(str(corpus), out, config={"epochs": 1}, resume=True, **quiet)
    assert res.stopped == "epochs" and checkpoint.load(out).model.hidden_dim == 8
    with pytest.raises(Exception, match="batch_size saved 4, given 32"):
        train(str(corpus), out, config=TrainConfig(epochs=2), resume=True, **quiet)  # an object chooses every field


def test_demo_replaces_its_own_model_and_no_other(corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # the second run replaces the first one's model in ./rnnkit-demo-model
        rc, stdout, err = run_cli(["demo", "--max-steps", "2", "--quiet"])
        assert rc in (0, 1) and "Validation perplexity" in stdout, err  # 1: not better than unigram in 2 steps
    assert_nothing_beside(tmp_path / "rnnkit-demo-model")
    mine = tmp_path / "mine"
    train_ok(corpus, mine, "--epochs", "1")
    before = snapshot(mine)
    rc, _, err = run_cli(["demo", "--max-steps", "2", "--quiet", "--out", str(mine)])
    assert_one_line_error(rc, err, str(mine), "--out")
    assert_unchanged(mine, before)
