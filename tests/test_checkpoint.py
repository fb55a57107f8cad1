"""The model directory: round trip, atomic writes, and refusal of anything that does not fit."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.errors import CheckpointError


def test_round_trip_is_exact(tmp_path):
    d = make_model_dir(tmp_path / "m", cell="gru", tie=True)
    ck = checkpoint.load(d)
    again = checkpoint.save(tmp_path / "m2", ck.model, ck.tokenizer, ck.vocab, ck.params)
    ck2 = checkpoint.load(again)
    assert ck2.model == ck.model and ck2.tokenizer == ck.tokenizer
    assert ck2.vocab.to_list() == ck.vocab.to_list()
    assert set(ck2.params) == set(ck.params) and "decoder.weight" not in ck2.params  # tied
    for k in ck.params:
        assert ck2.params[k].dtype == np.float32
        np.testing.assert_array_equal(ck2.params[k], ck.params[k])
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["format"] == "rnnkit" and cfg["format_version"] == 1
    # a full-softmax model names only the keys rnnkit 0.1.0 knows (it refuses others)
    assert not {"softmax", "cutoffs", "div_value"} & set(cfg["model"])


def test_atomic_write_leaves_no_temp_files(tmp_path):
    d = make_model_dir(tmp_path / "m")
    ck = checkpoint.load(d)
    checkpoint.save(d, ck.model, ck.tokenizer, ck.vocab, ck.params)  # overwrite in place
    assert sorted(os.listdir(d)) == ["config.json", "model.safetensors", "vocab.json"]


def test_replace_dir_and_recover(tmp_path):
    final, tmp = tmp_path / "state", tmp_path / ".state.tmp"
    final.mkdir(), tmp.mkdir()
    (final / "v").write_text("old"), (tmp / "v").write_text("new")
    checkpoint.replace_dir(tmp, final)
    assert (final / "v").read_text() == "new" and not tmp.exists()
    # a kill between the two renames: NAME gone, .NAME.old present -> recover puts it back
    os.replace(final, tmp_path / ".state.old")
    checkpoint.recover_dir(final)
    assert (final / "v").read_text() == "new"


def _expect(d, *words):
    with pytest.raises(CheckpointError) as e:
        checkpoint.load(d)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_missing_directory(tmp_path):
    _expect(tmp_path / "nope", str(tmp_path / "nope"), "does not exist")


def test_not_a_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    _expect(f, "not a directory")


@pytest.mark.parametrize("name", ["config.json", "vocab.json", "model.safetensors"])
def test_missing_file(tmp_path, name):
    d = make_model_dir(tmp_path / "m")
    (d / name).unlink()
    _expect(d, name, "missing")


def test_truncated_weights(tmp_path):
    d = make_model_dir(tmp_path / "m")
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    _expect(d, "model.safetensors", "truncated")


def test_truncated_config(tmp_path):
    d = make_model_dir(tmp_path / "m")
    text = (d / "config.json").read_text()
    (d / "config.json").write_text(text[: len(text) // 2])
    _expect(d, "config.json", "invalid JSON")


def test_vocab_size_mismatch(tmp_path):
    d = make_model_dir(tmp_path / "m")
    tokens = json.loads((d / "vocab.json").read_text())
    (d / "vocab.json").write_text(json.dumps(tokens + ["extra"]))
    _expect(d, "vocab.json", "vocab_size")


def edit_model_config(d, key, value):
    """Overwrite one field of the model section of d/config.json."""
    cfg = json.loads((d / "config.json").read_text())
    cfg["model"][key] = value
    (d / "config.json").write_text(json.dumps(cfg))


def test_shape_mismatch(tmp_path):
    d = make_model_dir(tmp_path / "m")
    edit_model_config(d, "hidden_dim", 16)
    _expect(d, "model.safetensors", "shape")


def test_cell_mismatch(tmp_path):
    d = make_model_dir(tmp_path / "m", cell="lstm")
    edit_model_config(d, "cell", "gru")
    _expect(d, "shape")


def test_unknown_config_key(tmp_path):
    d = make_model_dir(tmp_path / "m")
    edit_model_config(d, "hiden_dim", 8)
    _expect(d, "config.json", "hiden_dim")


def test_wrong_dtype_and_nan_refused(tmp_path):
    d = make_model_dir(tmp_path / "m")
    ck = checkpoint.load(d)
    bad = dict(ck.params)
    bad["decoder.bias"] = bad["decoder.bias"].astype(np.float16)
    checkpoint.save_tensors(d / "model.safetensors", bad)
    _expect(d, "decoder.bias", "float16")
    bad["decoder.bias"] = np.full_like(ck.params["decoder.bias"], np.nan)
    checkpoint.save_tensors(d / "model.safetensors", bad)
    _expect(d, "decoder.bias", "NaN")
    with pytest.raises(CheckpointError, match="non-finite"):
        checkpoint.save(tmp_path / "x", ck.model, ck.tokenizer, ck.vocab, bad)
