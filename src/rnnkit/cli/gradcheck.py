"""`rnnkit gradcheck`: check backpropagation through time against float64 centred finite
differences on a small random model; the model options are ModelConfig's."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..config import ModelConfig
from .common import finite_float, whole_number
from .options import add_options, given


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("gradcheck", help="check backpropagation through time against finite differences",
                              description="Float64 centred-difference gradient check of every parameter of a "
                                          "small random model; prints the worst relative error per parameter.")
    add_options(p, ModelConfig, ("cell", "nonlinearity", "num_layers", "tie_weights"))
    p.add_argument("--seed", type=whole_number, default=0, metavar="N", help="seed of the random model (default: 0)")
    p.add_argument("--tolerance", type=finite_float, default=1e-6, metavar="X",
                   help="largest relative error that passes (default: 1e-06)")


def run(args: argparse.Namespace) -> int:
    from ..numpy_engine import gradcheck

    cfg = ModelConfig(vocab_size=2, **given(args, ModelConfig))
    cfg.validate("gradcheck options")
    # a relu pre-activation too close to the kink raises ConfigError ("choose another seed")
    errors = gradcheck(cfg.cell, num_layers=cfg.num_layers, nonlinearity=cfg.nonlinearity,
                       tie_weights=cfg.tie_weights, seed=args.seed)
    width = max(len(k) for k in errors)
    print(f"gradient check: {cfg.cell}{' ' + cfg.nonlinearity if cfg.cell == 'rnn' else ''}, "
          f"{cfg.num_layers} layer(s), full BPTT, float64 centred differences")
    for k, v in errors.items():
        print(f"  {k:<{width}}  max relative error {v:.2e}  {'ok' if v <= args.tolerance else 'FAIL'}")
    worst = max(errors.values())
    ok = worst <= args.tolerance and not math.isnan(worst)
    print(f"{'PASS' if ok else 'FAIL'}: worst {worst:.2e} (tolerance {args.tolerance:.0e})")
    return 0 if ok else 1
