"""Every file rnnkit writes goes through here: OS errors become one line, JSON is strict,
modes follow the umask.

- `writing(path)`: a block whose OSError becomes `OutputError("PATH: cannot write: no space
  left on device")` (read-only file system, permission denied, is a directory, a directory
  that does not exist, ...); the temporary files the block put in its list are removed.
- `atomic_write_bytes` / `atomic_write_json`: a temporary file beside the target, fsynced,
  renamed over it, so a reader sees the old file or the new one, whole; `staged_dir(final)`
  and `replace_dir` do the same for a directory.
- `open_text(path)`: a text file written as it goes (score -o, rescore --best), its OS errors
  one line naming it.
- `dumps` / `finite`: JSON without NaN or Infinity: such a number becomes null, and a
  `KEY_note` next to it says what it was.
- New files are 0666 and new directories 0777 less the umask (tempfile makes them 0600 /
  0700, which would keep a shared model from a colleague).
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .errors import OutputError

_PROBLEMS = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "is a directory",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.EFBIG: "file too large",
    errno.EIO: "input/output error",
    errno.EMFILE: "too many open files",
}
if hasattr(errno, "EDQUOT"):
    _PROBLEMS[errno.EDQUOT] = "disk quota exceeded"


# ---------------------------------------------------------------- names and problems in words


def shown(path: str | os.PathLike) -> str:
    """A path as messages print it: bytes that are not UTF-8 as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def os_problem(e: OSError) -> str:
    """What went wrong, in words (no space left on device, read-only file system, ...)."""
    if e.errno == errno.ENOENT:
        return "no such file or directory"
    if e.errno == errno.ENOTDIR:
        return "not a directory"
    return _PROBLEMS.get(e.errno) or " ".join(str(e.strerror or e).split()) or type(e).__name__


def describe(path: str | os.PathLike, e: OSError) -> str:
    """`PATH: cannot write: PROBLEM`, naming the missing directory or the file in the way."""
    path = Path(path)
    if e.errno == errno.ENOENT and not path.parent.is_dir():
        return f"{shown(path)}: cannot write: the directory {shown(_first_missing(path.parent))} does not exist"
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None and blocker != path:
            return f"{shown(path)}: cannot write: {shown(blocker)} is a file, not a directory"
    return f"{shown(path)}: cannot write: {os_problem(e)}"


def _first_missing(directory: Path) -> Path:
    """The outermost directory on the way to `directory` that does not exist."""
    missing = directory
    for p in directory.parents:
        if p.exists():
            break
        missing = p
    return missing


def check_name(path: str | os.PathLike) -> None:
    """Refuse an output name that is not valid UTF-8 (it could not be printed back)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise OutputError(f"{shown(path)}: the file name is not valid UTF-8; choose another name") from None


# ---------------------------------------------------------------- modes from the umask


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # elsewhere: set and put back at once
    os.umask(old)
    return old


def file_mode() -> int:
    return 0o666 & ~umask()


def dir_mode() -> int:
    return 0o777 & ~umask()


# ---------------------------------------------------------------- the one error path


@contextmanager
def writing(path: str | os.PathLike, hint: str = "") -> Iterator[list]:
    """OSError inside the block -> OutputError `describe(path)` (+ `hint`); yields a list of
    temporary paths (files or directories) the block creates, removed when it fails.
    BrokenPipeError (a reader went away) passes through for the CLI to end quietly."""
    trash: list = []
    try:
        yield trash
    except BaseException as e:
        for p in reversed(trash):
            remove(p)
        if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
            raise OutputError(describe(path, e) + (f"; {hint}" if hint else "")) from None
        raise


def remove(path: str | os.PathLike) -> None:
    """Remove a file or a directory tree if it is there; never raises."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def set_file_mode(fd: int) -> None:
    """Give a file made by tempfile (0600) the mode of a new file: 0666 less the umask."""
    try:
        os.fchmod(fd, file_mode())
    except OSError:  # filesystems without modes
        pass


# ---------------------------------------------------------------- whole files and directories


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees either the old file or the new one, whole."""
    atomic_write_files({path: data})


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """`obj` as strict JSON (see `dumps`), indented, written atomically."""
    atomic_write_bytes(path, json_bytes(obj))


def json_bytes(obj: Any) -> bytes:
    """`obj` as the bytes of an indented strict JSON file."""
    return (dumps(obj, indent=2) + "\n").encode("utf-8")


def atomic_write_files(contents: dict) -> None:
    """Replace several files (path -> bytes) together: every temporary file is written and
    fsynced first (where a full disk shows), then each is renamed over its file in order, so
    a write that fails leaves all the old files as they were."""
    ready: list[tuple[Path, str]] = []
    try:
        for path, data in contents.items():
            ready.append((Path(path), _write_temp(Path(path), data)))
        for path, tmp in ready:
            with writing(path):
                os.replace(tmp, path)
    except BaseException:
        for _, tmp in ready:
            remove(tmp)  # those renamed already are gone: nothing happens
        raise
    for directory in dict.fromkeys(path.parent for path, _ in ready):
        fsync_dir(directory)


def _write_temp(path: Path, data: bytes) -> str:
    """A temporary file beside `path` holding `data`, fsynced, with a new file's mode."""
    with writing(path) as trash:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        trash.append(tmp)
        with os.fdopen(fd, "wb") as f:
            set_file_mode(f.fileno())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return tmp


