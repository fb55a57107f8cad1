"""Property: whatever bytes or JSON values stand in config.json, vocab.json, the safetensors
header, a recipe or an n-best line, reading them either succeeds or raises an RnnkitError whose
message is one line, never another exception (issue 11, item 5)."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit
from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.config import ModelConfig, TokenizerConfig, TrainConfig
from rnnkit.errors import RnnkitError
from rnnkit.inference.rescore import FORMATS, combine, iter_nbest
from rnnkit.recipes import load_recipe

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- strategies

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
toml_scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=True, allow_infinity=True)
                | st.text(max_size=12))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
some_bytes = st.binary(max_size=300)


def outcome_ok(call) -> None:
    """`call()` succeeds or raises an RnnkitError with a one-line message; anything else fails."""
    try:
        call()
    except RnnkitError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message, repr(message)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("fuzz") / "model", num_layers=1)


@contextlib.contextmanager
def model_copy(base: Path) -> Iterator[Path]:
    """A fresh copy of the valid model directory for one example."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(shutil.copytree(base, Path(tmp) / "model"))


def read_both(model: Path) -> None:
    """checkpoint.load, and on success rnnkit.load (which builds the engine) too."""
    outcome_ok(lambda: checkpoint.load(model) and rnnkit.load(model))


# ---------------------------------------------------------------- config.json

@FUZZ
@given(data=some_bytes)
def test_config_json_random_bytes(base, data):
    with model_copy(base) as model:
        (model / "config.json").write_bytes(data)
        read_both(model)


@FUZZ
@given(section=st.sampled_from([None, "model", "tokenizer", "extra"]),
       key=st.sampled_from([*ModelConfig.__dataclass_fields__, *TokenizerConfig.__dataclass_fields__,
                            "format", "format_version", "rnnkit_version", "extra", "model", "tokenizer", "x"])
       | st.text(max_size=6),
       value=json_values, drop=st.booleans())
def test_config_json_random_values(base, section, key, value, drop):
    with model_copy(base) as model:
        path = model / "config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        target = config if section is None else config.setdefault(section, {})
        if isinstance(target, dict):
            if drop:
                target.pop(key, None)
            else:
                target[key] = value
        path.write_text(json.dumps(config), encoding="utf-8")
        read_both(model)


@FUZZ
@given(value=json_values)
def test_config_json_any_json_value(base, value):
    with model_copy(base) as model:
        (model / "config.json").write_text(json.dumps(value), encoding="utf-8")
        read_both(model)


# ---------------------------------------------------------------- vocab.json

@FUZZ
@given(data=some_bytes | json_values.map(lambda v: json.dumps(v).encode()))
def test_vocab_json_random_content(base, data):
    with model_copy(base) as model:
        (model / "vocab.json").write_bytes(data)
        read_both(model)


@FUZZ
@given(index=st.integers(0, 40), value=st.text(max_size=8) | json_values, insert=st.booleans())
def test_vocab_json_one_entry_changed(base, index, value, insert):
    with model_copy(base) as model:
        path = model / "vocab.json"
        tokens = json.loads(path.read_text(encoding="utf-8"))
        index = min(index, len(tokens) - (0 if insert else 1))
        if insert:
            tokens.insert(index, value)
        else:
            tokens[index] = value
        path.write_text(json.dumps(tokens), encoding="utf-8")
        read_both(model)


# ---------------------------------------------------------------- the safetensors header

