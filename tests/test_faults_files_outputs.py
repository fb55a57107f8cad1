"""Faults while rnnkit writes an output: score / rescore / plot -o (and --best) that cannot be
opened, a full disk or read-only directory at the open or at a write, and a full stdout.

Each fault ends with a non-zero exit, one `rnnkit: error:` line naming the file and what
happened, no traceback, no temporary file left, and every file that was there before
byte-identical (tests/faultkit.py). How the faults are made: tests/faults_files_kit.py.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os

import pytest

import faults_files_kit
from faultkit import assert_one_line_error, assert_unchanged, run_cli, snapshot
from faults_files_kit import WORDS, fail_call, fail_fsync, fill
from rnnkit import files
from rnnkit.cli import main

# the kit's fixtures, found by pytest under these names
model, text = faults_files_kit.model, faults_files_kit.text
small_disk, read_only = faults_files_kit.small_disk, faults_files_kit.read_only


# ---------------------------------------------------------------- score, rescore, plot outputs


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (d / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1, "tokens": 10, "seconds": 1.0,
                                                 "train_loss": 3.0}) + "\n", encoding="utf-8")
    return d


@pytest.fixture
def commands(model, text, tmp_path, run_dir):
    """command -> (output path -> argv)"""
    nbest = tmp_path / "nb.txt"
    nbest.write_text("u1\tthe cat sat\nu1\tthe dog\n", encoding="utf-8")
    return {
        "score -o": lambda out: ["score", str(model), str(text), "-o", out],
        "rescore -o": lambda out: ["rescore", str(model), str(nbest), "-o", out],
        "rescore --best": lambda out: ["rescore", str(model), str(nbest), "--best", out, "-o", os.devnull],
        "plot -o": lambda out: ["plot", str(run_dir), "-o", out],
    }


WHERE = {  # target (under tmp_path) -> what the line says
    "missing/out": "the directory {tmp}/missing does not exist",
    "in.txt/out": "{tmp}/in.txt is a file, not a directory",
    "model": "is a directory",
}


@pytest.mark.parametrize("command", ["score -o", "rescore -o", "rescore --best", "plot -o"])
@pytest.mark.parametrize("target", list(WHERE))
def test_an_output_that_cannot_be_opened_is_one_line(commands, model, tmp_path, command, target):
    if command == "plot -o":
        pytest.importorskip("matplotlib")
    before = snapshot(tmp_path)
    out = str(tmp_path / target)
    rc, _, err = run_cli(commands[command](out))
    assert_one_line_error(rc, err, out, WHERE[target].format(tmp=tmp_path))
    assert_unchanged(tmp_path, before)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_score_output_errors_at_open_and_at_write(commands, model, tmp_path, monkeypatch, code):
    """Injected in rnnkit.files' open: at the open (EROFS, EACCES) or at the first write
    (ENOSPC); the half-written output is removed, the model untouched."""
    before, out = snapshot(model), tmp_path / "scores.txt"

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, s):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, attr):
            return getattr(self.f, attr)

    if code == errno.ENOSPC:
        monkeypatch.setattr(files, "open", lambda *a, **k: Full(builtins.open(*a, **k)),  # noqa: SIM115
                            raising=False)
    else:
        fail_call(monkeypatch, files, "open", code)
    rc, _, err = run_cli(commands["score -o"](str(out)))
    assert_one_line_error(rc, err, out, WORDS[code])
    assert not out.exists()
    assert_unchanged(model, before)


def test_score_on_a_real_full_disk(commands, small_disk):
    fill(small_disk)
    out = small_disk / "scores.txt"
    rc, _, err = run_cli(commands["score -o"](str(out)))
    assert_one_line_error(rc, err, out, "no space left on device")
    assert not out.exists()


@pytest.mark.parametrize("command", ["score -o", "plot -o"])
def test_an_output_in_a_real_read_only_directory(commands, tmp_path, read_only, command):
    if command == "plot -o":
        pytest.importorskip("matplotlib")
    d = tmp_path / "ro"
    d.mkdir()
    read_only(d)
    rc, _, err = run_cli(commands[command](str(d / "out")))
    assert_one_line_error(rc, err, d / "out", "read-only file system")


@pytest.mark.parametrize("command", ["score", "eval", "generate"])
def test_a_full_stdout_is_one_line(commands, model, text, command):
    class Full(io.StringIO):
        def write(self, s):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    argv = {"score": commands["score -o"]("-"), "eval": ["eval", str(model), str(text)],
            "generate": ["generate", str(model), "--max-len", "3"]}[command]
    err = io.StringIO()
    with contextlib.redirect_stdout(Full()), contextlib.redirect_stderr(err):
        rc = main(argv)
    assert_one_line_error(rc, err.getvalue(), "<stdout>", "no space left on device")


def test_plot_on_a_full_disk_leaves_no_temporary_file(commands, run_dir, monkeypatch):
    pytest.importorskip("matplotlib")
    before = snapshot(run_dir)
    fail_fsync(monkeypatch, lambda path: "curves.png" in path)
    rc, _, err = run_cli(commands["plot -o"](str(run_dir / "curves.png")))
    assert_one_line_error(rc, err, run_dir / "curves.png", "no space left on device")
    assert_unchanged(run_dir, before)


def test_plot_refuses_an_output_name_that_is_not_utf8(commands, tmp_path):
    pytest.importorskip("matplotlib")
    before = snapshot(tmp_path)
    rc, out, err = run_cli(commands["plot -o"](os.fsdecode(bytes(tmp_path) + b"/\xff.png")))
    assert_one_line_error(rc, err, f"{tmp_path}/\\xff.png", "not valid UTF-8")
    assert out == "" and snapshot(tmp_path) == before
