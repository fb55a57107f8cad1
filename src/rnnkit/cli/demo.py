"""`rnnkit demo`: train a small word-level model offline on the Python documentation that
ships with CPython, then show what it learned: validation perplexity against a unigram
baseline, generated sentences, and the scores of a grammatical and a scrambled sentence.
Run again, it replaces the model of its previous run (and only such a model) in --out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..config import TokenizerConfig, TrainConfig
from ..errors import ConfigError
from .common import finite_float, nonneg_int, whole_number
from .options import add_engine_options

GOOD = "the function returns a new list of the items ."
SCRAMBLED = "list the returns of items new a function the ."

DEMO_MODEL = {"cell": "gru", "embed_dim": 96, "hidden_dim": 128, "num_layers": 1}
DEMO_TOKENIZER = TokenizerConfig(level="word", lowercase=True, max_vocab=5000, min_count=2)
DEMO_CORPUS = "python-docs"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("demo", help="train a small model offline in about a minute and try it",
                              description="Trains a word-level model on the Python documentation that ships with "
                                          "CPython (no downloads), then evaluates, generates and scores with it.")
    p.add_argument("--out", default="rnnkit-demo-model", metavar="MODEL_DIR",
                   help="where to save the model; a model of an earlier demo there is replaced, any other is "
                        "refused (default: ./rnnkit-demo-model)")
    p.add_argument("--minutes", type=finite_float, default=1.0, metavar="X", help="training time budget (default: 1)")
    p.add_argument("--max-steps", type=nonneg_int, default=0, metavar="N",
                   help="stop after N updates instead of the time budget (default: 0 = use --minutes)")
    p.add_argument("--seed", type=whole_number, default=0, metavar="N", help="random seed (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine_options(p)


def run(args: argparse.Namespace) -> int:
    return run_demo(Path(args.out), minutes=args.minutes, max_steps=args.max_steps, engine=args.engine,
                    device=args.device, seed=args.seed, progress=not args.quiet)


def demo_config(minutes: float, max_steps: int, engine: str, device: str, seed: int) -> TrainConfig:
    """The demo's training options: a step budget when max_steps > 0, else a time budget."""
    return TrainConfig(engine=engine, device=device, batching="stream", batch_size=32, seq_len=32, epochs=50,
                       max_minutes=0.0 if max_steps else minutes, max_steps=max_steps, optimizer="adam", lr=0.004,
                       schedule="plateau", lr_decay=0.5, clip=5.0, seed=seed, eval_every=0)


def run_demo(out: Path, minutes: float = 1.0, max_steps: int = 0, engine: str = "numpy", device: str = "auto",
             seed: int = 0, progress: bool = True) -> int:
    """Train, then report; exit status 0 when the model beats the unigram baseline."""
    from .. import api
    from ..training import train

    overwrite = _replaceable(out)
    t0 = time.perf_counter()
    budget = f"{max_steps:,} steps" if max_steps else f"about {minutes:g} minute(s)"
    print(f"rnnkit demo: training a {DEMO_MODEL['cell'].upper()} language model on the Python documentation "
          f"(pydoc_data, ships with CPython) for {budget} on the {engine} engine...")
    res = train(DEMO_CORPUS, out, model=dict(DEMO_MODEL), tokenizer=DEMO_TOKENIZER,
                config=demo_config(minutes, max_steps, engine, device, seed), progress=progress,
                log=lambda m: print("  " + m, file=sys.stderr), overwrite=overwrite)
    lm = api.load(out, engine=engine, device=device)
    better = res.valid.ppl < res.unigram.ppl
    _report_training(res, lm, better)
    _report_use(lm, seed)
    _report_next(out)
    print(f"(demo took {time.perf_counter() - t0:.0f} s)")
    return 0 if better else 1


def _replaceable(out: Path) -> bool:
    """Whether `out` holds a model (or a run) that an earlier demo made, or a run stopped before
    it saved a model: that one is replaced; an empty or missing directory needs nothing
    replaced; anything else is refused."""
    from ..training.corpus import source_identity
    from ..training.rundir import run_files

    found = run_files(out)
    if not found:
        return False
    if found == ["metrics.jsonl"]:
        return True
    try:
        data = json.loads((out / "trainer_state" / "state.json").read_text(encoding="utf-8"))["data"]
        if data["corpus"] == source_identity(DEMO_CORPUS):
            return True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise ConfigError(f"{out}: holds a model or a run that rnnkit demo did not make; give the demo another --out "
                      "(or remove it)")


def _report_training(res: Any, lm: Any, better: bool) -> None:
    print(f"\nValidation perplexity: {res.valid.ppl:,.1f}   (unigram baseline: {res.unigram.ppl:,.1f}; "
          f"{'the RNN is better' if better else 'not yet better - train longer: --minutes or --max-steps'})")
    print(f"  trained {res.steps:,} steps on {res.tokens:,} tokens in {res.seconds:.0f} s; "
          f"vocabulary {len(lm.vocab):,} words, {lm.model.num_parameters():,} parameters")


def _report_use(lm: Any, seed: int) -> None:
    print("\nGenerated sentences (temperature 0.8):")
    for text in lm.generate(temperature=0.8, num_samples=3, seed=seed, max_len=30, min_len=4):
        print(f"  {text}")
    good, bad = lm.score(GOOD), lm.score(SCRAMBLED)
    print("\nLog-probability (natural log) of a sentence and the same words scrambled:")
    print(f"  {good:8.2f}  {GOOD}")
    print(f"  {bad:8.2f}  {SCRAMBLED}")
    print(f"  the model finds the grammatical one {'more' if good > bad else 'LESS'} likely "
          f"(by a factor of e^{abs(good - bad):.1f})")


def _report_next(out: Path) -> None:
    print(f"\nThe model is in {out}/ (config.json, vocab.json, model.safetensors, metrics.jsonl). Try next:")
    print(f"  rnnkit generate {out} --prompt \"the list\" --num-samples 3 --temperature 0.7")
    print(f"  echo \"{GOOD}\" | rnnkit score {out} - --per-token")
    print("  rnnkit gradcheck --cell lstm --num-layers 2")
    print("  rnnkit train --help")
