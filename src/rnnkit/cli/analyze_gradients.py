"""`rnnkit analyze gradients`: how the error of one prediction fades going back in time, the
norm of dL_t / dh_{t-k} for k = 0..K and the step Jacobians' norms (rnnkit.analysis.gradients),
for trained models on held-out text or fresh cells on random ids; a table per model and a plot."""

from __future__ import annotations

import argparse
from typing import Any

from .analyze_models import add_model_arguments, check_arguments, subjects
from .common import nonneg_int, positive_int, print_out

DESCRIPTION = """\
For the loss of one prediction, L_t = -ln p(y_t | x_1..x_t), the norm of its gradient at the top
layer's hidden state k steps back, ||dL_t / dh_{t-k}||, for k = 0..K, averaged over positions
(the last P positions of B windows, after a warm-up and K steps of history), with the spectral
norms of the step Jacobians ds_t / ds_{t-1} (s = h, or (h, c) for the LSTM). One row per k;
the decay per step is the slope of the log of the mean. See docs/analysis.md.

examples:
  rnnkit analyze gradients --cell rnn gru lstm --forget-bias 0 1 --hidden 128 --out gradients.png
  rnnkit analyze gradients runs/lstm tinyshakespeare:valid --compare runs/rnn --out trained.png
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("gradients", help="how gradients vanish going back in time",
                              description=DESCRIPTION)
    add_model_arguments(p)
    p.add_argument("--steps", type=nonneg_int, default=50, metavar="K", help="steps back (default: 50)")
    p.add_argument("--positions", type=positive_int, default=8, metavar="P",
                   help="positions per window whose loss is traced back (default: 8)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="B", help="windows (default: 32)")
    p.add_argument("--warmup", type=nonneg_int, default=20, metavar="W",
                   help="steps run before the first state traced back to, so it is not the zero state (default: 20)")
    p.add_argument("--jacobians", type=nonneg_int, default=32, metavar="S",
                   help="step Jacobians sampled for their spectral norm (default: 32)")


def run(args: argparse.Namespace) -> int:
    from ..analysis.gradients import measure_gradients

    check_arguments(args, "gradients")
    reports = []
    for s in subjects(args):
        x, y = s.windows(args.warmup + args.steps + args.positions, args.batch_size, args.seed)
        report = measure_gradients(s.model, x, y, steps=args.steps, origins=args.positions, label=s.label,
                                   jacobians=args.jacobians, seed=args.seed)
        print_out(report.table() + "\n")
        reports.append(report)
    print_out(comparison(reports))
    if args.out is not None:
        from ..analysis.figures import gradient_series, plot_lags

        where = f"on {args.file}" if args.file else "on random ids"
        path = plot_lags([gradient_series(r) for r in reports], args.out,
                         ylabel=r"mean $\|\partial L_t \,/\, \partial h_{t-k}\|$",
                         title=f"Gradient of the loss at t with respect to the hidden state k steps back\n({where})")
        print_out(f"figure: {path}")
    return 0


def comparison(reports: list) -> str:
    """One line per model: the mean norm at k = 0 and k = K and the decay per step."""
    K = reports[0].steps
    width = max(len(r.label) for r in reports)
    lines = ["mean ||dL_t/dh_t-k||:", f"  {'':<{width}}  {'k = 0':>9}  {f'k = {K}':>9}  decay per step"]
    for r in reports:
        lines.append(f"  {r.label:<{width}}  {r.mean[0]:9.3e}  {r.mean[-1]:9.3e}  x{r.decay():.4f}")
    return "\n".join(lines)
