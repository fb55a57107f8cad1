"""Helpers the commands share: number types for argparse, the MODEL_DIR argument, the list of
known datasets for --help, reading input lines as a stream, opening the output (and printing
to stdout) with one-line errors, the progress bar."""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
_NOTHING = object()


def number(cast: type, minimum: float | None = None) -> Callable[[str], Any]:
    """An argparse type: `cast` the text, refuse NaN / Inf and values below `minimum`."""
    what = "a whole number" if cast is int else "a number"

    def parse(text: str) -> Any:
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    return parse


whole_number, nonneg_int, positive_int, finite_float = number(int), number(int, 0), number(int, 1), number(float)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_DIR", help="a model directory (the --out of rnnkit train)")


def add_batch_size(parser: argparse.ArgumentParser, default: int, what: str = "sentences") -> None:
    parser.add_argument("--batch-size", type=positive_int, default=default, metavar="N",
                        help=f"{what} per batch; more is faster and uses more memory (default: {default})")


def _availability(name: str, spec: Any) -> str:
    if spec.builtin:
        return "built in, no download needed"
    if all(f.url for f in spec.files.values()):
        return f"public download: rnnkit download {name}"
    return "no public download: copy it by hand"


def datasets_help() -> str:
    """The known datasets, generated from rnnkit.data.KNOWN_DATASETS (built-in ones first): what
    each is, its splits, and whether it is built in, has a public download or must be copied."""
    from ..data import KNOWN_DATASETS

    width = max(map(len, KNOWN_DATASETS))
    lines = ["known datasets (NAME, or NAME:SPLIT such as ptb:valid):"]
    for name, spec in sorted(KNOWN_DATASETS.items(), key=lambda item: not item[1].builtin):
        lines.append(f"  {name:<{width}}  {spec.description}")
        lines.append(f"  {'':<{width}}  splits {', '.join(spec.splits)}; {_availability(name, spec)}")
    return "\n".join(lines)


def input_lines(path: str) -> Iterator[str]:
    """The lines of a file, or of stdin for '-', read as they are asked for (rnnkit.data.lines:
    bounded memory, read_text's checks and messages), split on "\\n" only as the corpus readers
    do (str.splitlines would also split on form feeds and Unicode line separators, and output
    lines would drift from input lines). The first line is read now: a missing, unreadable or
    empty input is refused before a model is loaded."""
    from ..data.lines import iter_lines

    return started(iter_lines(sys.stdin.buffer if path == "-" else path, input_name(path)))


def started(items: Iterable[T]) -> Iterator[T]:
    """`items` with its first element already taken, so that what fails at the start of a
    stream (bad input, the first chunk's scoring) fails now, before an output file is opened."""
    it = iter(items)
    first = next(it, _NOTHING)
    return it if first is _NOTHING else itertools.chain([first], it)


def input_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


@contextmanager
def open_output(path: str) -> Iterator[TextIO]:
    """stdout for '-', else the file opened for writing (UTF-8; rnnkit.files.open_text). An OS
    error (a directory that does not exist, a directory as the target, permission denied, no
    space left) is one OutputError naming the file, or <stdout>."""
    from ..files import OutputFile, open_text

    if path == "-":
        yield OutputFile(sys.stdout, "<stdout>")
    else:
        with open_text(path) as f:
            yield f


def print_out(text: str) -> None:
    """`text` and a newline on stdout, flushed now: a full disk or a closed terminal is one
    OutputError line (<stdout>: ...), not a traceback at exit."""
    from ..files import OutputFile

    out = OutputFile(sys.stdout, "<stdout>")
    out.write(text + "\n")
    out.flush()


@contextmanager
def progress_bar(total: int | None, what: str) -> Iterator[Callable[[int], Any]]:
    """A tqdm bar on stderr while scoring, only when stderr is a terminal (and, when the total
    is known, for 1000 sentences or more; None: streaming, a count without a total); yields
    its update function."""
    from tqdm import tqdm

    small = total is not None and total < 1000
    bar = tqdm(total=total, desc=what, unit="sent", file=sys.stderr, dynamic_ncols=True, leave=False,
               disable=True if small else None)
    try:
        yield bar.update
    finally:
        bar.close()
