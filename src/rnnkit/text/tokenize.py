"""Tokenizers: turn a string into tokens and back (word level by our own regex, or characters).

`WordTokenizer` (split="regex") decodes HTML entities, splits punctuation off, splits
contractions Penn-Treebank style (don't -> do n't, it's -> it 's, can't -> ca n't), keeps URLs,
e-mail addresses, numbers (3.14, 1,000, 12:30), abbreviations (Mr., U.S., e.g.) and the special
tokens <unk> <s> </s> whole, and is idempotent: tokenizing its own output joined by spaces
gives the same tokens (so pre-tokenized PTB text such as "does n't" and "company 's" stays as
is). split="whitespace" is plain str.split for corpora that are already tokenized.
`CharTokenizer` gives every character. Strings only: nothing here knows about arrays.
"""

from __future__ import annotations

import html
import re

from ..config import TokenizerConfig
from ..errors import ConfigError

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
SPECIALS = (UNK, BOS, EOS)

# Words that keep a following period (lower-cased, without the period). Kept short and
# unambiguous: common words ("no", "ill", "mass") are not here, so "I said no." splits.
ABBREVIATIONS = frozenset(
    [
        "mr", "mrs", "ms", "messrs", "dr", "prof", "rev", "hon", "gen", "sen", "rep", "gov",
        "col", "lt", "sgt", "capt", "adm", "st", "jr", "sr", "vs", "etc", "cf", "viz",
        "approx", "inc", "corp", "co", "cos", "ltd", "bros", "plc", "jan", "feb", "mar",
        "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "calif", "conn",
        "mich", "fla", "ariz", "colo", "tenn", "okla", "minn", "wis", "neb", "kan", "nev",
        "ala", "ga", "va", "pa", "md", "ky", "tex", "fig", "figs", "eq", "vol", "nos",
        "cie", "sens", "reps"
    ]
)

_SEP = r"(?:\\/|\.-|[-'&/\\.]|(?<=\d)[,:](?=\d))"  # joins word pieces: well-known, u.s, 1,000, 12:30
_TOKEN_RE = re.compile(
    r"""
    (?P<special><unk>|</?s>)
  | (?P<url>(?:https?://|www\.)[^\s<>"]*[^\s<>"'.,;:!?)\]}])
  | (?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)
  | (?P<currency>(?<![\w$])[A-Za-z]{1,3}\$(?=[\d\s]|$))
  | (?P<year>'\d\d(?:s)?(?!\w))
  | (?P<clitic>(?i:'(?:s|re|ve|ll|d|m))(?!\w))
  | (?P<stars>(?:\\\*)+)
  | (?P<word>\w+(?:"""
    + _SEP
    + r"""\w+)*(?:\.(?!\.))?)
  | (?P<punct>\.{2,}|-{2,}|[^\w\s])
    """,
    re.VERBOSE,
)
_CLITIC_END_RE = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$")
_NUMBER_NEXT_RE = re.compile(r"\s*(?:\d|N\b|#)")  # "no. 5", PTB "no. N"
_INITIALS_RE = re.compile(r"[^\W\d_]{1,2}(?:\.[^\W\d_]{1,2})+|[^\W\d_]")


def is_abbreviation(word: str) -> bool:
    """True if `word` (without its final period) keeps the period: mr, u.s, e.g, single letters."""
    if word == "I":  # "... than I." ends a sentence
        return False
    last = word.rsplit("-", 1)[-1]  # non-u.s.
    return last.lower() in ABBREVIATIONS or _INITIALS_RE.fullmatch(last) is not None


def _split_clitics(word: str) -> list[str]:
    """don't -> do n't; couldn't've -> could n't 've; o'brien stays."""
    tail: list[str] = []
    while True:
        m = _CLITIC_END_RE.match(word)
        if m is None or not m.group(1)[-1].isalnum():
            break
        word = m.group(1)
        tail.append(m.group(2))
    return [word, *reversed(tail)]


class WordTokenizer:
    """Word tokenizer: split="regex" (ours, see module docstring) or "whitespace" (str.split)."""

    level = "word"

    def __init__(self, lowercase: bool = False, split: str = "regex") -> None:
        if split not in ("regex", "whitespace"):
            raise ConfigError(f"word_split must be regex or whitespace, got {split!r}")
        self.lowercase = bool(lowercase)
        self.split = split

    def __repr__(self) -> str:
        return f"WordTokenizer(lowercase={self.lowercase}, split={self.split!r})"

    def tokenize(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.split == "whitespace":
            return text.split()
        if "&" in text:
            text = html.unescape(text)
        text = text.replace("\u2019", "'")  # curly apostrophe: don’t -> don't
        out: list[str] = []
        for m in _TOKEN_RE.finditer(text):
            tok = m.group()
            if m.lastgroup != "word":
                out.append(tok)
                continue
            dot = tok.endswith(".") and len(tok) > 1
            if dot:
                tok = tok[:-1]
                if is_abbreviation(tok) or (tok.lower() == "no" and _NUMBER_NEXT_RE.match(text, m.end())):
                    out.append(tok + ".")
                    continue
            out.extend(_split_clitics(tok) if "'" in tok else (tok,))
            if dot:
                out.append(".")
        return out

    def detokenize(self, tokens: list[str]) -> str:
        if self.split == "whitespace":
            return " ".join(tokens)
        return detokenize_words(tokens)


_NO_SPACE_BEFORE = {".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "'", "...", "…", "n't", "N'T"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "``"}


def detokenize_words(tokens: list[str]) -> str:
    """Join word tokens: no space before punctuation and contractions, none inside parentheses,
    straight double quotes alternate between opening and closing."""
    parts: list[str] = []
    glue_next = False
    quote_open = False
    for tok in tokens:
        low = tok.lower()
        attach = glue_next or not parts
        if tok == '"':
            if quote_open:
                attach = True
            quote_open = not quote_open
            glue_next = quote_open
        else:
            if tok in _NO_SPACE_BEFORE or low in ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m"):
                attach = True
            glue_next = tok in _NO_SPACE_AFTER
        if parts and not attach:
            parts.append(" ")
        parts.append(tok)
    return "".join(parts)


class CharTokenizer:
    """Character tokenizer: every character is a token; detokenize is "".join."""

    level = "char"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = bool(lowercase)

    def __repr__(self) -> str:
        return f"CharTokenizer(lowercase={self.lowercase})"

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


def make_tokenizer(cfg: TokenizerConfig) -> WordTokenizer | CharTokenizer:
    """The tokenizer a TokenizerConfig describes (level word or char)."""
    cfg.validate()
    if cfg.level == "char":
        return CharTokenizer(lowercase=cfg.lowercase)
    return WordTokenizer(lowercase=cfg.lowercase, split=cfg.word_split)
