"""Tokenizers: turn a string into tokens and back (word level by our own regex, or characters).

`WordTokenizer` (split="regex") decodes HTML entities, splits punctuation off, splits
contractions Penn-Treebank style (don't -> do n't, it's -> it 's, can't -> ca n't), keeps URLs,
e-mail addresses, numbers (3.14, 1,000, 12:30), abbreviations (Mr., U.S., e.g.) and the special
tokens <unk> <s> </s> whole, and is idempotent: tokenizing its own output joined by spaces
gives the same tokens (so pre-tokenized PTB text such as "does n't" and "company 's" stays as
is). split="whitespace" is plain str.split for corpora that are already tokenized.

`CharTokenizer` gives every character.

Back to text: `detokenize(tokens)` joins tokens ("".join, " ".join, or the word rules of
text/detok.py), and `joiner(tokenizer).add(token)` is the text one more token appends to it,
for generation that builds its text a token at a time.

Spans: `tokenize_with_spans(text)` gives (token, start, end) with the same tokens as `tokenize`,
`text[start:end]` the characters of the original text the token came from. A token is always a
substring of the prepared text (lower-cased when asked, HTML references decoded, U+2019 made
'), so its span is where that substring came from: lower-casing keeps positions (a character
that lower-cases to two, such as U+0130, gives both its span), a decoded reference such as
"&amp;" gives its characters the whole reference's span (two tokens out of one reference share
it). So text[start:end], prepared the same way, holds the token, and equals it when the span
holds no reference and no such character. Strings only: nothing here knows about arrays.

Speed: the regex split runs on whitespace chunks. No token crosses whitespace (the regex's
whitespace is str.split's), and a chunk's tokens depend only on the chunk, except for a chunk
ending in "no.", which looks at the next one ("No. 5"). Chunks go through a bounded cache,
and a line made only of chunks known to be their own single token is returned as str.split
gives it. `_tokenize_reference` is the whole-text scan, kept as the definition for the tests.
"""

from __future__ import annotations

import html
import re
from itertools import filterfalse
from typing import Any

from ..config import TokenizerConfig
from ..errors import ConfigError
from .detok import Joiner, SepJoiner, WholeJoiner, WordJoiner, detokenize_words

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


def _scan(text: str, end: int) -> list[str]:
    """The tokens of text[:end] by _TOKEN_RE, steps 4-6 of docs/format.md ("Tokenizers").
    Only the "No. 5" check looks past `end`."""
    out: list[str] = []
    for m in _TOKEN_RE.finditer(text, 0, end):
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


def _prepare(text: str) -> str:
    """Steps 2-3: HTML character references decoded (when there is an &), U+2019 -> '."""
    if "&" in text:
        text = html.unescape(text)
    return text.replace("\u2019", "'")


def _tokenize_reference(text: str, lowercase: bool = False) -> list[str]:
    """The regex tokenizer as one scan over the whole text: the definition that the chunked
    path (`WordTokenizer.tokenize`) must match token for token."""
    if lowercase:
        text = text.lower()
    text = _prepare(text)
    return _scan(text, len(text))


_CHARREF_RE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")  # html.unescape's


def _lower_map(text: str) -> tuple[str, list[int] | None]:
    """text.lower() and, when its length differs, the source character of each of its characters
    (str.lower maps each character to one or more, final sigma to one: lengths add up)."""
    low = text.lower()
    if len(low) == len(text):
        return low, None
    return low, [i for i, c in enumerate(text) for _ in range(len(c.lower()))]


def _unescape_map(text: str, src: list[int] | None) -> tuple[str, list[int], list[int]]:
    """html.unescape(text) and each output character's source span (lo, hi) in the original
    text (`src`: text's characters' original positions, None for the identity)."""
    pos = src or range(len(text))
    out: list[str] = []
    lo: list[int] = []
    hi: list[int] = []
    last = 0

    def keep(a: int, b: int) -> None:
        out.append(text[a:b])
        lo.extend(pos[a:b])
        hi.extend(p + 1 for p in pos[a:b])

    for m in _CHARREF_RE.finditer(text):
        keep(last, m.start())
        rep = html.unescape(m.group())
        out.append(rep)
        lo.extend([pos[m.start()]] * len(rep))
        hi.extend([pos[m.end() - 1] + 1] * len(rep))
        last = m.end()
    keep(last, len(text))
    return "".join(out), lo, hi


def _prepared_map(text: str, lowercase: bool, unescape: bool) -> tuple[str, list[int] | None, list[int] | None]:
    """The text as the tokenizer reads it, and each of its characters' span in `text` (None, None:
    position for position)."""
    src = None
    if lowercase:
        text, src = _lower_map(text)
    if unescape and "&" in text:
        text, lo, hi = _unescape_map(text, src)
    else:
        lo = src
        hi = None if src is None else [p + 1 for p in src]
    return (text.replace("\u2019", "'") if unescape else text), lo, hi


def _align(tokens: list[str], prepared: str, lo: list[int] | None, hi: list[int] | None
           ) -> list[tuple[str, int, int]]:
    """Each token found in `prepared` after the previous one (only whitespace lies between
    tokens, and a token starts with a non-space, so the first match is the token), mapped back."""
    out, pos = [], 0
    for tok in tokens:
        a = prepared.find(tok, pos)
        if a < 0:  # cannot happen (tokens are substrings, in order); keep the output aligned
            a = pos
        b = min(a + len(tok), len(prepared))
        out.append((tok, a if lo is None else lo[a], b if hi is None else hi[b - 1]))
        pos = b
    return out


