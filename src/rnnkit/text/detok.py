"""Detokenization a token at a time: joiners whose `add(token)` is the text one more token
appends, and the word rules of detokenization, which live here once.

Every detokenizer of rnnkit only appends: a character model's is "".join, a whitespace-split
word model's " ".join (`SepJoiner`), a regex word model's `detokenize_words` a left-to-right
pass whose only state is whether something came before, whether the last token glues to the
next (an opening bracket, an opening quote) and whether a double quote is open (`WordJoiner`,
which `detokenize_words` runs over all the tokens). `WholeJoiner` is the fall-back for a
tokenizer of another kind: it detokenizes everything so far and keeps what was added.
`tokenize.joiner(tokenizer)` picks the one that matches a tokenizer's `detokenize`.
Strings only.
"""

from __future__ import annotations

from typing import Any

_NO_SPACE_BEFORE = frozenset({".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "'", "...", "…", "n't", "N'T"})
_NO_SPACE_AFTER = frozenset({"(", "[", "{", "$", "#", "``"})
_CLITICS = frozenset({"n't", "'s", "'re", "'ve", "'ll", "'d", "'m"})  # lower-cased: attach to the word before


class WordJoiner:
    """The regex word tokenizer's detokenization, a token at a time: no space before
    punctuation and contractions, none inside brackets, straight double quotes alternate
    between opening (glued to what follows) and closing (glued to what precedes)."""

    def __init__(self) -> None:
        self.started = self.glue_next = self.quote_open = False

    def add(self, tok: str) -> str:
        """The text `tok` appends: itself, after a space unless a rule glues it."""
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


class SepJoiner:
    """sep.join, a token at a time."""

    def __init__(self, sep: str) -> None:
        self.sep, self.started = sep, False

    def add(self, tok: str) -> str:
        """The text `tok` appends: the separator (not before the first token), then itself."""
        out = self.sep + tok if self.started else tok
        self.started = True
        return out


class WholeJoiner:
    """Any other tokenizer: detokenize everything so far, keep what it added (a constant cost
    per token only for the joiners above)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.tokens, self.text = tokenizer, [], ""

    def add(self, tok: str) -> str:
        """What `tokenizer.detokenize` of the tokens so far adds to its text before `tok`."""
        self.tokens.append(tok)
        now = self.tokenizer.detokenize(self.tokens)
        added, self.text = now.removeprefix(self.text), now
        return added


Joiner = WordJoiner | SepJoiner | WholeJoiner


def detokenize_words(tokens: list[str]) -> str:
    """Join word tokens by the word rules (`WordJoiner`)."""
    join = WordJoiner()
    return "".join(join.add(t) for t in tokens)
