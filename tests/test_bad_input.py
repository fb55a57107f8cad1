"""Bad input through the CLI: a one-line error naming the file and the problem, non-zero exit,
never a traceback."""

from __future__ import annotations

import pytest

from conftest import make_model_dir
from rnnkit.cli import main


def run_err(capsys, *argv) -> tuple[int, str]:
    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err


def assert_one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("rnnkit: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


BAD_FILES = {
    "empty": (b"", "empty"),
    "blank": (b"  \n\n \n", "empty"),
    "utf8": (b"good line\nbad \xff\xfe line\n", "UTF-8"),
    "binary": (b"\x7fELF\x02\x01\x00\x00\x00binary\x00\x00", "binary"),
    "longline": (b"a" * (10 * 1024 * 1024) + b"\n", "line 1"),
}


@pytest.fixture(params=sorted(BAD_FILES))
def bad_file(request, tmp_path):
    data, word = BAD_FILES[request.param]
    p = tmp_path / f"{request.param}.txt"
    p.write_bytes(data)
    return p, word


def test_score_bad_file(bad_file, tiny_model, capsys):
    path, word = bad_file
    rc, err = run_err(capsys, "score", str(tiny_model), str(path))
    assert_one_line_error(rc, err, str(path), word)


def test_train_bad_file(bad_file, tmp_path, capsys):
    path, word = bad_file
    rc, err = run_err(capsys, "train", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert_one_line_error(rc, err, str(path), word)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_eval_bad_file(bad_file, tiny_model, capsys):
    path, word = bad_file
    rc, err = run_err(capsys, "eval", str(tiny_model), str(path))
    assert_one_line_error(rc, err, str(path), word)


def test_missing_input_file(tiny_model, tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    rc, err = run_err(capsys, "score", str(tiny_model), str(missing))
    assert_one_line_error(rc, err, str(missing))


def test_missing_model_dir(tmp_path, capsys):
    rc, err = run_err(capsys, "generate", str(tmp_path / "no-model"))
    assert_one_line_error(rc, err, str(tmp_path / "no-model"), "does not exist")


@pytest.mark.parametrize("damage", ["missing-config", "missing-vocab", "missing-weights", "truncated-weights",
                                    "mismatched-vocab", "mismatched-shape"])
def test_damaged_model_dir(tmp_path, capsys, damage):
    d = make_model_dir(tmp_path / "m")
    text_file = tmp_path / "in.txt"
    text_file.write_text("the cat sat .\n")
    what, name = damage.split("-")
    target = {"config": "config.json", "vocab": "vocab.json", "weights": "model.safetensors",
              "shape": "config.json"}[name]
    if what == "missing":
        (d / target).unlink()
        words = [target, "missing"]
    elif what == "truncated":
        data = (d / target).read_bytes()
        (d / target).write_bytes(data[:100])
        words = [target, "truncated"]
    elif name == "vocab":
        (d / "vocab.json").write_text('["<unk>", "<s>", "</s>", "the"]')
        words = ["vocab.json", "vocab_size"]
    else:
        (d / "config.json").write_text((d / "config.json").read_text().replace('"hidden_dim": 8', '"hidden_dim": 9'))
        words = ["model.safetensors", "shape"]
    for cmd in (["score", str(d), str(text_file)], ["generate", str(d)], ["eval", str(d), str(text_file)]):
        rc, err = run_err(capsys, *cmd)
        assert_one_line_error(rc, err, *words)


@pytest.mark.parametrize("argv,word", [
    (["generate", "{m}", "--temperature", "-1"], "--temperature"),
    (["generate", "{m}", "--top-p", "1.5"], "--top-p"),
    (["generate", "{m}", "--max-len", "0"], "--max-len"),
    (["generate", "{m}", "--top-k", "-3"], "--top-k"),
    (["generate", "{m}", "--temperature", "nan"], "--temperature"),
    (["score", "{m}", "--batch-size", "0"], "--batch-size"),
    (["train", "x.txt", "--out", "o", "--lr", "-0.1"], "lr"),
    (["train", "x.txt", "--out", "o", "--hidden-dim", "0"], "hidden_dim"),
    (["train", "x.txt", "--out", "o", "--hidden", "0"], "hidden_dim"),
    (["train", "x.txt", "--out", "o", "--num-layers", "1.5"], "--num-layers"),
    (["train", "x.txt", "--out", "o", "--dropout", "1.5"], "dropout"),
])
def test_bad_option_values(tiny_model, capsys, argv, word):
    argv = [a.replace("{m}", str(tiny_model)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: usage line + error line, exit 2
        rc = e.code
    err = capsys.readouterr().err
    assert rc != 0 and word in err and "Traceback" not in err


def test_prompt_of_only_unknown_characters(tmp_path, capsys):
    d = make_model_dir(tmp_path / "c", level="char")
    rc, err = run_err(capsys, "generate", str(d), "--prompt", "ZQXJ")
    assert_one_line_error(rc, err, "prompt", "unknown")


def test_score_bad_stdin(bad_file, tiny_model, capsys, monkeypatch):
    """stdin gets the same checks as a file, named <stdin>."""
    import io
    import sys

    path, word = bad_file
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    rc, err = run_err(capsys, "score", str(tiny_model), "-")
    assert_one_line_error(rc, err, "<stdin>", word)
