"""Per-token surprisal: character offsets, surprisal, entropy and rank, lm-zoo's TSV, and blank
lines for a character model.

Offsets are checked by slicing the original line (PTB and the Reddit sample from ../shared/data,
skipped when absent; hand-made lines with extra spaces, tabs, punctuation, entities, unicode;
seeded random strings of the word tokenizer's tricky pieces). Entropy and rank are checked
against a float64 copy of the model stepped one token at a time (`step_logprobs` after the
prefix): -sum p ln p of that row, and the token's place in the row sorted by probability.
"""

from __future__ import annotations

import html
import io
import itertools
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from conftest import SHARED_DATA, TINY_CORPUS, has_torch, make_model_dir
from conftest import run_main as run
from rnnkit import checkpoint
from rnnkit.cli import main
from rnnkit.config import ModelConfig, TokenizerConfig
from rnnkit.data import read_sentences
from rnnkit.inference import score as score_mod
from rnnkit.inference.score import score_sentences, score_stream
from rnnkit.numpy_engine import RNNLM
from rnnkit.params import init_params
from rnnkit.text import CharTokenizer, Vocab, WordTokenizer
from test_tokenize_fast import random_text

LN2 = math.log(2)
BOS, EOS, UNK = 1, 2, 0
TOL = 3e-5  # nats: the float32 model against the float64 reference
LINES = ["the cat sat on the mat .", "  the\tdog  played ,  in the garden !  ", "the zebra sang a song .", "",
         "it's a dog's life , isn't it ?"]
HAND = ["  It isn\u2019t  AT&amp;T's   No. 5\tdeal.", "a&nbsp;b \u0130stanbul caf\u00e9 na\u00efve",
        "Mr. Smith can't go -- (really) $5 U.S. e.g.", "\t\ttabs\tand  spaces  ", "", "   ",
        "&lt;unk&gt; <unk> </s> x@y.org http://x.org/a.b.", "\u03a3\u039f\u03a6\u039f\u03a3 \u00df \ufb01 \u2163"]




# ---------------------------------------------------------------------------- offsets


def prepared(text: str, tok) -> str:
    """What the tokenizer reads of `text`: lower-cased when asked, and (word regex) HTML
    references decoded and U+2019 made '."""
    text = text.lower() if tok.lowercase else text
    if isinstance(tok, WordTokenizer) and tok.split == "regex":
        text = html.unescape(text).replace("\u2019", "'")
    return text


def check_spans(tok, line: str) -> None:
    """The tokens are tokenize's, in order; each span holds its token once prepared; a span with
    no reference and no character that lower-cases to two is the token itself (case-folded when
    the tokenizer lower-cases: a final sigma lower-cases by its context)."""
    spans = tok.tokenize_with_spans(line)
    assert [t for t, _, _ in spans] == tok.tokenize(line), line
    fold = str.casefold if tok.lowercase else str
    prev = 0
    for t, a, b in spans:
        assert prev <= a < b <= len(line), (line, t, a, b)
        piece = line[a:b]
        assert fold(t) in fold(prepared(piece, tok)), (line, t, piece)
        if "&" not in piece and len(piece.lower()) == len(piece):
            assert fold(prepared(piece, tok)) == fold(t), (line, t, piece)
        prev = a


WORD_TOKENIZERS = [WordTokenizer(lowercase=lc, split=sp) for lc in (False, True) for sp in ("regex", "whitespace")]
CHAR_TOKENIZERS = [CharTokenizer(lowercase=lc) for lc in (False, True)]


@pytest.mark.parametrize("tok", WORD_TOKENIZERS + CHAR_TOKENIZERS, ids=repr)
def test_spans_slice_the_line_hand_made(tok):
    for line in HAND + LINES:
        check_spans(tok, line)


def test_spans_known_values():
    """Clitics split off a chunk get the characters they came from; an entity its whole text;
    extra spaces and tabs are skipped; lower-casing keeps positions."""
    line = "  It isn\u2019t  AT&amp;T's\tdeal."
    got = WordTokenizer(lowercase=True).tokenize_with_spans(line)
    assert got == [("it", 2, 4), ("is", 5, 7), ("n't", 7, 10), ("at&t", 12, 20), ("'s", 20, 22),
                   ("deal", 23, 27), (".", 27, 28)]
    assert [line[a:b] for _, a, b in got] == ["It", "is", "n\u2019t", "AT&amp;T", "'s", "deal", "."]
    assert WordTokenizer(split="whitespace").tokenize_with_spans(" a\tb  c ") == [("a", 1, 2), ("b", 3, 4), ("c", 6, 7)]
    # U+0130 lower-cases to two characters: both tokens it gives have its span
    assert CharTokenizer(lowercase=True).tokenize_with_spans("a\u0130b") == [
        ("a", 0, 1), ("i", 1, 2), ("\u0307", 1, 2), ("b", 2, 3)]
    assert CharTokenizer().tokenize_with_spans(" \t") == [(" ", 0, 1), ("\t", 1, 2)]


