"""The models `rnnkit analyze gradients` and `rnnkit analyze memory` run on, and their shared
options: trained models on held-out text (MODEL_DIR FILE, --compare MODEL_DIR ...) and freshly
initialised cells on random ids (--cell rnn lstm --hidden N --layers L), all on one plot."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CELLS, NONLINEARITIES, TrainConfig
from ..errors import ConfigError
from .common import finite_float, nonneg_int, positive_int
from .options import add_options


@dataclass
class Subject:
    """One model to analyse: its label, the float64 model, and the held-out text's ids (None
    for a fresh model, which reads uniform random ids)."""

    label: str
    model: Any
    ids: np.ndarray | None

    def windows(self, length: int, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """x, y (length, batch): windows of the text at random offsets, or random ids."""
        from ..analysis.inputs import random_windows, text_windows

        if self.ids is None:
            return random_windows(self.model.config.vocab_size, length, batch, seed)
        return text_windows(self.ids, length, batch, seed)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """MODEL_DIR FILE (optional), --compare, the fresh-cell options, --seed, --out, --engine, --device."""
    p.add_argument("model", nargs="?", metavar="MODEL_DIR", help="a trained model directory (the --out of rnnkit train)")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="held-out text to run it on: a file, or a dataset split such as tinyshakespeare:valid")
    p.add_argument("--compare", nargs="+", default=[], metavar="MODEL_DIR",
                   help="more trained models, on the same FILE and the same plot")
    fresh = p.add_argument_group("freshly initialised cells (on random ids)")
    fresh.add_argument("--cell", nargs="+", choices=CELLS, default=[], metavar="CELL",
                       help=f"one fresh model per cell named ({', '.join(CELLS)}), each on the plot")
    fresh.add_argument("--hidden", type=positive_int, default=128, metavar="N", help="hidden width H (default: 128)")
    fresh.add_argument("--layers", type=positive_int, default=1, metavar="L", help="layers (default: 1)")
    fresh.add_argument("--nonlinearity", choices=NONLINEARITIES, default="tanh",
                       help="activation of the rnn cell (default: tanh)")
    fresh.add_argument("--forget-bias", nargs="+", type=finite_float, default=[0.0], metavar="X",
                       help="added to a fresh LSTM's forget-gate bias, one LSTM per value (default: 0, PyTorch's "
                            "initialisation; 1 is TensorFlow's and Keras')")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="S",
                   help="seed of the windows, replacements and fresh weights (default: 0)")
    p.add_argument("--out", default=None, metavar="FILE.png", help="draw the plot there (needs matplotlib)")
    add_options(p, TrainConfig, ("engine", "device"), keep_default=True)


def check_arguments(args: argparse.Namespace, what: str) -> None:
    """Refuse, before anything is loaded, a command that names no model or lacks FILE."""
    if args.model is None and not args.cell:
        raise ConfigError(f"analyze {what}: give MODEL_DIR FILE (a trained model on held-out text) or "
                          "--cell CELL ... (freshly initialised cells)")
    if (args.model is not None or args.compare) and args.file is None:
        raise ConfigError(f"analyze {what}: give the held-out text FILE after MODEL_DIR")
    if args.compare and args.model is None:
        raise ConfigError(f"analyze {what}: --compare adds models to MODEL_DIR FILE; give those first")
    if args.forget_bias != [0.0] and "lstm" not in args.cell:
        raise ConfigError("--forget-bias applies to fresh LSTMs: give --cell lstm")
    if args.out is not None:
        from ..analysis.figures import image_format

        image_format(args.out)  # no matplotlib, or a format it lacks: refused now, not after the numbers


def subjects(args: argparse.Namespace) -> Iterator[Subject]:
    """The models the command names, one at a time: MODEL_DIR, each --compare, each --cell."""
    for model_dir in ([args.model] if args.model else []) + args.compare:
        yield trained_subject(model_dir, args.file, args.engine, args.device)
    for cell in args.cell:
        for bias in args.forget_bias if cell == "lstm" else [0.0]:
            yield fresh_subject(args, cell, bias)


def trained_subject(model_dir: str, file: str, engine: str, device: str) -> Subject:
    from ..analysis.inputs import load_float64
    from ..data import encode_source
    from ..files import shown

    model, ck = load_float64(model_dir, engine, device)
    ids = np.asarray(encode_source(file, ck.tokenizer, ck.vocab).ids)
    c = ck.model
    return Subject(f"{shown(Path(model_dir).name)} ({c.cell} {c.num_layers}x{c.hidden_dim})", model, ids)


def fresh_subject(args: argparse.Namespace, cell: str, forget_bias: float) -> Subject:
    from ..analysis.inputs import fresh_model

    model = fresh_model(cell, args.hidden, args.layers, seed=args.seed, engine=args.engine,
                        nonlinearity=args.nonlinearity, forget_bias=forget_bias, device=args.device)
    name = f"rnn {args.nonlinearity}" if cell == "rnn" else cell
    if (cell == "lstm" and len(args.forget_bias) > 1) or forget_bias:
        name += f", forget bias {forget_bias:g}"
    return Subject(f"{name} ({args.layers}x{args.hidden}, fresh)", model, None)