def _needs_next(chunk: str) -> bool:
    """True if the chunk may end with the word "no.", whose period depends on the next chunk."""
    return chunk[-3:].lower() == "no."


class _ChunkCache(dict):
    """chunk -> tuple of its tokens (as if nothing followed it), filled on lookup. Bounded:
    chunks of at most `max_chunk` characters, at most `size` of them and `max_chars`
    characters in all, else emptied. `identity` holds the cached chunks that are their own
    single token, need not see the next chunk and are not alphanumeric (str.isalnum, cheaper
    than a set lookup, tells those)."""

    def __init__(self, size: int = 1 << 16, max_chars: int = 1 << 20, max_chunk: int = 256):
        super().__init__()
        self.size, self.max_chars, self.max_chunk = size, max_chars, max_chunk
        self.chars = 0
        self.identity: set[str] = set()

    def __missing__(self, chunk: str) -> tuple[str, ...]:
        toks = (chunk,) if chunk.isalnum() else tuple(_scan(chunk, len(chunk)))
        if len(chunk) <= self.max_chunk:
            if len(self) >= self.size or self.chars + len(chunk) > self.max_chars:
                self.clear()
            self[chunk] = toks
            self.chars += len(chunk)
            if toks == (chunk,) and not chunk.isalnum() and not _needs_next(chunk):
                self.identity.add(chunk)
        return toks

    def clear(self) -> None:
        super().clear()
        self.identity.clear()
        self.chars = 0


_CHUNKS = _ChunkCache()
_IDENTITY = _CHUNKS.identity  # the same set, emptied in place with the cache
_isalnum = str.isalnum


def _chunk_tokens(chunks: list[str]) -> list[str]:
    """The whitespace chunks of a prepared text, each replaced in place by its tokens (the same
    tokens as one scan of the text). Only chunks not known to be their own token are looked at;
    one that may end with the word "no." is scanned with the next chunk ("No. 5")."""
    odd = list(filterfalse(_IDENTITY.__contains__, filterfalse(_isalnum, chunks)))
    start = 0
    for chunk in odd:  # listed before chunks changes
        i = chunks.index(chunk, start)  # in order: the chunks in between are their own token
        toks = _CHUNKS[chunk]
        if toks[-1] == "." and i + 1 < len(chunks) and _needs_next(chunk):
            toks = _scan(chunk + " " + chunks[i + 1], len(chunk))
        chunks[i : i + 1] = toks
        start = i + len(toks)
    return chunks


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
        """The tokens of `text` (docs/format.md, "Tokenizers")."""
        if self.lowercase:
            text = text.lower()
        if self.split == "whitespace":
            return text.split()
        if "&" in text:  # _prepare, inline: this is the hot path
            text = html.unescape(text)
        if "\u2019" in text:
            text = text.replace("\u2019", "'")
        chunks = text.split()
        if _IDENTITY.issuperset(filterfalse(_isalnum, chunks)):  # all their own token: most of PTB
            return chunks
        return _chunk_tokens(chunks)

    def tokenize_with_spans(self, text: str) -> list[tuple[str, int, int]]:
        """(token, start, end) per token of `tokenize(text)`: text[start:end] is where it came
        from (module docstring, "Spans")."""
        prepared, lo, hi = _prepared_map(text, self.lowercase, self.split == "regex")
        return _align(self.tokenize(text), prepared, lo, hi)

    def detokenize(self, tokens: list[str]) -> str:
        if self.split == "whitespace":
            return " ".join(tokens)
        return detokenize_words(tokens)


class CharTokenizer:
    """Character tokenizer: every character is a token; detokenize is "".join."""

    level = "char"

    def __init__(self, lowercase: bool = False) -> None:
        self.lowercase = bool(lowercase)

    def __repr__(self) -> str:
        return f"CharTokenizer(lowercase={self.lowercase})"

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower() if self.lowercase else text)

    def tokenize_with_spans(self, text: str) -> list[tuple[str, int, int]]:
        """(character, i, i + 1); lower-cased, a character that becomes two gives both its span."""
        if not self.lowercase:
            return [(c, i, i + 1) for i, c in enumerate(text)]
        low, src = _lower_map(text)
        return [(c, i, i + 1) for c, i in zip(low, src or range(len(low)))]

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


def make_tokenizer(cfg: TokenizerConfig) -> WordTokenizer | CharTokenizer:
    """The tokenizer a TokenizerConfig describes (level word or char)."""
    cfg.validate()
    if cfg.level == "char":
        return CharTokenizer(lowercase=cfg.lowercase)
    return WordTokenizer(lowercase=cfg.lowercase, split=cfg.word_split)


def joiner(tokenizer: Any) -> Joiner:
    """A fresh joiner for `tokenizer` (text/detok.py): its `add(token)` is the text the token
    appends to `tokenizer.detokenize` of the tokens added before it. One of ours whose
    `detokenize` is its class's own gets the rules token by token; any other tokenizer the
    fall-back that detokenizes everything so far."""
    detok = getattr(type(tokenizer), "detokenize", None)
    if isinstance(tokenizer, CharTokenizer) and detok is CharTokenizer.detokenize:
        return SepJoiner("")
    if isinstance(tokenizer, WordTokenizer) and detok is WordTokenizer.detokenize:
        return SepJoiner(" ") if tokenizer.split == "whitespace" else WordJoiner()
    return WholeJoiner(tokenizer)
