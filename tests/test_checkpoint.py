"""The model directory: round trip, atomic writes, and refusal of anything that does not fit."""

from __future__ import annotations

import errno
import json
import os
import stat

import numpy as np
import pytest

from conftest import make_model_dir
from rnnkit import checkpoint, files
from rnnkit.errors import CheckpointError, OutputError


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


# ---------------------------------------------------------------- modes, staging, strict JSON (rnnkit.files)


@pytest.fixture
def umask():
    """set(mask): the process umask for this test (put back after)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_files_and_directories_follow_the_umask(tmp_path, umask, mask):
    """tempfile makes 0600 files: a model written under umask 022 must be readable by others."""
    umask(mask)
    d = make_model_dir(tmp_path / "m")
    checkpoint.replace_dir(_dir_with_file(tmp_path / ".s.tmp"), tmp_path / "s")
    for f in ("config.json", "vocab.json", "model.safetensors"):
        assert stat.S_IMODE((d / f).stat().st_mode) == 0o666 & ~mask, f
    assert stat.S_IMODE(d.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "s" / "f").stat().st_mode) == 0o666 & ~mask


def _dir_with_file(d):
    d.mkdir()
    checkpoint.atomic_write_bytes(d / "f", b"x")
    return d


def test_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert files.umask() == 0o027 and files.umask() == 0o027
    assert os.umask(0o027) == 0o027


def test_staged_dir_swaps_in_whole_or_leaves_the_old_one(tmp_path):
    final = tmp_path / "state"
    with files.staged_dir(final) as tmp:
        _dir_with_file(tmp)
    assert (final / "f").read_bytes() == b"x" and not tmp.exists()
    with pytest.raises(RuntimeError), files.staged_dir(final) as tmp:
        tmp.mkdir()
        (tmp / "f").write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert (final / "f").read_bytes() == b"x" and sorted(os.listdir(tmp_path)) == ["state"]


def test_replace_dir_puts_the_old_directory_back_when_the_rename_fails(tmp_path, monkeypatch):
    final, tmp = tmp_path / "state", _dir_with_file(tmp_path / ".state.tmp")
    _dir_with_file(final)
    (final / "f").write_bytes(b"old")
    real = os.replace

    def replace(src, dst):
        if str(src) == str(tmp):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match=f"^{final}: cannot write: no space left on device$"):
        checkpoint.replace_dir(tmp, final)
    assert (final / "f").read_bytes() == b"old" and not (tmp_path / ".state.old").exists()


def test_check_writable_dir_refuses_a_file_and_a_path_under_one(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="f: --out is a file, not a directory"):
        files.check_writable_dir(tmp_path / "f", "--out")
    with pytest.raises(OutputError, match=r"f/m: --out cannot be made: .*f is a file"):
        files.check_writable_dir(tmp_path / "f" / "m", "--out")
    files.check_writable_dir(tmp_path / "new" / "m", "--out")  # a directory to be made: fine


def test_dumps_is_strict_json_with_a_note_for_each_lost_number():
    text = files.dumps({"ppl": float("inf"), "xs": [float("nan"), 1.5], "ok": 2.0, "loss": float("nan"),
                        "loss_note": "diverged"})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "ppl": None, "ppl_note": "infinite", "xs": [None, 1.5], "ok": 2.0, "loss": None, "loss_note": "diverged"}


def test_os_problems_in_words(tmp_path):
    e = OSError(errno.EROFS, "Read-only file system")
    assert files.describe(tmp_path / "x", e) == f"{tmp_path / 'x'}: cannot write: read-only file system"
    missing = tmp_path / "a" / "b" / "x"
    assert files.describe(missing, FileNotFoundError(errno.ENOENT, "")) == \
        f"{missing}: cannot write: the directory {tmp_path / 'a'} does not exist"
