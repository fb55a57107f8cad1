"""Words from a character model's characters, and scores of character regions of a line.

Words (`char_word_scores`). A word is a maximal run of non-whitespace characters (str.split's
words, as `--output-format srilm` echoes them): punctuation that touches a word is one of its
characters ("mat." is a word), punctuation between spaces is a word of its own. In the spirit of
Pimentel & Meister (2024, "How to compute the probability of a word"), a word's probability
includes the boundary that ends it: it is the product of its characters' probabilities times
the probability of what follows it, the whitespace after it (the whole run, when there are
several spaces: the first one ends the word, the others are counted with it) or `</s>` at the
end of the line (after any trailing whitespace). Whitespace at the start of a line belongs to no
word: it is an item of its own with word "" (as is an empty line's `</s>`). So every predicted
character is in exactly one item, and the items' probabilities multiply to the sentence's
probability exactly (their logprobs add up to `SentenceScore.logprob`). A character left out
of the sentence's logprob (`oov="skip"`) is left out of its word's too.

Regions (`region_scores`). A region is a half-open character span [start, end) of a line with a
label. Its logprob is the sum over the predicted tokens that lie wholly inside it; a token that
lies partly inside (a word-level token the span cuts through) is not counted but listed in
`cut_tokens`. `<s>` and `</s>` have no characters and are in no region. Token offsets: the
token scores' own `start`/`end` when they have them, else: a character model's token i is
character i; a word model's tokens are found in the line left to right (str.find from the end
of the previous one, in the line as the tokenizer reads it: lowercased when it lowercases,
U+2019 read as '), a token not found there (HTML entities decoded to something else) having no
offsets and so belonging to no region.

Region files (`read_regions`): TSV lines `line<TAB>start<TAB>end<TAB>label`, the line number
1-based (the line of the text file), start and end 0-based character offsets in that line,
end exclusive (Python's line[start:end]); blank lines and lines starting with `#` are skipped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data.lines import iter_lines
from ..errors import ConfigError, InputError

EOS_NAME = "</s>"
Span = tuple[int, int] | None


@dataclass(slots=True)
class WordScore:
    """One word of a character model's line: `word` is line[start:end] ("" for leading
    whitespace or an empty line), `logprob` (natural log) the sum over `chars`: the word's
    characters, then its boundary (the whitespace after it, or `</s>`), as (token, logprob)."""

    word: str
    start: int
    end: int
    logprob: float
    chars: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class RegionScore:
    """One region: the sum of the logprobs of the `n_tokens` tokens wholly inside
    [start, end); `cut_tokens` are the (token, start, end) it cuts through, not counted."""

    label: str
    start: int
    end: int
    logprob: float
    n_tokens: int
    cut_tokens: list[tuple[str, int, int]] = field(default_factory=list)
    text: str = ""


def _pairs(per_char) -> list[tuple[str, float, bool]]:
    """(token, logprob, scored) from TokenScores or (token, logprob) pairs."""
    if hasattr(per_char, "tokens"):  # a SentenceScore
        per_char = per_char.tokens or []
    out = []
    for t in per_char:
        if hasattr(t, "token"):
            out.append((t.token, t.logprob, bool(t.scored)))
        else:
            out.append((t[0], float(t[1]), not math.isnan(float(t[1]))))
    return out


def char_word_scores(per_char, text: str) -> list[WordScore]:
    """Per-word scores of a character model's line from its per-character scores (a
    SentenceScore with tokens, TokenScores or (char, logprob) pairs): one per character of
    `text`, then `</s>` (scored with bos and eos)."""
    pairs = _pairs(per_char)
    if len(pairs) != len(text) + 1 or pairs[-1][0] != EOS_NAME:
        raise ConfigError(f"word scores need a score per character and </s> (bos and eos): got {len(pairs)} "
                          f"scores for a line of {len(text)} characters")
    words: list[WordScore] = []
    i = 0
    while i < len(text) or not words:
        start = i
        while i < len(text) and not text[i].isspace():
            i += 1
        end = i
        while i < len(text) and text[i].isspace():
            i += 1
        stop = i + 1 if i == len(text) else i  # the line's last item takes </s>
        chars = pairs[start:stop]
        lp = math.fsum(lp for _, lp, sc in chars if sc)
        words.append(WordScore(text[start:end], start, end, lp, [(c, lp) for c, lp, _ in chars]))
    return words


def token_spans(text: str, tokens: Sequence[str], char: bool, lowercase: bool = False) -> list[Span]:
    """Character offsets (start, end) of each token of `text` as the tokenizer gave them
    (`<s>`, `</s>` and a token not found: None); see the module docstring."""
    if char:
        return [(i, i + 1) for i in range(len(tokens))]
    line = text.lower() if lowercase else text
    line = line.replace("\u2019", "'")
    spans: list[Span] = []
    pos = 0
    for tok in tokens:
        at = line.find(tok, pos) if tok not in ("<s>", EOS_NAME) else -1
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(tok)))
        pos = at + len(tok)
    return spans


def located_tokens(score, spans: Sequence[Span]) -> list[tuple[str, Span, float, bool]]:
    """(token, span, logprob, scored) of each predicted token of a SentenceScore (with tokens):
    its own start/end when it has them, else the span at its position (`spans` lists the
    predicted tokens other than `</s>`, in order)."""
    out = []
    for k, t in enumerate(score.tokens or []):
        own = getattr(t, "start", None), getattr(t, "end", None)
        if t.token == EOS_NAME and k == len(score.tokens) - 1:
            span = None
        elif own[0] is not None and own[1] is not None:
            span = (int(own[0]), int(own[1]))
        else:
            span = spans[k] if k < len(spans) else None
        out.append((t.token, span, t.logprob, bool(t.scored)))
    return out


def region_scores(tokens: Sequence[tuple[str, Span, float, bool]], regions, text: str | None = None,
                  where: str = "region") -> list[RegionScore]:
    """A RegionScore per (start, end, label) in `regions`, from tokens given as
    (token, (start, end) or None, logprob, scored); a region must lie in the line
    (`len(text)` characters when `text` is given), else an InputError that starts with `where`."""
    out = []
    for start, end, label in regions:
        _check_region(start, end, text, where)
        inside, cut = [], []
        for tok, span, lp, sc in tokens:
            if span is None or span[1] <= start or span[0] >= end:
                continue
            if start <= span[0] and span[1] <= end:
                inside.append(lp if sc else 0.0)
            else:
                cut.append((tok, span[0], span[1]))
        out.append(RegionScore(label, start, end, math.fsum(inside), len(inside), cut,
                               text[start:end] if text else ""))
    return out


def _check_region(start: int, end: int, text: str, where: str) -> None:
    if not 0 <= start < end:
        raise InputError(f"{where}: region {start}-{end} must have 0 <= start < end")
    if text is not None and end > len(text):
        raise InputError(f"{where}: region {start}-{end} ends past the line's {len(text)} characters")


def read_regions(path: str | os.PathLike) -> dict[int, list[tuple[int, int, str]]]:
    """{line number: [(start, end, label), ...]} from a TSV region file (module docstring), in
    file order; a malformed line is an InputError "FILE:LINE: problem"."""
    regions: dict[int, list[tuple[int, int, str]]] = {}
    for n, row in enumerate(iter_lines(path), 1):
        if not row.strip() or row.startswith("#"):
            continue
        line, start, end, label = _parse_region(row, f"{path}:{n}")
        regions.setdefault(line, []).append((start, end, label))
    return regions


def _parse_region(row: str, where: str) -> tuple[int, int, int, str]:
    fields = row.split("\t", 3)
    if len(fields) != 4:
        raise InputError(f"{where}: expected 4 tab-separated fields (line, start, end, label), got {len(fields)}")
    try:
        line, start, end = (int(f) for f in fields[:3])
    except ValueError:
        raise InputError(f"{where}: line, start and end must be integers, got {fields[:3]!r}") from None
    if line < 1:
        raise InputError(f"{where}: line numbers start at 1, got {line}")
    if not 0 <= start < end:
        raise InputError(f"{where}: region {start}-{end} must have 0 <= start < end")
    return line, start, end, fields[3]
