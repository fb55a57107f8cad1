"""`rnnkit train --valid FILE` end to end: a character model's bits/char summary and unigram
baseline, valid_loss as the saved model's loss on FILE (stream and sentence batching), and
eval / score / generate through the CLI on the trained character model.

The references are computed here (tests/cli_numbers_kit.py): per-token log-probabilities by
stepping a float64 copy of the model one token at a time, token ids read straight from
vocab.json, and the numbers written out by hand. The CLI runs in-process on the float32 model
directory, so numbers agree to float32 rounding (~1e-6 per token) and to the printed precision.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np
import pytest

from cli_numbers_kit import TOL, Ref, assert_printed, parse_eval, ref_eval
from conftest import TINY_CORPUS
from conftest import run_main as run
from rnnkit.cli import main

# ---------------------------------------------------------------------------- train --valid, char end to end

CHAR_CORPUS = ["abab cd", "cdcd ab", "abc abc", "dcba", "ab ab ab ab", "", "cd ab cd"] * 25
CHAR_VALID = ["ab cd ab", "", "dcba dcba", "abcd"]


@pytest.fixture(scope="module")
def char_run(tmp_path_factory):
    """`train --level char --valid FILE` through the CLI; validation is one stream
    (--eval-batch-size 1) so stepping the saved model through FILE is an independent check."""
    tmp = tmp_path_factory.mktemp("char")
    corpus, valid = tmp / "corpus.txt", tmp / "valid.txt"
    corpus.write_text("\n".join(CHAR_CORPUS) + "\n", encoding="utf-8")
    valid.write_text("\n".join(CHAR_VALID) + "\n", encoding="utf-8")
    out = tmp / "model"
    argv = ["train", corpus, "--out", out, "--valid", valid, "--level", "char", "--cell", "gru", "--hidden-dim", "24",
            "--embed-dim", "16", "--epochs", "3", "--batch-size", "4", "--seq-len", "16", "--lr", "0.01",
            "--eval-batch-size", "1", "--quiet"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([str(a) for a in argv])
    assert rc == 0
    return out, valid, buf.getvalue()


def unigram_bits_per_char(vocab: list[str], train: list[str], valid: list[str]) -> float:
    """The add-one unigram baseline by hand: counts of the training characters and one </s> per
    line, plus one for every token but <s> (never predicted); bits per validation target."""
    counts = {t: 1 for t in vocab if t != "<s>"}
    for c in "".join(train):
        counts[c] += 1
    counts["</s>"] += len(train)
    total = sum(counts.values())
    targets = list("".join(valid)) + ["</s>"] * len(valid)
    return -sum(math.log2(counts[t] / total) for t in targets) / len(targets)


def test_char_train_reports_bits_per_char(char_run):
    """The summary line gives the model and the unigram baseline in one unit, bits per
    character; every validation row: bits/char = nats/char / ln 2."""
    out, _, stdout = char_run
    m = re.search(r"best valid (\S+) bits/char \(unigram baseline (\S+) bits/char\)", stdout)
    assert m, stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    vrows = [r for r in rows if r["kind"] == "valid"]
    assert len(vrows) == 3
    best = min(r["valid_loss"] for r in vrows)
    assert_printed(float(m.group(1)), best / math.log(2), 4)
    vocab = json.loads((out / "vocab.json").read_text("utf-8"))
    assert_printed(float(m.group(2)), unigram_bits_per_char(vocab, CHAR_CORPUS, CHAR_VALID), 4)
    assert "perplexity" not in stdout and "nats" not in stdout
    for r in vrows:
        assert r["valid_bpc"] == pytest.approx(r["valid_loss"] / math.log(2), rel=1e-12)
        assert r["valid_ppl"] == pytest.approx(math.exp(r["valid_loss"]), rel=1e-12)


def test_char_train_valid_loss_is_the_saved_models_loss_on_the_file(char_run):
    out, _, _ = char_run
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = min(r["valid_loss"] for r in rows if r["kind"] == "valid")
    nats, count, _ = ref_eval(Ref(out), [list(s) for s in CHAR_VALID], "stream")
    assert best == pytest.approx(nats / count, rel=1e-5)
    assert [r["valid_loss"] for r in rows if r["kind"] == "valid"][-1] < math.log(len(Ref(out).index))  # learned


def test_char_eval_through_cli(char_run, capsys):
    """eval's default mode is the training batching (stream); printed loss, bits/char and
    perplexity agree with the reference and with each other."""
    out, valid, _ = char_run
    rc, stdout, err = run(capsys, "eval", out, valid, "--batch-size", "1")
    assert rc == 0, err
    got = parse_eval(stdout)
    nats, count, _ = ref_eval(Ref(out), [list(s) for s in CHAR_VALID], "stream")
    assert got["mode"] == "stream" and got["count"] == count and got["sentences"] == len(CHAR_VALID)
    assert_printed(got["loss"], nats / count, 4)
    assert_printed(got["bpc"], nats / count / math.log(2), 4)
    assert abs(got["bpc"] - got["loss"] / math.log(2)) <= 0.5e-4 + 0.5e-4 / math.log(2)  # both printed to 4 places
    assert_printed(got["ppl"], math.exp(nats / count), 2)


def test_char_score_per_character(char_run, capsys):
    out, _, _ = char_run
    ref = Ref(out)
    text = "ab cd"
    rc, stdout, err = run(capsys, "score", out, "-", "--output-format", "jsonl", "--per-token", "--log-base", "2",
                          stdin=text + "\n")
    assert rc == 0, err
    obj = json.loads(stdout)
    lps = ref.sentence(list(text))
    assert obj["tokens"] == len(text) + 1 == len(lps)  # every character, then </s>
    assert [t["token"] for t in obj["token_scores"]] == list(text) + ["</s>"]
    np.testing.assert_allclose([t["logprob"] for t in obj["token_scores"]], np.array(lps) / math.log(2), atol=1e-5)
    assert obj["logprob"] == pytest.approx(sum(lps) / math.log(2), abs=TOL)


def test_char_generate_writes_lines(char_run, capsys):
    out, _, _ = char_run
    rc, stdout, err = run(capsys, "generate", out, "--max-len", "200", "--seed", "3")
    assert rc == 0, err
    text = stdout[:-1]
    assert stdout.endswith("\n") and len(text) == 200  # 200 characters, newlines included
    assert text.count("\n") >= 3  # </s> is a line break and generation goes on after it
    assert set(text) <= set("abcd \n")
    rc, again, _ = run(capsys, "generate", out, "--max-len", "200", "--seed", "3")
    assert rc == 0 and again == stdout


def test_word_train_valid_file_sentences_batching(tmp_path, capsys):
    """`train --valid FILE --batching sentences`: valid_loss in metrics.jsonl is the saved model's
    loss on FILE with the state reset per sentence, computed here by stepping."""
    corpus, valid = tmp_path / "corpus.txt", tmp_path / "valid.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 10) + "\n", encoding="utf-8")
    valid_sents = ["the dog sat on the mat .", "a bird sang in the garden ."]
    valid.write_text("\n".join(valid_sents) + "\n", encoding="utf-8")
    out = tmp_path / "m"
    rc, stdout, err = run(capsys, "train", corpus, "--out", out, "--valid", valid, "--batching", "sentences",
                          "--cell", "rnn", "--hidden-dim", "12", "--embed-dim", "12", "--epochs", "2", "--batch-size", "5",
                          "--quiet")
    assert rc == 0, err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    nats, count, _ = ref_eval(Ref(out), [s.split() for s in valid_sents], "sentences")
    best = min(r["valid_loss"] for r in rows if r["kind"] == "valid")
    assert best == pytest.approx(nats / count, rel=1e-5)
    m = re.search(r"best valid perplexity ([\d,.]+)", stdout)
    assert m
    assert_printed(float(m.group(1).replace(",", "")), math.exp(nats / count), 2)
    assert f"({valid})" in err  # the log names the validation source
