"""Linear interpolation of the RNN with an n-gram model, per token, and EM for its weight.

p_mix(w | h) = lam * p_rnn(w | h) + (1 - lam) * p_ngram(w | h), in probability space; lam is the
RNN's weight (rnnlm's -lambda; SRILM's -lambda is its main model's). Vocabulary rule
(docs/ngram.md): both models see the RNN's tokens; a token unknown to the RNN is scored as its
<unk> (or left out of both with oov="skip"); a token unknown to the n-gram is its <unk> when it has
one, else its probability is 0, so the mixed probability is lam * p_rnn, and a token whose mixed
probability is 0 (lam = 0) is an OOV, out of the totals, as SRILM does. Natural log throughout.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import replace

import numpy as np

from ..errors import ConfigError
from .backoff import BOS, EOS

LN10 = math.log(10.0)


def check_lambda(lam: float, what: str = "--lambda") -> float:
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:  # NaN fails too
        raise ConfigError(f"{what} must be in [0, 1] (the RNN's weight), got {lam!r}")
    return lam


def mix_ln(rnn_ln, other_ln, lam: float) -> np.ndarray:
    """ln(lam * exp(rnn_ln) + (1 - lam) * exp(other_ln)) elementwise; lam 1 and 0 return the
    RNN's and the other model's values exactly."""
    lam = check_lambda(lam)
    rnn = np.asarray(rnn_ln, dtype=np.float64)
    other = np.asarray(other_ln, dtype=np.float64)
    if lam == 1.0:
        return rnn.copy()
    if lam == 0.0:
        return other.copy()
    with np.errstate(divide="ignore"):
        return np.logaddexp(math.log(lam) + rnn, math.log1p(-lam) + other)


def _context(score, bos: bool) -> list[str]:
    """What the n-gram conditions the first predicted token on: <s>, or without bos the first word."""
    return [BOS] if bos else ([score.context] if score.context else [])


def _ngram_ln(scores: list, arpa, bos: bool) -> list[np.ndarray]:
    """ln p_ngram of every token of each score (one vectorised pass over the list)."""
    for s in scores:
        if s.tokens is None:
            raise ConfigError("mixing needs SentenceScores computed with per_token=True")
    items = [(_context(s, bos), [t.token for t in s.tokens]) for s in scores]
    return [lp * LN10 for lp in arpa.batch_log10_after(items)]


def _rnn_ln(score) -> tuple[np.ndarray, np.ndarray]:
    rnn = np.array([t.logprob for t in score.tokens], dtype=np.float64)
    return rnn, np.array([t.scored for t in score.tokens], dtype=bool)


def token_logprobs(score, arpa, *, bos: bool = True, eos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(rnn_ln, ngram_ln) over the scored tokens of a SentenceScore computed with per_token=True
    (</s> included when scored). bos as the score was computed; eos is read from the tokens
    (a line ending in a literal </s> has it either way)."""
    ngram = _ngram_ln([score], arpa, bos)[0]
    rnn, keep = _rnn_ln(score)
    return rnn[keep], ngram[keep]


def aligned_logprobs(scores: Iterable, arpa, *, bos: bool = True,
                     chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """token_logprobs over many scores (any iterable), concatenated; n-gram scoring a chunk at a time."""
    rnn_parts, ngram_parts = [], []
    for group in _chunks(scores, chunk):
        for s, ngram in zip(group, _ngram_ln(group, arpa, bos)):
            rnn, keep = _rnn_ln(s)
            rnn_parts.append(rnn[keep])
            ngram_parts.append(ngram[keep])
    if not rnn_parts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(rnn_parts), np.concatenate(ngram_parts)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while group := list(itertools.islice(it, size)):
        yield group


def _mixed(score, ngram: np.ndarray, lam: float, keep_tokens: bool):
    rnn, scored = _rnn_ln(score)
    mixed = mix_ln(np.where(scored, rnn, 0.0), ngram, lam)
    counted = scored & np.isfinite(mixed)
    mixed = np.where(counted, mixed, np.nan)
    tokens = None
    if keep_tokens:
        tokens = [replace(t, logprob=float(m), scored=bool(c), entropy=None, rank=None)
                  for t, m, c in zip(score.tokens, mixed.tolist(), counted.tolist())]
    eos = sum(c for t, c in zip(score.tokens, counted.tolist()) if t.token == EOS)
    total = float(sum(mixed[counted].tolist()))  # in token order, as SentenceScore sums: lam 1 is exact
    return replace(score, logprob=total, num_scored=int(counted.sum()),
                   scored_eos=int(eos), tokens=tokens)


def mix_scores(scores: Iterable, arpa, lam: float, *, bos: bool = True, keep_tokens: bool = True,
               chunk: int = 1024) -> Iterator:
    """Each per-token SentenceScore with the mixed probabilities (a copy): logprob, num_scored,
    scored_eos and each token's logprob/scored; a token whose mixed probability is 0 is left out
    (an OOV, as SRILM's). keep_tokens=False drops the tokens. Lazy: a chunk of scores at a time."""
    lam = check_lambda(lam)
    for group in _chunks(scores, chunk):
        for s, ngram in zip(group, _ngram_ln(group, arpa, bos)):
            yield _mixed(s, ngram, lam, keep_tokens)


def mix_score(score, arpa, lam: float, *, bos: bool = True, keep_tokens: bool = True):
    """mix_scores for one SentenceScore."""
    return next(mix_scores([score], arpa, lam, bos=bos, keep_tokens=keep_tokens))


def perplexity(rnn_ln: np.ndarray, ngram_ln: np.ndarray, lam: float) -> float:
    """exp of the mean negative mixed log-probability over the tokens with a nonzero mixture."""
    m = mix_ln(rnn_ln, ngram_ln, lam)
    m = m[np.isfinite(m)]
    return math.exp(-float(m.mean())) if len(m) else float("nan")


def best_lambda(rnn_ln, ngram_ln, init: float = 0.5, max_iter: int = 100,
                tol: float = 1e-4) -> tuple[float, list[tuple[float, float]]]:
    """The perplexity-optimal lam by EM: lam <- mean posterior of the RNN component. Stops when
    lam moves less than tol, or after max_iter updates. history: (lam, ppl) before each update
    and the final one; ppl never increases (EM). Tokens that neither model gives a probability
    are left out; a token only the RNN knows counts as the RNN's."""
    init = check_lambda(init, "--lambda")
    if not 0.0 < init < 1.0:
        raise ConfigError(f"--lambda for EM must be strictly between 0 and 1, got {init!r}")
    if max_iter < 1 or not tol > 0:
        raise ConfigError(f"--max-iter must be >= 1 and --tolerance > 0, got {max_iter!r}, {tol!r}")
    rnn, ngram = np.asarray(rnn_ln, np.float64), np.asarray(ngram_ln, np.float64)
    keep = np.isfinite(rnn) | np.isfinite(ngram)
    rnn, ngram = rnn[keep], ngram[keep]
    if len(rnn) == 0:
        raise ConfigError("no tokens to estimate --lambda from")
    lam, history = init, []
    for _ in range(max_iter):
        mix = mix_ln(rnn, ngram, lam)
        history.append((lam, math.exp(-float(mix.mean()))))
        new = float(np.mean(np.exp(math.log(lam) + rnn - mix)))
        done = abs(new - lam) < tol
        lam = new
        if done:
            break
    history.append((lam, math.exp(-float(mix_ln(rnn, ngram, lam).mean()))))
    return lam, history
