"""Weight tuning on a dev n-best set: the LM weight and word penalty (and lambda with an n-gram
mix) that minimise corpus WER against references, and the weights file that stores them.

Each hypothesis is scored by the RNN once; what the search needs is kept per hypothesis (the
acoustic score, the word count, its errors against the reference, and the LM log-probability,
or with a mix its two per-token arrays, RNN and n-gram, so that any lambda is a sum away), so
the whole dev set's features are in memory (dev sets are small). The search:

- a coarse grid: LM weight 0 and 2^k for k = -4..6 (1/16 .. 64); word penalty 0 and +-2^k for
  k = -4..5 (+-1/16 .. +-32); lambda 0, 0.1, .., 1 (with a mix); the starting weights added;
- a refinement around the best coarse point: in each dimension the span between the coarse
  values on either side of it (the end itself at an end), in REFINE_STEPS equal steps;
- the point of fewest corpus errors over both grids wins; ties go to the point nearest the
  starting weights (Euclidean, in (LM weight, word penalty, lambda)), then the smaller values.

A 1-best is picked as rescoring picks it (total = ascore + lm_weight * lm + word_penalty *
words; ties by input order), so the tuned weights give the WER reported when used again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError
from .rescore import Hyp, Mix, combine, iter_groups, mixed_logprob, token_arrays
from .score import LOG_BASES
from .wer import ErrorCounts, align

LM_GRID = (0.0, *(2.0 ** k for k in range(-4, 7)))
PENALTY_GRID = (0.0, *(s * 2.0 ** k for k in range(-4, 6) for s in (1, -1)))
LAMBDA_GRID = tuple(i / 10 for i in range(11))
REFINE_STEPS = 8
WEIGHTS_FORMAT = "rnnkit-rescore-weights"
_CELLS = 1 << 22  # totals evaluated at once (grid points x hypotheses)


@dataclass(frozen=True)
class Weights:
    lm_weight: float = 1.0
    word_penalty: float = 0.0
    lam: float | None = None  # the RNN's weight in a mix; None without one

    def point(self) -> tuple[float, float, float]:
        return (self.lm_weight, self.word_penalty, 1.0 if self.lam is None else self.lam)


def read_references(lines: Iterable[str], source: str) -> dict[str, str]:
    """{id: reference words} from Kaldi text (`uttid words...`) or `id<TAB>words` lines (blank
    lines skipped; an id alone is an empty reference; with a tab the id is what comes before
    it, spaces allowed, as in plain n-best lists); a line without an id (starting with
    whitespace, or with nothing before its tab) or an id given twice is InputError FILE:LINE."""
    refs: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if "\t" in line:
            uid, words = line.split("\t", 1)
            uid = uid.strip()
            bad = not uid
        else:
            parts = line.split(None, 1)
            uid, words, bad = parts[0], parts[1] if len(parts) > 1 else "", line[:1].isspace()
        if bad:
            raise InputError(f"{source}:{n}: no id (expected 'uttid words...' or 'id<TAB>words'), got {line.strip()[:60]!r}")
        if uid in refs:
            raise InputError(f"{source}:{n}: reference id {uid!r} is given twice")
        refs[uid] = " ".join(words.split())
    return refs


@dataclass
class Features:
    """The dev set as the search needs it: hypotheses grouped by id (groups consecutive, each
    in input order), per hypothesis its score parts and errors; with a mix, the per-token
    arrays concatenated (`owner`: the hypothesis of each token)."""

    hyps: list[Hyp]
    starts: np.ndarray  # (G,) index of each id's first hypothesis
    ascore: np.ndarray  # (N,)
    nwords: np.ndarray  # (N,) float
    counts: list[ErrorCounts]  # (N,) alignment against the id's reference
    errors: np.ndarray  # (N,) int: counts' errors
    ref_words: int  # reference words over the ids
    ln_base: float
    lm: np.ndarray | None = None  # (N,) LM log-probability in the base, without a mix
    rnn: np.ndarray | None = None  # (M,) RNN ln p of every scored token (with a mix)
    ngram: np.ndarray | None = None  # (M,) n-gram ln p of the same tokens
    owner: np.ndarray | None = None  # (M,) hypothesis index of each token
    bounds: np.ndarray | None = None  # (N + 1,) each hypothesis' tokens: rnn[bounds[i]:bounds[i + 1]]

    @property
    def mixed(self) -> bool:
        return self.rnn is not None


def collect(hyps: Iterable[Hyp], scores: Iterable, references: dict[str, str], ln_base: float,
            mix: Mix | None = None, source: str = "<hypotheses>") -> Features:
    """Features of hypotheses (an id's consecutive, as rescoring reads them) and their
    SentenceScores (in the same order; per-token scores with a mix). An id without a reference
    is InputError naming `source` and its first line."""
    groups = list(iter_groups(hyps, source))
    flat = [h for g in groups for h in g]
    for g in groups:
        if g[0].id not in references:
            raise InputError(f"{source}:{g[0].line}: id {g[0].id!r} has no reference")
    counts = [align(references[h.id], h.text) for h in flat]
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]]).astype(np.int64)
    f = Features(flat, starts, np.array([h.ascore for h in flat], dtype=np.float64),
                 np.array([h.nwords for h in flat], dtype=np.float64), counts,
                 np.array([c.errors for c in counts], dtype=np.int64), sum(counts[i].ref_words for i in starts),
                 ln_base)
    scores = iter(scores)
    if mix is None:
        f.lm = np.array([next(scores).logprob / ln_base for _ in flat], dtype=np.float64)
        return f
    pairs = [token_arrays(next(scores), mix) for _ in flat]
    sizes = [len(r) for r, _ in pairs]
    f.rnn = np.concatenate([np.asarray(r, dtype=np.float64) for r, _ in pairs] or [np.zeros(0)])
    f.ngram = np.concatenate([np.asarray(g, dtype=np.float64) for _, g in pairs] or [np.zeros(0)])
    f.owner = np.repeat(np.arange(len(flat)), sizes)
    f.bounds = np.cumsum([0, *sizes])
    return f


def lm_values(f: Features, lam: float | None, exact: bool = True) -> np.ndarray:
    """(N,) LM log-probabilities in the base at `lam`: exact = summed as rescoring sums them
    (the same numbers bit for bit), else a faster vectorised sum for the grid."""
    if not f.mixed:
        return f.lm
    if exact:
        return np.array([mixed_logprob(f.rnn[a:b], f.ngram[a:b], lam) for a, b in zip(f.bounds[:-1], f.bounds[1:])]
                        ) / f.ln_base
    from ..ngram import mix as ngram_mix

    per_token = np.asarray(ngram_mix.mix_ln(f.rnn, f.ngram, lam), dtype=np.float64)
    per_token[~np.isfinite(per_token)] = 0.0  # left out, as mixed_logprob leaves them
    return np.bincount(f.owner, weights=per_token, minlength=len(f.hyps)) / f.ln_base


def best_indices(f: Features, lm: np.ndarray, ws: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """(P, G) the index of each id's 1-best at each of P (lm_weight, word_penalty) pairs."""
    N = len(f.hyps)
    totals = f.ascore[None] + ws[:, None] * lm[None] + ps[:, None] * f.nwords[None]
    totals[np.isnan(totals)] = -np.inf
    gmax = np.maximum.reduceat(totals, f.starts, axis=1)
    sizes = np.diff(np.append(f.starts, N))
    first = np.where(totals == np.repeat(gmax, sizes, axis=1), np.arange(N), N)
    return np.minimum.reduceat(first, f.starts, axis=1)  # ties: the first in input order


def _errors(f: Features, lm: np.ndarray, ws: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """(P,) corpus errors at each (lm_weight, word_penalty) pair, a bounded block at a time."""
    step = max(1, _CELLS // max(1, len(f.hyps)))
    return np.concatenate([f.errors[best_indices(f, lm, ws[i:i + step], ps[i:i + step])].sum(axis=1)
                           for i in range(0, len(ws), step)])


def counts_at(f: Features, w: Weights) -> ErrorCounts:
    """Corpus error counts of the 1-best at weights `w` (exact LM values)."""
    best = best_indices(f, lm_values(f, w.lam), np.array([w.lm_weight]), np.array([w.word_penalty]))[0]
    return _sum(f, best)


def oracle(f: Features) -> ErrorCounts:
    """Corpus error counts of the best hypothesis per id by errors (ties: the first)."""
    ends = np.append(f.starts[1:], len(f.hyps))
    return _sum(f, [a + int(np.argmin(f.errors[a:b])) for a, b in zip(f.starts, ends)])


def _sum(f: Features, indices: Sequence[int]) -> ErrorCounts:
    total = ErrorCounts()
    for i in indices:
        total = total + f.counts[int(i)]
    return total


def _evaluate(f: Features, axes: tuple[Sequence[float], Sequence[float], Sequence[float | None]]
              ) -> list[tuple[int, Weights]]:
    """(errors, weights) at every point of the product of the axes (LM weight, penalty, lambda)."""
    ws, ps = np.meshgrid(np.asarray(axes[0], dtype=np.float64), np.asarray(axes[1], dtype=np.float64), indexing="ij")
    ws, ps = ws.ravel(), ps.ravel()
    out = []
    for lam in axes[2]:
        errs = _errors(f, lm_values(f, lam, exact=False), ws, ps)
        out += [(int(e), Weights(float(w), float(p), lam)) for e, w, p in zip(errs, ws, ps)]
    return out


def _around(grid: Sequence[float], value: float) -> list[float]:
    """REFINE_STEPS + 1 points spanning the grid values on either side of `value`."""
    g = sorted(set(grid))
    i = g.index(value)
    lo, hi = g[max(0, i - 1)], g[min(len(g) - 1, i + 1)]
    return [lo + (hi - lo) * k / REFINE_STEPS for k in range(REFINE_STEPS + 1)]


def search(f: Features, start: Weights) -> Weights:
    """The weights of fewest corpus errors: coarse grid, then refined around its best (module
    docstring); ties: nearest `start`, then the smaller values."""
    grids = [sorted({*LM_GRID, start.lm_weight}), sorted({*PENALTY_GRID, start.word_penalty})]
    lams: list[float | None] = sorted({*LAMBDA_GRID, start.lam if start.lam is not None else 0.5}) if f.mixed \
        else [None]
    coarse = _evaluate(f, (grids[0], grids[1], lams))
    pick = _chooser(start)
    best = min(coarse, key=pick)[1]
    fine_lams = _around(lams, best.lam) if f.mixed else [None]
    fine = _evaluate(f, (_around(grids[0], best.lm_weight), _around(grids[1], best.word_penalty), fine_lams))
    return min(coarse + fine, key=pick)[1]


def _chooser(start: Weights):
    s = np.array(start.point())

    def key(item: tuple[int, Weights]) -> tuple:
        errs, w = item
        return errs, float(np.linalg.norm(np.array(w.point()) - s)), w.point()

    return key


@dataclass
class TuneResult:
    weights: Weights  # the chosen weights
    before: ErrorCounts  # the 1-best at the starting weights
    after: ErrorCounts  # the 1-best at the chosen weights
    oracle: ErrorCounts  # the best hypothesis per id by errors
    features: Features

    def report(self) -> dict:
        """The figures as JSON-ready numbers (the weights file's `tuned_on`)."""
        def fig(c: ErrorCounts) -> dict:
            return {"wer": c.wer, "errors": c.errors, "substitutions": c.substitutions, "deletions": c.deletions,
                    "insertions": c.insertions, "ref_words": c.ref_words}

        return {"hypotheses": len(self.features.hyps), "ids": len(self.features.starts),
                "before": fig(self.before), "after": fig(self.after), "oracle": fig(self.oracle)}

    def groups(self) -> dict[str, list[Hyp]]:
        """{id: hypotheses best first} at the chosen weights, from the features (no model call):
        the totals and order that rescoring at these weights gives."""
        w = self.weights
        return combine(self.features.hyps, lm_values(self.features, w.lam).tolist(), w.lm_weight, w.word_penalty)


def tune(f: Features, start: Weights) -> TuneResult:
    """Search the weights on the features; the before / after / oracle error counts."""
    w = search(f, start)
    return TuneResult(w, counts_at(f, start), counts_at(f, w), oracle(f), f)


def weights_json(w: Weights, log_base: str, tuned_on: dict | None = None) -> dict:
    """The weights file's content (docs/tuning.md)."""
    obj = {"format": WEIGHTS_FORMAT, "format_version": 1, "lm_weight": w.lm_weight,
           "word_penalty": w.word_penalty, "log_base": log_base}
    if w.lam is not None:
        obj["lambda"] = w.lam
    if tuned_on is not None:
        obj["tuned_on"] = tuned_on
    return obj


def parse_weights(text: str, source: str) -> tuple[Weights, str]:
    """(Weights, log base) from a weights file's text; anything else is one ConfigError
    naming `source`: not JSON, not this format, a missing or non-finite number, a lambda
    outside [0, 1], an unknown log base."""
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{source}: not a weights file (invalid JSON: {e})") from None
    if not isinstance(obj, dict) or obj.get("format") != WEIGHTS_FORMAT:
        raise ConfigError(f"{source}: not a weights file (no \"format\": \"{WEIGHTS_FORMAT}\")")
    vals = {}
    for key in ("lm_weight", "word_penalty", "lambda"):
        v = obj.get(key)
        if key == "lambda" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError(f"{source}: {key!r} must be a finite number, got {v!r}")
        vals[key] = float(v)
    if not 0.0 <= vals.get("lambda", 0.0) <= 1.0:
        raise ConfigError(f"{source}: 'lambda' must be between 0 and 1, got {vals['lambda']}")
    base = obj.get("log_base", "10")
    if base not in LOG_BASES:
        raise ConfigError(f"{source}: 'log_base' must be one of {', '.join(LOG_BASES)}, got {base!r}")
    return Weights(vals["lm_weight"], vals["word_penalty"], vals.get("lambda")), base
