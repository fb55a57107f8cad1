"""`rnnkit train`: its options (generated from ModelConfig, TokenizerConfig and TrainConfig),
how a recipe and the command line merge, and the run.

Precedence: dataclass defaults < recipe < options given on the command line. A recipe is a
TOML file (or the name of one shipped in rnnkit/recipes) with optional top-level `corpus` and
`valid` and sections [model], [tokenizer], [train] whose keys are the config fields, the same
names as the options (`hidden_dim` is `--hidden-dim`).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..checkpoint import load_config
from ..config import ModelConfig, TokenizerConfig, TrainConfig
from ..errors import ConfigError
from ..recipes import load_recipe
from .common import datasets_help
from .options import add_options, given

SECTIONS = {"model": ModelConfig, "tokenizer": TokenizerConfig, "train": TrainConfig}  # recipe section -> config

DESCRIPTION = """\
Train a word- or character-level RNN / GRU / LSTM language model. CORPUS is a text file (one
sentence per line, running text, PTB style or CSV: --corpus-format), a directory or a quoted
glob of such files (shards, read in sorted order), or a known dataset (below). The corpus is
encoded once into an id file that training memory-maps, kept in the id cache ($RNNKIT_CACHE,
else ~/.cache/rnnkit/ids) for the next run on the same files and options. The best model by
validation is kept in --out with metrics.jsonl. A directory that already holds a model or a run
is refused unless --resume (continue it exactly) or --overwrite (replace it) is given, and one
run at a time trains into a directory (it is locked). Options given here override the recipe's;
the option names are the field names of config.json and of recipes (--hidden-dim is hidden_dim)."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a model on a corpus", description=DESCRIPTION,
                              epilog=datasets_help())
    p.add_argument("corpus", metavar="CORPUS", nargs="?", help="a file, directory, glob or dataset name (may come from the recipe)")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="the model directory to write")
    p.add_argument("--valid", metavar="FILE",
                   help="validation file (default: the dataset's own split, else the last --valid-fraction)")
    p.add_argument("--recipe", metavar="NAME|FILE.toml", help="a shipped recipe by name, or a TOML file")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in MODEL_DIR from its trainer_state/ (a new run if MODEL_DIR is empty); "
                        "options not given take the saved run's values (--max-steps and --max-minutes: no limit), "
                        "options given must equal them, the corpus files too, except --epochs, --max-steps, "
                        "--max-minutes, --early-stop, --eval-every, --checkpoint-every")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the model or run in MODEL_DIR: the old one is kept until the new run saves its "
                        "first checkpoint, then swapped out (a run that fails before that leaves it as it was)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for section, cls in SECTIONS.items():
        group = p.add_argument_group(f"{section} options (recipe section [{section}])")
        add_options(group, cls, exclude=("vocab_size",), prefix=f"{section}.")


def _merged(recipe: dict[str, Any], section: str, args: argparse.Namespace) -> dict[str, Any]:
    """The recipe's [section] (unknown keys refused, naming the recipe), then the options given."""
    values = dict(recipe.get(section, {}))
    known = {f for f in SECTIONS[section].__dataclass_fields__ if f != "vocab_size"}
    unknown = sorted(set(values) - known)
    if unknown:
        hint = "; vocab_size comes from the corpus (set max_vocab instead)" if "vocab_size" in unknown else ""
        raise ConfigError(f"{recipe['_path']} [{section}]: unknown key(s) {', '.join(unknown)}{hint}")
    return {**values, **given(args, SECTIONS[section], f"{section}.")}


def resolve_train_args(args: argparse.Namespace) -> dict[str, Any]:
    """Merge recipe < command line into the options chosen, checked over the defaults (a
    resumed run puts them over the saved run's instead); returns the train() keyword arguments:
    model, tokenizer and config are dicts of the options chosen."""
    recipe = load_recipe(args.recipe) if args.recipe else {}
    corpus = args.corpus or recipe.get("corpus")
    if not corpus:
        raise ConfigError("train: give a CORPUS (a file, directory, glob or dataset name) or a --recipe that names one")
    source = f" ({recipe['_path']} and the command line)" if recipe else ""
    model, tok, cfg = (_merged(recipe, s, args) for s in SECTIONS)
    if not getattr(args, "resume", False):  # early, clear errors (resumed: over the saved values, in train())
        ModelConfig.check_options(model, f"model options{source}")
    TokenizerConfig.from_dict(tok, f"tokenizer options{source}")
    TrainConfig.from_dict(cfg, f"train options{source}")
    return {"corpus": corpus, "valid": args.valid or recipe.get("valid"), "model": model, "tokenizer": tok,
            "config": cfg}


def summary(res: Any, level: str) -> str:
    """The closing line: the best validation score beside the unigram baseline's, in one unit
    (bits per character for character models, perplexity for word models)."""
    if level == "char":
        metric = f"valid {res.valid.bpc:.4f} bits/char (unigram baseline {res.unigram.bpc:.4f} bits/char)"
    else:
        metric = f"valid perplexity {res.valid.ppl:,.2f} (unigram baseline {res.unigram.ppl:,.2f})"
    return (f"done ({res.stopped}): {res.steps:,} steps, {res.tokens:,} tokens in {res.seconds:,.1f} s; "
            f"best {metric}; model saved in {res.model_dir}")


def run(args: argparse.Namespace) -> int:
    from ..training import train

    kw = resolve_train_args(args)
    res = train(kw["corpus"], args.out, valid=kw["valid"], model=kw["model"], tokenizer=kw["tokenizer"],
                config=kw["config"], resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    if res.is_main:
        print(summary(res, load_config(res.model_dir)[1].level))
    return 0
