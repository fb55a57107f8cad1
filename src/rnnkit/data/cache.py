"""The id cache: encoded corpora (and the vocabularies counted from them) kept on disk, found again
by what they were made from.

The cache lives in $RNNKIT_CACHE, else ~/.cache/rnnkit/ids/ (a temporary directory, removed at
exit, when neither can be written). An entry is a directory KIND-HASH/ whose meta.json holds
its key: a JSON object naming everything the entry was made from (the corpus files with their
size and modification time, the reading options, the tokenizer settings, the vocabulary's
digest, the cache format and rnnkit's version); HASH is its sha256. An entry is used only when
its key is the one asked for and its files are complete. It is built in a temporary directory
beside it and renamed into place: two processes building the same entry at once both finish,
one rename wins and the other process uses the winner's files. Entries made from files that
have since changed or gone are removed when the next entry is built, and so are temporary
directories that killed processes left, after a day. Entries get the modes of new files and
directories (the umask's); a write that fails (no space left, ...) removes the entry being
built and is one OutputError line naming the cache directory and $RNNKIT_CACHE.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import files
from ..errors import OutputError

ENV = "RNNKIT_CACHE"
FORMAT = 1  # the layout of the entries; a new one makes old entries unused
STALE_SECONDS = 24 * 3600
_fallback: list[Path] = []  # the per-process directory used when the cache cannot be written


def cache_root() -> Path:
    """The cache directory, created if needed ($RNNKIT_CACHE, else ~/.cache/rnnkit/ids)."""
    env = os.environ.get(ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "rnnkit" / "ids"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK | os.X_OK) and not os.statvfs(root).f_flag & os.ST_RDONLY:
            return root
    except OSError:
        pass
    if not _fallback:
        _fallback.append(Path(tempfile.mkdtemp(prefix="rnnkit-ids-")))
        atexit.register(shutil.rmtree, _fallback[0], True)
    return _fallback[0]


def normal_key(key: dict) -> dict:
    """The key as it reads back from meta.json (tuples become lists)."""
    return json.loads(files.dumps(key, sort_keys=True))


def entry_path(kind: str, key: dict) -> Path:
    digest = hashlib.sha256(files.dumps(normal_key(key), sort_keys=True, ensure_ascii=True).encode("utf-8")).hexdigest()
    return cache_root() / f"{kind}-{digest[:32]}"


def find(kind: str, key: dict, complete: Callable[[Path, dict], bool]) -> tuple[Path, dict] | None:
    """(directory, meta) of the entry made for `key`, when it is there and `complete`."""
    path = entry_path(kind, key)
    meta = read_meta(path)
    if meta is None or meta.get("key") != normal_key(key) or not complete(path, meta):
        return None
    return path, meta


def read_meta(directory: Path) -> dict | None:
    """meta.json of an entry, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(directory) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def new_dir(kind: str, stale: Callable[[dict], bool] | None = None) -> Path:
    """A fresh temporary directory in the cache to build an entry in (publish it when done).
    First the cache is swept: entries whose key `stale` says can never be asked for again
    (their corpus files changed or gone), and temporary directories older than a day."""
    root = cache_root()
    _sweep(root, stale)
    try:
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{kind}-"))
        os.chmod(tmp, files.dir_mode())  # mkdtemp makes 0700: a shared cache stays readable
    except OSError as e:
        raise write_error(root, e) from None
    return tmp


@contextmanager
def building(tmp: Path) -> Iterator[None]:
    """Writing an entry in `tmp`: any failure removes it; an OS error (no space left, ...) is
    one OutputError naming the cache directory and $RNNKIT_CACHE."""
    try:
        yield
    except BaseException as e:
        discard(tmp)
        if isinstance(e, OSError):
            raise write_error(tmp.parent, e) from None
        raise


def write_error(root: Path, e: OSError) -> OutputError:
    return OutputError(f"{files.shown(root)}: cannot write the id cache: {files.os_problem(e)}; "
                       f"free some space there or set {ENV} to another directory")


def write_meta(directory: Path, key: dict, **fields) -> None:
    """meta.json of an entry being built: its key and `fields`."""
    text = files.dumps({**fields, "key": normal_key(key)})
    (Path(directory) / "meta.json").write_text(text, encoding="utf-8")


def publish(tmp: Path, kind: str, key: dict, complete: Callable[[Path, dict], bool]) -> Path:
    """Rename a built entry into place; when another process was first, keep its entry and drop
    this one (an incomplete or foreign entry in the way is replaced)."""
    final = entry_path(kind, key)
    for _ in range(3):
        try:
            os.rename(tmp, final)
            return final
        except OSError:
            if find(kind, key, complete) is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            shutil.rmtree(final, ignore_errors=True)
    raise OSError(f"{final}: cannot put the cache entry in place")


def discard(tmp: Path) -> None:
    """Remove a temporary directory of a build that failed."""
    shutil.rmtree(tmp, ignore_errors=True)


def _sweep(root: Path, stale: Callable[[dict], bool] | None) -> None:
    limit = time.time() - STALE_SECONDS
    for p in root.iterdir():
        try:
            if p.name.startswith(".tmp-"):
                gone = p.stat().st_mtime < limit
            else:
                meta = read_meta(p)
                gone = stale is not None and meta is not None and stale(meta.get("key", {}))
        except OSError:
            continue
        if gone:
            shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------- looking and clearing (rnnkit cache)

ENTRY_NAME = re.compile(r"(ids|vocab)-[0-9a-f]{32}")  # what publish names; nothing else is ever removed


@dataclass
class Entry:
    path: Path
    kind: str  # "ids" (an encoded corpus) or "vocab" (a vocabulary counted from one)
    size: int  # bytes of its files
    used: float  # when it was made or last renamed into place (mtime, seconds since the epoch)
    sources: list[str]  # the corpus files it was made from
    key: dict


def entries(root: Path | None = None) -> list[Entry]:
    """The cache's entries, oldest first: directories named as publish names them that hold a
    meta.json; temporary directories and anything else in the directory are not entries."""
    root = cache_root() if root is None else root
    out = []
    for p in sorted(root.iterdir()):
        meta = read_meta(p) if ENTRY_NAME.fullmatch(p.name) and p.is_dir() else None
        if meta is None:
            continue
        key = meta.get("key") if isinstance(meta.get("key"), dict) else {}
        sources = [str(s[2]) for s in key.get("source", []) if isinstance(s, list) and len(s) > 2]
        size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        out.append(Entry(p, p.name.split("-")[0], size, p.stat().st_mtime, sources, key))
    return sorted(out, key=lambda e: e.used)


def remove(entry: Entry) -> None:
    """Delete an entry (a process reading its memory-mapped files keeps reading them); an OS error
    is one OutputError naming the entry."""
    try:
        shutil.rmtree(entry.path)
    except FileNotFoundError:
        pass  # another process removed it first
    except OSError as e:
        raise OutputError(f"{files.shown(entry.path)}: cannot remove the cache entry: {files.os_problem(e)}") from None
