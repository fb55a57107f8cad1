"""`rnnkit gradcheck`: check backpropagation through time against float64 centred finite
differences on a small random model; the model options are ModelConfig's. The problem has 7
token ids and hidden width 4; with --softmax adaptive the cut-offs default to 3 5 and
--div-value to 2 (tail projections of 2 and 1 units)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..config import ModelConfig
from .common import finite_float, whole_number
from .options import add_options, given

VOCAB, HIDDEN = 7, 4  # the size of numpy_engine.gradcheck's problem


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("gradcheck", help="check backpropagation through time against finite differences",
                              description="Float64 centred-difference gradient check of every parameter of a "
                                          "small random model; prints the worst relative error per parameter.")
    add_options(p, ModelConfig, ("cell", "nonlinearity", "num_layers", "tie_weights", "softmax"))
    add_options(p, ModelConfig, ("cutoffs", "div_value"), shown={"cutoffs": "3 5 with --softmax adaptive",
                                                                 "div_value": "2 with --softmax adaptive"})
    p.add_argument("--seed", type=whole_number, default=0, metavar="N", help="seed of the random model (default: 0)")
    p.add_argument("--tolerance", type=finite_float, default=1e-6, metavar="X",
                   help="largest relative error that passes (default: 1e-06)")


def run(args: argparse.Namespace) -> int:
    from ..numpy_engine import gradcheck
    from ..numpy_engine.gradcheck import ADAPTIVE_DEFAULTS

    options = given(args, ModelConfig)
    if options.get("softmax") == "adaptive":
        options = {**ADAPTIVE_DEFAULTS, **options}
    cfg = ModelConfig(vocab_size=VOCAB, embed_dim=HIDDEN, hidden_dim=HIDDEN, **options)
    cfg.validate("gradcheck options")
    # a relu pre-activation too close to the kink raises ConfigError ("choose another seed")
    errors = gradcheck(cfg.cell, num_layers=cfg.num_layers, nonlinearity=cfg.nonlinearity,
                       tie_weights=cfg.tie_weights, seed=args.seed, softmax=cfg.softmax, cutoffs=cfg.cutoffs,
                       div_value=cfg.div_value)
    width = max(len(k) for k in errors)
    output = f", adaptive softmax (cut-offs {' '.join(map(str, cfg.cutoffs))})" if cfg.adaptive else ""
    print(f"gradient check: {cfg.cell}{' ' + cfg.nonlinearity if cfg.cell == 'rnn' else ''}, "
          f"{cfg.num_layers} layer(s){output}, full BPTT, float64 centred differences")
    for k, v in errors.items():
        print(f"  {k:<{width}}  max relative error {v:.2e}  {'ok' if v <= args.tolerance else 'FAIL'}")
    worst = max(errors.values())
    ok = worst <= args.tolerance and not math.isnan(worst)
    print(f"{'PASS' if ok else 'FAIL'}: worst {worst:.2e} (tolerance {args.tolerance:.0e})")
    return 0 if ok else 1
