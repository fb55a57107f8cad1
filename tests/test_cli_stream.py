"""`rnnkit score` and `rnnkit rescore` stream: output lines appear (flushed) while the input is
still being read, on a file or on stdin, with the same numbers and messages as before."""

from __future__ import annotations

import io
import json
import sys
import types

import pytest

from conftest import make_model_dir
from rnnkit.cli import main
from rnnkit.cli import rescore as rescore_cli
from rnnkit.cli import score as score_cli

SENTS = ["the cat sat on the mat .", "", "a dog played in the garden .", "the zebra sang", "dog", "the\u2028bird .",
         "it's a\x0cdog's life", "the cat", "a bird sang a song .", "the dog sat ."]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("m") / "model")


class Stdin:
    """stdin whose buffer hands out one line per read, noting what `watch()` says at each read."""

    def __init__(self, lines: list[str], watch):
        self.buffer, self.seen = self, []
        self.pieces, self.watch = [(line + "\n").encode("utf-8") for line in lines], watch

    def read(self, n: int = -1) -> bytes:
        self.seen.append(self.watch())
        return self.pieces.pop(0) if self.pieces else b""


def run(capsys, monkeypatch, *argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", stdin)
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def lines_in(path):
    return lambda: path.read_text("utf-8").count("\n") if path.exists() else 0


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_score_writes_each_chunk_while_reading_stdin(model, tmp_path, capsys, monkeypatch, fmt):
    """Chunks of 2: when the scorer asks for line k, the lines of every chunk before it are in
    the output file already; the result is the same as scoring the file."""
    monkeypatch.setattr(score_cli, "CHUNK_SENTENCES", 2)
    out = tmp_path / "out.txt"
    stdin = Stdin(SENTS, lines_in(out))
    rc, _, err = run(capsys, monkeypatch, "score", model, "-", "-o", out, "--output-format", fmt, stdin=stdin)
    assert rc == 0, err
    assert stdin.seen[:len(SENTS)] == [2 * (k // 2) for k in range(len(SENTS))]  # read k (0-based) after k//2 chunks
    f = tmp_path / "in.txt"
    f.write_text("\n".join(SENTS) + "\n", encoding="utf-8")
    rc, from_file, err2 = run(capsys, monkeypatch, "score", model, f, "--output-format", fmt)
    assert rc == 0 and from_file == out.read_text("utf-8") and err2 == err
    if fmt == "jsonl":
        assert [json.loads(line)["text"] for line in from_file.rstrip("\n").split("\n")] == SENTS  # line per line


def test_score_per_token_and_srilm_on_stdin_match_the_file(model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(score_cli, "CHUNK_SENTENCES", 3)
    f = tmp_path / "in.txt"
    f.write_text("\n".join(SENTS) + "\n", encoding="utf-8")
    for flags in (["--per-token"], ["--per-token", "--output-format", "jsonl", "--oov", "skip"],
                  ["--output-format", "srilm"]):
        stdin = types.SimpleNamespace(buffer=io.BytesIO(f.read_bytes()))
        rc, a, err = run(capsys, monkeypatch, "score", model, "-", *flags, stdin=stdin)
        assert rc == 0, err
        rc, b, _ = run(capsys, monkeypatch, "score", model, f, *flags)
        assert rc == 0 and a.replace("<stdin>", str(f)) == b
    assert b.startswith(f"file {f}: {len(SENTS)} sentences, ")


def test_score_chunked_numbers_equal_the_single_chunk_ones(model, tmp_path, capsys, monkeypatch):
    f = tmp_path / "in.txt"
    f.write_text("\n".join(SENTS * 5) + "\n", encoding="utf-8")
    rc, whole, _ = run(capsys, monkeypatch, "score", model, f, "--output-format", "jsonl")
    monkeypatch.setattr(score_cli, "CHUNK_SENTENCES", 4)
    rc2, chunked, _ = run(capsys, monkeypatch, "score", model, f, "--output-format", "jsonl")
    assert rc == rc2 == 0
    a, b = ([json.loads(line) for line in out.rstrip("\n").split("\n")] for out in (whole, chunked))
    assert [o["text"] for o in a] == [o["text"] for o in b] == SENTS * 5
    assert [o["logprob"] for o in a] == pytest.approx([o["logprob"] for o in b], abs=1e-5)  # float32, other batches


def test_bad_input_in_the_first_chunk_leaves_no_output_file(model, tmp_path, capsys, monkeypatch):
    f = tmp_path / "in.txt"
    f.write_bytes(b"the cat\nthe \xff dog\n")
    out = tmp_path / "out.txt"
    rc, _, err = run(capsys, monkeypatch, "score", model, f, "-o", out)
    assert rc == 1 and "invalid UTF-8 at line 2" in err and not out.exists()


def test_bad_input_later_keeps_what_was_written(model, tmp_path, capsys, monkeypatch):
    """Streaming: the chunks before a bad line are out; the error names the line, exit 1."""
    monkeypatch.setattr(score_cli, "CHUNK_SENTENCES", 2)
    f = tmp_path / "in.txt"
    f.write_bytes(b"the cat\nthe dog\na cat\nbad \xff\n")
    rc, out, err = run(capsys, monkeypatch, "score", model, f)
    assert rc == 1 and err.strip().splitlines() == [err.strip()] and f"{f}: invalid UTF-8 at line 4" in err
    assert [line.split("\t")[3] for line in out.splitlines()] == ["the cat", "the dog"]


NBEST = [f"utt{i}-{k} {text}" for i in range(4) for k, text in enumerate(["the cat sat .", "cat the sat .", "the dog ."], 1)]


def test_rescore_writes_each_id_while_reading_stdin(model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rescore_cli, "CHUNK_SENTENCES", 3)
    out, best = tmp_path / "out.tsv", tmp_path / "best.txt"
    stdin = Stdin(NBEST, lines_in(out))
    rc, _, err = run(capsys, monkeypatch, "rescore", model, "-", "--format", "kaldi", "-o", out, "--best", best,
                     stdin=stdin)
    assert rc == 0, err
    # an id is done once its 3 hypotheses and the next line (which ends it) are read: its 3
    # rows are out before the line after that is read (the 13th read finds the end of the input)
    assert stdin.seen == [0, 0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9]
    rows = [r.split("\t") for r in out.read_text().splitlines()]
    assert [r[0] for r in rows] == [f"utt{i}" for i in range(4) for _ in range(3)]
    assert [r[1] for r in rows] == ["1", "2", "3"] * 4
    assert [b.split(" ")[0] for b in best.read_text().splitlines()] == [f"utt{i}" for i in range(4)]
    assert "rescored 12 hypotheses for 4 id(s); the best changed for " in err


def test_rescore_best_and_list_both_on_stdout(model, tmp_path, capsys, monkeypatch):
    """The rescored list first, then the best lines, as before streaming."""
    nb = tmp_path / "nb.txt"
    nb.write_text("\n".join(NBEST) + "\n")
    rc, out, err = run(capsys, monkeypatch, "rescore", model, nb, "--format", "kaldi", "--best", "-")
    assert rc == 0, err
    lines = out.splitlines()
    assert all(len(line.split("\t")) == 7 for line in lines[:12]) and len(lines) == 16
    assert [line.split(" ")[0] for line in lines[12:]] == [f"utt{i}" for i in range(4)]


def test_rescore_refuses_an_id_that_comes_back(model, tmp_path, capsys, monkeypatch):
    nb = tmp_path / "nb.txt"
    nb.write_text("a\tthe cat\nb\tthe dog\na\ta cat\n")
    rc, _, err = run(capsys, monkeypatch, "rescore", model, nb)
    assert rc == 1 and err.strip().splitlines() == [err.strip()]
    assert f"{nb}:3: id 'a' comes back after other ids" in err


def test_rescore_empty_stdin(model, capsys, monkeypatch):
    rc, out, err = run(capsys, monkeypatch, "rescore", model, "-", stdin=types.SimpleNamespace(buffer=io.BytesIO(b"")))
    assert rc == 1 and out == "" and "<stdin>: empty file" in err
