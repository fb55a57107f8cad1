"""Recipes: named training presets (TOML files shipped inside the package) and their reader.

A recipe has optional top-level `corpus`, `valid`, `test`, `description` and `target`, and
sections [model], [tokenizer], [train] whose keys are the fields of ModelConfig,
TokenizerConfig and TrainConfig. `--recipe NAME` finds `NAME.toml` among the files of this
package (read with importlib.resources, so it works from any install and any directory);
`--recipe PATH.toml` reads a file of the user's. `load_recipe` checks everything it reads:
unknown keys and sections, and each value's type (and choices) as the config field declares
it, a ConfigError naming the recipe, the section and the key; ranges are checked once the
command line has been merged in.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import ModelConfig, TokenizerConfig, TrainConfig, key_names
from ..errors import ConfigError

SECTIONS = ("model", "tokenizer", "train")
CONFIGS = {"model": ModelConfig, "tokenizer": TokenizerConfig, "train": TrainConfig}  # section -> its fields
TOP_LEVEL = ("corpus", "valid", "test", "description", "target")
TARGET_KEYS = {"metric": "a string", "max": "a finite number", "max_seconds": "a finite number"}


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
        except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: a NUL in the name
            raise ConfigError(f"--recipe {name}: cannot read ({e})") from None
    shipped = resources.files(__package__) / f"{name}.toml"
    if not shipped.is_file():
        raise ConfigError(f"--recipe {name}: no such recipe (shipped recipes: {', '.join(names())}; "
                          "or give a path to a .toml file)")
    return f"recipe {name}", shipped.read_text(encoding="utf-8")


def load_recipe(name: str) -> dict[str, Any]:
    """A recipe as a dict, every key and value checked (ConfigError naming the recipe, the
    section and the key); `_path` says where it came from."""
    where, text = _read(name)
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as e:  # ValueError: a 5,000-digit integer
        raise ConfigError(f"{where}: invalid TOML ({' '.join(str(e).split()) or 'nested too deeply'})") from None
    _check_top_level(data, where)
    for section, cls in CONFIGS.items():
        if section in data:
            if not isinstance(data[section], dict):
                raise ConfigError(f"{where}: [{section}] must be a table of options, got {_kind(data[section])}")
            if section == "model" and "vocab_size" in data[section]:
                raise ConfigError(f"{where} [model]: unknown key vocab_size; vocab_size comes from the corpus "
                                  "(set max_vocab in [tokenizer] instead)")
            cls.check_types(data[section], f"{where} [{section}]", exclude=("vocab_size",))
    data["_path"] = where
    return data


def _check_top_level(data: dict[str, Any], where: str) -> None:
    """Unknown top-level keys; corpus, valid, test, description: strings; target: its table."""
    allowed = set(SECTIONS) | set(TOP_LEVEL)
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {key_names(unknown)} (allowed: {', '.join(sorted(allowed))})")
    for key in ("corpus", "valid", "test", "description"):
        if key in data and not (isinstance(data[key], str) and data[key].strip()):
            raise ConfigError(f"{where}: {key} must be a non-empty string, got {_kind(data[key])}")
    target = data.get("target", {})
    if not isinstance(target, dict):
        raise ConfigError(f"{where}: target must be a table such as {{ metric = \"test_ppl\", max = 120 }}, "
                          f"got {_kind(target)}")
    for key, value in target.items():
        kind = TARGET_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where} [target]: unknown key {key_names([key])} (known: {', '.join(TARGET_KEYS)})")
        ok = isinstance(value, str) if key == "metric" else _finite(value)
        if not ok:
            raise ConfigError(f"{where} [target]: {key} must be {kind}, got {_kind(value)}")


def _finite(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and math.isfinite(v))


def _kind(v: Any) -> str:
    """A TOML value as a message names it: its type and, when short, the value."""
    text = repr(v)
    return f"{type(v).__name__} {text if len(text) <= 40 else text[:40] + '...'}"
