"""Interpolating the RNN with an ARPA n-gram model (rnnkit.ngram.mix, `score`/`eval --mix-lm`,
`rnnkit mix-weight`): lambda 1 and 0 give each model alone, a mixed case by hand, the vocabulary
rule for a word the n-gram does not know, and EM's lambda against a grid."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from conftest import TINY_CORPUS, make_model_dir, run_main
from ngram_build import WittenBell
from rnnkit import api
from rnnkit.errors import ConfigError
from rnnkit.inference.score import Summary
from rnnkit.ngram import best_lambda, mix_ln, read_arpa, token_logprobs
from rnnkit.ngram.mix import mix_scores, perplexity
from rnnkit.text import WordTokenizer

DEV = ["the dog sat on the mat .", "a bird sang in the garden .", "the cat played ."]
# a unigram model without <unk>: "garden" is unknown to it; probabilities by hand
UNIGRAM = """\\data\\
ngram 1={n}

\\1-grams:
-99\t<s>
{lines}
\\end\\
"""
HAND = {"</s>": 0.2, "the": 0.3, "dog": 0.1, "sat": 0.1, "on": 0.1, "mat": 0.05, ".": 0.1, "a": 0.05}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(model dir, Witten-Bell bigram ARPA over TINY_CORPUS, hand unigram ARPA, dev file)."""
    d = tmp_path_factory.mktemp("mix")
    model = make_model_dir(d / "model")
    tok = WordTokenizer()
    WittenBell([tok.tokenize(s) for s in TINY_CORPUS[:3]], order=2).write_arpa(str(d / "wb.arpa"))
    lines = "\n".join(f"{math.log10(p):.10f}\t{w}" for w, p in HAND.items())
    (d / "hand.arpa").write_text(UNIGRAM.format(n=len(HAND) + 1, lines=lines))
    (d / "dev.txt").write_text("\n".join(DEV) + "\n")
    return model, d / "wb.arpa", d / "hand.arpa", d / "dev.txt"


def test_mix_ln_ends_exact_and_a_value_by_hand():
    rnn, ngram = np.log([0.2, 0.5, 1e-300]), np.array([math.log(0.4), -math.inf, math.log(1e-300)])
    np.testing.assert_array_equal(mix_ln(rnn, ngram, 1.0), rnn)
    np.testing.assert_array_equal(mix_ln(rnn, ngram, 0.0), ngram)
    got = mix_ln(rnn, ngram, 0.25)
    np.testing.assert_allclose(got[:2], [math.log(0.25 * 0.2 + 0.75 * 0.4), math.log(0.25 * 0.5)], rtol=1e-12)
    assert got[2] == pytest.approx(math.log(1e-300))  # no underflow: logaddexp
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ConfigError, match="lambda"):
            mix_ln(rnn, ngram, bad)


@pytest.mark.parametrize("bos", [True, False])
def test_token_logprobs_are_each_model_alone(setup, bos):
    model, wb, _, _ = setup
    lm, arpa = api.load(model), read_arpa(wb)
    for s in lm.score_sentences(DEV, per_token=True, bos=bos):
        rnn, ngram = token_logprobs(s, arpa, bos=bos)
        np.testing.assert_array_equal(rnn, [t.logprob for t in s.tokens])
        words = lm.tokenize(s.text)
        want = arpa.sentence_log10(words) if bos else arpa.log10_after(words[:1], words[1:] + ["</s>"])
        np.testing.assert_allclose(ngram, want * math.log(10), rtol=1e-12)


def _jsonl(capsys, *argv) -> list[dict]:
    rc, out, err = run_main(capsys, "score", *argv, "--output-format", "jsonl", "--per-token")
    assert rc == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_score_lambda_one_is_the_rnn_and_zero_the_ngram(setup, capsys):
    model, wb, _, dev = setup
    plain = run_main(capsys, "score", model, dev)
    assert run_main(capsys, "score", model, dev, "--mix-lm", wb, "--lambda", "1") == plain
    arpa = read_arpa(wb)
    rows = _jsonl(capsys, model, dev, "--mix-lm", wb, "--lambda", "0")
    lm = api.load(model)
    scores = lm.score_sentences(DEV, per_token=True)
    assert [s.logprob for s in mix_scores(scores, arpa, 1.0)] == [s.logprob for s in scores]  # bit for bit
    for text, row in zip(DEV, rows):
        assert row["logprob"] == pytest.approx(arpa.sentence_log10(lm.tokenize(text)).sum() * math.log(10))


def test_srilm_debug_2_lines_carry_the_mixed_numbers_tagged_mix(setup, capsys):
    model, wb, _, dev = setup
    rc, out, err = run_main(capsys, "score", model, dev, "--mix-lm", wb, "--lambda", "0.3", "--output-format",
                            "srilm", "--debug", "2")
    assert rc == 0, err
    words = [ln for ln in out.splitlines() if ln.startswith("\tp( ")]
    mixed = [t for s in mix_scores(api.load(model).score_sentences(DEV, per_token=True), read_arpa(wb), 0.3)
             for t in s.tokens]
    assert len(words) == len(mixed) and all("= [mix] " in ln for ln in words)
    for ln, t in zip(words, mixed):
        assert float(ln.split("[ ")[-1].rstrip(" ]")) == pytest.approx(t.logprob / math.log(10), abs=1e-5)


