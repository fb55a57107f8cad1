"""`rnnkit score --per-word` and `--regions FILE`: a character model's words, and character spans
of any model's lines, added up from the per-token scores (rnnkit.inference.words).

A word's logprob is its characters' plus the boundary that ends it (the whitespace after it,
or `</s>`), so a line's words add up to the line's logprob exactly. A region sums the tokens
wholly inside its span and names the tokens it cuts through (not counted)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import ConfigError

Base = Callable[[float], float]


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--per-word", action="store_true",
                   help="character models: after each line, each word with its character offsets and its "
                        "logprob (its characters and the whitespace or </s> that ends it; a line's words add up "
                        "to its logprob) (default: off)")
    p.add_argument("--regions", metavar="TSV", default=None,
                   help="a file of character spans, one per row: line<TAB>start<TAB>end<TAB>label (lines from 1, "
                        "offsets from 0, end excluded); after each line, the summed logprob of the tokens wholly "
                        "inside each of its spans and the tokens a span cuts through (default: none)")


def prepare(args: argparse.Namespace, level: str) -> dict[int, list] | None:
    """Check the options against the output format and the model; the regions file read."""
    if not (args.per_word or args.regions):
        return None
    if args.output_format not in ("text", "jsonl"):
        raise ConfigError(f"--per-word and --regions go with --output-format text or jsonl, not {args.output_format}")
    if args.per_word and level != "char":
        raise ConfigError("--per-word: word scores are for character models (a word model's words are its "
                          "tokens: --per-token)")
    if args.per_word and not (args.bos and args.eos):
        raise ConfigError("--per-word needs --bos and --eos (a word's boundary may be </s>)")
    from ..inference.words import read_regions

    return read_regions(args.regions) if args.regions else {}


def extras(n: int, s: Any, args: argparse.Namespace, regions: dict[int, list] | None, where: str) -> dict:
    """The words and regions of sentence n (from 1) as lists, for the writers below."""
    from ..inference import words

    out: dict[str, list] = {}
    if args.per_word:
        out["words"] = words.char_word_scores(s, s.text)
    if regions is not None and args.regions:
        out["regions"] = words.region_scores(words.located_tokens(s, []), regions.get(n, []), s.text,
                                             where=f"{where}:{n}")
    return out


def write_text(out: TextIO, ex: dict, lb: Base) -> None:
    """Indented rows after the line's own: `word<TAB>start<TAB>end<TAB>logprob`, then
    `[label]<TAB>start<TAB>end<TAB>logprob<TAB>tokens<TAB>cut: tok(start-end) ...`."""
    out.writelines(f"  {w.word}\t{w.start}\t{w.end}\t{lb(w.logprob):.6f}\n" for w in ex.get("words", []))
    for r in ex.get("regions", []):
        cut = " ".join(f"{t}({a}-{b})" for t, a, b in r.cut_tokens)
        out.write(f"  [{r.label}]\t{r.start}\t{r.end}\t{lb(r.logprob):.6f}\t{r.n_tokens}" + (f"\tcut: {cut}" if cut else "")
                  + "\n")


def json_fields(ex: dict, lb: Base) -> dict:
    """The jsonl record's "word_scores" and "regions" (logprobs in --log-base)."""
    obj: dict[str, list] = {}
    if "words" in ex:
        obj["word_scores"] = [{"word": w.word, "start": w.start, "end": w.end, "logprob": lb(w.logprob)}
                              for w in ex["words"]]
    if "regions" in ex:
        obj["regions"] = [{"label": r.label, "start": r.start, "end": r.end, "logprob": lb(r.logprob),
                           "tokens": r.n_tokens, "cut": [{"token": t, "start": a, "end": b} for t, a, b in r.cut_tokens]}
                          for r in ex["regions"]]
    return obj
