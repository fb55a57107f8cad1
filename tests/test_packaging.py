"""The package as users install it: a built wheel carries the recipes, and `--recipe NAME`
finds them from any directory without the repository around it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import SHARED_DATA, TINY_CORPUS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the source (the checkout is left untouched)."""
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src-copy"
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    out = root / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "setuptools" in proc.stderr:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("rnnkit-*.whl")
    return whl


def test_wheel_carries_every_recipe(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"rnnkit/recipes/{p.name}" for p in (REPO / "src" / "rnnkit" / "recipes").glob("*.toml")}
    assert shipped and shipped <= names
    assert "rnnkit/recipes/reddit-tutorial.toml" in names


def test_wheel_carries_the_serve_page(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    static = REPO / "src" / "rnnkit" / "serve" / "static"
    shipped = {f"rnnkit/serve/static/{p.name}" for p in static.iterdir() if p.suffix in (".html", ".js", ".css")}
    assert "rnnkit/serve/static/index.html" in shipped and shipped <= names


def test_recipe_by_name_from_an_installed_copy_in_another_directory(wheel, tmp_path):
    """What a user does after `pip install .`: from an unrelated directory, `rnnkit train
    --recipe reddit-tutorial` finds the recipe inside the installed package."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # the installed layout, without the repository
    work = tmp_path / "elsewhere"
    work.mkdir()
    args = ["--recipe", "reddit-tutorial", "--max-steps", "5", "--out", "m", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(site)}
    if (SHARED_DATA / "reddit").is_dir():  # the recipe's own corpus, found as a user points to it
        env["RNNKIT_DATA"] = str(SHARED_DATA)
    else:  # a fresh clone: give the corpus as a file
        (work / "comments.csv").write_text("body\n" + "\n".join(f'"{s}"' for s in TINY_CORPUS * 8) + "\n",
                                           encoding="utf-8")
        args = ["comments.csv", *args]
    proc = subprocess.run([sys.executable, "-m", "rnnkit", "train", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    imported = subprocess.run([sys.executable, "-c", "import rnnkit; print(rnnkit.__file__)"], cwd=work, env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert imported.startswith(str(site)), imported  # the copy from the wheel ran, not the checkout
    cfg = (work / "m" / "config.json").read_text(encoding="utf-8")
    assert '"cell": "rnn"' in cfg and '"hidden_dim": 100' in cfg  # the recipe's model
    assert "done (max_steps): 5 steps" in proc.stdout
