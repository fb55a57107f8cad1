"""Every CLI flag that changes a number, checked against references that share no code with it.

The references are computed here: per-token log-probabilities by stepping a float64 copy of
the model one token at a time (`step_logprobs`), token ids read straight from vocab.json, and
the log bases, SRILM's ppl / ppl1, rescoring totals, perplexity and bits per character written
out by hand. The CLI runs in-process (`rnnkit.cli.main`) on the float32 model directory, so
numbers agree to float32 rounding (~1e-6 per token) and to the printed precision.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CORPUS, make_model_dir
from conftest import run_main as run
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.numpy_engine import RNNLM

LN = {"e": 1.0, "10": math.log(10), "2": math.log(2)}
UNK, BOS, EOS = 0, 1, 2  # ids fixed by the contract (docs/contracts.md)

# pre-tokenized, so the reference tokens are str.split(); "zebra" is not in the vocabulary;
# the empty line is a sentence of zero words
SENTS = ["the cat sat on the mat .", "a dog played in the garden .", "the zebra sang a song .", "", "dog"]
TOL = 3e-5  # nats, float32 model vs float64 reference over a sentence, plus printing




class Ref:
    """A float64 copy of a model directory's weights, stepped one token at a time."""

    def __init__(self, model_dir: Path):
        ck = checkpoint.load(model_dir)
        self.model = RNNLM(ck.model, ck.params, dtype=np.float64)
        self.index = {t: i for i, t in enumerate(json.loads((Path(model_dir) / "vocab.json").read_text("utf-8")))}
        assert [self.index[t] for t in ("<unk>", "<s>", "</s>")] == [UNK, BOS, EOS]

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens]

    def walk(self, seq: list[int]) -> list[float]:
        """ln p(seq[t+1] | seq[:t+1]) for every t: seq[0] is fed to the initial state."""
        state, out = self.model.init_hidden(1), []
        for a, b in itertools.pairwise(seq):
            logp, state = self.model.step_logprobs(np.array([a]), state)
            out.append(float(logp[0, b]))
        return out

    def sentence(self, tokens: list[str]) -> list[float]:
        """SRILM/KenLM default: <s> is context; each word and </s> are predicted."""
        return self.walk([BOS] + self.ids(tokens) + [EOS])


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("w") / "model", cell="lstm", num_layers=2)


@pytest.fixture(scope="module")
def ref(word_dir) -> Ref:
    return Ref(word_dir)


@pytest.fixture(scope="module")
def sents_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("s") / "sents.txt"
    p.write_text("\n".join(SENTS) + "\n", encoding="utf-8")
    return p


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


# ---------------------------------------------------------------------------- rescore


ROW = re.compile(r"([^\t]+)\t(\d+)\t(\S+)\t(\S+)\t(\S+)\t(\d+)\t(.*)")


def rescore_rows(out: str) -> list[tuple]:
    rows = []
    for line in out.splitlines():
        m = ROW.fullmatch(line)
        assert m, line
        rows.append((m.group(1), int(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5)),
                     int(m.group(6)), m.group(7)))
    return rows


def lm_nats(ref: Ref, text: str) -> float:
    return sum(ref.sentence(text.split()))


H1, H2 = "the cat sat on the mat .", "the dog sat ."  # 7 and 4 words


def margin(ref: Ref, w: float, p: float, b: str) -> float:
    """total(H2) - total(H1) without acoustic scores."""
    return (w * (lm_nats(ref, H2) - lm_nats(ref, H1)) / LN[b]) + p * (len(H2.split()) - len(H1.split()))


W, P, B = 2.5, -1.5, "2"  # the flags under test
# configurations a rescorer would use if it dropped one of them: --lm-weight, --word-penalty, --log-base
MUTANTS = {"lm-weight": (1.0, P, B), "word-penalty": (W, 0.0, B), "log-base e": (W, P, "e"), "log-base 10": (W, P, "10")}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_rescore_srilm_totals_and_best(word_dir, ref, tmp_path, capsys, mutant):
    """SRILM n-best with acoustic scores: every total is ascore + W * lm + P * nwords with lm the
    reference log-probability in base B, and --best is the argmax of those totals. The acoustic
    score of H2 is set so that H2 wins under the flags and loses were any one flag ignored."""
    mid = -(margin(ref, W, P, B) + margin(ref, *MUTANTS[mutant])) / 2
    assert abs(margin(ref, W, P, B) - margin(ref, *MUTANTS[mutant])) > 0.1
    a1, a2 = -20.0, -20.0 + mid
    nb = tmp_path / "utt7.nbest"
    # the lscore column (-99) is replaced by the model's
    nb.write_text(f"{a1:.10f} -99 7 {H1}\n{a2:.10f} -99 4 {H2}\n")
    best = tmp_path / "best.txt"
    rc, out, err = run(capsys, "rescore", word_dir, nb, "--nbest-format", "srilm", "--lm-weight", W, "--word-penalty", P,
                       "--log-base", B, "--best", best)
    assert rc == 0, err
    rows = rescore_rows(out)
    want = {}
    for text, a in ((H1, a1), (H2, a2)):
        lm = lm_nats(ref, text) / LN[B]
        want[text] = (a, lm, a + W * lm + P * len(text.split()))
    assert [r[0] for r in rows] == ["utt7.nbest"] * 2 and [r[1] for r in rows] == [1, 2]
    for _, _, total, ascore, lm, nwords, text in rows:
        a, lm_ref, total_ref = want[text]
        assert nwords == len(text.split())
        assert ascore == pytest.approx(a, abs=1e-6)
        assert lm == pytest.approx(lm_ref, abs=TOL)
        assert total == pytest.approx(total_ref, abs=1e-4)
    assert max(want, key=lambda t: want[t][2]) == H2 == rows[0][6]
    assert best.read_text() == f"utt7.nbest\t{H2}\n"
    # with the dropped flag the reference winner would be H1: the flag matters here
    w_, p_, b_ = MUTANTS[mutant]
    other = {t: a + w_ * lm_nats(ref, t) / LN[b_] + p_ * len(t.split()) for t, (a, _, _) in want.items()}
    assert max(other, key=other.get) == H1


