"""What the id-file tests (tests/test_id_files_*.py) share: the `cache` fixture (an id cache
under tmp_path, RNNKIT_CACHE), random lines over a small word list, and writing them out.

`cache` is autouse: a test module binds it with `cache = id_files_kit.cache`, which applies it
to every test there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