def test_score_mixed_by_hand_and_a_word_the_ngram_lacks(setup, capsys):
    model, _, hand, dev = setup
    lm, lam = api.load(model), 0.3
    rows = _jsonl(capsys, model, dev, "--mix-lm", hand, "--lambda", str(lam))
    for text, row in zip(DEV, rows):
        expected = 0.0
        for lp, tok, _ in lm.full_scores(text):
            expected += math.log(lam * math.exp(lp) + (1 - lam) * HAND.get(tok, 0.0))  # unknown: lam * p_rnn
        assert row["logprob"] == pytest.approx(expected, rel=1e-6)
        assert [t["logprob"] for t in row["token_scores"]] == pytest.approx(
            [math.log(lam * math.exp(lp) + (1 - lam) * HAND.get(tok, 0.0)) for lp, tok, _ in lm.full_scores(text)])
    # lam 0: a word the n-gram lacks has probability 0, an OOV left out as SRILM does
    rc, out, err = run_main(capsys, "score", model, dev, "--mix-lm", hand, "--lambda", "0", "--per-token")
    words = [w for text in DEV for w in lm.tokenize(text)]
    oovs = sum(w not in HAND for w in words)
    assert rc == 0 and "garden\tskipped" in out and f"3 sentences, {len(words)} words, {oovs} OOVs" in err


def test_eval_mixed_matches_score_and_refuses_what_cannot_mix(setup, capsys):
    model, wb, _, dev = setup
    lm, arpa = api.load(model), read_arpa(wb)
    for lam in (1.0, 0.0, 0.4):
        rc, out, err = run_main(capsys, "eval", model, dev, "--mix-lm", wb, "--lambda", lam)
        assert rc == 0, err
        rnn, ngram = zip(*(token_logprobs(s, arpa) for s in lm.score_sentences(DEV, per_token=True)))
        want = perplexity(np.concatenate(rnn), np.concatenate(ngram), lam)
        assert f"perplexity {want:,.2f} (sentences mode" in out
        if lam == 1.0:
            assert f"perplexity {Summary.of(lm.score_sentences(DEV)).ppl:,.2f}" in out
    for argv, problem in [(["--mix-lm", wb, "--mode", "stream"], "--mode stream cannot be used with --mix-lm"),
                          (["--lambda", "0.5"], "--lambda needs --mix-lm"),
                          (["--mix-lm", wb, "--lambda", "1.5"], "must be in [0, 1]")]:
        rc, _, err = run_main(capsys, "eval", model, dev, *argv)
        assert rc != 0 and problem in err and err.count("\n") == 1


def test_char_model_cannot_mix(setup, capsys, tmp_path):
    _, wb, _, dev = setup
    char = make_model_dir(tmp_path / "char", level="char")
    rc, _, err = run_main(capsys, "score", char, dev, "--mix-lm", wb)
    assert rc != 0 and "needs a word-level model" in err


def _grid_check(rnn, ngram):
    lam, history = best_lambda(rnn, ngram, 0.5, 500, 1e-7)
    ppls = [p for _, p in history]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(ppls))  # EM never increases perplexity
    best = perplexity(rnn, ngram, lam)
    assert ppls[-1] == pytest.approx(best)
    for step in (-0.1, 0.1):
        if 0.0 <= lam + step <= 1.0:
            assert best < perplexity(rnn, ngram, lam + step)
    grid = np.linspace(0, 1, 1001)  # brute force: the same optimum
    assert lam == pytest.approx(grid[np.argmin([perplexity(rnn, ngram, g) for g in grid])], abs=2e-3)
    return lam


def test_em_lambda_beats_its_grid_neighbours_on_a_dev_set(setup):
    model, wb, _, _ = setup
    lm, arpa = api.load(model), read_arpa(wb)
    dev = [s.replace("dog", "bird") for s in TINY_CORPUS] + DEV
    rnn, ngram = zip(*(token_logprobs(s, arpa) for s in lm.score_sentences(dev, per_token=True)))
    lam = _grid_check(np.concatenate(rnn), np.concatenate(ngram))
    assert 0.0 < lam < 1.0


def test_em_on_known_mixtures():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.5, size=(2, 400))
    for truth in (0.2, 0.7):  # tokens drawn from one model or the other with these weights
        rnn = np.where(rng.uniform(size=400) < truth, np.log(p[0] * 3), np.log(p[0] / 3))
        _grid_check(rnn, np.log(p[1]))
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        best_lambda(np.zeros(3), np.zeros(3), 1.0)


def test_mix_weight_command(setup, capsys):
    model, wb, _, dev = setup
    rc, out, err = run_main(capsys, "mix-weight", model, "--mix-lm", wb, dev, "--tolerance", "1e-6")
    assert rc == 0, err
    lm, arpa = api.load(model), read_arpa(wb)
    rnn, ngram = zip(*(token_logprobs(s, arpa) for s in lm.score_sentences(DEV, per_token=True)))
    lam, history = best_lambda(np.concatenate(rnn), np.concatenate(ngram), 0.5, 100, 1e-6)
    lines = out.splitlines()
    assert lines[1] == f"iteration 1, lambda = (0.5 0.5), ppl = {history[0][1]:.6g}"
    assert lines[-1] == f"lambda {lam:.6g}" and len(lines) == len(history) + 2


def test_malformed_arpa_on_the_command_line(setup, capsys, tmp_path):
    model, wb, _, dev = setup
    bad = tmp_path / "bad.arpa"
    bad.write_text(wb.read_text().replace("ngram 2=", "ngram 2=1"))
    for command in (["score", model, dev], ["eval", model, dev], ["mix-weight", model, dev]):
        rc, _, err = run_main(capsys, *command, "--mix-lm", bad)
        assert rc != 0 and f"{bad}:" in err and "\\2-grams: has" in err and err.count("\n") == 1
