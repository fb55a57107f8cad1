"""Recipes: named training presets (TOML files shipped inside the package) and their reader.

A recipe has optional top-level `corpus`, `valid`, `test`, `description` and `target`, and
sections [model], [tokenizer], [train] whose keys are the fields of ModelConfig,
TokenizerConfig and TrainConfig. `--recipe NAME` finds `NAME.toml` among the files of this
package (read with importlib.resources, so it works from any install and any directory);
`--recipe PATH.toml` reads a file of the user's.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError

SECTIONS = ("model", "tokenizer", "train")
TOP_LEVEL = ("corpus", "valid", "test", "description", "target")


def names() -> list[str]:
    """The recipes that ship with rnnkit."""
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".toml"))


def _read(name: str) -> tuple[str, str]:
    """(where, text) of a recipe: a user's file first, else a shipped recipe by name."""
    path = Path(name)
    if path.suffix == ".toml" or path.is_file():
        try:
            return str(path), path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"--recipe {name}: no such file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--recipe {name}: cannot read ({e})") from None
    shipped = resources.files(__package__) / f"{name}.toml"
    if not shipped.is_file():
        raise ConfigError(f"--recipe {name}: no such recipe (shipped recipes: {', '.join(names())}; "
                          "or give a path to a .toml file)")
    return f"recipe {name}", shipped.read_text(encoding="utf-8")


def load_recipe(name: str) -> dict[str, Any]:
    """A recipe as a dict (sections checked for unknown names); `_path` says where it came from."""
    where, text = _read(name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: invalid TOML ({e})") from None
    allowed = set(SECTIONS) | set(TOP_LEVEL)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    for section in SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"{where}: [{section}] must be a table of options")
    data["_path"] = where
    return data
