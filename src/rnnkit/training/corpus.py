"""Corpus preparation for training: a corpus name or file in, encoded training and validation data out.

corpus -> sentences -> tokens -> vocabulary (from the training sentences only) -> ids, with the
validation data from a --valid file, the dataset's own validation split, or the last
`valid_fraction` of the sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import TokenizerConfig, TrainConfig
from ..data import KNOWN_DATASETS, read_sentences, stream_ids
from ..data.datasets import parse_source
from ..errors import InputError
from ..text import Vocab, make_tokenizer


@dataclass
class Corpus:
    """A training corpus made ready: tokenizer, vocabulary, id arrays for train and validation."""

    tokenizer: Any
    vocab: Vocab
    train: list[np.ndarray]  # ids per sentence, no specials
    valid: list[np.ndarray]
    train_ids: np.ndarray  # stream form: <s> ids </s> ...
    valid_ids: np.ndarray
    valid_source: str  # where the validation data came from, for messages


def valid_split_of(corpus: str) -> str | None:
    """"ptb" -> "ptb:valid": the validation split of a known dataset named for its training split."""
    parsed = parse_source(corpus) if isinstance(corpus, str) else None
    if parsed is None or parsed[1] != "train" or "valid" not in KNOWN_DATASETS[parsed[0]].splits:
        return None
    return f"{parsed[0]}:valid"


def prepare_corpus(corpus: str, valid: str | None, tok_cfg: TokenizerConfig, cfg: TrainConfig,
                   vocab: Vocab | None = None) -> Corpus:
    """Read, split off validation, tokenize, and build the vocabulary from training data only
    (or use `vocab`, the resumed run's)."""
    train_sents, valid_sents, valid_source = _read_split(corpus, valid, tok_cfg, cfg)
    tokenizer = make_tokenizer(tok_cfg)
    train_enc, vocab = _encode(train_sents, tokenizer, vocab, tok_cfg)
    valid_enc, _ = _encode(valid_sents, tokenizer, vocab, tok_cfg)
    if sum(len(s) + 1 for s in train_enc) < 2:
        raise InputError(f"{corpus}: no tokens to train on")
    return Corpus(tokenizer, vocab, train_enc, valid_enc, stream_ids(train_enc, vocab),
                  stream_ids(valid_enc, vocab), valid_source)


def _read_split(corpus: str, valid: str | None, tok_cfg: TokenizerConfig, cfg: TrainConfig):
    """(training sentences, validation sentences, where the validation sentences came from)."""
    read = {"format": cfg.corpus_format, "csv_column": cfg.csv_column, "level": tok_cfg.level}
    train_sents = read_sentences(corpus, **read)
    if valid is not None:
        return train_sents, read_sentences(valid, **read), str(valid)
    if (split := valid_split_of(corpus)) is not None:
        return train_sents, read_sentences(split, **read), split
    n_valid = max(1, round(len(train_sents) * cfg.valid_fraction))
    if len(train_sents) - n_valid < 1:
        raise InputError(f"{corpus}: only {len(train_sents)} sentence(s); too few to hold out "
                         "validation data (give --valid FILE)")
    return train_sents[:-n_valid], train_sents[-n_valid:], f"last {cfg.valid_fraction:.0%} of {corpus}"


def _encode(sentences: list[str], tokenizer, vocab: Vocab | None, tok_cfg: TokenizerConfig):
    toks = [tokenizer.tokenize(s) for s in sentences]
    if vocab is None:
        vocab = Vocab.build(toks, max_size=tok_cfg.max_vocab, min_count=tok_cfg.min_count)
    return [np.asarray(vocab.encode(t), dtype=np.int64) for t in toks], vocab
