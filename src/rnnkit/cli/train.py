"""`rnnkit train`: its options, and how a recipe (TOML) and the command line are merged.

Precedence: built-in defaults < recipe < options given on the command line. A recipe is
a TOML file (or the name of one in recipes/) with optional top-level `corpus` and `valid`
and sections [model], [tokenizer], [train] whose keys are the config dataclass fields.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import ModelConfig, TokenizerConfig, TrainConfig
from ..errors import ConfigError
from ..recipes import load_recipe

# flag, section, field, type, help
OPTIONS: list[tuple[str, str, str, Any, str]] = [
    ("--level", "tokenizer", "level", ["word", "char"], "word or character model (default word)"),
    ("--lowercase", "tokenizer", "lowercase", bool, "lower-case the text first"),
    ("--max-vocab", "tokenizer", "max_vocab", int, "vocabulary cap, specials included (default 10000; 0 = none)"),
    ("--min-count", "tokenizer", "min_count", int, "drop words seen fewer times (default 1)"),
    ("--word-split", "tokenizer", "word_split", ["regex", "whitespace"], "regex tokenizer, or whitespace for pre-tokenized text"),
    ("--cell", "model", "cell", ["rnn", "gru", "lstm"], "recurrent cell (default lstm)"),
    ("--nonlinearity", "model", "nonlinearity", ["tanh", "relu"], "rnn cell activation (default tanh)"),
    ("--hidden", "model", "hidden_dim", int, "hidden units per layer (default 128)"),
    ("--embed", "model", "embed_dim", int, "embedding width (default 128)"),
    ("--layers", "model", "num_layers", int, "stacked layers (default 1)"),
    ("--tie", "model", "tie_weights", bool, "tie decoder and embedding weights (needs --embed == --hidden)"),
    ("--dropout", "model", "dropout", float, "dropout between layers and on the output (default 0)"),
    ("--embed-dropout", "model", "embed_dropout", float, "dropout on embeddings (default 0)"),
    ("--engine", "train", "engine", ["numpy", "torch"], "numpy (default) or torch"),
    ("--device", "train", "device", ["cpu", "cuda", "auto"], "torch engine device (default auto)"),
    ("--batching", "train", "batching", ["stream", "sentences"], "stream (state carried, default) or sentences (padded)"),
    ("--batch-size", "train", "batch_size", int, "columns / sentences per batch (default 32)"),
    ("--seq-len", "train", "seq_len", int, "BPTT window (default 35)"),
    ("--bptt-truncate", "train", "bptt_truncate", int, "tutorial truncation: errors flow back at most k steps (numpy engine; 0 = off)"),
    ("--epochs", "train", "epochs", int, "passes over the data (default 5)"),
    ("--max-steps", "train", "max_steps", int, "stop after this many updates"),
    ("--max-minutes", "train", "max_minutes", float, "stop after this much wall time"),
    ("--optimizer", "train", "optimizer", ["sgd", "rmsprop", "adam"], "default adam"),
    ("--lr", "train", "lr", float, "learning rate (default 0.002)"),
    ("--lr-scaling", "train", "lr_scaling", ["none", "linear", "sqrt"], "scale --lr with the global batch / --lr-base-batch (larger GPU batches)"),
    ("--lr-base-batch", "train", "lr_base_batch", int, "global batch size --lr was tuned for (default 32)"),
    ("--weight-decay", "train", "weight_decay", float, "L2 penalty (default 0)"),
    ("--loss-reduction", "train", "loss_reduction", ["token", "sentence"], "mean per token (default) or sum per sentence (tutorial)"),
    ("--clip", "train", "clip", float, "gradient-norm clip (default 5; 0 = off)"),
    ("--schedule", "train", "schedule", ["constant", "plateau", "halve-on-rise", "cosine"], "learning-rate schedule (default plateau)"),
    ("--lr-decay", "train", "lr_decay", float, "factor for plateau / halve-on-rise (default 0.25)"),
    ("--warmup-steps", "train", "warmup_steps", int, "linear warm-up steps"),
    ("--early-stop", "train", "early_stop", int, "stop after N evaluations without improvement"),
    ("--eval-every", "train", "eval_every", int, "also evaluate every N steps"),
    ("--checkpoint-every", "train", "checkpoint_every", int, "save resumable state every N steps (default: at each evaluation)"),
    ("--eval-batch-size", "train", "eval_batch_size", int, "batch size for validation (default 10)"),
    ("--valid-fraction", "train", "valid_fraction", float, "held out when no --valid is given (default 0.1)"),
    ("--amp", "train", "amp", ["off", "bf16", "fp16"], "mixed precision on cuda"),
    ("--seed", "train", "seed", int, "random seed (default 0)"),
    ("--format", "train", "corpus_format", ["auto", "lines", "text", "ptb", "csv"], "corpus format (default auto)"),
    ("--csv-column", "train", "csv_column", str, "text column of a CSV corpus (default body)"),
]

RECIPE_SECTIONS = {"model": ModelConfig, "tokenizer": TokenizerConfig, "train": TrainConfig}


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model on a corpus",
        description="Train a word- or character-level RNN/GRU/LSTM language model. CORPUS is a text file "
                    "(one sentence per line, running text, PTB style, or CSV) or a known dataset: python-docs "
                    "(built in), ptb, tinyshakespeare, reddit-sample. The best model (by validation) is kept in "
                    "--out with metrics.jsonl; --resume continues an interrupted run exactly.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", metavar="CORPUS", nargs="?", help="file or dataset name (may come from the recipe)")
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.add_argument("--valid", metavar="FILE", help="validation file (default: the dataset's own split, else the last 10%%)")
    p.add_argument("--recipe", metavar="NAME|FILE.toml", help="a shipped recipe by name, or a TOML file")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/trainer_state")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for flag, section, field, typ, help_ in OPTIONS:
        if typ is bool:
            p.add_argument(flag, dest=f"{section}.{field}", action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif isinstance(typ, list):
            p.add_argument(flag, dest=f"{section}.{field}", choices=typ, default=None, help=help_)
        else:
            p.add_argument(flag, dest=f"{section}.{field}", type=typ, default=None, help=help_,
                           metavar="N" if typ is int else ("X" if typ is float else field.upper()))


def resolve_train_args(args: argparse.Namespace) -> dict[str, Any]:
    """Merge defaults < recipe < command line into configs; returns the train() keyword arguments."""
    recipe = load_recipe(args.recipe) if args.recipe else {}
    sections: dict[str, dict[str, Any]] = {s: dict(recipe.get(s, {})) for s in RECIPE_SECTIONS}
    where = recipe.get("_path", "")
    for s, cls in RECIPE_SECTIONS.items():
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(sections[s]) - known)
        if bad:
            raise ConfigError(f"{where} [{s}]: unknown key(s) {', '.join(bad)}")
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, field = key.split(".", 1)
            sections[section][field] = value
    corpus = args.corpus or recipe.get("corpus")
    if not corpus:
        raise ConfigError("train: give a CORPUS (a file or a dataset name) or a --recipe that names one")
    model = sections["model"]
    if "vocab_size" in model:
        raise ConfigError("vocab_size comes from the corpus; set tokenizer max_vocab instead")
    try:
        ModelConfig(vocab_size=2, **model).validate("model options")  # early, clear errors
        tok = TokenizerConfig(**sections["tokenizer"])
        cfg = TrainConfig(**sections["train"])
    except TypeError as e:
        raise ConfigError(str(e)) from None
    tok.validate("tokenizer options")
    cfg.validate("train options")
    return {"corpus": corpus, "valid": args.valid or recipe.get("valid"), "model": model, "tokenizer": tok,
            "config": cfg}
