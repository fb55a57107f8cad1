"""Faults while rnnkit writes files: each ends with a non-zero exit, one `rnnkit: error:` line
naming the file and what happened, no traceback, no temporary file left, and every file that
was in the model directory before byte-identical (tests/faultkit.py).

How the faults are made. The suite runs as root, where chmod 0555 does not stop a write, so a
full disk (ENOSPC), a read-only file system (EROFS) and a refused permission (EACCES) are
injected: `os.fsync` of the file being written, `tempfile.mkstemp`, `os.replace`, the `open`
of rnnkit.files or `numpy.save` raise OSError(errno.X) for the one file a test aims at. Where
this process may mount (root and a working `mount`), a 256 KiB tmpfs gives a real full disk
and a read-only bind mount a real read-only directory; elsewhere those variants are skipped.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS, make_model_dir
from faultkit import assert_one_line_error, assert_unchanged, run_cli, snapshot
from rnnkit import checkpoint, files
from rnnkit.cli import main
from rnnkit.errors import OutputError

WORDS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
         errno.EACCES: "permission denied"}


@pytest.fixture
def model(tmp_path):
    return make_model_dir(tmp_path / "model")


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "in.txt"
    p.write_text("the cat sat\n\nthe dog\n", encoding="utf-8")
    return p


# ---------------------------------------------------------------- making faults


def fail_fsync(monkeypatch, hit) -> None:
    """ENOSPC at the fsync of each file whose path `hit(path)` accepts: the data written, then
    the error, as a full disk reports it."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to see which file is fsynced")
    real = os.fsync

    def fsync(fd):
        if hit(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def fail_call(monkeypatch, owner, attr: str, code: int, when=lambda *a, **k: True) -> None:
    """owner.attr raises OSError(code) whenever `when(*args)` holds."""
    real = getattr(owner, attr, None) or getattr(builtins, attr)

    def fake(*args, **kw):
        if when(*args, **kw):
            raise OSError(code, os.strerror(code))
        return real(*args, **kw)

    monkeypatch.setattr(owner, attr, fake, raising=False)


def _mount(*args: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB tmpfs (skipped where this process may not mount)."""
    d = tmp_path / "disk"
    d.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(d)):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount in this sandbox)")
    yield d
    _umount(d)


def fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def read_only(tmp_path):
    """make(dir): `dir` bind-mounted read-only onto itself (skipped where that is not possible)."""
    mounted = []

    def make(d: Path) -> Path:
        if _mount("--bind", str(d), str(d)):
            mounted.append(d)
            if _mount("-o", "remount,bind,ro", str(d)):
                return d
        pytest.skip("cannot make a read-only bind mount here")

    yield make
    for d in reversed(mounted):
        _umount(d)


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


# ---------------------------------------------------------------- strict JSON


def strict(line: str):
    def refuse(word):
        raise AssertionError(f"{word} in {line!r}")
    return json.loads(line, parse_constant=refuse)


def test_score_jsonl_has_null_not_nan_for_a_line_with_nothing_scored(model, text):
    rc, out, err = run_cli(["score", str(model), str(text), "--output-format", "jsonl", "--no-eos"])
    assert rc == 0, err
    rows = [strict(line) for line in out.splitlines()]
    assert rows[1]["tokens"] == 0 and rows[1]["ppl"] is None and rows[1]["ppl_note"] == "nothing scored"
    assert rows[0]["ppl"] > 1 and "ppl_note" not in rows[0]


def test_metrics_rows_have_no_nan(tmp_path):
    from rnnkit.training.metrics import Metrics
    from rnnkit.training.progress import Progress

    m = Metrics(tmp_path, 10)
    m.row("valid", Progress(), seconds=1.0, lr=0.1, valid_loss=800.0, valid_ppl=float("inf"), valid_bpc=float("nan"))
    row = strict((tmp_path / "metrics.jsonl").read_text().strip())
    assert row["valid_ppl"] is None and row["valid_ppl_note"] == "infinite"
    assert row["valid_bpc"] is None and row["valid_bpc_note"] == "not a number (NaN)"


# ---------------------------------------------------------------- download and the id cache


def test_download_offline_leaves_no_directory(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(url, timeout=None):
        raise urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    rc, _, err = run_cli(["download", "ptb", "--dest", str(tmp_path / "data")])
    assert_one_line_error(rc, err, "ptb.train.txt", "failed", "Network is unreachable")
    assert list(tmp_path.iterdir()) == []


def test_download_on_a_full_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"the cat\n"))
    fail_fsync(monkeypatch, lambda path: "input.txt" in path)
    dest = tmp_path / "data"
    rc, _, err = run_cli(["download", "tinyshakespeare", "--dest", str(dest)])
    assert_one_line_error(rc, err, dest / "tinyshakespeare" / "input.txt", "no space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_full_id_cache_is_one_line_naming_it(model, text, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_CACHE", str(cache))
    before = snapshot(model)
    fail_call(monkeypatch, np, "save", errno.ENOSPC)
    rc, _, err = run_cli(["eval", str(model), str(text)])
    assert_one_line_error(rc, err, cache, "no space left on device", "RNNKIT_CACHE")
    assert list(cache.iterdir()) == []  # the entry being built is gone
    assert_unchanged(model, before)


def test_a_read_only_id_cache_falls_back_to_a_temporary_one(model, text, tmp_path, monkeypatch, read_only):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("RNNKIT_CACHE", str(cache))
    monkeypatch.setattr("rnnkit.data.cache._fallback", [])
    read_only(cache)
    rc, out, err = run_cli(["eval", str(model), str(text)])
    assert rc == 0 and "perplexity" in out, err


def test_downloaded_files_and_cache_entries_follow_the_umask(model, text, tmp_path, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(b"the cat\n"))
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    old = os.umask(0o022)
    try:
        assert run_cli(["download", "reddit", "--dest", str(tmp_path / "data")])[0] == 0
        assert run_cli(["eval", str(model), str(text)])[0] == 0
    finally:
        os.umask(old)
    assert (tmp_path / "data" / "reddit" / "reddit-comments-2015-08.csv").stat().st_mode & 0o777 == 0o644
    entries = list((tmp_path / "cache").iterdir())
    assert entries and all(e.stat().st_mode & 0o777 == 0o755 for e in entries)


def test_an_os_error_no_writer_caught_is_still_one_line(monkeypatch):
    """The CLI's last resort: an OSError escaping a command (a path not routed through
    rnnkit.files) is one line naming the file, not a traceback."""
    import rnnkit.cli.gradcheck as gradcheck_command

    def fails(args):
        raise PermissionError(13, "Permission denied", "/some/where.txt")

    monkeypatch.setattr(gradcheck_command, "run", fails)
    rc, _, err = run_cli(["gradcheck"])
    assert_one_line_error(rc, err, "/some/where.txt", "permission denied")