@pytest.mark.parametrize("tok", WORD_TOKENIZERS, ids=repr)
def test_spans_on_random_strings(tok):
    rng = random.Random(13)
    texts = [random_text(rng) for _ in range(1500)]
    for text in texts:
        if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            check_spans(tok, text)


def shared_lines(*parts: str, limit: int = 4000) -> list[str]:
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    return path.read_text(encoding="utf-8").splitlines()[:limit]


@pytest.mark.parametrize("tok", WORD_TOKENIZERS + CHAR_TOKENIZERS[:1], ids=repr)
def test_spans_on_ptb(tok):
    for line in shared_lines("ptb", "ptb.valid.txt"):
        check_spans(tok, line)


@pytest.mark.parametrize("tok", WORD_TOKENIZERS, ids=repr)
def test_spans_on_reddit_sample(tok):
    """The raw CSV lines (entities in) and the sentences read from it."""
    lines = shared_lines("reddit", "reddit-comments-2015-08-sample.csv", limit=3000)
    path = SHARED_DATA / "reddit" / "reddit-comments-2015-08-sample.csv"
    for line in lines + read_sentences(str(path))[:3000]:
        check_spans(tok, line)


# ---------------------------------------------------------------------------- numbers


class Ref:
    """A float64 copy of a model directory's weights, stepped one token at a time."""

    def __init__(self, model_dir: Path):
        ck = checkpoint.load(model_dir)
        self.model = RNNLM(ck.model, ck.params, dtype=np.float64)
        self.index = {t: i for i, t in enumerate(json.loads((Path(model_dir) / "vocab.json").read_text("utf-8")))}

    def rows(self, tokens: list[str], bos: bool = True) -> list[tuple[int, np.ndarray]]:
        """(target id, ln p row before it) for each predicted token: words then </s>."""
        seq = ([BOS] if bos else []) + [self.index.get(t, UNK) for t in tokens] + [EOS]
        state, out = self.model.init_hidden(1), []
        for a, b in itertools.pairwise(seq):
            logp, state = self.model.step_logprobs(np.array([a]), state)
            out.append((b, logp[0]))
        return out


def entropy_of(row: np.ndarray) -> float:
    return float(-(np.exp(row) * row).sum())


def rank_of(row: np.ndarray, target: int) -> int:
    """1 + the target's place when the row is sorted most likely first (ties: smaller id first)."""
    return int(np.flatnonzero(np.argsort(-row, kind="stable") == target)[0]) + 1


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("w") / "model", cell="lstm", num_layers=2)


@pytest.fixture(scope="module")
def char_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("c") / "model", cell="gru", num_layers=1, level="char")


def check_against_ref(ref: Ref, tok, res, bos: bool = True) -> None:
    toks = tok.tokenize(res.text)
    rows = ref.rows(toks, bos)
    assert len(res.tokens) == len(rows)
    for t, (target, row) in zip(res.tokens, rows):
        assert t.logprob == pytest.approx(row[target], abs=TOL)
        assert t.entropy == pytest.approx(entropy_of(row), abs=TOL)
        assert t.rank == rank_of(row, target)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
@pytest.mark.parametrize("level", ["word", "char"])
def test_entropy_and_rank_are_the_models_own(word_dir, char_dir, level, engine):
    if engine == "torch" and not has_torch():
        pytest.skip("torch not installed")
    model_dir = word_dir if level == "word" else char_dir
    lm, ref = rnnkit.load(model_dir, engine=engine), Ref(model_dir)
    for res in score_sentences(lm.model, lm.vocab, lm.tokenizer, LINES, batch_size=2, detail=True):
        check_against_ref(ref, lm.tokenizer, res)
        for t in res.tokens[:-1]:  # </s> is the empty span at the end
            assert res.text[t.start:t.end] == t.token
        assert (res.tokens[-1].start, res.tokens[-1].end) == (len(res.text), len(res.text))


