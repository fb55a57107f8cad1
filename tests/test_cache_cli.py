"""`rnnkit cache`: listing the id cache's entries, clearing all or only the stale ones, and never
touching anything in the cache directory that the cache did not make."""

from __future__ import annotations

import os

import pytest

from conftest import run_main
from rnnkit.config import TokenizerConfig
from rnnkit.data.encode import encode_corpus


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_CACHE", str(root))
    return root


def _encode(path, text: str) -> None:
    path.write_text(text)
    encode_corpus(path, TokenizerConfig())  # a vocab entry and an ids entry


def _listed(capsys) -> list[list[str]]:
    rc, out, err = run_main(capsys, "cache")
    assert rc == 0, err
    return [line.split("\t") for line in out.splitlines()[2:]]


def test_list_shows_each_entry_and_whether_its_files_changed(cache, tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    _encode(a, "the cat sat\nthe dog sat\n")
    _encode(b, "a b c\n")
    rows = _listed(capsys)
    assert sorted((r[0], r[3], r[4]) for r in rows) == sorted(
        [(k, "current", str(p)) for p in (a, b) for k in ("ids", "vocab")])
    a.write_text("changed\n")
    rows = _listed(capsys)
    assert sorted((r[3], r[4]) for r in rows) == sorted([("stale", str(a))] * 2 + [("current", str(b))] * 2)
    assert all(r[1].endswith("B") for r in rows)


def test_clear_stale_keeps_current_entries_and_clear_removes_all(cache, tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    _encode(a, "the cat sat\n")
    _encode(b, "a b c\n")
    os.remove(a)
    rc, out, _ = run_main(capsys, "cache", "clear", "--stale")
    assert rc == 0 and "removed 2 of 4 entries" in out
    assert [r[4] for r in _listed(capsys)] == [str(b)] * 2
    rc, out, _ = run_main(capsys, "cache", "clear")
    assert rc == 0 and "removed 2 of 2 entries" in out and _listed(capsys) == []


def test_clear_touches_nothing_the_cache_did_not_make(cache, tmp_path, capsys):
    _encode(tmp_path / "a.txt", "the cat sat\n")
    mine = [cache / "notes.txt", cache / "ids-not-a-hash", cache / ("ids-" + "0" * 32), cache / ".tmp-ids-x"]
    mine[0].write_text("a user's file")
    for d in mine[1:]:
        d.mkdir()
        (d / "model.safetensors").write_text("not the cache's")
    rc, out, _ = run_main(capsys, "cache", "clear")
    assert rc == 0 and "removed 2 of 2 entries" in out
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in mine)
    assert all((d / "model.safetensors").exists() for d in mine[1:])


def test_stale_without_clear_is_refused(cache, capsys):
    rc, _, err = run_main(capsys, "cache", "--stale")
    assert rc == 1 and err.count("\n") == 1 and "--stale goes with `rnnkit cache clear`" in err
