"""Sentence scoring: per-sentence log-probabilities, batched and length-sorted, any length,
streamed in bounded chunks.

A sentence w1..wn is scored as KenLM and SRILM do by default: `<s>` is context only, each
word and the closing `</s>` are predicted. `bos=False`: the first word is context, not
scored. `eos=False`: `</s>` is not predicted. OOV policy: `unk` scores an unknown word as
`<unk>` (a word like any other, as SRILM's `-unk`); `skip` feeds it as `<unk>` but leaves its
probability out (SRILM's convention without `-unk`): an OOV, out of the denominators. A line
that ends with a literal `</s>` token has ended: that token is the end of the sentence, not
a word, and `</s>` is predicted once (even with eos=False, the text asking for it). An empty
line is a sentence of zero words (with eos it scores p(</s> | <s>)), so output stays aligned
with input lines.

`score_stream` reads `chunk_sentences` sentences at a time, sorts that chunk by length into
batches, scores them (on the engine's workers, `parallel.map_batches`) and yields the
chunk's results in input order before it reads much further: memory depends on the chunk,
not on the input. A result holds its totals; the `TokenScore` per token only when
`per_token` is asked for, with the token's character span in the line when the tokenizer gives
spans (`tokenize_with_spans`; `</s>` gets the empty span at the line's end, or a literal
`</s>`'s own); with `detail` also the entropy of the distribution each token was drawn from
and the token's rank in it, which need every row of the output layer: the model's `forward`
logits per window (`DETAIL_ELEMENTS` floats at most), only then. `score_sentences` is the list
form (one chunk: the whole list).
`Summary` adds results up as they go by (SRILM's totals).

Everything here is natural log; other bases are applied only when printing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .parallel import map_batches

LOG_BASES = {"e": math.e, "10": 10.0, "2": 2.0}
CHUNK_SENTENCES = 4096  # sentences read, sorted and scored together by score_stream
DETAIL_ELEMENTS = 1 << 21  # with detail: logits held per window at most (window length shortened)
EOS_NAME = "</s>"
BOS_NAME = "<s>"
UNK_NAME = "<unk>"


@dataclass(slots=True)
class TokenScore:
    token: str  # the token as it appears after tokenization (</s> for the end)
    logprob: float  # natural log; nan when not scored
    is_oov: bool  # not in the vocabulary (scored as <unk> or skipped)
    scored: bool  # counted in the sentence's logprob
    start: int | None = None  # the token's characters in the line: text[start:end] (None: no spans)
    end: int | None = None
    entropy: float | None = None  # nats, of the distribution the token is predicted from (detail only)
    rank: int | None = None  # 1 = the most likely token there, ties by smaller id (detail only)


@dataclass(slots=True)
class SentenceScore:
    """One sentence's totals; `tokens` is a TokenScore per predicted token only when per-token
    scores were asked for (else None)."""

    text: str
    logprob: float = 0.0  # natural log, the sum over scored tokens
    num_scored: int = 0  # tokens whose probability is counted (</s> included)
    num_words: int = 0  # predicted tokens other than </s>
    num_oov: int = 0  # predicted tokens not in the vocabulary
    scored_eos: int = 0  # 1 when </s> is predicted and counted
    tokens: list[TokenScore] | None = None
    context: str = BOS_NAME  # what the first predicted token is conditioned on, as the model reads
    # it: <s>, or without bos the first word (<unk> when unknown)

    @property
    def num_skipped(self) -> int:
        """Words left out of the logprob (OOVs under oov="skip"; SRILM's OOVs)."""
        return self.num_words - (self.num_scored - self.scored_eos)

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


@dataclass(slots=True)
class PreparedSentence:
    """A sentence read and encoded, waiting for its log-probabilities."""

    text: str
    names: list[str]  # the predicted tokens: words (the first one dropped without bos), then </s>
    oovs: list[bool]
    scored: list[bool]
    seq: np.ndarray  # the ids the model reads: [<s>] w1 .. wn [</s>]
    context: str  # SentenceScore.context
    spans: list[tuple[int, int]] | None = None  # each predicted token's (start, end) in text
    logp: np.ndarray | None = None  # ln p of each predicted token (a column of its batch)
    entropy: np.ndarray | None = None  # with detail: the entropy (nats) and rank at each position
    rank: np.ndarray | None = None


def _tokens(text: str, tokenizer, spans: bool) -> tuple[list[str], list[tuple[int, int]] | None]:
    """The line's tokens, and their spans when asked for and the tokenizer gives them."""
    with_spans = getattr(tokenizer, "tokenize_with_spans", None) if spans else None
    if with_spans is None:
        return tokenizer.tokenize(text), None
    triples = with_spans(text)
    return [t for t, _, _ in triples], [(a, b) for _, a, b in triples]


def prepare_sentence(text: str, vocab, tokenizer, bos: bool, eos: bool, oov: str,
                     spans: bool = False) -> PreparedSentence:
    """A line tokenized and encoded as scoring reads it (the ids, the predicted tokens, which are
    scored); `finish_sentence` turns it into a SentenceScore once `logp` is filled."""
    toks, where = _tokens(text, tokenizer, spans)
    end = [(len(text), len(text))]
    if toks and toks[-1] == EOS_NAME:  # the sentence's own end: not a word, predicted once
        toks, eos = toks[:-1], True
        end = where[-1:] if where else end
        where = where[:-1] if where else where
    ids = vocab.encode(toks)
    seq = ([vocab.bos_id] if bos else []) + ids + ([vocab.eos_id] if eos else [])
    names = toks + ([EOS_NAME] if eos else [])
    oovs = [i == vocab.unk_id for i in ids] + ([False] if eos else [])
    where = where + end if where is not None and eos else where
    context = BOS_NAME
    if not bos:  # the first word is context only
        context = (UNK_NAME if oovs[0] else names[0]) if names else ""
        names, oovs, where = names[1:], oovs[1:], where and where[1:]
    scored = [not (o and oov == "skip") for o in oovs]
    return PreparedSentence(text, names, oovs, scored, np.asarray(seq, dtype=np.int64), context, where)


def finish_sentence(s: PreparedSentence, per_token: bool) -> SentenceScore:
    """The sentence's totals (and tokens when asked) from its log-probabilities."""
    logps = s.logp[:len(s.names)].tolist() if s.logp is not None else []
    res = SentenceScore(s.text, float(sum(lp for lp, sc in zip(logps, s.scored) if sc)), sum(s.scored),
                        sum(n != EOS_NAME for n in s.names), sum(s.oovs),
                        sum(n == EOS_NAME and sc for n, sc in zip(s.names, s.scored)), context=s.context)
    if per_token:
        res.tokens = [TokenScore(n, lp if sc else float("nan"), o, sc)
                      for n, lp, o, sc in zip(s.names, logps, s.oovs, s.scored)]
        _add_details(res.tokens, s)
    return res


def _add_details(tokens: list[TokenScore], s: PreparedSentence) -> None:
    """Spans, entropies and ranks, where they were computed."""
    for i, t in enumerate(tokens):
        if s.spans is not None:
            t.start, t.end = s.spans[i]
        if s.entropy is not None:
            t.entropy, t.rank = float(s.entropy[i]), int(s.rank[i])


def padded_batch(seqs: list[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y (T, B) and `real` (not padding), T the longest sequence minus one."""
    T, B = max(len(s) for s in seqs) - 1, len(seqs)
    x = np.full((T, B), pad_id, dtype=np.int64)
    y = np.full((T, B), pad_id, dtype=np.int64)
    real = np.zeros((T, B), dtype=bool)
    for j, s in enumerate(seqs):
        x[: len(s) - 1, j], y[: len(s) - 1, j] = s[:-1], s[1:]
        real[: len(s) - 1, j] = True
    return x, y, real


def _batch_logprobs(model, seqs: list[np.ndarray], pad_id: int, seq_len: int) -> np.ndarray:
    """ln p of each next token of each sequence, (T, B) with T the longest minus one; the
    sequences are padded (padding skips the decoder) and read in windows, hidden carried."""
    return _batch_scores(model, seqs, pad_id, seq_len)[0]


def _batch_scores(model, seqs: list[np.ndarray], pad_id: int, seq_len: int, detail: bool = False
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """_batch_logprobs' (T, B) log-probabilities; with detail also the entropy and rank at each
    position (else None, None), from the full rows of a window at a time, the window shortened
    to hold DETAIL_ELEMENTS floats."""
    x, y, real = padded_batch(seqs, pad_id)
    (T, B), K = x.shape, model.config.vocab_size
    if detail:
        seq_len = max(1, min(seq_len, DETAIL_ELEMENTS // (B * K)))
    hidden = model.init_hidden(B)
    logp = np.empty((T, B))
    entropy, rank = (np.empty((T, B)), np.empty((T, B), dtype=np.int64)) if detail else (None, None)
    for t0 in range(0, T, seq_len):
        w = slice(t0, t0 + seq_len)
        if detail:
            entropy[w], rank[w] = _entropy_rank(model, x[w], y[w], hidden)
        logp[w], hidden = model.token_logprobs(x[w], y[w], hidden, mask=real[w])
    return logp, entropy, rank


def _entropy_rank(model, x: np.ndarray, y: np.ndarray, hidden) -> tuple[np.ndarray, np.ndarray]:
    """Entropy (nats) and rank (1 = most likely, ties by smaller id) of y in the predictive
    distribution at each position of a window, from the model's full rows: log_softmax of
    forward's logits (the adaptive softmax's are log-probabilities already: unchanged by it)."""
    logits = model.forward(x, hidden=hidden)[0].astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    logq = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    entropy = -(np.exp(logq) * logq).sum(axis=-1)
    own = np.take_along_axis(logq, y[..., None], axis=-1)
    ids = np.arange(logq.shape[-1])
    rank = 1 + (logq > own).sum(axis=-1) + ((logq == own) & (ids < y[..., None])).sum(axis=-1)
    return entropy, rank


def _batches(chunk: list[PreparedSentence], batch_size: int) -> list[list[PreparedSentence]]:
    """The chunk's sentences with something to predict, sorted by length, in batches."""
    order = sorted((s for s in chunk if len(s.seq) >= 2), key=lambda s: len(s.seq))
    return [order[b0:b0 + batch_size] for b0 in range(0, len(order), batch_size)]


def _check_options(oov: str, batch_size: int, seq_len: int, chunk_sentences: int) -> None:
    if oov not in ("unk", "skip"):
        raise ConfigError(f"--oov must be unk or skip, got {oov!r}")
    if batch_size < 1 or seq_len < 1:
        raise ConfigError("--batch-size must be >= 1")
    if chunk_sentences < 1:
        raise ConfigError(f"chunk_sentences must be >= 1, got {chunk_sentences!r}")


def score_stream(model, vocab, tokenizer, lines: Iterable[str], *, bos: bool = True, eos: bool = True,
                 oov: str = "unk", batch_size: int = 64, seq_len: int = 256,
                 chunk_sentences: int = CHUNK_SENTENCES, per_token: bool = False, detail: bool = False,
                 progress: Callable[[int], None] | None = None) -> Iterator[SentenceScore]:
    """Score each line, yielding results in input order as each chunk of `chunk_sentences`
    lines is done; hidden carried across windows of seq_len so any length works. At most a
    few chunks are held at a time (one when the engine runs batches one by one).
    `progress(n)` is called as n more sentences are done. Options are checked now, the input
    is read only as the results are asked for. `per_token`: each result's `tokens`, with their
    character spans; `detail` (implies per_token): also each token's entropy and rank."""
    _check_options(oov, batch_size, seq_len, chunk_sentences)
    per_token = per_token or detail

    def chunk_of(texts: list[str]) -> list[PreparedSentence]:
        return [prepare_sentence(t, vocab, tokenizer, bos, eos, oov, per_token) for t in texts]

    chunks = (chunk_of(texts) for texts in _take(lines, chunk_sentences))
    return _stream(model, vocab.eos_id, seq_len, chunks, batch_size, (per_token, detail), progress)


def _take(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(lines)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _stream(model, pad_id: int, seq_len: int, chunks: Iterator[list[PreparedSentence]], batch_size: int,
            wanted: tuple[bool, bool], progress: Callable[[int], None] | None) -> Iterator[SentenceScore]:
    """One pass of map_batches over every chunk's batches, each chunk followed by an empty
    batch that marks its end (its results are yielded then): the workers keep busy across
    chunk boundaries. `wanted`: (per_token, detail)."""
    per_token, detail = wanted
    jobs = ((chunk, rows) for chunk in chunks for rows in [*_batches(chunk, batch_size), []])

    def score(job: tuple[list[PreparedSentence], list[PreparedSentence]]) -> tuple[list[PreparedSentence], list[PreparedSentence], tuple | None]:
        chunk, rows = job
        return chunk, rows, _batch_scores(model, [s.seq for s in rows], pad_id, seq_len, detail) if rows else None

    done = progress or (lambda n: None)
    for chunk, rows, out in map_batches(model, score, jobs):
        for j, s in enumerate(rows):
            s.logp, s.entropy, s.rank = (None if a is None else a[:, j] for a in out)
        if rows:
            done(len(rows))
            continue
        nothing = sum(len(s.seq) < 2 for s in chunk)  # nothing to predict: done already
        if nothing:
            done(nothing)
        for s in chunk:
            yield finish_sentence(s, per_token)


def score_sentences(model, vocab, tokenizer, sentences: Iterable[str], *, bos: bool = True, eos: bool = True,
                    oov: str = "unk", batch_size: int = 64, seq_len: int = 256, per_token: bool = True,
                    detail: bool = False, progress: Callable[[int], None] | None = None) -> list[SentenceScore]:
    """score_stream over a list as one chunk (batches formed from all of it), as a list in
    input order; with per-token scores unless `per_token=False`."""
    sentences = list(sentences)
    return list(score_stream(model, vocab, tokenizer, sentences, bos=bos, eos=eos, oov=oov, batch_size=batch_size,
                             seq_len=seq_len, chunk_sentences=max(1, len(sentences)), per_token=per_token,
                             detail=detail, progress=progress))


@dataclass
class Summary:
    """Corpus totals with SRILM's definitions (ngram -ppl), added up one sentence at a time."""

    sentences: int = 0
    words: int = 0  # tokens other than </s>
    oovs: int = 0  # words left out (oov="skip"); under "unk" an unknown word is a word (SRILM's -unk)
    logprob: float = 0.0  # natural log, scored tokens only
    scored_words: int = 0  # words whose probability is counted
    scored_eos: int = 0  # </s> predictions counted

    def add(self, s: SentenceScore) -> SentenceScore:
        """Count one sentence in; returns it, so `map(summary.add, stream)` passes results on."""
        self.sentences += 1
        self.words += s.num_words
        self.oovs += s.num_skipped
        self.logprob += s.logprob
        self.scored_words += s.num_scored - s.scored_eos
        self.scored_eos += s.scored_eos
        return s

    @classmethod
    def of(cls, scores: Iterable[SentenceScore]) -> Summary:
        summ = cls()
        for s in scores:
            summ.add(s)
        return summ

    @property
    def ppl(self) -> float:
        """exp of the mean negative log-probability over scored words and </s> (SRILM's ppl)."""
        n = self.scored_words + self.scored_eos
        return math.exp(-self.logprob / n) if n else float("nan")

    @property
    def ppl1(self) -> float:
        """The same over scored words only, </s> excluded from the count (SRILM's ppl1)."""
        return math.exp(-self.logprob / self.scored_words) if self.scored_words else float("nan")
