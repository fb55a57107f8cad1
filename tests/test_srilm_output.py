"""`rnnkit score --output-format srilm --debug 0|1|2`: SRILM's `ngram -ppl` layout, read back the
way SRILM's tools read it, and its numbers against a hand computation.

The reference log-probabilities come from stepping a float64 copy of the model one token at a
time (`step_logprobs`), ids read straight from vocab.json; the totals (SRILM's TextStats: OOVs
out of the denominators, ppl counting </s>, ppl1 not) are written out here. The `p( ... )` lines
are parsed as SRILM's compute-best-mix does: the context canonicalised to `| X )`, then field 2
is the word, field 8 the probability and field 10 its log10, `[ -inf` an OOV.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.numpy_engine import RNNLM

BOS, EOS = 1, 2
# "zebra" is not in the vocabulary: inside a sentence, and first (its context then <s>)
SENTS = ["the cat sat on the mat .", "the zebra sang a song .", "", "zebra dog", "dog"]
ABS10 = 2e-5  # log10, float32 model vs float64 reference over a few tokens ...
REL = 2e-5  # ... plus 6 significant digits (half a unit of the 6th: 5e-6 relative)


def near10(x: float):
    """A printed log10 value's tolerance: float32 rounding plus the 6 digits printed."""
    return pytest.approx(x, abs=ABS10 + 1e-5 * abs(x))

WORD_LINE = re.compile(r"\tp\( (\S+) \| (\S+)( \.\.\.| )\) \t= (\[rnn\] (\S+) \[ (\S+) \]|\[OOV\] 0 \[ -inf \])")
STATS = re.compile(r"(\d+) sentences, (\d+) words, (\d+) OOVs\n0 zeroprobs, logprob= (\S+) ppl= (\S+) ppl1= (\S+)")


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("srilm") / "model", cell="lstm", num_layers=1)


@pytest.fixture(scope="module")
def sents_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("srilm_in") / "sents.txt"
    p.write_text("\n".join(SENTS) + "\n", encoding="utf-8")
    return p


class Ref:
    """Per-token ln p by stepping a float64 copy of the model; words as SRILM shows them."""

    def __init__(self, model_dir: Path):
        ck = checkpoint.load(model_dir)
        self.model = RNNLM(ck.model, ck.params, dtype=np.float64)
        self.index = {t: i for i, t in enumerate(json.loads((model_dir / "vocab.json").read_text("utf-8")))}

    def tokens(self, text: str) -> list[tuple[str, float, bool]]:
        """(word as the model reads it, ln p, unknown) for each word and </s>, <s> the context."""
        toks = text.split()
        seq = [BOS] + [self.index.get(t, 0) for t in toks] + [EOS]
        state, lps = self.model.init_hidden(1), []
        for a, b in itertools.pairwise(seq):
            logp, state = self.model.step_logprobs(np.array([a]), state)
            lps.append(float(logp[0, b]))
        unknown = [t not in self.index for t in toks] + [False]
        shown = ["<unk>" if u else t for t, u in zip(toks + ["</s>"], unknown)]
        return list(zip(shown, lps, unknown))


@pytest.fixture(scope="module")
def ref(model_dir) -> Ref:
    return Ref(model_dir)


def stats_by_hand(rows: list[list[tuple[str, float, bool]]], oov: str) -> tuple[int, int, int, float, str, str]:
    """SRILM's TextStats over sentences: OOVs are the unknown words left out (skip) and none
    under unk (-unk); ppl = 10^(-L / (words - OOVs + sentences)), ppl1 without the sentences."""
    words = sum(len(r) - 1 for r in rows)
    oovs = sum(u for r in rows for _, _, u in r) if oov == "skip" else 0
    lp10 = sum(lp for r in rows for _, lp, u in r if not (u and oov == "skip")) / math.log(10)

    def ppl(n: int) -> str:
        return f"{10 ** (-lp10 / n):.6g}" if n > 0 else "undefined"

    return len(rows), words, oovs, lp10, ppl(words - oovs + len(rows)), ppl(words - oovs)


def check_stats(text: str, expected: tuple) -> None:
    m = STATS.fullmatch(text)
    assert m, text
    n, words, oovs, lp10, ppl, ppl1 = expected
    assert [int(m.group(k)) for k in (1, 2, 3)] == [n, words, oovs]
    assert float(m.group(4)) == near10(lp10)
    for got, want in ((m.group(5), ppl), (m.group(6), ppl1)):
        assert (got == "undefined") == (want == "undefined"), (got, want)
        if want != "undefined":
            assert float(got) == pytest.approx(float(want), rel=REL)


