"""The two batching modes of training behind one small interface: batches in, updates made.

- stream: the corpus as one long sequence cut into B columns, read in windows of seq_len; the
  hidden state is carried from window to window and reset at the start of each epoch (PTB /
  char-rnn style). Each window is gathered from the memory-mapped id file on its own;
- sentences: padded batches of whole sentences, shuffled per epoch from the seed (by the
  lengths the offsets give) and cut into windows of seq_len; the hidden state starts at zero
  for every batch (the tutorial's style).

A feed yields the run's batches from where it stands (`batches(epoch, batch)`) and makes one
update from each (`step`). Under torchrun every process reads its own part of each batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from ..config import TrainConfig
from ..data import StreamBatcher, sentence_batches
from .corpus import Corpus

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # x, y, mask: time-major (T, B)


class Feed:
    """What the two modes share: the epoch after epoch order, and counting tokens over processes."""

    steps_per_epoch: int
    hidden = None  # the hidden state carried into the next batch (stream mode only)

    def __init__(self, cfg: TrainConfig, model, world: int):
        self.cfg, self.model, self.world = cfg, model, world

    def batches(self, epoch: int, batch: int) -> Iterator[Batch]:
        """The batches from number `batch` of epoch `epoch` on, one epoch after another."""
        for e in itertools.count(epoch):
            yield from self.epoch(e, batch if e == epoch else 0)

    def epoch(self, epoch: int, start: int) -> Iterator[Batch]:
        raise NotImplementedError

    def step(self, trainer, batch: Batch) -> tuple[float, int, int]:
        """One update; returns (nats, targets) of this process and the targets of all processes."""
        raise NotImplementedError

    def _all_tokens(self, trainer, count: int) -> int:
        return getattr(trainer, "global_tokens", count) if self.world > 1 else count


class StreamFeed(Feed):
    def __init__(self, cfg: TrainConfig, data: Corpus, model, rank: int, world: int, hidden=None):
        super().__init__(cfg, model, world)
        self.batcher = StreamBatcher(data.train_ids, cfg.batch_size, cfg.seq_len, rank=rank, world_size=world)
        self.steps_per_epoch = len(self.batcher)
        self.hidden = hidden

    def epoch(self, epoch: int, start: int) -> Iterator[Batch]:
        if start == 0 or self.hidden is None:
            self.hidden = self.model.init_hidden(self.cfg.batch_size)
        yield from self.batcher.windows(start=start)

    def step(self, trainer, batch: Batch) -> tuple[float, int, int]:
        nats, count, self.hidden = trainer.step(*batch, self.hidden)
        return nats, count, self._all_tokens(trainer, count)


class SentenceFeed(Feed):
    def __init__(self, cfg: TrainConfig, data: Corpus, model, rank: int, world: int):
        super().__init__(cfg, model, world)
        self.data, self.rank = data, rank
        self.steps_per_epoch = -(-len(data.train) // (cfg.batch_size * world))

    def epoch(self, epoch: int, start: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.cfg.seed, epoch])
        batches = sentence_batches(self.data.train, self.data.vocab, self.cfg.batch_size * self.world, rng=rng)
        yield from itertools.islice(batches, start, None)

    def step(self, trainer, batch: Batch) -> tuple[float, int, int]:
        """This process's rows of the batch, cut into seq_len windows with the hidden state
        carried between them (and reset for the next batch)."""
        x, y, mask = batch
        if self.world > 1:
            rows = np.array_split(np.arange(x.shape[1]), self.world)[self.rank]
            x, y, mask = x[:, rows], y[:, rows], mask[:, rows]
        hidden, nats, count, tokens = self.model.init_hidden(x.shape[1]), 0.0, 0, 0
        for t0 in range(0, x.shape[0], self.cfg.seq_len):
            t = slice(t0, t0 + self.cfg.seq_len)
            if not mask[t].any():
                continue
            n, c, hidden = trainer.step(x[t], y[t], mask[t], hidden)
            nats, count, tokens = nats + n, count + c, tokens + self._all_tokens(trainer, c)
        return nats, count, tokens


def make_feed(cfg: TrainConfig, data: Corpus, model, rank: int = 0, world: int = 1, hidden=None) -> Feed:
    """The feed of cfg.batching; `hidden`: a resumed run's carried hidden state (stream mode)."""
    if cfg.batching == "stream":
        return StreamFeed(cfg, data, model, rank, world, hidden)
    return SentenceFeed(cfg, data, model, rank, world)
