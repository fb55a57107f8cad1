"""The id cache: encoded once and read back after, encoded again when the corpus or tokenizer
changes, bad or foreign entries rebuilt, stale entries swept, and two processes building or
publishing the same entry at once (counted passes over the text as the reference).

Every check compares with a reference that does not go through rnnkit.data.encode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import id_files_kit
from id_files_kit import random_lines, write
from rnnkit.config import TokenizerConfig, TrainConfig
from rnnkit.data import encode as encode_module
from rnnkit.data import encode_corpus, encode_source
from rnnkit.training.corpus import prepare_corpus

# the kit's fixture (autouse: every test here gets an id cache of its own, RNNKIT_CACHE)
cache = id_files_kit.cache


def passes(monkeypatch) -> list[int]:
    """Count the passes over corpus text."""
    calls: list[int] = []
    real = encode_module._write_pass

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(encode_module, "_write_pass", counted)
    return calls


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