def test_entropy_and_rank_with_the_adaptive_softmax(tmp_path):
    """forward's rows are then log-probabilities already; the numbers are still the model's own."""
    tok = WordTokenizer()
    vocab = Vocab.build([tok.tokenize(s) for s in TINY_CORPUS])
    cfg = ModelConfig(vocab_size=len(vocab), cell="lstm", embed_dim=6, hidden_dim=8, num_layers=1,
                      softmax="adaptive", cutoffs=[8, 16], div_value=2.0)
    rng = np.random.default_rng(1)
    params = {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in init_params(cfg, seed=0).items()}
    checkpoint.save(tmp_path / "m", cfg, TokenizerConfig(), vocab, params)
    lm, ref = rnnkit.load(tmp_path / "m"), Ref(tmp_path / "m")
    for res in score_sentences(lm.model, lm.vocab, lm.tokenizer, LINES, detail=True):
        check_against_ref(ref, tok, res)


def test_detail_in_short_windows_and_without_bos(word_dir, monkeypatch):
    """Windows of one step (the hidden carried between them) give the same numbers; without bos
    the first word is context: not a token, the spans start at the second."""
    monkeypatch.setattr(score_mod, "DETAIL_ELEMENTS", 1)
    lm, ref = rnnkit.load(word_dir), Ref(word_dir)
    for res in score_sentences(lm.model, lm.vocab, lm.tokenizer, LINES[:3], bos=False, detail=True):
        check_against_ref(ref, lm.tokenizer, res, bos=False)
        assert res.tokens[0].token == lm.tokenizer.tokenize(res.text)[1]
        assert res.tokens[0].start == lm.tokenizer.tokenize_with_spans(res.text)[1][1]


def test_detail_does_not_change_logprobs_and_costs_nothing_unasked(word_dir, monkeypatch):
    """The full-row path runs only with detail; per-token output without it has spans, no
    entropy or rank, and the very same log-probabilities."""
    lm = rnnkit.load(word_dir)
    calls = []
    real = score_mod._entropy_rank
    monkeypatch.setattr(score_mod, "_entropy_rank", lambda *a: calls.append(1) or real(*a))
    plain = list(score_stream(lm.model, lm.vocab, lm.tokenizer, LINES, per_token=True))
    assert calls == []
    assert all(t.entropy is None and t.rank is None and t.start is not None for s in plain for t in s.tokens)
    detailed = list(score_stream(lm.model, lm.vocab, lm.tokenizer, LINES, detail=True))
    assert calls
    assert [[t.logprob for t in s.tokens] for s in plain] == [[t.logprob for t in s.tokens] for s in detailed]
    assert all(s.tokens is None for s in score_stream(lm.model, lm.vocab, lm.tokenizer, LINES))


