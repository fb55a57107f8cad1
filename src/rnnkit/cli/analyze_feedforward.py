"""`rnnkit analyze feedforward`: the series' first network, a 2-H-2 tanh/softmax classifier
trained by full-batch gradient descent on the two moons, against logistic regression. Prints
the gradient check and both training accuracies; draws the decision boundary (--out) and the
boundaries of several hidden sizes (--grid-out)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import finite_float, nonneg_int, number, positive_int, print_out

DEFAULT_HIDDEN_SIZES = [1, 2, 3, 4, 5, 20, 50]  # the post's figure
TOLERANCE = 1e-6  # largest relative error the gradient check passes
nonneg_float = number(float, 0)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "feedforward", help="the feed-forward classifier on the two moons, against logistic regression",
        description="Train the network of 'Implementing a Neural Network from Scratch' (2 inputs, one tanh "
                    "hidden layer, softmax over 2 classes, L2 regularisation, full-batch gradient descent) on "
                    "a seeded two-moons data set; print the gradient check and the training accuracy of the "
                    "network and of logistic regression, and draw the decision boundaries.")
    p.add_argument("--hidden", type=positive_int, default=3, metavar="N", help="hidden units (default: 3)")
    p.add_argument("--hidden-sizes", type=positive_int, nargs="+", default=DEFAULT_HIDDEN_SIZES, metavar="N",
                   help="hidden sizes of the --grid-out figure (default: 1 2 3 4 5 20 50)")
    p.add_argument("--samples", type=positive_int, default=200, metavar="N", help="points in the data set (default: 200)")
    p.add_argument("--noise", type=nonneg_float, default=0.2, metavar="X",
                   help="standard deviation of the Gaussian noise (default: 0.2)")
    p.add_argument("--passes", type=nonneg_int, default=20_000, metavar="N",
                   help="passes of full-batch gradient descent (default: 20000)")
    p.add_argument("--lr", type=finite_float, default=0.01, metavar="X", help="learning rate (default: 0.01)")
    p.add_argument("--reg", type=nonneg_float, default=0.01, metavar="X",
                   help="L2 regularisation strength on the weights (default: 0.01)")
    p.add_argument("--seed", type=nonneg_int, default=0, metavar="N",
                   help="seed of the data set and of the initial weights (default: 0)")
    p.add_argument("--out", default=None, metavar="PNG",
                   help="draw the network's decision boundary (and the baseline's) to this PNG")
    p.add_argument("--grid-out", default=None, metavar="PNG",
                   help="draw the boundaries of every --hidden-sizes network to this PNG")


def run(args: argparse.Namespace) -> int:
    from ..analysis import feedforward as ff
    from ..analysis.moons import make_moons

    ff.check_settings(args.passes, args.lr, args.reg)
    _check_outputs(args)
    X, y = make_moons(args.samples, args.noise, args.seed)
    settings = {"passes": args.passes, "lr": args.lr, "reg": args.reg, "seed": args.seed}
    print_out(f"two moons: {args.samples} points, noise {args.noise:g}, seed {args.seed}; full-batch gradient "
              f"descent: {args.passes} passes, learning rate {args.lr:g}, L2 {args.reg:g}")
    errors = ff.gradcheck(ff.network_sizes(args.hidden), reg=args.reg, seed=args.seed)
    worst = max(errors.values())
    ok = worst <= TOLERANCE
    print_out(f"gradient check ({', '.join(errors)}; float64 centred differences): worst relative error "
              f"{worst:.1e}  {'ok' if ok else 'FAIL'} (tolerance {TOLERANCE:.0e})")
    net = ff.train_network(X, y, args.hidden, **settings)
    baseline = ff.train_logistic_regression(X, y, **settings)
    _report([net, baseline], suffix={baseline.name: " (baseline)"})
    _draw(args, ff, X, y, net, baseline, settings)
    return 0 if ok else 1


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse bad figure names before training (and a missing matplotlib when one is asked for)."""
    if args.out is None and args.grid_out is None:
        return
    from ..analysis.boundaries import check_output, pyplot

    pyplot()
    for out in (args.out, args.grid_out):
        if out is not None:
            check_output(out)


def _report(trained: list, suffix: dict | None = None) -> None:
    """One line per classifier: its name, final loss (J / N), training accuracy."""
    suffix = suffix or {}
    names = [f"{t.name}{suffix.get(t.name, '')}" for t in trained]
    width = max(map(len, names))
    for name, t in zip(names, trained):
        print_out(f"  {name:<{width}}  loss {t.loss:.4f}  training accuracy {t.accuracy:.3f}")


def _draw(args, ff, X, y, net, baseline, settings) -> None:
    from ..analysis.boundaries import plot_boundaries, plot_boundary

    if args.out is not None:
        print_out(f"wrote {plot_boundary(net, X, y, args.out, baseline=baseline)}")
    if args.grid_out is not None:
        networks = [net if h == args.hidden else ff.train_network(X, y, h, **settings) for h in args.hidden_sizes]
        print_out("hidden sizes:")
        _report(networks)
        print_out(f"wrote {plot_boundaries(networks, X, y, args.grid_out, baseline=baseline)}")
