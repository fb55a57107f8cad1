"""`rnnkit predict`: the most likely next tokens after a prompt, with their probabilities.

One prompt from --prompt, or one per line of FILE (stdin with -), read and answered a batch
at a time: each batch's lines are written (and flushed) as soon as they are computed. Each
prompt token costs one recurrent step (rnnkit.inference.predict)."""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from ..errors import ConfigError, InputError
from ..files import dumps
from .common import (
    add_batch_size,
    add_model_argument,
    input_lines,
    input_name,
    nonneg_int,
    open_output,
    started,
)
from .options import add_engine_options

OUTPUT_FORMATS = ("text", "jsonl")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="the most likely next tokens after a prompt",
                              description="Print the --top-k most likely next tokens, with their probabilities, "
                                          "after --prompt TEXT or after each line of FILE (- for stdin).")
    add_model_argument(p)
    p.add_argument("file", metavar="FILE", nargs="?", default=None,
                   help="one prompt per line; - for stdin (default: none, give --prompt)")
    p.add_argument("--prompt", default=None, metavar="TEXT",
                   help="one prompt (default: none, read FILE); an empty prompt, or one whose every token is unknown "
                        "to the model, is refused (in Python, lm.next_token_logprobs(['']) gives the "
                        "distribution after <s>)")
    p.add_argument("--top-k", type=nonneg_int, default=10, metavar="N",
                   help="how many tokens to print per prompt, most likely first; 0: the whole vocabulary "
                        "(default: 10)")
    p.add_argument("--output-format", "--format", choices=OUTPUT_FORMATS, default="text",
                   help="text: the prompt, then a line <TAB>token<TAB>probability per token; jsonl: one object "
                        "per prompt with token, id, prob and natural-log logprob per token (default: text)")
    p.add_argument("--bos", action=argparse.BooleanOptionalAction, default=True,
                   help="start each prompt with <s>; --no-bos reads the prompt alone (default: on)")
    add_batch_size(p, 64, "prompts")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="output file (default: - for stdout)")
    add_engine_options(p)


def _prompts(args: argparse.Namespace) -> Iterator[str]:
    if args.prompt is not None and args.file is not None:
        raise ConfigError("--prompt: give --prompt TEXT or FILE, not both")
    if args.prompt is None and args.file is None:
        raise ConfigError("predict: give --prompt TEXT, or FILE with one prompt per line (- for stdin)")
    return iter([args.prompt]) if args.prompt is not None else input_lines(args.file)


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _write(out: TextIO, fmt: str, prompt: str, pairs: list[tuple[str, int, float]]) -> None:
    """One prompt's answer: (token, id, ln p) per token, most likely first."""
    if fmt == "jsonl":
        top = [{"token": t, "id": i, "prob": math.exp(lp), "logprob": lp} for t, i, lp in pairs]
        out.write(dumps({"prompt": prompt, "top": top}) + "\n")
        return
    out.write(prompt + "\n")
    out.writelines(f"\t{t}\t{math.exp(lp):.6f}\n" for t, _, lp in pairs)


def _checked(lm: Any, prompts: Iterable[str], args: argparse.Namespace) -> Iterator[str]:
    """The prompts, each refused in one line naming where it is (FILE:LINE, or --prompt) when
    it is empty or every token of it is unknown to the model: nothing to predict from."""
    where = "--prompt" if args.prompt is not None else input_name(args.file)
    for n, prompt in enumerate(prompts, 1):
        at = where if args.prompt is not None else f"{where}:{n}"
        tokens = lm.tokenizer.tokenize(prompt)
        if not tokens:
            raise InputError(f"{at}: empty prompt: give the text to predict the next token after")
        if all(i == lm.vocab.unk_id for i in lm.vocab.encode(tokens)):
            raise InputError(f"{at}: every token of the prompt is unknown to the model ({prompt.strip()[:60]!r})")
        yield prompt


def _answers(lm: Any, prompts: Iterable[str], args: argparse.Namespace) -> Iterator[list[tuple[str, list]]]:
    """Per batch of prompts: (prompt, [(token, id, ln p), ...]) for each, in input order."""
    from ..inference.predict import top_k

    for chunk in _chunks(_checked(lm, prompts, args), args.batch_size):
        logp = lm.next_token_logprobs(chunk, bos=args.bos, batch_size=args.batch_size)
        ids, lps = top_k(logp, args.top_k)
        yield [(p, list(zip(lm.vocab.decode(i.tolist()), i.tolist(), lp.tolist())))
               for p, i, lp in zip(chunk, ids, lps)]


def run(args: argparse.Namespace) -> int:
    from .. import api

    prompts = _prompts(args)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    answers = started(_answers(lm, prompts, args))  # the first batch computed before the output is opened
    with open_output(args.output) as out:
        for batch in answers:
            for prompt, pairs in batch:
                _write(out, args.output_format, prompt, pairs)
            out.flush()
    return 0
