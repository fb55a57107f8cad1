"""A step API for decoders: KenLM's state-in, state-out scoring with an RNN language model.

A decoder (beam search over a lattice, a speech or translation search) keeps many partial
hypotheses and extends each by one word at a time. `Stepper` gives it KenLM's shape:

    KenLM (kenlm.Model m)                         rnnkit (Stepper s = LanguageModel.stepper())
    m.BeginSentenceWrite(state)                   st = s.begin()            # after <s>
    m.NullContextWrite(state)                     st = s.begin(bos=False)   # no context yet
    m.BaseScore(state, word, out) -> log10 p      out, lp = s.score([st], [word])     # ln p, batched
    m.BaseScore(state, "</s>", out)               lp = s.end([st])                     # ln p(</s>)
    State: copy, ==, hash (recombination)         LMState: copy(), ==, hash

Differences: log-probabilities are natural logs (divide by ln 10 for KenLM's numbers); every
call takes a batch of B states and runs ONE recurrent step for all of them (the hidden states
stacked, the model stepped, the result split back); and `advance(states, tokens)` also returns
the whole next-token distribution ln p(. | history + token) (B, K), the row a beam search
chooses its candidates from. An RNN has no unigram distribution: after `begin(bos=False)` the
first word is context, not predicted, so its log-probability is 0.0 (as `score_sentences` with
bos=False does not score it), and `logprobs` of that empty state is an error.

An `LMState` holds, for one sequence, the engine's hidden after its whole history as one
read-only numpy array (L, S, H) (S = 2 for the LSTM's (h, c), else 1; torch tensors are
converted at the boundary, as `reorder_hidden` accepts numpy), and the next-token
log-probabilities (K,) computed by the same step (a read-only row shared with its batch), so
`score` and `end` need no extra model call. States never change: advancing returns new ones.
Two states are equal when they come from the same stepper, both have or both lack a context,
and their hidden arrays are equal bit for bit; equal states predict the same future, which is
what a decoder recombines on. The history length and last token ride along, outside equality.
Bit-for-bit equality holds for the same tokens stepped in batches of the same size; a batch of
another size may round the last bits differently (BLAS sums in another order), so a decoder
that recombines across batch sizes compares `hidden` with a tolerance instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError


def _numpy(a) -> np.ndarray:
    """A numpy array or a torch tensor (any device) -> numpy."""
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class LMState:
    """One sequence's position: hidden (L, S, H), next-token ln p (K,) or None, length, last id."""

    __slots__ = ("_hash", "_owner", "hidden", "last", "length", "logp")

    def __init__(self, owner: Stepper, hidden: np.ndarray, logp: np.ndarray | None, length: int,
                 last: int | None):
        self._owner = owner
        self.hidden = hidden  # (L, S, H), read-only
        self.logp = logp  # (K,) float64 read-only, None before any token (begin(bos=False))
        self.length = length  # tokens read, <s> included
        self.last = last  # the last token read (id), None before any
        self._hash = None

    @property
    def has_context(self) -> bool:
        return self.logp is not None

    def copy(self) -> LMState:
        """An equal, independent state (its own hidden array; the read-only logp row shared)."""
        return LMState(self._owner, _frozen(self.hidden.copy()), self.logp, self.length, self.last)

    def __eq__(self, other) -> bool:
        if not isinstance(other, LMState):
            return NotImplemented
        return (self._owner is other._owner and self.has_context == other.has_context
                and np.array_equal(self.hidden, other.hidden))

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((id(self._owner), self.has_context, self.hidden.tobytes()))
        return self._hash

    def __repr__(self) -> str:
        return f"LMState(length={self.length}, last={self.last})"


