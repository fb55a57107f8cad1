"""Faults while rnnkit writes the model directory: checkpoint.save on a full disk or into a
read-only / forbidden directory (injected and real), and `train --resume` on a full disk.

Each fault ends with a non-zero exit, one `rnnkit: error:` line naming the file and what
happened, no traceback, no temporary file left, and every file that was there before
byte-identical (tests/faultkit.py). How the faults are made: tests/faults_files_kit.py.
"""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

import faults_files_kit
from conftest import TINY_CORPUS, make_model_dir
from faultkit import assert_one_line_error, assert_unchanged, run_cli, snapshot
from faults_files_kit import WORDS, fail_call, fail_fsync, fill
from rnnkit import checkpoint
from rnnkit.errors import OutputError

# the kit's fixtures, found by pytest under these names
model, small_disk, read_only = faults_files_kit.model, faults_files_kit.small_disk, faults_files_kit.read_only


# ---------------------------------------------------------------- the model directory


@pytest.mark.parametrize("name", ["model.safetensors", "vocab.json", "config.json"])
def test_save_on_a_full_disk_keeps_every_old_file(model, monkeypatch, name):
    """Injected ENOSPC at the fsync of any of the three files: the old model whole, no temporary file."""
    before = snapshot(model)
    ck = checkpoint.load(model)
    fail_fsync(monkeypatch, lambda path: os.path.basename(path).startswith(f".{name}."))
    with pytest.raises(OutputError) as e:
        checkpoint.save(model, ck.model, ck.tokenizer, ck.vocab, {k: v + 1 for k, v in ck.params.items()})
    assert str(e.value) == f"{model / name}: cannot write: no space left on device"
    assert_unchanged(model, before)


def test_save_on_a_real_full_disk(small_disk):
    """A real tmpfs, filled: the second save fails in write(); the first model stays."""
    d = make_model_dir(small_disk / "model")
    before, ck = snapshot(d), checkpoint.load(d)
    fill(small_disk)
    with pytest.raises(OutputError, match="no space left on device"):
        checkpoint.save(d, ck.model, ck.tokenizer, ck.vocab, {k: v + 1 for k, v in ck.params.items()})
    assert_unchanged(d, before)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_save_to_a_read_only_or_forbidden_directory(model, monkeypatch, code):
    """Injected at tempfile.mkstemp (root ignores chmod 0555)."""
    before, ck = snapshot(model), checkpoint.load(model)
    fail_call(monkeypatch, tempfile, "mkstemp", code)
    with pytest.raises(OutputError) as e:
        checkpoint.save(model, ck.model, ck.tokenizer, ck.vocab, ck.params)
    assert str(e.value) == f"{model / 'model.safetensors'}: cannot write: {WORDS[code]}"
    assert_unchanged(model, before)


def test_save_into_a_real_read_only_directory(model, read_only):
    before, ck = snapshot(model), checkpoint.load(model)
    read_only(model)
    with pytest.raises(OutputError, match="read-only file system"):
        checkpoint.save(model, ck.model, ck.tokenizer, ck.vocab, ck.params)
    assert_unchanged(model, before)


def test_a_new_model_directory_that_fails_is_not_left_behind(tmp_path, model, monkeypatch):
    ck = checkpoint.load(model)
    fail_fsync(monkeypatch, lambda path: "config.json" in path)
    with pytest.raises(OutputError):
        checkpoint.save(tmp_path / "new", ck.model, ck.tokenizer, ck.vocab, ck.params)
    assert not (tmp_path / "new").exists()


TRAIN = ["--hidden-dim", "8", "--embed-dim", "8", "--batch-size", "2", "--seq-len", "5", "--quiet"]


@pytest.fixture
def trained(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 20) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), "--epochs", "1", *TRAIN])
    assert rc == 0, err
    return corpus, out


def test_resume_on_a_full_disk_changes_nothing(trained, monkeypatch):
    """Every write into the run directory fails: the first one is one line, all files as they were."""
    corpus, out = trained
    before = snapshot(out)
    fail_fsync(monkeypatch, lambda path: path.startswith(f"{out}/"))
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), "--resume", "--epochs", "2", *TRAIN])
    assert_one_line_error(rc, err, out, "no space left on device")
    assert_unchanged(out, before)


@pytest.mark.parametrize("name", [
    "model.safetensors",
    "optimizer.safetensors",
])
def test_a_full_disk_at_a_resume_point(trained, monkeypatch, name):
    """ENOSPC while the resume point writes `name`: one line naming it, trainer_state/ byte-identical,
    no .trainer_state.tmp/, and the model directory a whole model (the best so far, saved
    before the fault, may have replaced the old one; metrics.jsonl grew)."""
    corpus, out = trained
    before = snapshot(out / "trainer_state")
    tmp = out / ".trainer_state.tmp"
    fail_fsync(monkeypatch, lambda path: path.startswith(f"{tmp}/.{name}."))
    rc, _, err = run_cli(["train", str(corpus), "--out", str(out), "--resume", "--epochs", "2", *TRAIN])
    assert_one_line_error(rc, err, tmp / name, "no space left on device")
    assert_unchanged(out / "trainer_state", before)
    assert not tmp.exists() and not [p for p in os.listdir(out) if p.endswith(".tmp")]
    checkpoint.load(out)
