"""`rnnkit eval`'s numbers: loss, perplexity = exp(loss) and (character models) bits per
character = loss / ln 2, in sentence and stream mode, against the stepped reference.

The references are computed here (tests/cli_numbers_kit.py): per-token log-probabilities by
stepping a float64 copy of the model one token at a time, token ids read straight from
vocab.json, and the numbers written out by hand. The CLI runs in-process on the float32 model
directory, so numbers agree to float32 rounding (~1e-6 per token) and to the printed precision.
"""

from __future__ import annotations

import math

import pytest

import cli_numbers_kit
from cli_numbers_kit import SENTS, Ref, assert_printed, parse_eval, ref_eval
from conftest import make_model_dir
from conftest import run_main as run

# the kit's module-scoped fixtures, found by pytest under these names
word_dir, ref, sents_file = cli_numbers_kit.word_dir, cli_numbers_kit.ref, cli_numbers_kit.sents_file


# ---------------------------------------------------------------------------- eval


@pytest.mark.parametrize("mode", ["sentences", "stream"])
def test_eval_word_perplexity_is_exp_loss(word_dir, ref, sents_file, capsys, mode):
    rc, out, err = run(capsys, "eval", word_dir, sents_file, "--mode", mode, "--batch-size", "1")
    assert rc == 0, err
    got = parse_eval(out)
    toks = [s.split() for s in SENTS if s.strip()]  # word level drops blank lines
    nats, count, oov = ref_eval(ref, toks, mode)
    assert (got["sentences"], got["count"], got["oov"], got["mode"]) == (len(toks), count, oov, mode) and oov == 1
    assert got["bpc"] is None  # a word model prints no bits/char
    assert_printed(got["loss"], nats / count, 4)
    assert_printed(got["ppl"], math.exp(nats / count), 2)


CHAR_LINES = ["the cat sat.", "", "a dog's log!", "it is"]  # "!" is not in the character vocabulary


@pytest.mark.parametrize("mode", ["sentences", "stream"])
def test_eval_char_bits_per_character(tmp_path, capsys, mode):
    """Character model: bits/char = loss / ln 2 and perplexity = exp(loss), loss the reference
    nats per predicted character (a blank line is a sentence: one </s> to predict)."""
    d = make_model_dir(tmp_path / "c", level="char", cell="gru", num_layers=1)
    ref = Ref(d)
    f = tmp_path / "chars.txt"
    f.write_text("\n".join(CHAR_LINES) + "\n", encoding="utf-8")
    rc, out, err = run(capsys, "eval", d, f, "--mode", mode, "--batch-size", "1")
    assert rc == 0, err
    got = parse_eval(out)
    nats, count, oov = ref_eval(ref, [list(s) for s in CHAR_LINES], mode)
    assert (got["sentences"], got["count"], got["oov"]) == (len(CHAR_LINES), count, oov) and oov == 1
    assert count == sum(len(s) + 1 for s in CHAR_LINES)
    assert_printed(got["loss"], nats / count, 4)
    assert_printed(got["bpc"], nats / count / math.log(2), 4)
    assert_printed(got["ppl"], math.exp(nats / count), 2)
