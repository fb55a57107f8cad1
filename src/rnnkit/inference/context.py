"""Carried context for n-best rescoring: score an utterance's hypotheses from the hidden state
that the previous utterance's best hypothesis left, within one conversation.

The stream the model reads for one conversation is the training stream's shape (stream
batching: `<s> s1 </s> <s> s2 </s> ...`), with s1, s2 the chosen best hypotheses: the state
carried into an utterance is the one after reading the previous best's `<s> words </s>`,
and each hypothesis of the utterance then reads its own `<s> words` and predicts its words
and `</s>` from there, as `score_sentences` does from a fresh state. Kaldi's PyTorch n-best
rescoring (local/pytorchnn) carries the state of the previous utterance's first hypothesis
across every utterance of the file; rnnkit carries the best one's (after rescoring) and resets
at a new conversation:

- `--utt2conv FILE` (`uttid conversation` per line, as Kaldi's utt2spk: one side of a call is
  a good conversation) maps each id; an id missing from it is an error;
- else the conversation is the id up to its last `--conv-sep` (default `_`: Switchboard's
  `sw02001-A_000098-001156` -> `sw02001-A`); an id without it is a conversation of its own.

Conversations follow the order of the ids in the file: a conversation key that differs from
the previous utterance's starts from a fresh state (one that comes back later starts afresh).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..errors import InputError
from .score import SentenceScore, finish_sentence, padded_batch, prepare_sentence

DEFAULT_CONV_SEP = "_"


def read_utt2conv(lines: Iterable[str], source: str) -> dict[str, str]:
    """{utterance id: conversation} from `uttid conversation` lines (blank lines skipped);
    a line with another number of fields, or an id given twice, is InputError FILE:LINE."""
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise InputError(f"{source}:{n}: expected 'uttid conversation', got {line.strip()[:60]!r}")
        if parts[0] in out:
            raise InputError(f"{source}:{n}: utterance id {parts[0]!r} is given twice")
        out[parts[0]] = parts[1]
    return out


def conversation_rule(utt2conv: dict[str, str] | None = None, sep: str = DEFAULT_CONV_SEP,
                      source: str = "--utt2conv") -> Callable[[str], str]:
    """A function id -> conversation: the map's when given (a missing id: InputError naming
    `source`), else the id up to its last `sep` (the whole id when it has none)."""
    if utt2conv is not None:
        def mapped(uid: str) -> str:
            if uid not in utt2conv:
                raise InputError(f"id {uid!r} has no conversation in {source}")
            return utt2conv[uid]
        return mapped
    if not sep:
        raise InputError("--conv-sep must not be empty")
    return lambda uid: uid.rpartition(sep)[0] or uid


class ContextScorer:
    """Score sentences from a given initial hidden state (one for all of them), and read a
    sentence to get the state it leaves; the engine's hidden, batch size 1, None = fresh."""

    def __init__(self, model, vocab, tokenizer, *, batch_size: int = 64, seq_len: int = 256,
                 per_token: bool = False):
        self.model, self.vocab, self.tokenizer = model, vocab, tokenizer
        self.batch_size, self.seq_len, self.per_token = batch_size, seq_len, per_token

    def score(self, texts: Sequence[str], hidden=None) -> list[SentenceScore]:
        """Each text scored as `score_sentences` does (<s> context, words and </s> predicted),
        its recurrence starting from `hidden`; results in input order."""
        sents = [prepare_sentence(t, self.vocab, self.tokenizer, True, True, "unk", self.per_token) for t in texts]
        order = sorted(range(len(sents)), key=lambda i: len(sents[i].seq))
        for b0 in range(0, len(order), self.batch_size):
            rows = [sents[i] for i in order[b0:b0 + self.batch_size]]
            logp = self._logprobs([s.seq for s in rows], hidden)
            for j, s in enumerate(rows):
                s.logp = logp[:, j]
        return [finish_sentence(s, self.per_token) for s in sents]

    def _logprobs(self, seqs: list[np.ndarray], hidden) -> np.ndarray:
        x, y, real = padded_batch(seqs, self.vocab.eos_id)
        h = None if hidden is None else self.model.reorder_hidden(hidden, np.zeros(x.shape[1], dtype=np.int64))
        logp = np.empty(x.shape)
        for t0 in range(0, x.shape[0], self.seq_len):
            w = slice(t0, t0 + self.seq_len)
            logp[w], h = self.model.token_logprobs(x[w], y[w], h, mask=real[w])
        return logp

    def carry(self, text: str, hidden=None):
        """The hidden state after reading `<s> text </s>` (its tokens as scoring reads them)
        from `hidden`: the context the next utterance starts from."""
        seq = prepare_sentence(text, self.vocab, self.tokenizer, True, True, "unk").seq
        x = seq.reshape(-1, 1)
        skip = np.zeros(x.shape, dtype=bool)  # the recurrence only: no output layer
        h = hidden
        for t0 in range(0, len(x), self.seq_len):
            w = slice(t0, t0 + self.seq_len)
            _, h = self.model.token_logprobs(x[w], x[w], h, mask=skip[w])
        return h
