"""`rnnkit analyze activations MODEL_DIR FILE`: hidden states and gates per token to files
(.npz; an LSTMVis project when h5py is installed) and a heat map of one sentence's most
active units (rnnkit.analysis.activations)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config import BATCHING_MODES, TrainConfig
from ..errors import ConfigError
from .common import add_model_argument, positive_int, print_out
from .options import add_engine_options, add_options

FORMATS = ("auto", "npz", "lstmvis", "both")
RANKS = ("abs", "var")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "activations", help="hidden states and gates per token, to .npz / LSTMVis files and a heat map",
        description="Run MODEL_DIR over FILE (tokenized as the model reads it: <s> tokens </s> per sentence) "
                    "and write, per token and layer, the hidden state h (and the LSTM's cell state c) and "
                    "the gates (GRU r z n, LSTM i f g o): OUT/activations.npz, the LSTMVis files "
                    "OUT/states.h5, words.h5, words.dict, lstm.yml (needs h5py: pip install "
                    "'rnnkit[hdf5]'), and OUT/heatmap.png, the most active units over one sentence.")
    add_model_argument(p)
    p.add_argument("file", metavar="FILE", help="a text file, a directory or glob of files, or a known "
                                                "dataset split, read as rnnkit eval reads it")
    p.add_argument("--out", default="activations", metavar="DIR",
                   help="the directory to write into, made if missing (default: ./activations)")
    p.add_argument("--output-format", choices=FORMATS, default="auto",
                   help="npz: activations.npz; lstmvis: the LSTMVis files; both; auto: both when h5py is "
                        "installed, else npz (default: auto; --format is FILE's format)")
    p.add_argument("--mode", choices=BATCHING_MODES, default=None,
                   help="stream: the state carried from sentence to sentence; sentences: reset at each <s> "
                        "(default: how the model was trained)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True,
                   help="draw OUT/heatmap.png (needs matplotlib: pip install 'rnnkit[plot]') (default: on)")
    p.add_argument("--sentence", type=positive_int, default=1, metavar="I",
                   help="the sentence the heat map shows, 1 for the first (default: 1)")
    p.add_argument("--units", type=positive_int, default=20, metavar="N",
                   help="how many units the heat map shows (default: 20)")
    p.add_argument("--layer", type=positive_int, default=None, metavar="L",
                   help="the layer the heat map shows, 1 for the lowest (default: the top one)")
    p.add_argument("--state", default="h", metavar="NAME",
                   help="what the heat map shows: h, c (lstm) or a gate: r z n (gru), i f g o (lstm) (default: h)")
    p.add_argument("--rank", choices=RANKS, default="abs",
                   help="most active by abs: mean |value| over the sentence, or var: its variance (default: abs)")
    add_options(p, TrainConfig, ("corpus_format", "csv_column"), keep_default=True)
    add_engine_options(p)


def _formats(choice: str) -> tuple[bool, bool]:
    """(write npz, write LSTMVis); an explicit LSTMVis without h5py is refused now."""
    from ..analysis.activations import _h5py

    if choice == "auto":
        try:
            _h5py()
        except ConfigError:
            print("rnnkit: h5py is not installed: LSTMVis files skipped (pip install 'rnnkit[hdf5]')",
                  file=sys.stderr)
            return True, False
        return True, True
    if choice != "npz":
        _h5py()
    return choice != "lstmvis", choice != "npz"


def _check_plot_options(args: argparse.Namespace, cfg: Any) -> None:
    from ..analysis.activations import NAMES

    if args.state not in NAMES[cfg.cell]:
        raise ConfigError(f"--state: a {cfg.cell} model records {', '.join(NAMES[cfg.cell])}; got {args.state!r}")
    if args.layer is not None and args.layer > cfg.num_layers:
        raise ConfigError(f"--layer {args.layer}: the model has {cfg.num_layers} layer(s)")


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..analysis import activations as A
    from ..data import read_sentences
    from ..files import check_writable_dir, make_dir

    out = Path(args.out)
    check_writable_dir(out, "--out")
    npz, lstmvis = _formats(args.output_format)
    if args.plot:
        A._pyplot()  # matplotlib missing: said now, before the work
    lm = api.load(args.model, engine=args.engine, device=args.device)
    _check_plot_options(args, lm.config)
    sentences = read_sentences(args.file, format=args.corpus_format, csv_column=args.csv_column,
                               level=lm.tokenizer_config.level)
    if args.plot and args.sentence > len(sentences):
        raise ConfigError(f"--sentence {args.sentence}: {args.file} has {len(sentences)} sentence(s)")
    acts = A.activations(lm, sentences, mode=args.mode)
    make_dir(out)
    written = []
    if npz:
        written.append(A.write_npz(acts, out / "activations.npz"))
    if lstmvis:
        written += A.write_lstmvis(acts, out, lm.vocab, title=f"rnnkit {Path(args.model).name}")
    if args.plot:
        layer = (args.layer or lm.config.num_layers) - 1
        written.append(A.plot_heatmap(acts, out / "heatmap.png", sentence=args.sentence - 1, layer=layer,
                                      name=args.state, units=args.units, rank=args.rank,
                                      title=Path(args.model).name))
    for path in written:
        print_out(str(path))
    return 0
