"""`rnnkit score --output-format srilm --debug 2` of a tiny uniform model, against output
written by hand from SRILM's definitions, line by line, under --oov unk and --oov skip.

The model's decoder weight and bias are zero (untied), so every next-token distribution is
uniform: p = 1/K for every token, K = len(vocab), whatever the history. Everything printed
then follows from K and the counts alone: each `p( w | context )` line is 1/K and log10(1/K);
a sentence's logprob is (scored tokens) * log10(1/K); SRILM's TextStats give
ppl = 10^(-logprob / (words - OOVs - zeroprobs + sentences)) and
ppl1 = 10^(-logprob / (words - OOVs - zeroprobs)), zeroprobs 0, OOVs being the unknown words
left out (none under -unk, i.e. --oov unk, where an unknown word is scored as <unk>). ngram
prints numbers as a C++ stream does by default (6 significant digits, %g); `g6` below writes
that rule out independently of the implementation's formatter.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TokenizerConfig
from rnnkit.params import init_params
from rnnkit.text import Vocab

WORDS = ["the", "cat", "sat", "a", "dog", "on", "mat", "log"]  # + <unk> <s> </s>: K = 11
INPUT = "the cat sat\na zebra\ndog\n"  # "zebra" is not in the vocabulary


def g6(x: float) -> str:
    """%g with 6 significant digits, from the definition: round to 6 significant digits
    (scientific form gives the exponent after rounding), fixed notation when -4 <= exponent < 6
    else scientific, trailing zeros (and a bare point) removed, exponent at least 2 digits."""
    if x == 0:
        return "0"
    mant, exp = f"{x:.5e}".split("e")
    e = int(exp)
    if -4 <= e < 6:
        digits = mant.replace("-", "").replace(".", "")  # 6 significant digits
        sign = "-" if x < 0 else ""
        if e >= 0:
            whole, frac = digits[: e + 1], digits[e + 1:]
        else:
            whole, frac = "0", "0" * (-e - 1) + digits
        frac = frac.rstrip("0")
        return sign + whole + ("." + frac if frac else "")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def test_g6_is_percent_g():
    """The hand-written rule agrees with C's %g on a few values of each kind."""
    for x in (0.125, -0.90309, 1 / 11, -1.0413926851582251, 11.0, 121.0, 1331.0, 36.4828, 1234567.0,
              0.000123456789, 0.0000123456, -4.16557, 100000.0, 999999.5, 0.5):
        assert g6(x) == f"{x:g}", x


@pytest.fixture(scope="module")
def uniform_model(tmp_path_factory) -> tuple[Path, int]:
    vocab = Vocab.build([WORDS])
    K = len(vocab)
    assert K == len(WORDS) + 3
    cfg = ModelConfig(vocab_size=K, cell="lstm", embed_dim=4, hidden_dim=5, num_layers=1, tie_weights=False)
    params = init_params(cfg, seed=7)
    params["decoder.weight"] = np.zeros_like(params["decoder.weight"])
    params["decoder.bias"] = np.zeros_like(params["decoder.bias"])
    path = tmp_path_factory.mktemp("uniform") / "model"
    checkpoint.save(path, cfg, TokenizerConfig(level="word"), vocab, params)
    return path, K


def expected_output(K: int, oov: str, name: str) -> str:
    """The file ngram -ppl -debug 2 would print, written out by hand from K."""
    p, lp = g6(1 / K), g6(math.log10(1 / K))
    L = -math.log10(K)  # log10 of one token's probability

    def stats(sents: int, words: int, oovs: int, scored: int) -> str:
        logprob = scored * L
        ppl = 10 ** (-logprob / (words - oovs + sents))
        ppl1 = 10 ** (-logprob / (words - oovs))
        return (f"{sents} sentences, {words} words, {oovs} OOVs\n"
                f"0 zeroprobs, logprob= {g6(logprob)} ppl= {g6(ppl)} ppl1= {g6(ppl1)}\n")

    zebra = "[OOV] 0 [ -inf ]" if oov == "skip" else f"[rnn] {p} [ {lp} ]"
    skipped = 1 if oov == "skip" else 0
    return (
        "the cat sat\n"
        f"\tp( the | <s> ) \t= [rnn] {p} [ {lp} ]\n"
        f"\tp( cat | the ...) \t= [rnn] {p} [ {lp} ]\n"
        f"\tp( sat | cat ...) \t= [rnn] {p} [ {lp} ]\n"
        f"\tp( </s> | sat ...) \t= [rnn] {p} [ {lp} ]\n"
        + stats(1, 3, 0, 4) + "\n"
        + "a zebra\n"
        f"\tp( a | <s> ) \t= [rnn] {p} [ {lp} ]\n"
        f"\tp( <unk> | a ...) \t= {zebra}\n"
        f"\tp( </s> | <unk> ...) \t= [rnn] {p} [ {lp} ]\n"
        + stats(1, 2, skipped, 3 - skipped) + "\n"
        + "dog\n"
        f"\tp( dog | <s> ) \t= [rnn] {p} [ {lp} ]\n"
        f"\tp( </s> | dog ...) \t= [rnn] {p} [ {lp} ]\n"
        + stats(1, 1, 0, 2) + "\n"
        + f"file {name}: " + stats(3, 6, skipped, 9 - skipped)
    )


def test_expected_numbers_for_k_11():
    """The hand computation itself, for K = 11, spelled out as literals (a check of the check):
    1/11, log10(1/11), 4 log10(1/11), 11^(4/3), 11^(9/6), 11^2 (2 tokens over 1 word), 11^(8/5)."""
    unk = expected_output(11, "unk", "F").splitlines()
    skip = expected_output(11, "skip", "F").splitlines()
    assert unk[1] == "\tp( the | <s> ) \t= [rnn] 0.0909091 [ -1.04139 ]"
    assert unk[5:7] == ["1 sentences, 3 words, 0 OOVs", "0 zeroprobs, logprob= -4.16557 ppl= 11 ppl1= 24.4638"]
    assert unk[-2:] == ["file F: 3 sentences, 6 words, 0 OOVs", "0 zeroprobs, logprob= -9.37253 ppl= 11 ppl1= 36.4829"]
    assert skip[10] == "\tp( <unk> | a ...) \t= [OOV] 0 [ -inf ]"
    assert skip[12:14] == ["1 sentences, 2 words, 1 OOVs", "0 zeroprobs, logprob= -2.08279 ppl= 11 ppl1= 121"]
    assert skip[-2:] == ["file F: 3 sentences, 6 words, 1 OOVs", "0 zeroprobs, logprob= -8.33114 ppl= 11 ppl1= 46.3691"]


@pytest.mark.parametrize("oov", ["unk", "skip"])
def test_debug_2_output_line_by_line(uniform_model, tmp_path, capsys, oov):
    path, K = uniform_model
    src = tmp_path / "in.txt"
    src.write_text(INPUT, encoding="utf-8")
    rc = main(["score", str(path), str(src), "--output-format", "srilm", "--debug", "2", "--oov", oov])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert out.split("\n") == expected_output(K, oov, str(src)).split("\n")
