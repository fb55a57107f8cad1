"""Generation policy: length_penalty. On a fake model built so that alpha 0 and 1 disagree, the
beam's choice is the brute-force best of every hypothesis under score = logprob / length ** alpha.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from generate_policy_kit import BOS_ID, EOS_ID, NEG, UNK_ID, FakeLM, dist_from, fake_vocab
from rnnkit.config import SampleConfig
from rnnkit.inference.generate import beam_search, generate

# ------------------------------------------------------------------ length_penalty

A, B_, C, D = 3, 4, 5, 6
K_LP = 7


def lp_model(hist):
    """After <s>: A .7, B .3. Short `A </s>`: total ln .35 (higher), per token ln(.35)/2.
    Long `B C D </s>`: total ln(.3 * .9^3) (lower), per token higher. Other branches are poor."""
    g = hist[1:]  # generated so far (no prompt)
    if g == ():
        p = {A: 0.7, B_: 0.3}
    elif g == (A,):
        p = {EOS_ID: 0.5, C: 0.5}
    elif g[0] == A:  # A C ...: never ends
        p = {C: 0.5, D: 0.5}
    elif g == (B_,):
        p = {C: 0.9, EOS_ID: 0.1}
    elif g == (B_, C):
        p = {D: 0.9, EOS_ID: 0.1}
    else:  # B C D, B C D D, ...
        p = {EOS_ID: 0.9, D: 0.1}
    return dist_from(p, K_LP)


def brute_force_best(dist, K, min_len, max_len, alpha):
    """Best (score, ids) by enumeration over every hypothesis the search may return: a sequence
    ended by </s> (chosen at a position >= min_len, < max_len; length counts the </s>) or one
    of max_len tokens left unfinished. score = logprob / length ** alpha."""
    best = (-math.inf, None)

    def walk(hist, ids, logprob):
        nonlocal best
        lp = np.array(dist(hist), dtype=np.float64)
        lp[[UNK_ID, BOS_ID]] = NEG
        if len(ids) < min_len:
            lp[EOS_ID] = NEG
        lp = lp - np.logaddexp.reduce(lp)  # renormalised, as the search does
        for tok in np.flatnonzero(np.isfinite(lp)):
            total = logprob + lp[tok]
            if tok == EOS_ID:
                cand = (total / (len(ids) + 1) ** alpha, list(ids))
            elif len(ids) + 1 == max_len:
                cand = (total / (len(ids) + 1) ** alpha, list(ids) + [int(tok)])
            else:
                walk(hist + (int(tok),), ids + [int(tok)], total)
                continue
            if cand[0] > best[0]:
                best = cand

    walk((BOS_ID,), [], 0.0)
    return best


@pytest.mark.parametrize("alpha,want", [(0.0, [A]), (1.0, [B_, C, D])])
def test_length_penalty_changes_the_beam_choice(alpha, want):
    v = fake_vocab(K_LP)
    cfg = SampleConfig(beam=2, min_len=1, max_len=6, length_penalty=alpha)
    hyp = beam_search(FakeLM(K_LP, lp_model), v, [], cfg)
    best_score, best_ids = brute_force_best(lp_model, K_LP, 1, 6, alpha)
    assert best_ids == want  # the constructed case is what it claims
    assert hyp.ids == want and hyp.finished
    by_hand = {(A,): math.log(0.7 * 0.5), (B_, C, D): math.log(0.3 * 0.9 * 0.9 * 0.9)}
    assert hyp.logprob == pytest.approx(by_hand[tuple(want)], abs=1e-12)
    assert hyp.logprob / (len(want) + 1) ** alpha == pytest.approx(best_score, abs=1e-12)
    assert generate(FakeLM(K_LP, lp_model), v, [], cfg) == [want]


def test_length_penalty_default_is_one():
    """SampleConfig's default length_penalty (1) normalises by length: the long one wins."""
    hyp = beam_search(FakeLM(K_LP, lp_model), fake_vocab(K_LP), [], SampleConfig(beam=2, min_len=1, max_len=6))
    assert hyp.ids == [B_, C, D]
