"""`rnnkit export`: a model's one-step function as ONNX, for decoders outside Python.

Writes FILE (tokens and state in; log-probabilities and state out: docs/format.md, "ONNX
export") and FILE.json beside it (vocabulary, special ids, layers, width, cell), both
atomically. Needs PyTorch and onnx: pip install 'rnnkit[onnx]'."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .common import add_model_argument, positive_int, print_out

FORMATS = ("onnx",)
OPSET = 17  # torch_engine.onnx_export.OPSET, repeated here so --help imports no torch


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export the one-step function for decoders outside Python",
                              description="Write MODEL_DIR's one recurrent step (token ids and state in; "
                                          "log-probabilities and state out) as an ONNX file, with FILE.json "
                                          "beside it holding the vocabulary and what a decoder needs.")
    add_model_argument(p)
    p.add_argument("--format", default="onnx", metavar="FORMAT",
                   help=f"the file format: {', '.join(FORMATS)} (default: onnx)")
    p.add_argument("--out", "-o", required=True, metavar="FILE",
                   help="the file to write, such as model.onnx; FILE.json is written beside it (required)")
    p.add_argument("--opset", type=positive_int, default=OPSET, metavar="N",
                   help=f"the ONNX opset version to target (default: {OPSET})")


def _check_installed() -> None:
    """A one-line error naming the extra when torch or onnx cannot be imported."""
    for name in ("torch", "onnx"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise ConfigError(f"export --format onnx needs {name}, which is not installed: "
                              "pip install 'rnnkit[onnx]'") from None


def export_onnx(model_dir: str | os.PathLike, out: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write MODEL_DIR's step function to `out` and the sidecar `out`.json, together and
    atomically (rnnkit.files); returns the sidecar's path."""
    from .. import checkpoint
    from ..files import atomic_write_files, json_bytes
    from ..torch_engine.onnx_export import export

    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out: {out} is a directory; give a file name such as {out / 'model.onnx'}")
    ckpt = checkpoint.load(model_dir)
    data, meta = export(ckpt, out.name, os.fspath(Path(model_dir).resolve()), opset)
    side = Path(f"{os.fspath(out)}.json")
    atomic_write_files({out: data, side: json_bytes(meta)})
    return side


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {args.format!r}")
    _check_installed()
    side = export_onnx(args.model, args.out, args.opset)
    print_out(f"wrote {args.out} and {side}")
    return 0
