"""`rnnkit score`'s numbers: --log-base in the TSV, jsonl and SRILM outputs (SRILM's ppl / ppl1),
and the --oov, --no-bos and --no-eos policies, checked against references sharing no code.

The references are computed here (tests/cli_numbers_kit.py): per-token log-probabilities by
stepping a float64 copy of the model one token at a time, token ids read straight from
vocab.json, and the numbers written out by hand. The CLI runs in-process on the float32 model
directory, so numbers agree to float32 rounding (~1e-6 per token) and to the printed precision.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

import cli_numbers_kit
from cli_numbers_kit import BOS, EOS, LN, SENTS, TOL, UNK, Ref
from conftest import run_main as run

# the kit's module-scoped fixtures, found by pytest under these names
word_dir, ref, sents_file = cli_numbers_kit.word_dir, cli_numbers_kit.ref, cli_numbers_kit.sents_file


def expected(ref: Ref, oov: str = "unk"):
    """Per sentence: (scored tokens with ln p, sentence nats); and corpus words, oovs, sentences."""
    rows, words, oovs = [], 0, 0
    for s in SENTS:
        toks = s.split()
        lps = ref.sentence(toks)
        is_oov = [t not in ref.index for t in toks] + [False]
        scored = [(t, lp) for t, lp, o in zip(toks + ["</s>"], lps, is_oov) if not (o and oov == "skip")]
        rows.append((scored, sum(lp for _, lp in scored)))
        words += len(toks)
        oovs += sum(is_oov)
    return rows, words, oovs, len(SENTS)


SUMMARY = re.compile(r"(\d+) sentences, (\d+) words, (\d+) OOVs; logprob \(base (\S+)\) (\S+), ppl (\S+), ppl1 (\S+)$")
SRILM = re.compile(r"file (.+): (\d+) sentences, (\d+) words, (\d+) OOVs\n"
                   r"0 zeroprobs, logprob= (\S+) ppl= (\S+) ppl1= (\S+)\n$")


# ---------------------------------------------------------------------------- score: bases


@pytest.mark.parametrize("base", [None, "e", "10", "2"])
def test_score_text_log_base(word_dir, ref, sents_file, capsys, base):
    """TSV logprob column, per-token lines and the stderr summary in the requested base
    (default e); the ppl column is base-free: exp(-nats / tokens)."""
    flag = [] if base is None else ["--log-base", base]
    b = base or "e"
    rc, out, err = run(capsys, "score", word_dir, sents_file, "--oov", "skip", "--per-token", *flag)
    assert rc == 0, err
    rows, words, oovs, nsent = expected(ref, "skip")
    lines = out.splitlines()
    sent_lines = [ln for ln in lines if not ln.startswith("  ")]
    assert len(sent_lines) == len(SENTS)
    i = 0
    for (scored, nats), text, line in zip(rows, SENTS, sent_lines):
        # per-token lines precede their sentence line: "  token<TAB>logprob[<TAB>(oov)]" or "skipped"
        toks = text.split() + ["</s>"]
        tok_lines = lines[i:i + len(toks)]
        i += len(toks) + 1
        assert [t.strip().split("\t")[0] for t in tok_lines] == toks
        got = [float(t.split("\t")[1]) for t in tok_lines if t.split("\t")[1] != "skipped"]
        np.testing.assert_allclose(got, [lp / LN[b] for _, lp in scored], rtol=0, atol=TOL)
        lp, ntok, ppl, txt = line.split("\t")
        assert txt == text and int(ntok) == len(scored)
        assert float(lp) == pytest.approx(nats / LN[b], abs=TOL)
        assert float(ppl) == pytest.approx(math.exp(-nats / len(scored)), abs=1e-4)
    m = SUMMARY.search(err.strip())
    assert m, err
    assert [int(m.group(k)) for k in (1, 2, 3)] == [nsent, words, oovs] and m.group(4) == b
    total = sum(n for _, n in rows)
    assert float(m.group(5)) == pytest.approx(total / LN[b], abs=1e-4)
    lp10 = total / math.log(10)
    assert float(m.group(6)) == pytest.approx(10 ** (-lp10 / (words - oovs + nsent)), abs=1e-4)
    assert float(m.group(7)) == pytest.approx(10 ** (-lp10 / (words - oovs)), abs=1e-4)


@pytest.mark.parametrize("base", [None, "e", "10", "2"])
def test_score_jsonl_log_base(word_dir, ref, sents_file, capsys, base):
    """jsonl: the sentence logprob and every --per-token logprob in the requested base, which
    the object names; a skipped OOV has logprob null."""
    flag = [] if base is None else ["--log-base", base]
    b = base or "e"
    rc, out, err = run(capsys, "score", word_dir, sents_file, "--output-format", "jsonl", "--per-token", "--oov", "skip", *flag)
    assert rc == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    rows, _, _, _ = expected(ref, "skip")
    assert len(objs) == len(SENTS)
    for obj, (scored, nats), text in zip(objs, rows, SENTS):
        assert obj["text"] == text and obj["log_base"] == b
        assert obj["tokens"] == len(scored) and obj["words"] == len(text.split())
        assert obj["logprob"] == pytest.approx(nats / LN[b], abs=TOL)
        ts = obj["token_scores"]
        assert [t["token"] for t in ts] == text.split() + ["</s>"]
        assert [t["oov"] for t in ts] == [t not in ref.index for t in text.split()] + [False]
        got = [t["logprob"] for t in ts if t["logprob"] is not None]
        np.testing.assert_allclose(got, [lp / LN[b] for _, lp in scored], rtol=0, atol=TOL)
        assert all(t["logprob"] is None for t in ts if t["oov"])
        assert obj["ppl"] == pytest.approx(math.exp(-nats / len(scored)), rel=1e-5)


@pytest.mark.parametrize("flag", [[], ["--log-base", "10"]])
def test_score_srilm_is_log10_with_srilm_ppl(word_dir, ref, sents_file, capsys, flag):
    """--output-format srilm prints SRILM's numbers: logprob= in log10 (by definition, with or without
    --log-base 10), ppl = 10^(-logprob/(words - oovs + sentences)), ppl1 = 10^(-logprob/(words - oovs))
    with OOVs skipped as SRILM does."""
    rc, out, err = run(capsys, "score", word_dir, sents_file, "--output-format", "srilm", "--oov", "skip", *flag)
    assert rc == 0, err
    m = SRILM.fullmatch(out)
    assert m, out
    rows, words, oovs, nsent = expected(ref, "skip")
    assert m.group(1) == str(sents_file)
    assert [int(m.group(k)) for k in (2, 3, 4)] == [nsent, words, oovs] and oovs == 1
    lp10 = sum(n for _, n in rows) / math.log(10)
    assert float(m.group(5)) == pytest.approx(lp10, rel=2e-6, abs=1e-5)  # %.6g
    assert float(m.group(6)) == pytest.approx(10 ** (-lp10 / (words - oovs + nsent)), rel=2e-5)
    assert float(m.group(7)) == pytest.approx(10 ** (-lp10 / (words - oovs)), rel=2e-5)


def test_score_srilm_oov_unk_policy(word_dir, ref, sents_file, capsys):
    """Under --oov unk (the default) an unknown word is scored as <unk>, a word like any other as
    with SRILM's -unk: its log-probability is in logprob=, it is in ppl's / ppl1's denominators
    and it is not reported as an OOV (0 OOVs, though "zebra" is unknown)."""
    rc, out, err = run(capsys, "score", word_dir, sents_file, "--output-format", "srilm")
    assert rc == 0, err
    m = SRILM.fullmatch(out)
    assert m, out
    rows, words, oovs, nsent = expected(ref, "unk")
    assert oovs == 1  # the corpus has an unknown word ...
    assert [int(m.group(k)) for k in (2, 3, 4)] == [nsent, words, 0]  # ... which -unk does not call an OOV
    lp10 = sum(n for _, n in rows) / math.log(10)
    assert float(m.group(5)) == pytest.approx(lp10, rel=2e-6, abs=1e-5)
    assert float(m.group(6)) == pytest.approx(10 ** (-lp10 / (words + nsent)), rel=2e-5)
    assert float(m.group(7)) == pytest.approx(10 ** (-lp10 / words), rel=2e-5)


@pytest.mark.parametrize("base", ["e", "2"])
def test_score_srilm_refuses_other_bases(word_dir, sents_file, capsys, base):
    rc, out, err = run(capsys, "score", word_dir, sents_file, "--output-format", "srilm", "--log-base", base)
    assert rc == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: --log-base: "), err
    assert "srilm" in lines[0]


# ---------------------------------------------------------------------------- score: oov, bos, eos


def test_oov_skip_and_unk(word_dir, ref, capsys):
    """skip: the unknown word is fed (as <unk>) but not counted, and the total is the reference
    without its term; unk: it is scored as p(<unk> | context)."""
    text = "the zebra sat on the mat ."
    toks = text.split()
    lps = ref.sentence(toks)
    assert ref.ids(toks)[1] == UNK and lps[1] < 0
    got = {}
    for oov in ("skip", "unk"):
        rc, out, err = run(capsys, "score", word_dir, "-", "--output-format", "jsonl", "--per-token", "--oov", oov, stdin=text + "\n")
        assert rc == 0, err
        got[oov] = json.loads(out)
    skip, unk = got["skip"], got["unk"]
    assert skip["tokens"] == len(toks) and skip["oov"] == 1  # 7 words + </s>, minus zebra
    assert skip["logprob"] == pytest.approx(sum(lps) - lps[1], abs=TOL)
    zebra = skip["token_scores"][1]  # a skipped OOV: no logprob, surprisal or rank; its span kept
    assert zebra == {"token": "zebra", "logprob": None, "oov": True, "start": 4, "end": 9, "surprisal": None,
                     "entropy": zebra["entropy"], "rank": None}
    assert unk["tokens"] == len(toks) + 1 and unk["oov"] == 1
    assert unk["token_scores"][1]["logprob"] == pytest.approx(lps[1], abs=1e-5)
    assert unk["logprob"] == pytest.approx(sum(lps), abs=TOL)
    # the skip total is not simply the unk total: zebra's term is worth more than the tolerance
    assert abs(lps[1]) > 100 * TOL


def test_no_bos_feeds_the_first_word_as_context(word_dir, ref, capsys):
    """--no-bos: the first word is context only. What the code does: no <s> is fed at all, the
    first word is the first input (to the initial state), and scoring starts at the second word."""
    text = "the cat sat on the mat ."
    ids = ref.ids(text.split())
    want = ref.walk(ids + [EOS])  # p(cat | the), ..., p(</s> | ...), without <s>
    rc, out, err = run(capsys, "score", word_dir, "-", "--output-format", "jsonl", "--per-token", "--no-bos", stdin=text + "\n")
    assert rc == 0, err
    obj = json.loads(out)
    assert [t["token"] for t in obj["token_scores"]] == text.split()[1:] + ["</s>"]
    np.testing.assert_allclose([t["logprob"] for t in obj["token_scores"]], want, rtol=0, atol=1e-5)
    assert obj["tokens"] == len(ids) and obj["logprob"] == pytest.approx(sum(want), abs=TOL)
    # not the same as <s> w1 w2 ... with w1 unscored, nor as the default scoring
    with_bos = ref.walk([BOS] + ids + [EOS])
    assert abs(sum(with_bos[1:]) - sum(want)) > 100 * TOL and abs(sum(with_bos) - sum(want)) > 100 * TOL


def test_no_eos_leaves_out_the_last_term(word_dir, ref, capsys):
    text = "a cat and a dog ."
    lps = ref.sentence(text.split())
    rc, out, err = run(capsys, "score", word_dir, "-", "--no-eos", stdin=text + "\n")
    assert rc == 0, err
    lp, ntok, ppl, txt = out.strip().split("\t")
    assert txt == text and int(ntok) == len(lps) - 1
    assert float(lp) == pytest.approx(sum(lps[:-1]), abs=TOL)
    assert float(ppl) == pytest.approx(math.exp(-sum(lps[:-1]) / (len(lps) - 1)), abs=1e-4)
    assert abs(lps[-1]) > 100 * TOL
    m = SUMMARY.search(err.strip())
    assert m and int(m.group(2)) == len(lps) - 1  # words; no </s> predicted
    assert float(m.group(5)) == pytest.approx(sum(lps[:-1]), abs=1e-4)


def test_no_bos_no_eos_together_and_empty_line(word_dir, ref, capsys):
    text = "the dog sat ."
    ids = ref.ids(text.split())
    want = ref.walk(ids)  # w1 is context; no </s>
    rc, out, err = run(capsys, "score", word_dir, "-", "--output-format", "jsonl", "--no-bos", "--no-eos",
                       stdin=text + "\n\n")
    assert rc == 0, err
    a, empty = (json.loads(line) for line in out.splitlines())
    assert a["tokens"] == len(ids) - 1 and a["logprob"] == pytest.approx(sum(want), abs=TOL)
    assert empty["text"] == "" and empty["tokens"] == 0 and empty["logprob"] == 0.0
