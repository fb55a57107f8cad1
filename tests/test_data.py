"""Tests for rnnkit.data: readers per format, known datasets, stream and sentence batching."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from rnnkit.data import (
    KNOWN_DATASETS,
    StreamBatcher,
    encode_sentences,
    python_docs_text,
    read_sentences,
    read_text,
    resolve_dataset,
    sentence_batches,
    stream_ids,
)
from rnnkit.data import datasets as ds
from rnnkit.text import CharTokenizer, Vocab, WordTokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def need_shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.is_file():
        pytest.skip(f"shared data not found at {path} (a fresh clone has no ../shared/data)")
    return path


def test_read_text_bom_crlf(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    assert read_text(p) == "one\ntwo\n"
    assert read_sentences(p) == ["one", "two"]


def test_lines_format_word_and_char(tmp_path):
    p = tmp_path / "c.txt"
    text = "  hello world \n\nsecond line\n"
    p.write_text(text, encoding="utf-8")
    assert read_sentences(p) == ["hello world", "second line"]
    chars = read_sentences(p, level="char")
    assert chars == ["  hello world ", "", "second line"]
    assert sum(len(s) + 1 for s in chars) == len(text)  # one </s> per newline


def test_text_format(tmp_path):
    p = tmp_path / "run.txt"
    p.write_text("Mr. Smith came. He saw\nit all!\n\nA new paragraph\n", encoding="utf-8")
    assert read_sentences(p, format="text") == ["Mr. Smith came.", "He saw it all!", "A new paragraph"]


def test_ptb_format_and_auto(tmp_path):
    p = tmp_path / "ptb.mini.txt"
    p.write_text(" the cat 's <unk> \n\n a dog \n", encoding="utf-8")
    assert read_sentences(p) == ["the cat 's <unk>", "a dog"]  # auto: ptb.*.txt -> ptb
    assert read_sentences(p, level="char") == ["the cat 's <unk>", "", "a dog"]


def test_csv_format(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text('id,body\n1,"First &gt; one. Second, ""quoted"".\n\nThird line"\n2,\n3,Plain &amp; simple\n',
                 encoding="utf-8")
    assert read_sentences(p) == ["First > one.", 'Second, "quoted".', "Third line", "Plain & simple"]
    q = tmp_path / "d.csv"
    q.write_text("text,x\nhello there,1\n", encoding="utf-8")
    assert read_sentences(q, csv_column="text") == ["hello there"]


def test_reddit_sample():
    path = need_shared("reddit/reddit-comments-2015-08-sample.csv")
    sents = read_sentences(str(path))
    assert len(sents) > 212
    assert not any("&gt;" in s for s in sents)  # (one bot comment is double-escaped: &amp;amp;)
    assert any(s.startswith(">") for s in sents)  # &gt; quotes decoded
    every = read_sentences("reddit-sample:all")
    assert every == sents
    train, valid = read_sentences("reddit-sample"), read_sentences("reddit-sample:valid")
    assert train + valid == every and 0.05 < len(valid) / len(every) < 0.2


def test_ptb_counts():
    need_shared("ptb/ptb.train.txt")
    sents = read_sentences("ptb")
    assert len(sents) == 42_068
    tok = WordTokenizer(split="whitespace")
    vocab = Vocab.build(tok.tokenize(s) for s in sents)
    assert len(vocab) == 10_001  # 9,998 words + <unk> (in the text) + <s> </s>
    enc = encode_sentences(sents, tok, vocab)
    assert sum(len(e) for e in enc) == 887_521
    ids = stream_ids(enc, vocab)
    assert int(np.count_nonzero(ids[1:] != vocab.bos_id)) == 929_589  # words + one </s> each
    assert resolve_dataset("ptb", "valid").name == "ptb.valid.txt"
    assert len(read_sentences("ptb:valid")) == 3_370 and len(read_sentences("ptb:test")) == 3_761


def test_tinyshakespeare_char_split():
    path = need_shared("tinyshakespeare/input.txt")
    n_chars = len(read_text(path))
    tok = CharTokenizer()
    counts = {}
    for split in ("train", "valid"):
        sents = read_sentences(f"tinyshakespeare:{split}", level="char")
        vocab = Vocab.build(tok.tokenize(s) for s in sents)
        ids = stream_ids(encode_sentences(sents, tok, vocab), vocab)
        counts[split] = int(np.count_nonzero(ids[1:] != vocab.bos_id))
    assert read_sentences("tinyshakespeare", level="char")[:2] == ["First Citizen:", "Before we proceed any further, hear me speak."]
    assert counts["train"] + counts["valid"] == n_chars == 1_115_394
    assert abs(counts["train"] / n_chars - 0.9) < 0.001


def test_resolve_env_and_sha_cache(tmp_path, monkeypatch):
    data = b"hello\n"
    entry = ds.DatasetFile("toy/toy.txt", hashlib.sha256(data).hexdigest(), None)
    monkeypatch.setitem(KNOWN_DATASETS, "toy", ds.DatasetSpec("toy", "lines", "toy", {"all": entry}))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.txt").write_bytes(data)
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    assert resolve_dataset("toy") == tmp_path / "toy" / "toy.txt"
    assert read_sentences("toy:all") == ["hello"]
    assert any(k[0].endswith("toy.txt") for k in ds._VERIFIED)


def test_python_docs():
    text = python_docs_text()
    assert len(text) > 100_000 and "assert" in text
    train, valid = read_sentences("python-docs"), read_sentences("python-docs:valid")
    assert train + valid == read_sentences("python-docs:all")
    assert 0.05 < len(valid) / (len(train) + len(valid)) < 0.2
    assert not any(set(s) <= set("*= ") for s in train)  # heading underlines removed
    assert resolve_dataset("python-docs").name == "topics.py"


def test_download_from_file_url(tmp_path, monkeypatch):
    src = tmp_path / "src.txt"
    src.write_bytes(b"abc\n")
    good = ds.DatasetFile("toy/t.txt", hashlib.sha256(b"abc\n").hexdigest(), src.as_uri())
    monkeypatch.setitem(KNOWN_DATASETS, "toy", ds.DatasetSpec("toy", "lines", "toy", {"all": good}))
    out = ds.download_dataset("toy", tmp_path / "dest")
    assert out == [tmp_path / "dest" / "toy" / "t.txt"] and out[0].read_bytes() == b"abc\n"


def _reference_stream(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    enc = [rng.integers(3, 50, size=rng.integers(0, 12)) for _ in range(n)]
    return enc, stream_ids(enc, Vocab.build([]))


def test_stream_batcher_reference():
    _, ids = _reference_stream()
    B, T = 4, 7
    sb = StreamBatcher(ids, B, T)
    wins = list(sb.windows())
    assert len(wins) == len(sb)
    col = len(ids) // B
    xs = np.concatenate([x for x, _, _ in wins])
    ys = np.concatenate([y for _, y, _ in wins])
    ms = np.concatenate([m for _, _, m in wins])
    for b in range(B):  # each column is a contiguous piece of the stream
        np.testing.assert_array_equal(xs[:, b], ids[b * col:(b + 1) * col - 1])
        np.testing.assert_array_equal(ys[:, b], ids[b * col + 1:(b + 1) * col])
    assert all(x.dtype == np.int64 and y.dtype == np.int64 and m.dtype == np.float32 for x, y, m in wins)
    assert all(x.shape == (T, B) for x, _, _ in wins[:-1]) and 1 <= wins[-1][0].shape[0] <= T
    np.testing.assert_array_equal(ms == 0, ys == 1)  # masked exactly at BOS targets
    assert sb.num_targets == int(ms.sum())
    rest = list(sb.windows(start=3))
    np.testing.assert_array_equal(rest[0][0], wins[3][0])
    assert len(rest) == len(wins) - 3


def test_stream_batcher_rank_sharding():
    _, ids = _reference_stream(seed=1)
    B, T = 3, 5
    whole = list(StreamBatcher(ids, 2 * B, T).windows())
    r0 = list(StreamBatcher(ids, B, T, rank=0, world_size=2).windows())
    r1 = list(StreamBatcher(ids, B, T, rank=1, world_size=2).windows())
    assert len(r0) == len(r1) == len(whole)
    for (x, y, m), (x0, y0, m0), (x1, y1, m1) in zip(whole, r0, r1):
        np.testing.assert_array_equal(x, np.concatenate([x0, x1], axis=1))
        np.testing.assert_array_equal(y, np.concatenate([y0, y1], axis=1))
        np.testing.assert_array_equal(m, np.concatenate([m0, m1], axis=1))


def test_sentence_batches():
    enc, _ = _reference_stream(n=333, seed=2)
    vocab = Vocab(["<unk>", "<s>", "</s>"])

    def epoch(rng):
        seen = []
        for x, y, m in sentence_batches(enc, vocab, 16, rng=rng):
            assert x.dtype == y.dtype == np.int64 and m.dtype == np.float32 and x.shape == y.shape == m.shape
            for b in range(x.shape[1]):
                n = int(m[:, b].sum())
                assert m[:n, b].all() and not m[n:, b].any()  # padding masked
                assert x[0, b] == vocab.bos_id and y[n - 1, b] == vocab.eos_id
                np.testing.assert_array_equal(x[1:n, b], y[:n - 1, b])
                seen.append(tuple(y[:n - 1, b]))
        return seen

    ordered = epoch(None)
    assert ordered == [tuple(e) for e in enc]  # corpus order, each once
    a = epoch(np.random.default_rng(7))
    assert sorted(a) == sorted(ordered) and a != ordered  # each sentence exactly once, shuffled
    assert epoch(np.random.default_rng(7)) == a and epoch(7) == a  # deterministic per seed
    assert epoch(np.random.default_rng(8)) != a
    pad = sum(x.size for x, _, _ in sentence_batches(enc, vocab, 16, rng=np.random.default_rng(7)))
    pad_plain = sum(x.size for x, _, _ in sentence_batches(enc, vocab, 16))
    assert pad < pad_plain  # length bucketing pads less than corpus order
