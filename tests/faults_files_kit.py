"""How the file-fault tests (tests/test_faults_files_*.py) make their faults, and the fixtures
they share (`model`, `text`, `small_disk`, `read_only`).

The suite runs as root, where chmod 0555 does not stop a write, so a full disk (ENOSPC), a
read-only file system (EROFS) and a refused permission (EACCES) are injected: `os.fsync` of
the file being written, `tempfile.mkstemp`, `os.replace`, the `open` of rnnkit.files or
`numpy.save` raise OSError(errno.X) for the one file a test aims at. Where this process may
mount (root and a working `mount`), a 256 KiB tmpfs gives a real full disk and a read-only
bind mount a real read-only directory; elsewhere those variants are skipped.

Fixtures are used by name: a test module binds them with `model = faults_files_kit.model`.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import make_model_dir

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
