"""Corpora as id files: the ids and vocabulary encode_corpus writes are those of the in-memory
pipeline of earlier releases (tokenize every sentence, Vocab.build, encode, concatenate
`<s> ids </s>`), written out here; uint16 ids become uint32 past 65536 words.

Every check compares with a reference that does not go through rnnkit.data.encode.
"""

from __future__ import annotations

import numpy as np
import pytest

import id_files_kit
from id_files_kit import random_lines, write
from rnnkit.config import TokenizerConfig
from rnnkit.data import encode_corpus, read_sentences
from rnnkit.text import Vocab, make_tokenizer

# the kit's fixture (autouse: every test here gets an id cache of its own, RNNKIT_CACHE)
cache = id_files_kit.cache


def old_pipeline(sentences: list[str], tok_cfg: TokenizerConfig, vocab: Vocab | None = None):
    """(vocab, stream) as earlier releases made them, all in memory."""
    tok = make_tokenizer(tok_cfg)
    toks = [tok.tokenize(s) for s in sentences]
    if vocab is None:
        vocab = Vocab.build(toks, max_size=tok_cfg.max_vocab, min_count=tok_cfg.min_count)
    stream: list[int] = []
    for t in toks:
        stream += [1, *vocab.encode(t), 2]
    return vocab, np.array(stream, dtype=np.int64)


# --------------------------------------------------------------------------- the same ids as before


@pytest.mark.parametrize("tok_cfg", [TokenizerConfig(max_vocab=12), TokenizerConfig(min_count=3, lowercase=True),
                                     TokenizerConfig(level="char", max_vocab=0)])
def test_corpus_ids_and_vocabulary_are_the_in_memory_pipelines(tmp_path, tok_cfg):
    lines = random_lines(300, seed=1) + ["The Cat  <s> sat </s> <unk> .", "", "   ", "dog's day, isn't it?"]
    path = write(tmp_path / "c.txt", lines)
    sents = read_sentences(path, level=tok_cfg.level)
    n_valid = max(1, round(len(sents) * 0.1))
    whole, vocab = encode_corpus(path, tok_cfg, holdout=0.1)
    ref_vocab, ref_stream = old_pipeline(sents[:-n_valid], tok_cfg)
    assert vocab == ref_vocab  # counted from the training sentences only
    _, ref_all = old_pipeline(sents, tok_cfg, vocab)
    assert isinstance(whole.stream, np.memmap) and whole.stream.dtype == np.uint16
    np.testing.assert_array_equal(whole.ids, ref_all)
    assert len(whole) == len(sents) and [list(s) for s in whole][:5] == [list(ref_vocab.encode(
        make_tokenizer(tok_cfg).tokenize(s))) for s in sents[:5]]
    np.testing.assert_array_equal(whole.counts(len(vocab)), np.bincount(ref_all, minlength=len(vocab)))
    train, held = whole.split(len(sents) - n_valid)
    np.testing.assert_array_equal(train.ids, ref_stream)
    np.testing.assert_array_equal(train.counts(len(vocab)), np.bincount(ref_stream, minlength=len(vocab)))
    np.testing.assert_array_equal(np.concatenate([train.ids, held.ids]), ref_all)


def test_more_than_65536_ids_are_uint32(tmp_path):
    words = [f"w{i}" for i in range(70_000)]
    path = write(tmp_path / "big.txt", [" ".join(words[i:i + 50]) for i in range(0, len(words), 50)])
    whole, vocab = encode_corpus(path, TokenizerConfig(max_vocab=0, word_split="whitespace"))
    assert len(vocab) == 70_003 and whole.stream.dtype == np.uint32
    _, ref = old_pipeline(read_sentences(path), TokenizerConfig(word_split="whitespace"), vocab)
    np.testing.assert_array_equal(whole.ids, ref)


def test_vocab_from_counts_is_vocab_build():
    toks = [line.split() for line in random_lines(200, seed=2)] + [["<s>", "zz", "</s>", "<unk>", "zz"]]
    counts: dict[str, int] = {}
    for t in toks:
        for w in t:
            counts[w] = counts.get(w, 0) + 1
    for size, low in ((0, 1), (8, 1), (0, 40), (10, 30)):
        assert Vocab.from_counts(counts, size, low) == Vocab.build(toks, size, low)
    assert Vocab.build(toks).digest() != Vocab.build(toks[:-1]).digest()