@pytest.mark.parametrize("w,p,b", [(1.0, 0.0, "10"), (0.5, -2.0, "e"), (3.0, 4.0, "2")])
def test_rescore_plain_totals_and_best(word_dir, ref, tmp_path, capsys, w, p, b):
    """Plain n-best (no acoustic score): total = W * lm + P * nwords, ranked within each id."""
    hyps = [("u1", H1), ("u1", H2), ("u1", "mat the on sat cat the ."), ("u2", "a dog ."), ("u2", "a dog played in the garden .")]
    nb = tmp_path / "nbest.txt"
    nb.write_text("".join(f"{u}\t{h}\n" for u, h in hyps))
    best = tmp_path / "best.txt"
    rc, out, err = run(capsys, "rescore", word_dir, nb, "--lm-weight", w, "--word-penalty", p, "--log-base", b,
                       "--best", best)
    assert rc == 0, err
    ref_total = {(u, h): w * lm_nats(ref, h) / LN[b] + p * len(h.split()) for u, h in hyps}
    rows = rescore_rows(out)
    assert sorted((r[0], r[6]) for r in rows) == sorted(hyps)
    for uid, rank, total, ascore, lm, nwords, text in rows:
        assert ascore == 0.0 and nwords == len(text.split())
        assert lm == pytest.approx(lm_nats(ref, text) / LN[b], abs=TOL)
        assert total == pytest.approx(ref_total[uid, text], abs=1e-4)
        group = sorted((t for (u, _), t in ref_total.items() if u == uid), reverse=True)
        assert total == pytest.approx(group[rank - 1], abs=1e-4)
    want_best = [f"{u}\t{max((h for v, h in hyps if v == u), key=lambda h: ref_total[u, h])}" for u in ("u1", "u2")]
    assert best.read_text().splitlines() == want_best


def test_rescore_word_penalty_changes_the_winner(word_dir, ref, tmp_path, capsys):
    """Plain format: a large positive penalty per word favours the long hypothesis, a large
    negative one the short, whatever the LM says."""
    nb = tmp_path / "nbest.txt"
    nb.write_text(f"u\t{H1}\nu\t{H2}\n")
    for p, winner in ((50.0, H1), (-50.0, H2)):
        best = tmp_path / f"best{p}.txt"
        rc, _, err = run(capsys, "rescore", word_dir, nb, "--word-penalty", p, "--best", best)
        assert rc == 0, err
        totals = {h: lm_nats(ref, h) / math.log(10) + p * len(h.split()) for h in (H1, H2)}
        assert max(totals, key=totals.get) == winner
        assert best.read_text() == f"u\t{winner}\n"


# ---------------------------------------------------------------------------- eval

EVAL = re.compile(r"(.+): ([\d,]+) sentences, ([\d,]+) tokens predicted, ([\d,]+) OOV; loss (\S+) nats, "
                  r"perplexity ([\d,.]+)(?:, (\S+) bits/char)? \((\w+) mode\)\n$")


def parse_eval(out: str) -> dict:
    m = EVAL.fullmatch(out)
    assert m, out
    def num(s: str) -> float:
        return float(s.replace(",", ""))

    return {"sentences": int(num(m.group(2))), "count": int(num(m.group(3))), "oov": int(num(m.group(4))),
            "loss": num(m.group(5)), "ppl": num(m.group(6)), "bpc": m.group(7) and float(m.group(7)),
            "mode": m.group(8)}


def ref_eval(ref: Ref, token_lists: list[list[str]], mode: str) -> tuple[float, int, int]:
    """(nats, count, oov targets): sentence mode resets per sentence; stream mode walks
    <s> s1 </s> <s> s2 </s> ... with one state, <s> never a target."""
    if mode == "sentences":
        nats = -sum(sum(ref.sentence(t)) for t in token_lists)
    else:
        stream = [i for t in token_lists for i in [BOS] + ref.ids(t) + [EOS]]
        lps = ref.walk(stream)
        nats = -sum(lp for lp, tgt in zip(lps, stream[1:]) if tgt != BOS)
    ids = [i for t in token_lists for i in ref.ids(t) + [EOS]]
    return nats, len(ids), sum(i == UNK for i in ids)


def assert_printed(printed: float, value: float, decimals: int) -> None:
    """`printed` is `value` shown with `decimals` places (plus float32 vs float64 slack)."""
    assert abs(printed - value) <= 0.5 * 10 ** -decimals + 1e-5 * max(1.0, abs(value)), (printed, value)


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
