"""Vocab: the fixed map between tokens and integer ids (ids 0, 1, 2 = <unk>, <s>, </s>).

Built deterministically from token lists or from token counts (count descending, then token
ascending), capped by size (specials included) and by minimum count; saved as vocab.json, the
token list in id order; `digest()` names it in cache keys. `from_list` refuses
malformed lists (not a list; not unique, non-empty, encodable strings; specials not first)
with a one-line CheckpointError.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from ..errors import CheckpointError, ConfigError, RnnkitError
from .tokenize import BOS, EOS, SPECIALS, UNK


class Vocab:
    """Tokens in id order; the first three are always <unk>, <s>, </s>."""

    unk_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        _validate(tokens)
        self._tokens = tokens
        self._index = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], max_size: int = 0, min_count: int = 1) -> Vocab:
        """Count tokens; keep those seen at least `min_count` times, most frequent first (ties
        by token), at most `max_size` entries in all (specials included; 0 = no cap)."""
        _check_limits(max_size, min_count)
        counts: Counter[str] = Counter()
        for toks in token_lists:
            counts.update(toks)
        return cls.from_counts(counts, max_size, min_count)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], max_size: int = 0, min_count: int = 1) -> Vocab:
        """The vocabulary `build` makes from token lists with these counts (the specials among
        them are not counted as words)."""
        _check_limits(max_size, min_count)
        items = [(t, c) for t, c in counts.items() if c >= min_count and t not in SPECIALS]
        keep = max_size - len(SPECIALS) if max_size else len(items)
        if keep < len(items):  # only the tokens counted at least as often as the keep-th can make it
            floor = heapq.nlargest(keep, (c for _, c in items))[-1]
            items = [tc for tc in items if tc[1] >= floor]
        items.sort(key=_rank)  # count desc, then token asc
        return cls([*SPECIALS, *(t for t, _ in items[:keep])])

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._tokens == other._tokens

    def __hash__(self) -> int:
        return hash(tuple(self._tokens))

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    def id(self, token: str) -> int:
        """The id of `token` (unk_id when unknown)."""
        return self._index.get(token, 0)

    def token(self, i: int) -> str:
        """The token of id `i`."""
        return self.decode([i])[0]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of `tokens`; unknown tokens map to unk_id."""
        get = self._index.get
        return [get(t, 0) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of `ids` (accepts Python or numpy integers)."""
        toks = self._tokens
        out = []
        for i in ids:
            j = int(i)
            if not 0 <= j < len(toks):
                raise RnnkitError(f"vocab: id {j} out of range 0..{len(toks) - 1}")
            out.append(toks[j])
        return out

    def digest(self) -> str:
        """sha256 of the token list: names this vocabulary in cache keys."""
        return hashlib.sha256("\n".join(self._tokens).encode("utf-8")).hexdigest()

    def to_list(self) -> list[str]:
        """The tokens in id order (vocab.json is this list as a JSON array)."""
        return list(self._tokens)

    @classmethod
    def from_list(cls, tokens: object) -> Vocab:
        """A Vocab from a decoded vocab.json; CheckpointError if it is not a valid token list."""
        if not isinstance(tokens, list):
            raise CheckpointError(f"vocab: expected a JSON array of strings, got {type(tokens).__name__}")
        return cls(tokens)


def _rank(token_count: tuple[str, int]) -> tuple[int, str]:
    return -token_count[1], token_count[0]


def _check_limits(max_size: object, min_count: object) -> None:
    if not isinstance(max_size, int) or (max_size != 0 and max_size < len(SPECIALS)):
        raise ConfigError(f"max_vocab must be 0 (no cap) or >= {len(SPECIALS)}, got {max_size!r}")
    if not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"min_count must be an integer >= 1, got {min_count!r}")


def _validate(tokens: list) -> None:
    n = len(SPECIALS)
    if tokens[:n] != [UNK, BOS, EOS]:
        head = ", ".join(repr(t) for t in tokens[:n])
        raise CheckpointError(f"vocab: must start with {UNK!r}, {BOS!r}, {EOS!r} (ids 0, 1, 2), got [{head}]")
    seen: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if not isinstance(t, str):
            raise CheckpointError(f"vocab: entry {i} is {type(t).__name__} {t!r}, not a string")
        if t == "":
            raise CheckpointError(f"vocab: entry {i} is an empty string")
        if not t.isprintable() and _unencodable(t):
            raise CheckpointError(f"vocab: entry {i} {t!r} is not valid Unicode (a lone surrogate)")
        if t in seen:
            raise CheckpointError(f"vocab: entry {i} {t!r} duplicates entry {seen[t]}")
        seen[t] = i


def _unencodable(token: str) -> bool:
    """Whether `token` holds a lone surrogate (JSON's "\\ud800" decodes to one; UTF-8 cannot hold it)."""
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