def blocks(out: str) -> tuple[list[list[str]], str]:
    """ngram -ppl -debug >= 1: a block per sentence (echo, word lines, two stats lines) ended by a
    blank line, then the file's two lines."""
    assert out.endswith("\n")
    *sentences, last = out[:-1].split("\n\n")
    return [b.split("\n") for b in sentences], last


@pytest.mark.parametrize("oov", ["unk", "skip"])
def test_debug_2_word_lines_read_like_compute_best_mix(model_dir, sents_file, ref, capsys, oov):
    """Every predicted token has its line, in order: the word (an unknown one as <unk>, as SRILM
    prints it), its context (<s> alone first, then the previous word and ' ...'), '[rnn] P [ log10 P ]'
    with P the reference probability; under skip an unknown word is '[OOV] 0 [ -inf ]'."""
    rc, out, err = run(capsys, "score", model_dir, sents_file, "--output-format", "srilm", "--debug", "2", "--oov", oov)
    assert rc == 0, err
    sentences, _ = blocks(out)
    assert len(sentences) == len(SENTS)
    for text, block in zip(SENTS, sentences):
        expected = ref.tokens(text)
        lines = block[1:-2]
        assert len(lines) == len(expected)
        prev = "<s>"
        for i, (line, (word, lp, unknown)) in enumerate(zip(lines, expected)):
            m = WORD_LINE.fullmatch(line)
            assert m, repr(line)
            assert (m.group(1), m.group(2), m.group(3)) == (word, prev, " ..." if i else " ")
            prev = word
            fields = re.sub(r"[|] [^)]*\)", "| X )", line).split()  # compute-best-mix's view
            assert fields[1] == word and fields[0] == "p(" and fields[5] == "="
            if unknown and oov == "skip":
                assert re.search(r"\[ -[Ii]nf", line) and fields[6] == "[OOV]" and fields[7] == "0"
                continue
            assert float(fields[9]) == near10(lp / math.log(10))
            assert float(fields[7]) == pytest.approx(math.exp(lp), rel=REL)


@pytest.mark.parametrize("oov", ["unk", "skip"])
@pytest.mark.parametrize("debug", ["1", "2"])
def test_sentence_blocks_and_totals_by_hand(model_dir, sents_file, ref, capsys, oov, debug):
    """Each sentence: its words echoed, then (debug 2: after the word lines) '1 sentences, w words,
    o OOVs' / '0 zeroprobs, logprob= ppl= ppl1=' by hand, and a blank line; the empty line has no
    words, so ppl1= undefined. Then the file's totals, by hand, the same as at debug 0."""
    rc, out, err = run(capsys, "score", model_dir, sents_file, "--output-format", "srilm", "--debug", debug, "--oov", oov)
    assert rc == 0, err
    sentences, last = blocks(out)
    rows = [ref.tokens(t) for t in SENTS]
    for text, row, block in zip(SENTS, rows, sentences):
        assert block[0] == text
        assert len(block) == 3 + (len(row) if debug == "2" else 0)
        check_stats("\n".join(block[-2:]), stats_by_hand([row], oov))
    assert last.startswith(f"file {sents_file}: ")
    check_stats(last.removeprefix(f"file {sents_file}: "), stats_by_hand(rows, oov))
    rc, summary, _ = run(capsys, "score", model_dir, sents_file, "--output-format", "srilm", "--oov", oov)
    assert rc == 0 and summary == last + "\n"


@pytest.mark.parametrize("oov", ["unk", "skip"])
def test_oov_accounting_at_debug_0(model_dir, sents_file, ref, capsys, oov):
    """--oov unk is SRILM's -unk: 'zebra' is a word with its <unk> probability, 0 OOVs, in the
    denominators; --oov skip: 2 OOVs, left out of logprob= and of the denominators. The text
    format's stderr summary counts OOVs the same way."""
    rc, out, err = run(capsys, "score", model_dir, sents_file, "--output-format", "srilm", "--oov", oov)
    assert rc == 0, err
    expected = stats_by_hand([ref.tokens(t) for t in SENTS], oov)
    assert expected[2] == (2 if oov == "skip" else 0)
    check_stats(out.removeprefix(f"file {sents_file}: ").rstrip("\n"), expected)
    rc, _, err = run(capsys, "score", model_dir, sents_file, "--oov", oov)
    assert rc == 0 and f"{expected[1]} words, {expected[2]} OOVs;" in err


