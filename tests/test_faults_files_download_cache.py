"""Faults while rnnkit downloads a corpus or writes the id cache: offline or a full disk leaves
no partial file, a full cache is one line naming RNNKIT_CACHE, a read-only one falls back to a
temporary cache, files follow the umask, and an OSError no writer caught is still one line.

Each fault ends with a non-zero exit, one `rnnkit: error:` line naming the file and what
happened, no traceback, no temporary file left, and every file that was there before
byte-identical (tests/faultkit.py). How the faults are made: tests/faults_files_kit.py.
"""

from __future__ import annotations

import errno
import io
import os

import numpy as np

import faults_files_kit
from faultkit import assert_one_line_error, assert_unchanged, run_cli, snapshot
from faults_files_kit import fail_call, fail_fsync

# the kit's fixtures, found by pytest under these names
model, text, read_only = faults_files_kit.model, faults_files_kit.text, faults_files_kit.read_only


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
