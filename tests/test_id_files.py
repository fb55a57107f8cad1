"""Corpora as id files: encoded once, cached, memory-mapped, and read window by window.

Every check compares with a reference that does not go through rnnkit.data.encode: the
in-memory pipeline of earlier releases written out here (tokenize every sentence, Vocab.build,
encode, concatenate `<s> ids </s>`), whole-text parsers as they were, training on the same ids
held in memory, or a count of how often the text was read.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.config import TokenizerConfig, TrainConfig
from rnnkit.data import (
    EncodedIds,
    StreamBatcher,
    encode_corpus,
    encode_source,
    read_sentences,
    sentence_batches,
    split_lines,
)
from rnnkit.data import encode as encode_module
from rnnkit.data.formats import format_sentences
from rnnkit.errors import InputError
from rnnkit.inference.evaluate import (
    EvalResult,
    evaluate_encoded,
    evaluate_file,
    evaluate_stream,
    unigram_baseline,
)
from rnnkit.text import Vocab, make_tokenizer, split_sentences
from rnnkit.training import driver, setup
from rnnkit.training.corpus import prepare_corpus

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "log", "big", "small", "red", "bird", "sang", "tree", "hill"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_CACHE", str(path))
    return path


def random_lines(n: int, seed: int, words=WORDS) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(n)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def passes(monkeypatch) -> list[int]:
    """Count the passes over corpus text."""
    calls: list[int] = []
    real = encode_module._write_pass

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(encode_module, "_write_pass", counted)
    return calls


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


# --------------------------------------------------------------------------- sources


def test_directories_and_globs_are_read_in_sorted_order_with_per_file_formats(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    write(shards / "b.txt", ["second file"])
    write(shards / "a.txt", ["first file", "", "more"])
    (shards / "c.csv").write_text('body\n"A csv cell. Two sentences."\n', encoding="utf-8")
    write(shards / ".hidden", ["never read"])
    (shards / "sub").mkdir()
    expected = ["first file", "more", "second file", "A csv cell.", "Two sentences."]
    assert read_sentences(shards) == expected
    assert read_sentences(str(shards / "*.txt")) == expected[:3]
    whole, vocab = encode_corpus(str(shards / "[ab].txt"), TokenizerConfig())
    assert [vocab.decode(s) for s in whole] == [s.split() for s in expected[:3]]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: is a directory with no files"):
        read_sentences(tmp_path / "empty")
    with pytest.raises(InputError, match=r"nothing\*\.txt: no file matches"):
        read_sentences(str(tmp_path / "nothing*.txt"))


def old_csv(text: str, column: str) -> list[str]:
    """The whole-text CSV reader of earlier releases."""
    reader = csv.reader(io.StringIO(text, newline=""))
    names = [h.strip() for h in next(reader)]
    idx = names.index(column)
    out: list[str] = []
    for row in reader:
        if idx < len(row) and row[idx].strip():
            out.extend(split_sentences(html.unescape(row[idx])))
    return out


@pytest.mark.parametrize("text", [
    'id,body\n1,"First &gt; one.\n\nSecond, ""quoted"". Third"\n2,\n3,Plain &amp; simple\n',
    'id,body\r\n1,"a\rb. C d."\r\n2,lone\rcr row\n3,"ends with cr\r"\n4,last row without newline',
    'body,x\n"multi\n line\n\n para. Next one"\n,\n"x\r\r\ny. Z"\n',
])
def test_csv_rows_streamed_as_the_whole_text_reader_parsed_them(text):
    lines = split_lines(text.replace("\r\n", "\n"))
    assert list(format_sentences(lines, "csv", csv_column="body")) == old_csv(text.replace("\r\n", "\n"), "body")


@pytest.mark.parametrize("text", [
    "Mr. Smith came. He saw\nit all!\n\nA new paragraph\n \t \nand one. More\n",
    "No breaks here. Just\nwrapped lines. Of text.\n",
    "\n\n  \nLeading blank lines. Then\r\rtext after a cr pair. And\x0c\nform feed.\n\n",
])
def test_text_format_by_paragraph_is_split_sentences_of_the_whole(text):
    assert list(format_sentences(split_lines(text), "text")) == split_sentences(text)


# --------------------------------------------------------------------------- the cache


def test_a_second_run_reads_the_cache_and_a_changed_corpus_or_tokenizer_is_encoded_again(tmp_path, monkeypatch, cache):
    path = write(tmp_path / "c.txt", random_lines(200, seed=3))
    valid = write(tmp_path / "v.txt", random_lines(20, seed=4))
    tok, cfg = TokenizerConfig(), TrainConfig()
    count = passes(monkeypatch)
    first = prepare_corpus(str(path), str(valid), tok, cfg)
    assert len(count) == 2  # the corpus (counted and encoded in one pass), the validation file
    again = prepare_corpus(str(path), str(valid), tok, cfg)
    assert len(count) == 2 and again.vocab == first.vocab  # nothing read
    np.testing.assert_array_equal(again.train_ids, first.train_ids)
    prepare_corpus(str(path), str(valid), tok, cfg, vocab=first.vocab)  # a resumed run: same files
    assert len(count) == 2
    assert not list(cache.glob(".tmp-*"))

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, newer file
    prepare_corpus(str(path), str(valid), tok, cfg)
    assert len(count) == 3
    with path.open("a", encoding="utf-8") as f:
        f.write("a new line with new words\n")
    changed = prepare_corpus(str(path), str(valid), tok, cfg)
    assert len(count) == 5 and "new" in changed.vocab  # new vocabulary: the validation file again too
    prepare_corpus(str(path), str(valid), TokenizerConfig(lowercase=True), cfg)
    assert len(count) == 7
    prepare_corpus(str(path), None, tok, cfg)  # held out: another vocabulary, another entry
    assert len(count) == 8


def test_a_bad_entry_is_rebuilt_and_a_key_must_match(tmp_path, monkeypatch, cache):
    path = write(tmp_path / "c.txt", random_lines(100, seed=5))
    tok = TokenizerConfig()
    count = passes(monkeypatch)
    whole, vocab = encode_corpus(path, tok)
    ref = np.array(whole.ids)
    entry = next(cache.glob("ids-*"))
    ids_file = entry / "ids.bin"
    ids_file.write_bytes(ids_file.read_bytes()[:-2])  # truncated
    again, _ = encode_corpus(path, tok)
    assert len(count) == 2
    np.testing.assert_array_equal(again.ids, ref)
    meta = json.loads((entry / "meta.json").read_text())
    meta["key"]["csv_column"] = "other"  # an entry made for something else under this name
    (entry / "meta.json").write_text(json.dumps(meta))
    encode_source(path, tok, vocab)
    assert len(count) == 3


def test_entries_of_changed_or_removed_files_are_swept_when_the_next_is_built(tmp_path, cache):
    a = write(tmp_path / "a.txt", random_lines(30, seed=12))
    b = write(tmp_path / "b.txt", random_lines(30, seed=13))
    encode_corpus(a, TokenizerConfig())
    encode_corpus(b, TokenizerConfig())
    assert len(list(cache.iterdir())) == 4  # ids and vocab of each
    a.unlink()
    write(b, random_lines(31, seed=13))
    encode_corpus(write(tmp_path / "c.txt", ["one more"]), TokenizerConfig())
    assert len(list(cache.iterdir())) == 2  # only c's


def test_two_processes_building_the_same_entry_at_once(tmp_path, cache):
    path = write(tmp_path / "c.txt", random_lines(20_000, seed=6))
    code = ("import sys, hashlib; from rnnkit.config import TokenizerConfig; from rnnkit.data import encode_corpus;"
            "w, v = encode_corpus(sys.argv[1], TokenizerConfig());"
            "print(hashlib.sha256(w.ids.tobytes()).hexdigest(), v.digest())")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src, "RNNKIT_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs[0] == outs[1]
    whole, vocab = encode_corpus(path, TokenizerConfig())
    assert outs[0].split() == [__import__("hashlib").sha256(whole.ids.tobytes()).hexdigest(), vocab.digest()]
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["ids", "vocab"]  # one of each, no leftovers


def test_publishing_an_entry_another_process_published_first_keeps_the_first(tmp_path, cache):
    from rnnkit.data import cache as id_cache

    key = {"what": "test"}

    def built(text: str) -> Path:
        d = id_cache.new_dir("x")
        (d / "data").write_text(text)
        id_cache.write_meta(d, key)
        return d

    def done(path, meta):
        return (path / "data").is_file()

    first, second = built("first"), built("second")
    final = id_cache.publish(first, "x", key, done)
    assert id_cache.publish(second, "x", key, done) == final
    assert (final / "data").read_text() == "first" and not second.exists()
    assert id_cache.find("x", key, done) == (final, {"key": key})
    (final / "data").unlink()  # an incomplete entry in the way is replaced
    assert id_cache.find("x", key, done) is None
    third = built("third")
    assert id_cache.publish(third, "x", key, done) == final and (final / "data").read_text() == "third"


# --------------------------------------------------------------------------- training reads the memory map


def grammar_lines(n: int, seed: int) -> list[str]:
    return random_lines(n, seed, words=WORDS[:10])


@pytest.mark.parametrize("batching", ["stream", "sentences"])
def test_training_on_the_memory_map_is_bitwise_training_on_ids_in_memory(tmp_path, monkeypatch, batching):
    """The same run three times: from the memory-mapped id file, from an in-memory copy of it
    (np.array), and from int64 arrays per sentence as the in-memory pipeline held them."""
    path = write(tmp_path / "train.txt", grammar_lines(60, seed=7))
    cfg = {"batch_size": 4, "seq_len": 5, "epochs": 2, "batching": batching, "lr": 0.01}
    real = setup.prepare_corpus
    kinds = []

    def prepared(*a, held: str, **kw):
        data = real(*a, **kw)
        kinds.append(type(data.train.stream))
        if held == "copy":
            data.train, data.valid = data.train.in_memory(), data.valid.in_memory()
        elif held == "arrays":
            data.train = EncodedIds.from_arrays(list(data.train), data.vocab)
            data.valid = EncodedIds.from_arrays(list(data.valid), data.vocab)
        return data

    states = []
    for held in ("mmap", "copy", "arrays"):
        monkeypatch.setattr(setup, "prepare_corpus", lambda *a, held=held, **kw: prepared(*a, held=held, **kw))
        res = driver.train(str(path), tmp_path / held, model={"cell": "lstm", "hidden_dim": 8, "embed_dim": 8, "dropout": 0.2},
                           config=TrainConfig(**cfg), progress=False, log=lambda m: None)
        d = res.model_dir / "trainer_state"
        states.append(((d / "model.safetensors").read_bytes(), (d / "optimizer.safetensors").read_bytes(),
                       res.valid.nats, res.unigram.nats))
    assert kinds == [np.memmap] * 3
    assert states[0] == states[1] == states[2]
    start = checkpoint.load_tensors(tmp_path / "mmap" / "trainer_state" / "model.safetensors")
    assert all(np.isfinite(v).all() for v in start.values())


def test_stream_windows_are_gathered_per_window_not_copied(tmp_path):
    """A 1.5M-token memory map read through a whole epoch: the windows of the columns cut by
    hand, and no allocation anywhere near an int64 (12 MB) or transposed copy of the stream."""
    n, B, T = 1_500_000, 8, 35
    ids = np.random.default_rng(8).integers(1, 500, n).astype(np.uint16)
    ids.tofile(tmp_path / "ids.bin")
    mm = np.memmap(tmp_path / "ids.bin", dtype=np.uint16, mode="r")
    L = n // B
    cols = ids[:B * L].reshape(B, L).T.astype(np.int64)  # (L, B): column b is ids[b*L:(b+1)*L]
    batcher = StreamBatcher(mm, B, T)
    tracemalloc.start()
    try:
        for i, (x, y, m) in enumerate(batcher.windows()):
            if i % 997 == 0 or i == len(batcher) - 1:
                t = min(T, L - 1 - i * T)
                assert x.dtype == np.int64 and np.array_equal(x, cols[i * T:i * T + t])
                assert np.array_equal(y, cols[i * T + 1:i * T + 1 + t]) and np.array_equal(m, y != 1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert i + 1 == len(batcher) == -(-(L - 1) // T)
    assert peak < 200_000, peak


class CountingModel:
    """Stands in for a model in evaluate_stream: ln p = -1 per target; records the window shapes."""

    def __init__(self):
        self.shapes = []

    def init_hidden(self, batch_size):
        return None

    def token_logprobs(self, x, y, hidden=None, mask=None):
        self.shapes.append(x.shape)
        return np.where(mask, -1.0, 0.0), hidden


def test_evaluation_reads_the_memory_map_window_by_window(tmp_path):
    n = 1_000_000
    ids = np.random.default_rng(9).integers(1, 300, n).astype(np.uint16)
    ids.tofile(tmp_path / "ids.bin")
    mm = np.memmap(tmp_path / "ids.bin", dtype=np.uint16, mode="r")
    model = CountingModel()
    tracemalloc.start()
    try:
        res = evaluate_stream(model, mm, Vocab(["<unk>", "<s>", "</s>"]), batch_size=10, seq_len=64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    targets = int(np.count_nonzero(ids[1:] != 1))
    assert (res.nats, res.count) == (targets, targets)
    assert max(model.shapes) == (64, 10) and peak < 200_000, peak


# --------------------------------------------------------------------------- evaluating a file


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("idm") / "model", cell="gru"))


@pytest.mark.parametrize("mode", ["stream", "sentences"])
def test_evaluate_file_equals_evaluating_the_sentences_in_memory(lm, tmp_path, mode):
    path = write(tmp_path / "eval.txt", random_lines(120, seed=10) + ["zebra crossing ."])
    sents = read_sentences(path)
    enc = [np.array(lm.vocab.encode(lm.tokenize(s)), dtype=np.int64) for s in sents]
    ref = evaluate_encoded(lm.model, enc, lm.vocab, mode, batch_size=3, seq_len=16)
    got = evaluate_file(lm.model, lm.vocab, lm.tokenizer_config, path, mode, batch_size=3, seq_len=16)
    assert (got.nats, got.count, got.oov) == (ref.nats, ref.count, ref.oov) and got.oov > 0


def test_unigram_baseline_from_counts_is_the_one_from_streams():
    vocab = Vocab(["<unk>", "<s>", "</s>", "a", "b", "c"])
    train = [np.array([3, 3, 4]), np.array([5]), np.array([], dtype=np.int64)]
    valid = [np.array([3, 0, 4, 4])]
    a = unigram_baseline(EncodedIds.from_arrays(train, vocab), EncodedIds.from_arrays(valid, vocab), vocab)
    # by hand: training targets a a b </s> c </s> </s> (+1 each, <unk> 0+1): 12 in all
    p = {3: 3 / 12, 0: 1 / 12, 4: 2 / 12, 2: 4 / 12}
    want = -sum(np.log(p[i]) for i in (3, 0, 4, 4, 2))
    assert a.count == 5 and a.nats == pytest.approx(want, rel=1e-12)
    b = unigram_baseline(EncodedIds.from_arrays(train, vocab).ids, EncodedIds.from_arrays(valid, vocab).ids, vocab)
    assert isinstance(b, EvalResult) and b.nats == pytest.approx(a.nats, rel=1e-12) and b.count == a.count


def test_sentence_batches_from_offsets_are_those_from_arrays():
    vocab = Vocab(["<unk>", "<s>", "</s>", "a", "b"])
    rng = np.random.default_rng(11)
    enc = [rng.integers(3, 5, rng.integers(0, 9)) for _ in range(77)]
    ids = EncodedIds.from_arrays(enc, vocab)
    for seed in (None, 3):
        for (x, y, m), (rx, ry, rm) in zip(sentence_batches(ids, vocab, 6, rng=seed), sentence_batches(enc, vocab, 6, rng=seed),
                                           strict=True):
            assert np.array_equal(x, rx) and np.array_equal(y, ry) and np.array_equal(m, rm)


def _resident_kb(path: Path) -> int:
    """Resident kB of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("reader", ["train", "eval"])
def test_reading_a_whole_id_file_does_not_keep_it_resident(tmp_path, reader):
    """Pages of the memory map count as the process's memory once read: a pass over a 16 MB id
    file (training windows, or evaluation) must not leave it resident (release_pages). Two
    columns: the kernel may map a large folio (up to 2 MB) around each column's position, so
    what stays resident is bounded by the columns, not by the file."""
    from rnnkit.inference.evaluate import stream_windows

    n = 8_000_000
    path = tmp_path / "ids.bin"
    np.random.default_rng(0).integers(1, 500, n).astype(np.uint16).tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    windows = StreamBatcher(mm, 2, 500).windows() if reader == "train" else \
        stream_windows(mm, Vocab.build([["a"]]), 2, 500)
    seen = sum(int(x.shape[0]) * int(x.shape[1]) for x, _, _ in windows)
    assert seen >= n - 2 * 501  # the whole file was read
    assert _resident_kb(path) < 0.25 * n * 2 / 1024  # less than a quarter of its 15.6 MB still resident
