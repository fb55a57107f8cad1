"""`rnnkit generate`: sample, greedy-decode or beam-search text from a model; the sampling
options are generated from SampleConfig."""

from __future__ import annotations

import argparse
from typing import Any

from ..config import SampleConfig
from .common import add_model_argument, print_out
from .options import add_engine_options, add_options, given

CHAR_MAX_LEN = 500  # --max-len of a character model when not given (SampleConfig's default counts words)
MAX_LEN_SHOWN = f"{SampleConfig.max_len} words / {CHAR_MAX_LEN} characters, by the model's level"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("generate", help="sample text from a model",
                              description="Generate text from <s> (or continue --prompt) until </s> or --max-len "
                                          "tokens: sampling (seeded), --greedy, or --beam N.")
    add_model_argument(p)
    p.add_argument("--prompt", default="", metavar="TEXT", help="text to continue (default: none, start a sentence)")
    add_options(p, SampleConfig, shown={"max_len": MAX_LEN_SHOWN})
    add_engine_options(p)


def run(args: argparse.Namespace) -> int:
    from .. import api

    lm = api.load(args.model, engine=args.engine, device=args.device)
    options = given(args, SampleConfig)
    if lm.tokenizer_config.level == "char":
        options.setdefault("max_len", CHAR_MAX_LEN)
    out = lm.generate(args.prompt, **options)
    for text in [out] if isinstance(out, str) else out:
        print_out(text)
    return 0
