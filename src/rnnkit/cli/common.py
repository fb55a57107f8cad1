"""Helpers the commands share: number types for argparse, the MODEL_DIR argument, the list of
known datasets for --help, reading input lines, opening the output, the progress bar."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO


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


def read_input_lines(path: str) -> list[str]:
    """Lines of a file or of stdin for '-', with the same checks (rnnkit.data.read_text), split
    on "\\n" only as the corpus readers do (str.splitlines would also split on form feeds and
    Unicode line separators, and output lines would drift from input lines)."""
    from ..data.readers import decode_text, read_text, split_lines

    text = decode_text(sys.stdin.buffer.read(), "<stdin>") if path == "-" else read_text(path)
    return split_lines(text)


def input_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


@contextmanager
def open_output(path: str) -> Iterator[TextIO]:
    """stdout for '-', else the file opened for writing (UTF-8)."""
    if path == "-":
        yield sys.stdout
    else:
        with open(path, "w", encoding="utf-8") as f:
            yield f


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Callable[[int], Any]]:
    """A tqdm bar on stderr while scoring (only for 1000 sentences or more, and only when stderr
    is a terminal); yields its update function."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=what, unit="sent", file=sys.stderr, dynamic_ncols=True, leave=False,
               disable=None if total >= 1000 else True)
    try:
        yield bar.update
    finally:
        bar.close()