class Stepper:
    """Batched one-token steps of an engine model over a vocabulary (module docstring)."""

    def __init__(self, model, vocab):
        self.model = model
        self.vocab = vocab
        zero = self._to_array(model.init_hidden(1))[0]  # (L, S, H) in the engine's dtype
        self._empty = LMState(self, _frozen(zero), None, 0, None)
        self._bos: LMState | None = None

    # ------------------------------------------------------------ tokens
    def id(self, token: str | int) -> int:
        """A token's id: a string through the vocabulary (unknown -> <unk>), an int checked."""
        if isinstance(token, str):
            return self.vocab.encode([token])[0]
        i = int(token)
        if not 0 <= i < len(self.vocab):
            raise ConfigError(f"token id {i} is outside 0..{len(self.vocab) - 1}")
        return i

    def ids(self, tokens: Sequence, n: int) -> np.ndarray:
        """(n,) int64 ids of n tokens (strings or ids), one per state."""
        if len(tokens) != n:
            raise ConfigError(f"got {len(tokens)} tokens for {n} states: give one token per state")
        return np.array([self.id(t) for t in tokens], dtype=np.int64)

    # ------------------------------------------------------------ states
    def begin(self, bos: bool = True) -> LMState:
        """The state after `<s>` (KenLM's BeginSentenceWrite), or with bos=False the empty
        context (NullContextWrite: the first word is context, scored 0.0)."""
        if not bos:
            return self._empty
        if self._bos is None:
            self._bos = self._step([self._empty], np.array([self.vocab.bos_id]))[0][0]
        return self._bos

    def advance(self, states: Sequence[LMState], tokens: Sequence, targets: Sequence | None = None
                ) -> tuple[list[LMState], np.ndarray]:
        """Read one token per state (one batched step). Returns the new states and their
        next-token log-probabilities: (B, K) read-only, or (B, len(targets)) for those tokens."""
        new, logp = self._step(states, self.ids(tokens, len(states)))  # logp (B, K)
        if targets is None:
            return new, logp
        return new, logp[:, [self.id(t) for t in targets]]

    def score(self, states: Sequence[LMState], tokens: Sequence) -> tuple[list[LMState], np.ndarray]:
        """KenLM's BaseScore for a batch: (new states, ln p(token | state) (B,) float64)."""
        ids = self.ids(tokens, len(states))
        lp = self._token_logprobs(states, ids)  # before the step: the states' own rows
        return self._step(states, ids)[0], lp

    def end(self, states: Sequence[LMState]) -> np.ndarray:
        """ln p(</s> | state) (B,): the sentence's last term; no model step (0.0 for an empty state)."""
        return self._token_logprobs(states, np.full(len(states), self.vocab.eos_id, dtype=np.int64))

    def logprobs(self, states: Sequence[LMState]) -> np.ndarray:
        """The states' next-token log-probabilities (B, K), without a step."""
        if any(not s.has_context for s in states):
            raise ConfigError("logprobs: a state from begin(bos=False) predicts nothing; advance it by its first word")
        return np.stack([s.logp for s in states])

    # ------------------------------------------------------------ the step
    def _token_logprobs(self, states: Sequence[LMState], ids: np.ndarray) -> np.ndarray:
        """(B,) ln p(ids[b] | states[b]); 0.0 where a state has no context yet."""
        return np.array([s.logp[i] if s.has_context else 0.0 for s, i in zip(states, ids)], dtype=np.float64)

    def _step(self, states: Sequence[LMState], ids: np.ndarray) -> tuple[list[LMState], np.ndarray]:
        """One recurrent step of the whole batch: stack, step, split back into states; also
        the batch's next-token log-probabilities (B, K), read-only (the states' rows)."""
        if not states:
            return [], np.zeros((0, len(self.vocab)))
        for s in states:
            if s._owner is not self:
                raise ConfigError("advance: a state from another stepper (another model)")
        hidden = self._to_hidden(np.stack([s.hidden for s in states]))  # (B, L, S, H) -> engine's
        logp, hidden = self.model.step_logprobs(ids, hidden)  # (B, K) float64
        logp = _frozen(np.asarray(logp, dtype=np.float64))
        H = _frozen(self._to_array(hidden))  # (B, L, S, H)
        new = [LMState(self, H[b], logp[b], s.length + 1, int(i)) for b, (s, i) in enumerate(zip(states, ids))]
        return new, logp

    def _to_hidden(self, X: np.ndarray) -> list:
        """(B, L, S, H) -> the engine's hidden: per layer (B, H), or an (h, c) pair."""
        if X.shape[2] == 2:
            return [(X[:, n, 0], X[:, n, 1]) for n in range(X.shape[1])]
        return [X[:, n, 0] for n in range(X.shape[1])]

    @staticmethod
    def _to_array(hidden: list) -> np.ndarray:
        """The engine's hidden (numpy or torch, per layer a (B, H) or an (h, c) pair) -> (B, L, S, H)."""
        layers = [tuple(s) if isinstance(s, tuple | list) else (s,) for s in hidden]
        return np.stack([np.stack([_numpy(a) for a in parts], axis=1) for parts in layers], axis=1)