def append_text(path: str | os.PathLike, text: str) -> None:
    """Add `text` at the end of a file (created if missing)."""
    with writing(path), open(path, "a", encoding="utf-8") as f:
        f.write(text)


def make_dir(path: str | os.PathLike) -> Path:
    """Create a directory (and its parents) if missing; a file in the way is refused."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{shown(path)}: is a file, not a directory")
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_writable_dir(path: str | os.PathLike, what: str = "the output directory") -> None:
    """Refuse at once a `path` that cannot become a directory to write into: an existing file,
    a path under a file, a directory on a read-only file system or not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{shown(path)}: {what} is a file, not a directory")
    there = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not there.is_dir():
        raise OutputError(f"{shown(path)}: {what} cannot be made: {shown(there)} is a file, not a directory")
    try:
        read_only = bool(os.statvfs(there).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if read_only:
        raise OutputError(f"{shown(path)}: {what} cannot be written: read-only file system")
    if not os.access(there, os.W_OK | os.X_OK):
        raise OutputError(f"{shown(path)}: {what} cannot be written: permission denied")


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Swap a fully written directory into place: old -> .old, tmp -> final, remove .old.

    A kill between the two renames leaves `.NAME.old` beside a missing NAME; `recover_dir`
    puts it back, so a reader never sees a half-written directory. A rename that fails puts
    the old directory back at once (OutputError naming `final_dir`).
    """
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = final_dir.with_name(f".{final_dir.name}.old")
    with writing(final_dir):
        if old.exists():
            shutil.rmtree(old)
        if final_dir.exists():
            os.replace(final_dir, old)
        try:
            os.replace(tmp_dir, final_dir)
        except OSError:
            recover_dir(final_dir)
            raise
    fsync_dir(final_dir.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def recover_dir(final_dir: Path) -> None:
    """Undo an interrupted `replace_dir`: if NAME is missing but .NAME.old exists, move it back."""
    final_dir = Path(final_dir)
    old = final_dir.with_name(f".{final_dir.name}.old")
    if not final_dir.exists() and old.exists():
        with writing(final_dir):
            os.replace(old, final_dir)


@contextmanager
def staged_dir(final_dir: str | os.PathLike) -> Iterator[Path]:
    """Build a directory as `.NAME.tmp` beside `final_dir` and swap it in whole
    (`replace_dir`) when the block ends; when the block (or the swap) fails the temporary
    directory is removed and `final_dir` is as it was."""
    final_dir = Path(final_dir)
    tmp = final_dir.with_name(f".{final_dir.name}.tmp")
    remove(tmp)
    try:
        yield tmp
        replace_dir(tmp, final_dir)
    except BaseException:
        remove(tmp)
        raise


# ---------------------------------------------------------------- streamed text files


class OutputFile:
    """A text file being written whose OS errors are OutputErrors naming it."""

    def __init__(self, f: IO[str], name: str | os.PathLike):
        self._f, self.name = f, name

    def write(self, text: str) -> int:
        with writing(self.name):
            return self._f.write(text)

    def flush(self) -> None:
        with writing(self.name):
            self._f.flush()

    def close(self) -> None:
        with writing(self.name):
            self._f.close()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._f, attr)


@contextmanager
def open_text(path: str | os.PathLike) -> Iterator[OutputFile]:
    """`path` opened for writing text (UTF-8), closed at the end; any OS error, at the open,
    a write or the close, is one OutputError naming it. A file this call created and could
    not finish writing is removed (an input error leaves what was written)."""
    path = Path(path)
    existed = path.exists()
    with writing(path):
        f = OutputFile(open(path, "w", encoding="utf-8"), path)  # noqa: SIM115 (closed below)
    try:
        yield f
        f.close()
    except BaseException as e:
        try:
            f._f.close()
        except OSError:
            pass
        if isinstance(e, OutputError) and not existed:
            remove(path)
        raise


# ---------------------------------------------------------------- strict JSON


def _what(x: float) -> str:
    return "not a number (NaN)" if math.isnan(x) else ("infinite" if x > 0 else "minus infinite")


def _bad(x: Any) -> bool:
    return isinstance(x, float) and not math.isfinite(x)


def finite(obj: Any) -> Any:
    """`obj` with every NaN / Infinity made None; in a dict, KEY_note beside it says what it was
    (unless the dict has a KEY_note of its own)."""
    if _bad(obj):
        return None
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out[k] = finite(v)
            if _bad(v) and f"{k}_note" not in obj:
                out[f"{k}_note"] = _what(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kw: Any) -> str:
    """json.dumps that never writes NaN or Infinity (`finite` first, then allow_nan=False);
    non-ASCII text as it is."""
    kw.setdefault("ensure_ascii", False)
    return json.dumps(finite(obj), allow_nan=False, **kw)
