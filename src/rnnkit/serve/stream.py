"""Generation one token at a time, for `/v1/generate` with `"stream": true`.

`LanguageModel.generate` returns whole texts; a stream needs each token as it is drawn. This
is `inference.generate.continue_from` for one sample (sampling or greedy), written as a
generator over the same pieces (`prime`, `filter_logprobs`, `sample`, the banned ids) and the
same seeded numpy Generator, so the texts streamed add up to the text `lm.generate` gives for
the same seed. Each step is a callable the caller runs where it likes (routes_generate.py: in
a worker thread, holding the model's lock), and the texts are built as `api.generate` builds
them, incrementally: each step detokenizes only its token and tests the stop strings only
against the end of the text that can hold one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..config import SampleConfig
from ..errors import ConfigError
from ..inference.generate import StopStrings, _banned, filter_logprobs, prime, sample
from ..text import EOS
from ..text.tokenize import joiner


@dataclass
class Piece:
    """One event's worth: the new token (None for the prompt) and the text it adds."""

    token: str | None
    text: str


@dataclass
class TokenStream:
    """The state of one streamed generation: call `step()` until it returns None.

    The text grows by what each token appends (text.tokenize.joiner: only the new token is
    detokenized), and the stop strings are tested as generate tests them (`StopStrings`, on
    the generated text's end only): a constant cost per token, not the whole text's."""

    lm: object
    prompt: str
    cfg: SampleConfig
    out: list[int] = field(default_factory=list)
    _pieces: list[str] = field(default_factory=list)
    _started: bool = False
    _t: int = 0
    _done: bool = False

    def __post_init__(self) -> None:
        self.cfg.validate()
        if self.cfg.beam > 0 or self.cfg.num_samples != 1:
            raise ConfigError("stream: streaming is for one sample (num_samples 1) without beam search")
        lm = self.lm
        self.char = lm.tokenizer_config.level == "char"
        self.ids = lm.prompt_ids(self.prompt)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.hidden = self.cur = None
        self._shown = joiner(lm.tokenizer)  # the text: the prompt's tokens then the new ones
        self._stops = StopStrings(lm.tokenizer, self.cfg.stop)  # on the new tokens alone, as generate's

    def text(self) -> str:
        """The whole text so far, as api.generate returns it."""
        return "".join(self._pieces)

    def _prompt_text(self) -> str:
        """The prompt as the text shows it: a character model's as given, a word model's its
        tokens detokenized (as api.generate)."""
        if self.char:
            return self.prompt
        return "".join(self._shown.add(tok) for tok in self.lm.tokenizer.tokenize(self.prompt)) if self.prompt else ""

    def _add(self, token: str) -> tuple[Piece, bool]:
        """The piece a new token adds, and whether the generated text now ends with a stop string."""
        shown = "\n" if self.char and token == EOS else token
        text = self._shown.add(shown)
        self._pieces.append(text)
        return Piece(token, text), bool(self.cfg.stop) and self._stops.add(shown)

    def step(self) -> Piece | None:
        """The next piece: first the prompt as the text will show it (when there is one), then a
        token per call; None when generation has ended."""
        if self._done:
            return None
        lm, cfg, vocab = self.lm, self.cfg, self.lm.vocab
        if not self._started:
            self._started = True
            self.hidden, self.cur = prime(lm.model, [vocab.bos_id] + self.ids, 1)
            if prompt := self._prompt_text():
                self._pieces.append(prompt)
                return Piece(None, prompt)
        if self._t >= cfg.max_len:
            self._done = True
            return None
        logp, self.hidden = lm.model.step_logprobs(self.cur, self.hidden)
        z = filter_logprobs(logp, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                            banned=_banned(vocab, logp.shape[1], allow_eos=self._t >= cfg.min_len))
        nxt = z.argmax(axis=1) if cfg.greedy else sample(z, self.rng)
        self._t += 1
        if nxt[0] == vocab.eos_id and not self.char:
            self._done = True
            return None
        self.out.append(int(nxt[0]))
        piece, stopped = self._add(vocab.decode([int(nxt[0])])[0])
        if stopped:
            self._done = True
            return piece
        self.cur = nxt
        if self.char and self.cur[0] == vocab.eos_id:  # a line break: feed </s>, then <s>
            _, self.hidden = lm.model.step_logprobs(self.cur, self.hidden)
            self.cur = np.array([vocab.bos_id], dtype=np.int64)
        return piece

    def __iter__(self) -> Iterator[Piece]:
        while (piece := self.step()) is not None:
            yield piece
