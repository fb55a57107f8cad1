"""Corpus preparation for training: a corpus name, file, directory or glob in, memory-mapped ids of
training and validation data out.

corpus -> vocabulary (from the training sentences only) -> id files (`rnnkit.data.encode`: one
pass over the text, kept in the id cache so that the next run reads them back), with the
validation data from a --valid source, the dataset's own validation split, or the last
`valid_fraction` of the sentences (a view of the same id file). `data_identity` is what a
resumed run must train on again: the corpus's and the --valid source's files (resolved path and
size) or dataset names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import TokenizerConfig, TrainConfig
from ..data import KNOWN_DATASETS, EncodedIds, encode_corpus, encode_source, holdout_count
from ..data.datasets import parse_source
from ..data.readers import os_problem
from ..data.sources import corpus_parts
from ..errors import InputError
from ..text import Vocab, make_tokenizer


@dataclass
class Corpus:
    """A training corpus made ready: tokenizer, vocabulary, encoded training and validation data."""

    tokenizer: Any
    vocab: Vocab
    train: EncodedIds  # sentences of ids (reads like a list of int64 arrays), over a memory map
    valid: EncodedIds
    valid_source: str  # where the validation data came from, for messages

    @property
    def train_ids(self) -> np.ndarray:
        """The training stream `<s> ids </s> <s> ...` (a memory map: not a copy)."""
        return self.train.ids

    @property
    def valid_ids(self) -> np.ndarray:
        return self.valid.ids


def valid_split_of(corpus: str) -> str | None:
    """"ptb" -> "ptb:valid": the validation split of a known dataset named for its training split."""
    parsed = parse_source(corpus) if isinstance(corpus, str) else None
    if parsed is None or parsed[1] != "train" or "valid" not in KNOWN_DATASETS[parsed[0]].splits:
        return None
    return f"{parsed[0]}:valid"


def prepare_corpus(corpus: str, valid: str | None, tok_cfg: TokenizerConfig, cfg: TrainConfig,
                   vocab: Vocab | None = None) -> Corpus:
    """Encode the training and validation data, with the vocabulary built from the training
    sentences only (or `vocab`, the resumed run's)."""
    read = {"format": cfg.corpus_format, "csv_column": cfg.csv_column}
    valid_source = valid if valid is not None else valid_split_of(corpus)
    holdout = cfg.valid_fraction if valid_source is None else None
    if vocab is None:
        whole, vocab = encode_corpus(corpus, tok_cfg, holdout=holdout, **read)
    else:
        whole = encode_source(corpus, tok_cfg, vocab, **read)
    if valid_source is None:
        train, held_out = _hold_out(corpus, whole, cfg.valid_fraction)
        valid_source = f"last {cfg.valid_fraction:.0%} of {corpus}"
    else:
        train, held_out = whole, encode_source(valid_source, tok_cfg, vocab, **read)
    if train.num_targets < 2:
        raise InputError(f"{corpus}: no tokens to train on")
    return Corpus(make_tokenizer(tok_cfg), vocab, train, held_out, str(valid_source))


def _hold_out(corpus: str, whole: EncodedIds, fraction: float) -> tuple[EncodedIds, EncodedIds]:
    """(all sentences but the last `fraction`, those)."""
    n = len(whole)
    n_valid = holdout_count(n, fraction)
    if n - n_valid < 1:
        raise InputError(f"{corpus}: only {n} sentence(s); too few to hold out validation data (give --valid FILE)")
    return whole.split(n - n_valid)


def data_identity(corpus: str | os.PathLike, valid: str | os.PathLike | None) -> dict[str, Any]:
    """{"corpus": parts, "valid": parts or None}: per part [resolved path, size in bytes], or
    ["dataset", "NAME:SPLIT"] for a known dataset (verified by its sha256 wherever it lies)."""
    return {"corpus": source_identity(corpus), "valid": None if valid is None else source_identity(valid)}


def source_identity(source: str | os.PathLike) -> list[list]:
    text = str(source)
    parsed = parse_source(text) if isinstance(source, str) and "/" not in text and os.sep not in text else None
    if parsed is not None:
        return [["dataset", ":".join(parsed)]]
    parts = []
    for part in corpus_parts(source):
        try:
            parts.append([str(part.path.resolve()), part.path.stat().st_size])
        except OSError as e:
            raise InputError(f"{part.label}: {os_problem(e)}") from None
    return parts


def describe_parts(parts: list[list] | None) -> str:
    """A data identity's parts in words: `/data/c.txt (1,234 bytes)`, `3 files from /data/a.txt
    (5,678 bytes)`, `ptb:train`, `none`."""
    if not parts:
        return "none"
    if parts[0][0] == "dataset":
        return str(parts[0][1])
    total = sum(size for _, size in parts)
    files = f"{len(parts)} files from " if len(parts) > 1 else ""
    return f"{files}{parts[0][0]} ({total:,} bytes)"
