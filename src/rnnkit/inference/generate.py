"""Text generation: sampling (temperature, top-k, top-p), greedy, and beam search.

Sampling is a pure function of the log-probabilities and an explicit numpy Generator, so
the same seed gives the same output on either engine. Generation carries the hidden state:
each new token costs one recurrent step whatever the length so far. Beam search keeps every
hypothesis that ends, and returns the best one (`beam_search`) or the best n (`beam_search_n`).
Stop strings are tested as the text grows (`StopStrings`): each token detokenized alone, only
the text's end searched, a constant cost per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import SampleConfig
from ..errors import ConfigError
from ..text.tokenize import joiner


def filter_logprobs(logp: np.ndarray, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                    banned: np.ndarray | None = None) -> np.ndarray:
    """(B, K) log-probabilities -> renormalised (B, K) log-probabilities with excluded entries -inf.

    Order: ban, temperature, top-k (keep the k largest), top-p (keep the smallest prefix of the
    sorted distribution whose mass reaches p; the top token always survives). The temperature
    divides the logits less their row maximum (all <= 0, the best 0), so no temperature
    overflows: as T -> 0 the others go to -inf exactly and sampling becomes the argmax (ties
    shared). A row with nothing left to choose is a ConfigError.
    """
    z = np.array(logp, dtype=np.float64, ndmin=2)
    if banned is not None:
        z[:, banned] = -np.inf
    z = _tempered(z, temperature)
    K = z.shape[1]
    if 0 < top_k < K:
        kth = np.partition(z, K - top_k, axis=1)[:, K - top_k][:, None]
        z = np.where(z >= kth, z, -np.inf)
    z = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-z, axis=1, kind="stable")
        probs = np.exp(np.take_along_axis(z, order, axis=1))
        before = np.cumsum(probs, axis=1) - probs  # mass of strictly more likely tokens
        drop_sorted = before >= top_p - 1e-12  # a prefix that reaches p up to rounding is enough
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=1)
        z = np.where(drop, -np.inf, z)
        z = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    return z


def _tempered(z: np.ndarray, temperature: float) -> np.ndarray:
    """(z - max) / T per row, in float64 (z itself at T = 1): every entry <= 0, the best exactly
    0; an entry that would fall below the smallest float is -inf (its probability rounds to 0
    either way)."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"--temperature must be a finite number > 0, got {temperature!r}")
    _check_rows(z)
    if temperature == 1.0:
        return z
    z = z - z.max(axis=1, keepdims=True)
    with np.errstate(over="ignore"):  # -big / tiny T -> -inf: exact as a probability
        return z / temperature


def _check_rows(z: np.ndarray) -> None:
    """ConfigError for a row of log-probabilities with no finite entry (every token banned) or a NaN."""
    if np.isnan(z).any():
        raise ConfigError("sampling: the model gave NaN log-probabilities")
    if not np.isfinite(z).any(axis=1).all():
        raise ConfigError("sampling: every token is excluded (the vocabulary has only <unk>, <s>, </s>, "
                          "or --min-len forbids </s>): nothing left to generate")


