"""The run directory (--out): whether a run may use it, its lock, and the --overwrite swap.

- A directory that holds a model or a run (any of RUN_FILES) is refused unless --resume (it
  needs trainer_state/) or --overwrite is given; an empty or missing one starts a new run.
  Nothing in it is written before that decision (nor before the run's other checks).
- While a run trains, it holds an advisory lock (`fcntl.flock`) on `.NAME.lock` beside the
  directory (inside it when the parent is not writable), which says who holds it: a second run
  into the same directory is refused at once, naming the holder. The kernel drops the lock of
  a process that dies, so the lock of a killed run is taken over. The file is removed when the
  run ends.
- --overwrite writes the new run into `.NAME.new` beside the directory and swaps it in for the
  old one (`checkpoint.replace_dir`) when it saves its first resume point; a run that fails
  before that removes `.NAME.new` and leaves the old directory as it was.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint
from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # not on Windows: runs are not locked there
    fcntl = None  # type: ignore[assignment]

RUN_FILES = ("config.json", "vocab.json", "model.safetensors", "metrics.jsonl", "trainer_state")
INNER_LOCK = ".rnnkit.lock"  # the lock file when the directory's parent is not writable
WRITTEN_BY_RNNKIT = (*RUN_FILES, "curves.png", INNER_LOCK)  # what --overwrite may delete with the old run
# temporary names of interrupted atomic writes (checkpoint.atomic_write_bytes, replace_dir)
_TEMPORARY = re.compile(r"^\.(trainer_state\.(tmp|old)|.+\.tmp)$")
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


@dataclass
class RunDir:
    """A run's directory, decided on: mode is new | resume | overwrite."""

    path: Path  # as given (messages, the result)
    real: Path  # symbolic links resolved (renames, the lock)
    mode: str
    main: bool = True  # the process that writes (rank 0 under torchrun): it holds the lock
    lock: RunLock | None = None
    staging: Path | None = None  # --overwrite: where the new run writes until its first resume point

    def begin(self) -> Path:
        """Where the run writes from now on: the directory, or for --overwrite a fresh staging
        directory beside it. Called once every check has passed."""
        if self.mode != "overwrite" or not self.main:
            return self.path
        staging = staging_path(self.real)
        try:
            staging.mkdir()
        except OSError as e:
            raise ConfigError(f"{staging}: cannot create the directory an --overwrite run writes in until its first "
                              f"checkpoint ({e.strerror or e})") from None
        self.staging = staging
        return staging

    def swap_in(self) -> Path:
        """--overwrite, at the first resume point: the staged run replaces the old directory."""
        if self.staging is not None:
            checkpoint.replace_dir(self.staging, self.real)
            self.staging = None
        return self.path

    def close(self) -> None:
        """The end of the run: a staged run that never reached its first resume point is removed
        (and the old directory put back if the swap broke off); the lock is released."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
            checkpoint.recover_dir(self.real)
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def staging_path(real: Path) -> Path:
    return real.with_name(f".{real.name}.new")


def open_run_dir(out: str | os.PathLike, *, resume: bool, overwrite: bool, main: bool = True) -> RunDir:
    """Decide how a run uses `out` (refusing what it must not touch); the main process (`main`:
    rank 0 under torchrun) locks it first. Writes nothing in `out` (but undoes an interrupted
    swap of an earlier --overwrite)."""
    if resume and overwrite:
        raise ConfigError(f"{out}: --resume and --overwrite exclude each other (--resume continues the run "
                          "there, --overwrite replaces it)")
    path = Path(out)
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_dir():
        raise ConfigError(f"{out}: --out is not a directory")
    held = RunLock.acquire(lock_path(real), str(out)) if main else None
    try:
        if held is not None:
            checkpoint.recover_dir(real)  # a kill between the two renames of a swap
            shutil.rmtree(staging_path(real), ignore_errors=True)  # left by a killed --overwrite run
        return RunDir(path, real, decide(path, real, resume=resume, overwrite=overwrite), main, held)
    except BaseException:
        if held is not None:
            held.release()
        raise


def run_files(real: Path) -> list[str]:
    """The files and directories of a model or a run in `real` (trainer_state for an interrupted
    swap of it too)."""
    if not real.is_dir():
        return []
    names = {p.name for p in real.iterdir()}
    if ".trainer_state.old" in names:
        names.add("trainer_state")
    return [n for n in RUN_FILES if n in names]


def decide(path: Path, real: Path, *, resume: bool, overwrite: bool) -> str:
    """new | resume | overwrite, or a ConfigError saying why the directory is not used."""
    found = run_files(real)
    if not found:
        return "new"
    held = ", ".join(f"{n}/" if n == "trainer_state" else n for n in found)
    if resume:
        if "trainer_state" in found:
            return "resume"
        raise ConfigError(f"{path}: --resume: there is no trainer_state/ to resume from (the directory holds "
                          f"{held}); give --overwrite to start a new run in it")
    if overwrite:
        _check_replaceable(path, real)
        return "overwrite"
    raise ConfigError(f"{path}: already holds a model or a run ({held}); give --resume to continue it, "
                      "--overwrite to replace it, or another --out")


def _check_replaceable(path: Path, real: Path) -> None:
    """--overwrite replaces the directory as a whole: not one holding files rnnkit did not
    write, nor the current directory, nor one whose parent cannot take the staging directory."""
    foreign = sorted(p.name for p in real.iterdir() if p.name not in WRITTEN_BY_RNNKIT and not _TEMPORARY.match(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(f"{path}: --overwrite would delete what rnnkit did not write there ({shown}); "
                          "move it away or choose another --out")
    cwd = Path(os.path.realpath(os.getcwd()))
    if cwd == real or real in cwd.parents:
        raise ConfigError(f"{path}: --overwrite cannot replace the current directory (or one that holds it)")
    if not os.access(real.parent, os.W_OK):
        raise ConfigError(f"{path}: --overwrite writes the new run beside it, but {real.parent} is not writable")


# ---------------------------------------------------------------------------- the lock


def lock_path(real: Path) -> Path:
    """`.NAME.lock` beside the directory (it survives the --overwrite swap), or inside it when
    the parent exists but is not writable."""
    parent = real.parent
    if parent.is_dir() and not os.access(parent, os.W_OK) and real.is_dir():
        return real / INNER_LOCK
    return parent / f".{real.name}.lock"


class RunLock:
    """An exclusive flock on a lock file that records its holder (pid, host, start, command)."""

    def __init__(self, path: Path, fd: int | None, stale: str | None = None):
        self.path, self.fd = path, fd
        self.stale = stale  # the holder recorded by a run that died holding the lock (taken over)

    @classmethod
    def acquire(cls, path: Path, shown: str) -> RunLock:
        """Lock `path`, or a ConfigError naming `shown` (the directory) and who holds it."""
        if fcntl is None:
            return cls(path, None)
        for _ in range(100):  # the file may be removed by a run ending between our open and lock
            fd = _open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(fd)
                os.close(fd)
                raise ConfigError(f"{shown}: another training run is using this directory ({holder}; "
                                  f"lock file {path})") from None
            except OSError as e:  # a filesystem without flock: train unlocked
                os.close(fd)
                if e.errno in _NO_FLOCK:
                    return cls(path, None)
                raise ConfigError(f"{path}: cannot lock the run directory ({e.strerror or e})") from None
            if _same_file(fd, path):
                stale = read_holder(fd) if os.fstat(fd).st_size else None
                _write_holder(fd)
                return cls(path, fd, stale)
            os.close(fd)
        raise ConfigError(f"{path}: cannot lock the run directory (the lock file keeps changing)")

    def release(self) -> None:
        """Remove the lock file, then unlock (a run waiting on the old file then sees it is gone)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the lock file of the run directory ({e.strerror or e})") from None


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _write_holder(fd: int) -> None:
    argv = ["rnnkit", *sys.argv[1:]] if Path(sys.argv[0]).name in ("rnnkit", "__main__.py") else sys.argv
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": shlex.join(str(a) for a in argv)}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
    except OSError:
        pass  # who holds the lock goes unsaid (a full disk); the lock holds all the same


def read_holder(fd: int) -> str:
    """Who holds the lock, in words (what its file records)."""
    try:
        h = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8"))
        where = f"pid {h['pid']} on {h['host']} since {h['started']}"
        command = " ".join(str(h.get("command", "")).split())
    except (OSError, ValueError, KeyError, TypeError):
        return "a run that is starting"
    return f"{where}: {command}" if command else where
