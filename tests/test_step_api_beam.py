"""A toy beam-search decoder written on the step API (`LanguageModel.stepper()`), as a decoder
would use it: each hypothesis holds an LMState, its next-token row `state.logp` gives the
candidates' scores, `advance` steps the kept candidates in one batch, `end` adds ln p(</s>).

Checked, on both engines (torch skipped when absent):
- every hypothesis' score equals `lm.score` of its text (the sentence's ln p with <s> and
  </s>, computed by the batched scorer, not by the step API) within 1e-6 relative / absolute;
- on a two-word vocabulary (K = 5) with sentences of at most 3 words, a beam wide enough to keep
  every prefix (15 >= the 2^3 prefixes of 3 words, and >= K) finds exactly the exhaustive search's ranking of all 15 sentences
  (scored with `lm.score_sentences`), and a narrow beam (3) never beats the exhaustive best;
- beam 3 with max length 8 on the tiny corpus model returns 3 distinct hypotheses, best first.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from conftest import has_torch, make_model_dir
from rnnkit import checkpoint
from rnnkit.api import load
from rnnkit.config import ModelConfig, TokenizerConfig
from rnnkit.params import init_params
from rnnkit.text import Vocab

ENGINES = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(not has_torch(), reason="torch not installed"))]


def beam_search(lm, beam: int, max_len: int) -> list[tuple[float, list[str]]]:
    """The `beam` best complete sentences (score = ln p with <s> and </s>) of at most `max_len`
    words, best first; words are the vocabulary's tokens other than <unk>, <s>, </s>."""
    st = lm.stepper()
    v = lm.vocab
    words = [i for i in range(len(v)) if i not in (v.unk_id, v.bos_id, v.eos_id)]
    live = [(0.0, [], st.begin())]
    done: list[tuple[float, list[int]]] = []
    for depth in range(max_len + 1):
        ends = st.end([s for _, _, s in live])
        done += [(score + float(e), toks) for (score, toks, _), e in zip(live, ends)]
        if depth == max_len:
            break
        cands = [(score + float(s.logp[w]), toks + [w], s) for score, toks, s in live for w in words]
        cands.sort(key=lambda c: -c[0])
        cands = cands[:beam]
        new_states, _ = st.advance([s for _, _, s in cands], [toks[-1] for _, toks, _ in cands])
        live = [(score, toks, ns) for (score, toks, _), ns in zip(cands, new_states)]
    done.sort(key=lambda d: -d[0])
    return [(score, v.decode(toks)) for score, toks in done[:beam]]


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


@pytest.fixture(scope="module")
def two_word_model(tmp_path_factory) -> Path:
    """A random model over the words x and y (K = 5 with <unk> <s> </s>)."""
    vocab = Vocab.build([["x", "y", "x"]])
    cfg = ModelConfig(vocab_size=len(vocab), cell="gru", embed_dim=4, hidden_dim=6, num_layers=1)
    rng = np.random.default_rng(11)
    params = {k: (v + rng.normal(0, 0.8, v.shape)).astype(np.float32) for k, v in init_params(cfg, seed=2).items()}
    path = tmp_path_factory.mktemp("beam2") / "model"
    checkpoint.save(path, cfg, TokenizerConfig(level="word"), vocab, params)
    return path


@pytest.fixture(scope="module")
def tiny_corpus_model(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("beam") / "model", cell="lstm", num_layers=2)


def exhaustive(lm, max_len: int) -> list[tuple[float, list[str]]]:
    """Every sentence of at most max_len words over x, y, scored by the batched scorer."""
    sents = [list(t) for n in range(max_len + 1) for t in itertools.product(["x", "y"], repeat=n)]
    scores = lm.score_sentences([" ".join(s) for s in sents], per_token=False)
    return sorted(((s.logprob, toks) for s, toks in zip(scores, sents)), key=lambda d: -d[0])


@pytest.mark.parametrize("engine", ENGINES)
def test_wide_beam_equals_exhaustive_search(two_word_model, engine):
    lm = load(two_word_model, engine=engine)
    assert len(lm.vocab) == 5
    ref = exhaustive(lm, 3)
    assert len(ref) == 15
    got = beam_search(lm, beam=15, max_len=3)  # >= 2^3 keeps every prefix; all 15 sentences returned
    assert len(got) == 15
    assert sorted(" ".join(t) for _, t in got) == sorted(" ".join(t) for _, t in ref)
    assert got[0][1] == ref[0][1]
    for (gs, gt), (rs, _) in zip(got, ref):
        assert close(gs, rs), (gt, gs, rs)  # the same ranking of scores
        assert close(gs, lm.score(" ".join(gt)))
    narrow = beam_search(lm, beam=3, max_len=3)
    assert narrow[0][0] <= ref[0][0] + 1e-6
    for score, toks in narrow:
        assert close(score, lm.score(" ".join(toks)))


@pytest.mark.parametrize("engine", ENGINES)
def test_beam_3_max_len_8_scores_match_lm_score(tiny_corpus_model, engine):
    lm = load(tiny_corpus_model, engine=engine)
    hyps = beam_search(lm, beam=3, max_len=8)
    assert len(hyps) == 3
    assert [s for s, _ in hyps] == sorted((s for s, _ in hyps), reverse=True)
    assert len({tuple(t) for _, t in hyps}) == 3
    for score, toks in hyps:
        assert len(toks) <= 8
        text = " ".join(toks)
        assert lm.tokenize(text) == toks  # the text reads back as the same tokens
        assert close(score, lm.score(text)), (text, score, lm.score(text))