def split_weights(model: Path) -> tuple[dict, bytes]:
    data = (model / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_weights(model: Path, header: bytes, body: bytes, prefix: bytes | None = None) -> None:
    (model / "model.safetensors").write_bytes((prefix or struct.pack("<Q", len(header))) + header + body)


@FUZZ
@given(header=some_bytes | json_values.map(lambda v: json.dumps(v).encode()),
       prefix=st.none() | st.binary(min_size=8, max_size=8), keep_body=st.booleans())
def test_safetensors_random_header(base, header, prefix, keep_body):
    with model_copy(base) as model:
        _, body = split_weights(model)
        write_weights(model, header, body if keep_body else b"", prefix)
        read_both(model)


entry_changes = st.fixed_dictionaries({}, optional={
    "dtype": st.sampled_from(["F32", "F16", "F64", "BF16", "I32", "I64", "U8", "BOOL", "F8_E4M3"]) | json_values,
    "shape": st.lists(st.integers(-2, 2**33), max_size=3) | json_values,
    "data_offsets": st.lists(st.integers(-2, 2**40), min_size=2, max_size=2) | json_values,
    "extra": json_values,
})


@FUZZ
@given(which=st.integers(0, 20), change=entry_changes, prefix=st.none() | st.binary(min_size=8, max_size=8))
def test_safetensors_header_entry_changed(base, which, change, prefix):
    with model_copy(base) as model:
        header, body = split_weights(model)
        name = sorted(header)[which % len(header)]
        if isinstance(header[name], dict):
            header[name].update(change)
        else:  # __metadata__
            header[name] = change
        write_weights(model, json.dumps(header).encode(), body, prefix)
        read_both(model)


@FUZZ
@given(data=some_bytes)
def test_safetensors_random_file(base, data):
    with model_copy(base) as model:
        (model / "model.safetensors").write_bytes(data)
        read_both(model)


# ---------------------------------------------------------------- recipes

def toml_value(v) -> str:
    """A value in TOML syntax (strings as JSON writes them, tables inline)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return ("-inf" if v < 0 else "inf") if math.isinf(v) else "nan" if math.isnan(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(toml_value, v)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


recipe_keys = st.sampled_from([*TrainConfig.__dataclass_fields__, *ModelConfig.__dataclass_fields__,
                               *TokenizerConfig.__dataclass_fields__, "corpus", "valid", "target", "x"])
recipe_sections = st.dictionaries(st.sampled_from(["", "model", "tokenizer", "train", "target", "other"]),
                                  st.dictionaries(recipe_keys | st.text(max_size=6), toml_values, max_size=4),
                                  max_size=4)


def recipe_text(sections: dict) -> str:
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in sections.get("", {}).items()]
    for name, table in sections.items():
        if name:
            lines.append(f"[{name}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def load_and_merge(path: Path) -> None:
    """load_recipe, then on success the configs `rnnkit train` makes from it."""
    recipe = load_recipe(str(path))
    ModelConfig.from_dict({"vocab_size": 100, **recipe.get("model", {})}, "model options")
    TokenizerConfig.from_dict(recipe.get("tokenizer", {}), "tokenizer options")
    TrainConfig.from_dict(recipe.get("train", {}), "train options")


@FUZZ
@given(text=recipe_sections.map(recipe_text) | some_bytes.map(lambda b: b.decode("latin-1")))
def test_recipe_random_content(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("recipe") / "r.toml"
    path.write_text(text, encoding="utf-8")
    outcome_ok(lambda: load_and_merge(path))


@FUZZ
@given(data=some_bytes)
def test_recipe_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("recipe") / "r.toml"
    path.write_bytes(data)
    outcome_ok(lambda: load_and_merge(path))


# ---------------------------------------------------------------- n-best lines

numbers = (st.sampled_from(["nan", "-inf", "inf", "1e999", "-0", "1_0", "0x1f", "+.5", "5.", "1e-400", "", "-"])
           | st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-10, 10).map(str)
           | st.floats(-1e6, 1e6).map(repr))
word = st.text(st.characters(blacklist_categories=["Cs", "Zs", "Zl", "Zp", "Cc"]), min_size=1, max_size=5)
words = st.lists(word, min_size=1, max_size=4)
LINES = {  # per format: lines that mostly parse, with damage now and then
    "srilm": st.builds(lambda a, lm, w, n: " ".join([a, lm, str(len(w)) if n is None else n, *w]),
                       numbers, numbers, words, st.none() | numbers),
    "plain": st.builds(lambda i, w, tab: f"{i}{tab}{' '.join(w)}", word, words, st.sampled_from(["\t", " "])),
    "kaldi": st.builds(lambda i, n, w: f"{i}-{n} {' '.join(w)}", word, st.sampled_from(["1", "2", "x", ""]), words),
    "scored": st.builds(lambda i, a, w, tab: f"{i}{tab}{a}{tab}{' '.join(w)}", word, numbers, words,
                        st.sampled_from(["\t", " "])),
}


@FUZZ
@given(data=st.data(), fmt=st.sampled_from(FORMATS), weight=st.floats(-1e308, 1e308),
       penalty=st.floats(-1e308, 1e308))
def test_nbest_random_lines(data, fmt, weight, penalty):
    lines = data.draw(st.lists(LINES[fmt] | st.text(max_size=30), max_size=5))

    def parse_and_combine():
        hyps = list(iter_nbest(lines, fmt, "nbest.txt"))
        assert all(math.isfinite(h.ascore) for h in hyps)
        groups = combine(hyps, [-1.5 * h.nwords for h in hyps], weight, penalty)
        assert all(math.isfinite(h.total) for g in groups.values() for h in g)

    outcome_ok(parse_and_combine)
