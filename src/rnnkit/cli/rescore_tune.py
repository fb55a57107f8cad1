"""`rnnkit rescore --tune`: the weights options of rescore (--weights, --tune, --save-weights),
their checks and precedence, and the tuning run (search, report, weights file, rescored output)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigError


def add_tune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tune", default=None, metavar="REFERENCES",
                   help="find the --lm-weight, --word-penalty (and --lambda with --mix-lm) of lowest corpus WER "
                        "on this dev n-best set against REFERENCES ('uttid words...' or 'id<TAB>words' lines), "
                        "starting from the given weights, then write the list rescored with them; holds the "
                        "dev set's scores in memory (dev sets are small) (default: no tuning)")
    p.add_argument("--save-weights", default=None, metavar="FILE",
                   help="with --tune: write the chosen weights here as JSON, for --weights; an existing FILE "
                        "is replaced, as --output is (default: not written)")


def check_tune_options(args: argparse.Namespace) -> None:
    """Options that do not go together: ConfigError naming them."""
    if args.save_weights and not args.tune:
        raise ConfigError("--save-weights needs --tune REFERENCES (it writes the tuned weights)")
    if args.tune and args.carry_context:
        raise ConfigError("--tune and --carry-context do not go together: the carried state depends on the "
                          "weights being tuned; tune without it, then rescore with --weights and --carry-context")
    if args.lam is not None and not args.mix_lm:
        raise ConfigError("--lambda needs --mix-lm FILE.arpa (it weighs the RNN against the n-gram model)")
    if args.utt2conv and not args.carry_context:
        raise ConfigError("--utt2conv needs --carry-context")


def resolve_weights(args: argparse.Namespace) -> tuple[Any, str]:
    """(Weights, log base): each value from the command line when given there, else from the
    --weights file when it has it, else the default (1, 0, lambda 0.5 with --mix-lm, base 10)."""
    from ..inference.tune import Weights

    file_w, file_base = _read_weights(args.weights) if args.weights else (None, None)
    if file_w is not None and file_w.lam is not None and not args.mix_lm:
        print(f"note: {args.weights} has a lambda ({file_w.lam}); it is used only with --mix-lm", file=sys.stderr)
    lam = None
    if args.mix_lm:
        lam = args.lam if args.lam is not None else (file_w.lam if file_w and file_w.lam is not None else 0.5)

    def pick(given: float | None, key: str, default: float) -> float:
        return given if given is not None else (getattr(file_w, key) if file_w else default)

    return (Weights(pick(args.lm_weight, "lm_weight", 1.0), pick(args.word_penalty, "word_penalty", 0.0), lam),
            args.log_base or file_base or "10")


def _read_weights(path: str) -> Any:
    from ..data.lines import iter_lines
    from ..errors import InputError
    from ..inference.tune import parse_weights

    try:
        text = "\n".join(iter_lines(path))
    except InputError as e:
        raise ConfigError(str(e)) from None
    return parse_weights(text, path)


def _report(result: Any, log_base: str, mixed: bool) -> None:
    w = result.weights
    lam = f", lambda {w.lam:g}" if mixed else ""
    print(f"tuned on {len(result.features.hyps)} hypotheses for {len(result.features.starts)} id(s): "
          f"lm-weight {w.lm_weight:g}, word-penalty {w.word_penalty:g}{lam} (log base {log_base})", file=sys.stderr)
    for name, c in (("before", result.before), ("after", result.after), ("oracle", result.oracle)):
        print(f"  1-best WER {name:<6} {c.describe()}", file=sys.stderr)


def run_tune(args: argparse.Namespace, lm: Any, hyps: Iterable, start: Any, log_base: str, arpa: Any, source: str,
             write: Callable, best_output: Callable) -> int:
    """Tune on the n-best list, report, save the weights, write the list rescored with them."""
    from .. import files
    from ..inference.tune import read_references, weights_json
    from .common import input_lines, open_output, progress_bar

    refs = read_references(input_lines(args.tune), args.tune)
    with progress_bar(None, "scoring") as update:
        result = lm.tune_weights(hyps, refs, start=start, mix_lm=arpa, log_base=log_base,
                                 batch_size=args.batch_size, progress=update, source=source)
    _report(result, log_base, arpa is not None)
    if args.save_weights:
        tuned_on = {"nbest": source, "references": args.tune, **result.report()}
        files.atomic_write_json(args.save_weights, weights_json(result.weights, log_base, tuned_on))
    with open_output(args.output) as out, best_output(args) as best:
        hyps_n, ids, changed = write(result.groups().items(), out, best, args.nbest_format)
    print(f"rescored {hyps_n} hypotheses for {ids} id(s) with the tuned weights; the best changed for {changed} "
          "of them", file=sys.stderr)
    return 0
