"""Incremental detokenization for streamed generation: `detokenizer(tokenizer).add(token)` is the
text that one more token appends, so that the pieces of a stream add up to
`tokenizer.detokenize(all tokens)` at a constant cost per token instead of detokenizing the
whole text again each time.

Every detokenizer of rnnkit only appends (text.tokenize): a character model's is "".join, a
whitespace-split word model's " ".join, a regex word model's `detokenize_words` a left-to-right
pass whose only state is whether something came before, whether the last token glues to the
next (an opening bracket, an opening quote) and whether a double quote is open: `_WordState`
keeps that state and decides the space before each token by the same rules and the same
token sets (tests/test_serve_incremental.py checks it against `detokenize` on random token
sequences). A tokenizer of another kind falls back to detokenizing everything so far.
"""

from __future__ import annotations

from typing import Any

from ..text.tokenize import _NO_SPACE_AFTER, _NO_SPACE_BEFORE, CharTokenizer, WordTokenizer

_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")  # attached to the word before, as detokenize_words


class _WordState:
    """detokenize_words, a token at a time."""

    def __init__(self) -> None:
        self.started = self.glue_next = self.quote_open = False

    def add(self, tok: str) -> str:
        attach = self.glue_next or not self.started
        if tok == '"':
            attach = attach or self.quote_open
            self.quote_open = not self.quote_open
            self.glue_next = self.quote_open
        else:
            attach = attach or tok in _NO_SPACE_BEFORE or tok.lower() in _CLITICS
            self.glue_next = tok in _NO_SPACE_AFTER
        space = self.started and not attach
        self.started = True
        return " " + tok if space else tok


class _Joined:
    """sep.join, a token at a time."""

    def __init__(self, sep: str) -> None:
        self.sep, self.started = sep, False

    def add(self, tok: str) -> str:
        out = self.sep + tok if self.started else tok
        self.started = True
        return out


class _Whole:
    """Any other tokenizer: detokenize everything so far, keep what it added."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.tokens, self.text = tokenizer, [], ""

    def add(self, tok: str) -> str:
        self.tokens.append(tok)
        now = self.tokenizer.detokenize(self.tokens)
        added, self.text = now.removeprefix(self.text), now
        return added


def detokenizer(tokenizer: Any) -> _WordState | _Joined | _Whole:
    """An object whose `add(token)` returns the text the token appends to `tokenizer.detokenize`
    of the tokens added before it."""
    detok = getattr(type(tokenizer), "detokenize", None)
    if isinstance(tokenizer, CharTokenizer) and detok is CharTokenizer.detokenize:
        return _Joined("")
    if isinstance(tokenizer, WordTokenizer) and detok is WordTokenizer.detokenize:
        return _Joined(" ") if tokenizer.split == "whitespace" else _WordState()
    return _Whole(tokenizer)
