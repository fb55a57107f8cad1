"""Bad input to rnnkit.data: every failure is an InputError with a one-line message naming the
file (or dataset) and the problem."""

from __future__ import annotations

import pytest

from rnnkit.data import KNOWN_DATASETS, MAX_LINE_CHARS, read_sentences, read_text, resolve_dataset
from rnnkit.data import datasets as ds
from rnnkit.errors import ConfigError, InputError


def expect_error(fn, *words):
    with pytest.raises(InputError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("content, words", [
    (b"", ["empty file (0 bytes)"]),
    (b"  \n\t\r\n \n", ["empty file (only whitespace)"]),
    (b"fine line\nbad \xff byte\n", ["invalid UTF-8", "line 2", "byte offset 14"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["looks like a binary file"]),
    ("text".encode("utf-16"), ["looks like a binary file"]),
])
def test_bad_files(tmp_path, content, words):
    p = tmp_path / "corpus.txt"
    p.write_bytes(content)
    msg = expect_error(lambda: read_text(p), *words)
    assert msg.startswith(str(p))
    expect_error(lambda: read_sentences(p), str(p), *words)


def test_very_long_line(tmp_path):
    p = tmp_path / "one_line.txt"
    p.write_bytes(b"ok\n" + b"a" * 10_000_000 + b"\n")
    msg = expect_error(lambda: read_text(p), str(p), "line 2", "10,000,000 characters", f"{MAX_LINE_CHARS:,}")
    assert msg.startswith(str(p))


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.txt"
    expect_error(lambda: read_text(missing), str(missing), "no such file")
    expect_error(lambda: read_sentences(str(missing)), str(missing), "no such file")
    expect_error(lambda: read_text(tmp_path), str(tmp_path), "is a directory")
    expect_error(lambda: read_sentences(tmp_path), str(tmp_path), "is a directory")


def test_csv_without_column(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("title,text\na,b\n", encoding="utf-8")
    expect_error(lambda: read_sentences(p), str(p), "no column 'body'", "'title', 'text'")


def test_unknown_dataset_and_split():
    expect_error(lambda: read_sentences("wikitext-3"), "wikitext-3", "not a known dataset", "ptb")
    expect_error(lambda: resolve_dataset("wikitext-3"), "wikitext-3", "unknown dataset")
    expect_error(lambda: read_sentences("ptb:dev"), "ptb:dev", "unknown split", "valid")


def test_missing_dataset_lists_places_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    monkeypatch.setattr(ds, "search_roots", lambda: [("$RNNKIT_DATA", tmp_path), ("the cache", None)])
    msg = expect_error(lambda: resolve_dataset("wikitext-2", "valid"), "wikitext-2:valid",
                       str(tmp_path / "wikitext-2" / "valid.txt"), "https://", "download_dataset")
    assert "the cache (unset)" in msg


def test_checksum_mismatch(tmp_path, monkeypatch):
    entry = ds.DatasetFile("toy/toy.txt", "0" * 64, "https://example.invalid/toy.txt")
    monkeypatch.setitem(KNOWN_DATASETS, "toy", ds.DatasetSpec("toy", "lines", "toy", {"all": entry}))
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.txt").write_text("not the real thing\n")
    monkeypatch.setattr(ds, "search_roots", lambda: [("$RNNKIT_DATA", tmp_path)])
    expect_error(lambda: read_sentences("toy"), "toy:train", "sha256 mismatch", "https://example.invalid/toy.txt")


def test_download_errors_without_network(tmp_path, monkeypatch):
    refused = ds.DatasetFile("toy/a.txt", None, "http://127.0.0.1:1/a.txt")  # nothing listens on port 1
    monkeypatch.setitem(KNOWN_DATASETS, "toy", ds.DatasetSpec("toy", "lines", "toy", {"all": refused}))
    expect_error(lambda: ds.download_dataset("toy", tmp_path, timeout=5), "toy", "http://127.0.0.1:1/a.txt", "failed")
    bad = ds.DatasetFile("toy/a.txt", None, "notascheme://x")
    monkeypatch.setitem(KNOWN_DATASETS, "toy", ds.DatasetSpec("toy", "lines", "toy", {"all": bad}))
    expect_error(lambda: ds.download_dataset("toy", tmp_path), "toy", "notascheme://x", "failed")
    src = tmp_path / "wrong.txt"
    src.write_bytes(b"wrong\n")
    wrong = ds.DatasetFile("toy/a.txt", "0" * 64, src.as_uri())
    monkeypatch.setitem(KNOWN_DATASETS, "toy", ds.DatasetSpec("toy", "lines", "toy", {"all": wrong}))
    expect_error(lambda: ds.download_dataset("toy", tmp_path / "dest"), "toy", "expected " + "0" * 64)
    assert not (tmp_path / "dest").exists()  # no partial file, no empty directory left behind
    expect_error(lambda: ds.download_dataset("reddit-sample", tmp_path), "reddit-sample", "no public download")
    expect_error(lambda: ds.download_dataset("nope", tmp_path), "nope", "unknown dataset")


def test_bad_options(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("hi\n")
    with pytest.raises(ConfigError, match="corpus_format"):
        read_sentences(p, format="xml")
    with pytest.raises(ConfigError, match="level"):
        read_sentences(p, level="byte")