def test_cli_text_and_tsv_do_not_compute_entropy(word_dir, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(score_mod, "_entropy_rank", lambda *a: calls.append(1))
    for fmt in ("text", "tsv", "srilm"):
        rc, _, err = run(capsys, "score", word_dir, "-", "--per-token", "--output-format", fmt, stdin="the cat\n")
        assert rc == 0, err
    assert calls == []


# ---------------------------------------------------------------------------- jsonl and tsv


def test_jsonl_per_token_fields(word_dir, capsys):
    ref = Ref(word_dir)
    tok = WordTokenizer()
    text = "  the zebra\tsat ,  on the mat !"
    rc, out, err = run(capsys, "score", word_dir, "-", "--output-format", "jsonl", "--per-token", "--log-base", "10",
                       "--oov", "skip", stdin=text + "\n")
    assert rc == 0, err
    recs = json.loads(out)["token_scores"]
    rows = ref.rows(tok.tokenize(text))
    spans = tok.tokenize_with_spans(text) + [("</s>", len(text), len(text))]
    assert [(r["token"], r["start"], r["end"]) for r in recs] == spans
    for r, (target, row) in zip(recs, rows):
        assert r["entropy"] == pytest.approx(entropy_of(row) / LN2, abs=TOL)
        if r["oov"]:  # zebra and !, skipped: nothing scored
            assert r["logprob"] is r["surprisal"] is r["rank"] is None
            continue
        assert r["logprob"] == pytest.approx(row[target] / math.log(10), abs=TOL)
        assert r["surprisal"] == pytest.approx(-row[target] / LN2, abs=TOL)
        assert r["surprisal"] == pytest.approx(-r["logprob"] * math.log(10) / LN2, rel=1e-12)
        assert r["rank"] == rank_of(row, target)
    assert [r["token"] for r in recs if r["oov"]] == ["zebra", "!"]


def tsv_rows(out: str) -> list[list[str]]:
    lines = out.split("\n")
    assert lines[0] == "sentence_id\ttoken_id\ttoken\tsurprisal" and lines[-1] == ""
    return [ln.split("\t") for ln in lines[1:-1]]


def test_tsv_layout_and_numbers(word_dir, capsys):
    """lm-zoo's table: a header, ids from 1, one row per predicted token, </s> last, bits."""
    ref = Ref(word_dir)
    lines = ["the cat sat .", "", "a  zebra !"]
    rc, out, err = run(capsys, "score", word_dir, "-", "--output-format", "tsv", stdin="\n".join(lines) + "\n")
    assert rc == 0, err
    rows = tsv_rows(out)
    want = []
    for n, line in enumerate(lines, 1):
        toks = line.split() + ["</s>"]
        for i, (t, (target, row)) in enumerate(zip(toks, ref.rows(line.split())), 1):
            want.append([str(n), str(i), t, -row[target] / LN2])
    assert [r[:3] for r in rows] == [w[:3] for w in want]
    np.testing.assert_allclose([float(r[3]) for r in rows], [w[3] for w in want], rtol=0, atol=TOL)
    assert all(len(r[3].split(".")[1]) == 6 for r in rows)


def test_tsv_without_bos_skipped_oov_and_escapes(word_dir, char_dir, capsys):
    rc, out, _ = run(capsys, "score", word_dir, "-", "--output-format", "tsv", "--no-bos", "--oov", "skip",
                     stdin="the zebra sat\n")
    assert rc == 0
    rows = tsv_rows(out)
    assert [r[:3] for r in rows] == [["1", "2", "zebra"], ["1", "3", "sat"], ["1", "4", "</s>"]]
    assert rows[0][3] == "" and float(rows[1][3]) > 0  # a skipped OOV: no surprisal
    rc, out, _ = run(capsys, "score", char_dir, "-", "--output-format", "tsv", stdin="a\tb\\\n")
    assert [r[2] for r in tsv_rows(out)] == ["a", "\\t", "b", "\\\\", "</s>"]
    rc, out, err = run(capsys, "score", word_dir, "-", "--output-format", "tsv", "--log-base", "10", stdin="a\n")
    assert rc == 1 and out == "" and err.startswith("rnnkit: error: --log-base: ") and "bits" in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- blank lines


def test_char_model_scores_whitespace_only_input(char_dir, capsys):
    """Spaces, a tab and empty lines are sentences for a character model, each scored; a word
    model still refuses such an input; a bad line after blank ones is still refused."""
    ref = Ref(char_dir)
    lines = ["   ", "", "\t", " "]
    rc, out, err = run(capsys, "score", char_dir, "-", "--output-format", "jsonl", stdin="\n".join(lines) + "\n")
    assert rc == 0, err
    objs = [json.loads(x) for x in out.splitlines()]
    assert [o["text"] for o in objs] == lines
    for o, line in zip(objs, lines):
        rows = ref.rows(list(line))
        assert o["tokens"] == len(line) + 1
        assert o["logprob"] == pytest.approx(sum(row[t] for t, row in rows), abs=TOL)
    rc, out, err = run(capsys, "score", char_dir, "-", stdin="   \n\n")
    assert rc == 0 and len(out.splitlines()) == 2
    word_dir = make_model_dir(Path(char_dir).parent / "word")
    rc, out, err = run(capsys, "score", word_dir, "-", stdin="   \n\n")
    assert rc == 1 and "only whitespace" in err
    sys.stdin = io.TextIOWrapper(io.BytesIO(b"  \n\xff\n"))
    try:
        rc = main(["score", str(char_dir), "-"])
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    assert rc == 1 and "invalid UTF-8 at line 2" in err


def test_the_api_passes_detail_through(tmp_path):
    """LanguageModel.score_sentences / score_iter(detail=True) give the entropy and rank that
    score_stream gives, and none without it."""
    import rnnkit
    from conftest import make_model_dir
    from rnnkit.inference.score import score_sentences as direct

    lm = rnnkit.load(make_model_dir(tmp_path / "m"))
    lines = ["the cat sat on the mat .", "a dog"]
    want = direct(lm.model, lm.vocab, lm.tokenizer, lines, detail=True)
    for got in (lm.score_sentences(lines, detail=True), list(lm.score_iter(lines, detail=True))):
        assert [(t.entropy, t.rank) for s in got for t in s.tokens] == \
            [(t.entropy, t.rank) for s in want for t in s.tokens]
    assert all(t.entropy is None for s in lm.score_sentences(lines) for t in s.tokens)
