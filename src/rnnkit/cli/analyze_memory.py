"""`rnnkit analyze memory`: how far back a model's predictions depend on its input, the change
in the next-token distribution when the token k steps back is replaced (rnnkit.analysis.memory),
for trained models on held-out text or fresh cells on random ids; a table per model and a plot."""

from __future__ import annotations

import argparse
from typing import Any

from .analyze_models import add_model_arguments, check_arguments, subjects
from .common import nonneg_int, positive_int, print_out

DESCRIPTION = """\
Replace one input token (by another drawn from the text's unigram distribution) and measure how
much the next-token distribution k steps later moves, D_k = KL(p || p') or the total variation
1/2 sum |p - p'|, for k = 0..K, averaged over windows at random positions (each after a warm-up).
One row per k; the decay per step is the slope of the log of the mean. See docs/analysis.md.

examples:
  rnnkit analyze memory runs/lstm tinyshakespeare:valid --compare runs/rnn --out memory.png
  rnnkit analyze memory --cell rnn lstm --forget-bias 0 1 --measure kl
"""


def add_parser(subparsers: Any) -> None:
    from ..analysis.memory import MEASURES

    p = subparsers.add_parser("memory", help="how far back predictions depend on the input",
                              description=DESCRIPTION)
    add_model_arguments(p)
    p.add_argument("--steps", type=nonneg_int, default=100, metavar="K", help="steps back (default: 100)")
    p.add_argument("--measure", choices=list(MEASURES), default="tv",
                   help="kl: KL(p || p') in nats; tv: total variation (default: tv)")
    p.add_argument("--batch-size", type=positive_int, default=256, metavar="N",
                   help="windows, each with one token replaced (default: 256)")
    p.add_argument("--warmup", type=nonneg_int, default=50, metavar="W",
                   help="tokens run before the replaced one (default: 50)")


def run(args: argparse.Namespace) -> int:
    from ..analysis.inputs import unigram
    from ..analysis.memory import MEASURES, measure_memory

    check_arguments(args, "memory")
    reports = []
    for s in subjects(args):
        x, _ = s.windows(args.warmup + args.steps + 1, args.batch_size, args.seed)
        probs = unigram(x if s.ids is None else s.ids, s.model.config.vocab_size)
        report = measure_memory(s.model, x, warmup=args.warmup, probs=probs, measure=args.measure,
                                seed=args.seed, label=s.label)
        print_out(report.table() + "\n")
        reports.append(report)
    print_out(comparison(reports))
    if args.out is not None:
        from ..analysis.figures import memory_series, plot_lags

        where = f"on {args.file}" if args.file else "on random ids"
        path = plot_lags([memory_series(r) for r in reports], args.out, ylabel=f"mean {MEASURES[args.measure]}",
                         xlabel="k (steps since the replaced token)",
                         title=f"Change in the next-token distribution when the token k steps back is replaced\n"
                               f"({where})")
        print_out(f"figure: {path}")
    return 0


def comparison(reports: list) -> str:
    """One line per model: the change at k = 0, the reach (1% and 0.1% of it), the decay per step."""
    width = max(len(r.label) for r in reports)
    lines = [f"{'':<{width + 2}}  {'k = 0':>9}  1% at k  0.1% at k  decay per step"]
    for r in reports:
        lines.append(f"  {r.label:<{width}}  {r.mean[0]:9.3e}  {r.reach_text(0.01):>7}  {r.reach_text(0.001):>9}  x{r.decay():.4f}")
    return "\n".join(lines)