def sample(logp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one id per row of (B, K) log-probabilities by inverse CDF with one uniform per row
    (a ConfigError for a row with no finite entry, which would otherwise give id 0, <unk>)."""
    _check_rows(logp)
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    cdf = np.cumsum(p, axis=1)
    u = rng.random(logp.shape[0]) * cdf[:, -1]
    idx = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(idx, logp.shape[1] - 1)


def _banned(vocab, K: int, allow_eos: bool) -> np.ndarray:
    ban = [vocab.unk_id, vocab.bos_id] + ([] if allow_eos else [vocab.eos_id])
    return np.array(ban, dtype=np.int64)


def prime(model, context: list[int], batch: int):
    """Run the context through the model; returns the hidden before its last token, and that token."""
    hidden = model.init_hidden(batch)
    if len(context) > 1:
        x = np.repeat(np.asarray(context[:-1], dtype=np.int64)[:, None], batch, axis=1)
        _, hidden = model.token_logprobs(x, np.roll(x, -1, axis=0), hidden)
    return hidden, np.full(batch, context[-1], dtype=np.int64)


class StopStrings:
    """Whether a generated text ends with one of `stop`, the text given a token at a time.

    Each token's piece comes from the tokenizer's joiner (text.tokenize.joiner: the text is
    `tokenizer.detokenize` of the tokens so far), and only the text's last len(longest stop)
    characters are kept: `text.endswith(s)` reads no further, so each token costs the length
    of its piece and of the longest stop string, not of the text."""

    def __init__(self, tokenizer: Any, stop: list[str]) -> None:
        self.join, self.stop, self.tail = joiner(tokenizer), list(stop), ""
        self.keep = max((len(s) for s in self.stop), default=0)

    def add(self, token: str) -> bool:
        """Append `token` to the text; True if the text now ends with a stop string."""
        piece = self.join.add(token)
        self.tail = (self.tail + piece)[-self.keep:] if self.keep else ""
        return any(self.tail.endswith(s) for s in self.stop)


def generate(model, vocab, prompt_ids: list[int], cfg: SampleConfig,
             tokenizer: Any = None, line_breaks: bool = False) -> list[list[int]]:
    """num_samples continuations of `<s> prompt` (ids of new tokens only).

    Word models stop at `</s>` (not included). With `line_breaks` (character models, whose
    lines are `<s> chars </s>`), `</s>` is a newline: it is kept and generation goes on after
    `</s> <s>`, as in the training stream, until max_len or a stop string. A sample also stops
    after the token with which `tokenizer.detokenize` of its new tokens ends with one of
    cfg.stop (no stop test without a tokenizer). With cfg.beam > 0: the cfg.num_samples best
    beam hypotheses, best first."""
    cfg.validate()
    if cfg.beam > 0:
        return [h.ids for h in beam_search_n(model, vocab, prompt_ids, cfg, cfg.num_samples)]
    hidden, cur = prime(model, [vocab.bos_id] + list(prompt_ids), cfg.num_samples)
    return continue_from(model, vocab, hidden, cur, cfg, tokenizer, line_breaks)


def continue_from(model, vocab, hidden, cur: np.ndarray, cfg: SampleConfig,
                  tokenizer: Any = None, line_breaks: bool = False,
                  rng: np.random.Generator | None = None) -> list[list[int]]:
    """The sampling loop from a primed hidden: one recurrent step per new token (stop strings
    as `generate`, a `StopStrings` per row; with line_breaks, </s> is a newline in the text)."""
    rng = np.random.default_rng(cfg.seed) if rng is None else rng
    B = len(cur)
    if line_breaks and B > 1:  # a line break costs a row two steps, so rows go one at a time
        return [continue_from(model, vocab, model.reorder_hidden(hidden, np.array([b])), cur[b:b + 1], cfg,
                              tokenizer, True, rng)[0] for b in range(B)]
    out: list[list[int]] = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    stops = [StopStrings(tokenizer, cfg.stop) for _ in range(B)] if cfg.stop and tokenizer is not None else None
    for t in range(cfg.max_len):
        logp, hidden = model.step_logprobs(cur, hidden)
        z = filter_logprobs(logp, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                            banned=_banned(vocab, logp.shape[1], allow_eos=t >= cfg.min_len))
        nxt = z.argmax(axis=1) if cfg.greedy else sample(z, rng)
        for b in np.flatnonzero(~done):
            if nxt[b] == vocab.eos_id and not line_breaks:
                done[b] = True
                continue
            out[b].append(int(nxt[b]))
            if stops is not None:
                done[b] = stops[b].add("\n" if line_breaks and nxt[b] == vocab.eos_id else vocab.decode([nxt[b]])[0])
        if done.all():
            break
        cur = nxt
        if line_breaks and cur[0] == vocab.eos_id:  # B == 1 here: feed </s>, then <s> as the next input
            _, hidden = model.step_logprobs(cur, hidden)
            cur = np.array([vocab.bos_id], dtype=np.int64)
    return out


@dataclass
class Hypothesis:
    ids: list[int]  # generated ids, </s> excluded
    logprob: float  # natural log, </s> included when finished
    finished: bool

    def score(self, alpha: float) -> float:
        length = len(self.ids) + (1 if self.finished else 0)
        return self.logprob / max(length, 1) ** alpha


def beam_search(model, vocab, prompt_ids: list[int], cfg: SampleConfig) -> Hypothesis:
    """Beam search of width cfg.beam with length normalisation score = logprob / length**alpha.

    A hypothesis ends when it chooses `</s>` (allowed from min_len on) or reaches max_len; the
    search stops once `beam` hypotheses have finished (or at max_len) and returns the best by
    normalised score. Width 1 equals greedy decoding.
    """
    return beam_search_n(model, vocab, prompt_ids, cfg, 1)[0]


def beam_search_n(model, vocab, prompt_ids: list[int], cfg: SampleConfig, n: int) -> list[Hypothesis]:
    """The n best hypotheses of `beam_search`'s search (n <= cfg.beam), best first by normalised
    score; ties keep the order in which hypotheses ended. Unfinished beams count only when
    fewer than n hypotheses finished. n = 1 gives beam_search's answer."""
    finished, alive = _search(model, vocab, prompt_ids, cfg)
    pool = finished if len(finished) >= n else finished + alive
    return sorted(pool, key=lambda h: h.score(cfg.length_penalty), reverse=True)[:n]


def _search(model, vocab, prompt_ids: list[int], cfg: SampleConfig) -> tuple[list[Hypothesis], list[Hypothesis]]:
    """Run the beam: (the hypotheses that finished, in the order they did; the live beams left
    when the search stopped early). At max_len the live beams count as finished."""
    hidden, cur = prime(model, [vocab.bos_id] + list(prompt_ids), 1)
    beams = [Hypothesis([], 0.0, False)]
    finished: list[Hypothesis] = []
    for t in range(cfg.max_len):
        logp, hidden = model.step_logprobs(cur, hidden)
        z = filter_logprobs(logp, banned=_banned(vocab, logp.shape[1], allow_eos=t >= cfg.min_len))
        ended, extended, rows = _extend(beams, z, cfg.beam, vocab.eos_id)
        finished += ended
        if len(finished) >= cfg.beam or not extended:
            return finished, beams
        beams = extended
        hidden = model.reorder_hidden(hidden, np.asarray(rows))
        cur = np.asarray([h.ids[-1] for h in extended], dtype=np.int64)
    return finished + beams, []


def _extend(beams: list[Hypothesis], z: np.ndarray, width: int,
            eos_id: int) -> tuple[list[Hypothesis], list[Hypothesis], list[int]]:
    """One beam step over (n, K) log-probabilities: of the 2*width best continuations, in order,
    those choosing </s> end; the others extend until `width` are kept. Returns (ended, the kept
    extensions, the beam row each came from)."""
    total = np.array([b.logprob for b in beams])[:, None] + z  # (n, K)
    flat = np.argsort(-total, axis=None, kind="stable")[: 2 * width]
    ended, extended, rows = [], [], []
    for r, c in zip(*np.unravel_index(flat, total.shape)):
        if not np.isfinite(total[r, c]):
            break
        if c == eos_id:
            ended.append(Hypothesis(beams[r].ids, float(total[r, c]), True))
        else:
            extended.append(Hypothesis(beams[r].ids + [int(c)], float(total[r, c]), False))
            rows.append(r)
        if len(extended) == width:
            break
    return ended, extended, rows