def test_per_token_is_debug_2_and_conflicts_are_refused(model_dir, sents_file, capsys):
    """--per-token with the srilm format gives -debug 2's output; with --debug 0 or 1 it is refused,
    and --debug with another format is refused, each in one line naming --debug."""
    base = ["score", model_dir, sents_file, "--output-format", "srilm"]
    rc, debug2, _ = run(capsys, *base, "--debug", "2")
    rc2, per_token, _ = run(capsys, *base, "--per-token")
    rc3, both, _ = run(capsys, *base, "--per-token", "--debug", "2")
    assert rc == rc2 == rc3 == 0 and per_token == debug2 == both and "\tp( " in debug2
    for argv in ([*base, "--per-token", "--debug", "1"], [*base, "--per-token", "--debug", "0"],
                 ["score", model_dir, sents_file, "--debug", "1"],
                 ["score", model_dir, sents_file, "--output-format", "jsonl", "--debug", "0"]):
        rc, out, err = run(capsys, *argv)
        assert rc == 1 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnnkit: error: --debug: "), err


def test_no_bos_context_is_the_first_word(model_dir, tmp_path, ref, capsys):
    """--no-bos: the first word is context only, so the first line is p( w2 | w1 ) (no ' ...')."""
    f = tmp_path / "one.txt"
    f.write_text("the cat sat\n", encoding="utf-8")
    rc, out, err = run(capsys, "score", model_dir, f, "--output-format", "srilm", "--debug", "2", "--no-bos")
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if ln.startswith("\tp( ")]
    assert [WORD_LINE.fullmatch(ln).group(1, 2, 3) for ln in lines] == [
        ("cat", "the", " "), ("sat", "cat", " ..."), ("</s>", "sat", " ...")]


def _no_spans(obj: dict) -> dict:
    """A jsonl record without its tokens' character offsets (which differ with the line)."""
    toks = [{k: v for k, v in t.items() if k not in ("start", "end")} for t in obj["token_scores"]]
    return {**obj, "token_scores": toks}


@pytest.mark.parametrize("fmt", ["text", "jsonl", "srilm"])
def test_a_trailing_literal_eos_is_the_end_not_a_word(model_dir, tmp_path, capsys, fmt):
    """'w1 .. wn </s>' scores as 'w1 .. wn': </s> predicted once, not counted as a word (SRILM adds
    none when the line has one), in every format; with --no-eos the literal </s> is still predicted."""
    plain, marked = tmp_path / "plain.txt", tmp_path / "marked.txt"
    plain.write_text("the cat sat .\ndog\n\n", encoding="utf-8")
    marked.write_text("the cat sat . </s>\ndog </s>\n</s>\n", encoding="utf-8")
    flags = ["--output-format", fmt, "--per-token", "--debug", "2"] if fmt == "srilm" else ["--output-format", fmt, "--per-token"]
    rc, a, err_a = run(capsys, "score", model_dir, plain, *flags)
    rc2, b, err_b = run(capsys, "score", model_dir, marked, *flags)
    assert rc == rc2 == 0
    if fmt == "jsonl":
        objs = [json.loads(line) for line in b.splitlines()]
        assert [t["token"] for t in objs[0]["token_scores"]] == ["the", "cat", "sat", ".", "</s>"]
        assert [o["words"] for o in objs] == [4, 1, 0] and [o["tokens"] for o in objs] == [5, 2, 1]
        assert [(t["start"], t["end"]) for t in objs[0]["token_scores"]][-1] == (14, 18)  # the literal </s>
        b = "\n".join(json.dumps(_no_spans({**o, "text": o["text"].removesuffix("</s>").strip()})) for o in objs)
        a = "\n".join(json.dumps(_no_spans(o)) for o in map(json.loads, a.splitlines()))
    elif fmt == "text":
        b = re.sub(r"\t ?</s>\n", "\t\n", b.replace(" </s>\n", "\n"))
        assert err_a == err_b and "3 sentences, 5 words" in err_b
    else:
        assert b.count("\tp( </s> |") == 3 and "file" in b
        b = b.replace(" </s>\n", "\n").replace("\n</s>\n", "\n\n").replace(str(marked), str(plain))
    assert a == b
    rc, no_eos, _ = run(capsys, "score", model_dir, marked, "--output-format", "jsonl", "--no-eos")
    rc2, eos, _ = run(capsys, "score", model_dir, plain, "--output-format", "jsonl")
    assert rc == rc2 == 0
    assert [json.loads(x)["logprob"] for x in no_eos.splitlines()] == [json.loads(x)["logprob"] for x in eos.splitlines()]
