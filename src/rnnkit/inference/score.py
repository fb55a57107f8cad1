"""Sentence scoring: per-token log-probabilities, batched and length-sorted, any length.

A sentence w1..wn is scored as KenLM and SRILM do by default: `<s>` is context only, each
word and the closing `</s>` are predicted. `bos=False`: the first word is context, not
scored. `eos=False`: `</s>` is not predicted. OOV policy: `unk` scores an unknown word as
`<unk>`; `skip` feeds it as `<unk>` but leaves its probability out (SRILM's convention),
counting it. An empty line is a sentence of zero words (with eos it scores p(</s> | <s>)),
so output stays aligned with input lines.

Everything here is natural log; other bases are applied only when printing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .parallel import map_batches

LOG_BASES = {"e": math.e, "10": 10.0, "2": 2.0}


@dataclass
class TokenScore:
    token: str  # the token as it appears after tokenization (</s> for the end)
    logprob: float  # natural log; nan when not scored
    is_oov: bool  # not in the vocabulary (scored as <unk> or skipped)
    scored: bool  # counted in the sentence's logprob


@dataclass
class SentenceScore:
    text: str
    tokens: list[TokenScore] = field(default_factory=list)

    @property
    def logprob(self) -> float:
        """Sum of natural-log probabilities of scored tokens."""
        return float(sum(t.logprob for t in self.tokens if t.scored))

    @property
    def num_scored(self) -> int:
        return sum(t.scored for t in self.tokens)

    @property
    def num_words(self) -> int:
        return sum(t.token != "</s>" for t in self.tokens)

    @property
    def num_oov(self) -> int:
        return sum(t.is_oov for t in self.tokens)

    @property
    def ppl(self) -> float:
        n = self.num_scored
        return math.exp(-self.logprob / n) if n else float("nan")


def log_base_value(base: str | float) -> float:
    if isinstance(base, (int, float)):
        if base <= 0 or base == 1:
            raise ConfigError(f"--log-base must be positive and not 1, got {base!r}")
        return float(base)
    if base not in LOG_BASES:
        raise ConfigError(f"--log-base must be one of e, 10, 2, got {base!r}")
    return LOG_BASES[base]


def to_base(nats: float, base: float) -> float:
    """A natural-log value in another base (log_b p = ln p / ln b)."""
    return nats / math.log(base)


def _prepare(text: str, vocab, tokenizer, bos: bool, eos: bool, oov: str) -> tuple[SentenceScore, np.ndarray]:
    """One sentence's result skeleton (tokens named, nothing scored yet) and the ids the
    model reads: [<s>] w1 .. wn [</s>]."""
    toks = tokenizer.tokenize(text)
    ids = vocab.encode(toks)
    seq = ([vocab.bos_id] if bos else []) + ids + ([vocab.eos_id] if eos else [])
    names = toks + (["</s>"] if eos else [])
    oovs = [i == vocab.unk_id for i in ids] + ([False] if eos else [])
    if not bos:  # the first word is context only
        names, oovs = names[1:], oovs[1:]
    res = SentenceScore(text)
    res.tokens = [TokenScore(n, float("nan"), o, not (o and oov == "skip")) for n, o in zip(names, oovs)]
    return res, np.asarray(seq, dtype=np.int64)


def _batch_logprobs(model, seqs: list[np.ndarray], pad_id: int, seq_len: int) -> np.ndarray:
    """ln p of each next token of each sequence, (T, B) with T the longest minus one; the
    sequences are padded (padding skips the decoder) and read in windows, hidden carried."""
    T, B = max(len(s) for s in seqs) - 1, len(seqs)
    x = np.full((T, B), pad_id, dtype=np.int64)
    y = np.full((T, B), pad_id, dtype=np.int64)
    real = np.zeros((T, B), dtype=bool)  # not padding
    for j, s in enumerate(seqs):
        x[: len(s) - 1, j], y[: len(s) - 1, j] = s[:-1], s[1:]
        real[: len(s) - 1, j] = True
    hidden = model.init_hidden(B)
    logp = np.empty((T, B))
    for t0 in range(0, T, seq_len):
        w = slice(t0, t0 + seq_len)
        logp[w], hidden = model.token_logprobs(x[w], y[w], hidden, mask=real[w])
    return logp


def score_sentences(model, vocab, tokenizer, sentences: list[str], *, bos: bool = True, eos: bool = True,
                    oov: str = "unk", batch_size: int = 64, seq_len: int = 256,
                    progress: Callable[[int], None] | None = None) -> list[SentenceScore]:
    """Score each sentence; batches are formed from length-sorted sentences, hidden carried
    across windows of seq_len so any length works. Results are in input order.
    `progress(n)` is called as each batch of n sentences is done (the counts sum to
    len(sentences))."""
    if oov not in ("unk", "skip"):
        raise ConfigError(f"--oov must be unk or skip, got {oov!r}")
    if batch_size < 1 or seq_len < 1:
        raise ConfigError("--batch-size must be >= 1")
    results, seqs = zip(*(_prepare(t, vocab, tokenizer, bos, eos, oov) for t in sentences)) if sentences else ((), ())
    order = [i for i in sorted(range(len(seqs)), key=lambda i: len(seqs[i])) if len(seqs[i]) >= 2]
    if progress is not None and len(seqs) > len(order):
        progress(len(seqs) - len(order))  # nothing to predict: done already

    def score_batch(rows: list[int]) -> tuple[list[int], np.ndarray]:
        return rows, _batch_logprobs(model, [seqs[i] for i in rows], vocab.eos_id, seq_len)

    batches = (order[b0:b0 + batch_size] for b0 in range(0, len(order), batch_size))
    for rows, logp in map_batches(model, score_batch, batches):
        for j, i in enumerate(rows):
            for t, tok in enumerate(results[i].tokens):
                if tok.scored:  # skipped OOVs keep nan
                    tok.logprob = float(logp[t, j])
        if progress is not None:
            progress(len(rows))
    return list(results)


@dataclass
class Summary:
    """Corpus totals with SRILM's definitions (ngram -ppl)."""

    sentences: int
    words: int  # tokens other than </s>
    oovs: int
    logprob: float  # natural log, scored tokens only
    scored_words: int  # words whose probability is counted
    scored_eos: int  # </s> predictions counted

    @classmethod
    def of(cls, scores: list[SentenceScore]) -> Summary:
        words = sum(s.num_words for s in scores)
        scored_eos = sum(1 for s in scores for t in s.tokens if t.token == "</s>" and t.scored)
        scored = sum(s.num_scored for s in scores)
        return cls(len(scores), words, sum(s.num_oov for s in scores), sum(s.logprob for s in scores),
                   scored - scored_eos, scored_eos)

    @property
    def ppl(self) -> float:
        """exp of the mean negative log-probability over scored words and </s> (SRILM's ppl)."""
        n = self.scored_words + self.scored_eos
        return math.exp(-self.logprob / n) if n else float("nan")

    @property
    def ppl1(self) -> float:
        """The same over scored words only, </s> excluded from the count (SRILM's ppl1)."""
        return math.exp(-self.logprob / self.scored_words) if self.scored_words else float("nan")
