"""Run training recipes by name and record where each lands against its published target.

    python benchmarks/quality.py ptb-small [ptb-small-adaptive ...] [--max-minutes M] [--device cpu]
                                 [--out runs] [--no-record]

Several recipes are trained one after another in the same run (side by side on the same
machine, so their wall times compare), and each later one is also given as a ratio to the first.

Trains with the recipe (recipes/NAME.toml), evaluates the best model on the recipe's `test`
split when it names one (stream mode, as PTB results are reported), else reports the
validation loss, and appends a row to the table at the end of benchmarks/RESULTS.md:
metric, value, target, wall time, training tokens/s, device, the command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rnnkit import api
from rnnkit.config import TokenizerConfig, TrainConfig
from rnnkit.data import read_sentences
from rnnkit.recipes import load_recipe
from rnnkit.training import train

RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def device_name(engine: str, device: str) -> str:
    cpu = f"{platform.machine()} CPU x{__import__('os').cpu_count()}"
    if engine != "torch":
        return cpu
    import torch

    if device in ("cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipes", nargs="+", metavar="recipe")
    ap.add_argument("--max-minutes", type=float, default=None, help="override the recipe's time budget")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None, help="where the run directories go, one per recipe (default runs/)")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args(argv)
    cmd = "python benchmarks/quality.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    done = [run_recipe(name, args, cmd) for name in args.recipes]
    first_name, (first_value, first_wall) = args.recipes[0], done[0]
    for name, (value, wall) in zip(args.recipes[1:], done[1:]):
        print(f"{name} / {first_name}: metric x{value / first_value:.4f} ({(value / first_value - 1):+.2%}), "
              f"wall time x{wall / first_wall:.3f}")
    return 0


def run_recipe(name: str, args: argparse.Namespace, cmd: str) -> tuple[float, float]:
    """Train one recipe, evaluate it, print (and record) its row; (metric value, wall seconds)."""
    r = load_recipe(name)
    tcfg = dict(r.get("train", {}))
    if args.max_minutes is not None:
        tcfg["max_minutes"] = args.max_minutes
    if args.epochs is not None:
        tcfg["epochs"] = args.epochs
    if args.device is not None:
        tcfg["device"] = args.device
    cfg = TrainConfig(**tcfg)
    tok = TokenizerConfig(**r.get("tokenizer", {}))
    out = Path(args.out or ROOT / "runs") / name
    t0 = time.perf_counter()
    res = train(r["corpus"], out, valid=r.get("valid"), model=dict(r.get("model", {})), tokenizer=tok, config=cfg,
                overwrite=out.exists())
    wall = time.perf_counter() - t0
    target = r.get("target", {})
    if r.get("test"):
        lm = api.load(out, engine=cfg.engine, device=cfg.device)
        ev = lm.evaluate(read_sentences(r["test"], level=tok.level), mode="stream", batch_size=cfg.eval_batch_size)
        metric, value = "test_ppl", ev.ppl
        extra = f"valid ppl {res.valid.ppl:.2f}; {ev.count:,} test tokens"
    elif tok.level == "char":
        metric, value = "valid_loss", res.valid.loss
        extra = f"{res.valid.bpc:.3f} bits/char; {res.valid.count:,} valid chars"
    else:
        metric, value = "valid_ppl", res.valid.ppl
        extra = ""
    ok = (value <= target["max"] if "max" in target else None)
    in_time = (wall <= target["max_seconds"] if "max_seconds" in target else None)
    tok_s = res.tokens / res.seconds
    dev = device_name(cfg.engine, cfg.device)
    print(f"\n{name}: {metric} {value:.4f} (target {target.get('max', '-')}{' met' if ok else ' NOT met' if ok is False else ''}); "
          f"wall {wall:.0f} s (limit {target.get('max_seconds', '-')}{'' if in_time in (None, True) else ', over'}); "
          f"{tok_s:,.0f} train tok/s; {res.steps:,} steps, stopped by {res.stopped}; {dev}")
    if not args.no_record:
        row = (f"| {dt.date.today()} | {name} | {metric} | {value:.3f} | {target.get('max', '-')}"
               f"{' ok' if ok else ' missed' if ok is False else ''} | {wall:.0f}"
               f"{' (limit ' + str(target['max_seconds']) + ')' if 'max_seconds' in target else ''} | {tok_s:,.0f} | "
               f"{dev} | `{cmd}` | {extra} |\n")
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(row)
        print(f"recorded in {RESULTS.relative_to(ROOT)}")
    return value, wall


if __name__ == "__main__":
    sys.exit(main())
