"""The model work of `/v1/score`, one request alone (`score_job`) or micro-batched (`ScoreBatcher`).

A batcher per model queues score requests; one worker thread at a time drains the queue:
when a request comes it waits the window (`--batch-window-ms`; 0: none), takes the model's
lock, then takes the queued requests whose model options match the first one's
(`ScoreOptions`: bos, eos, oov, per_token; the log base is applied per request afterwards) up
to BATCH_MAX_SENTENCES sentences, scores all their sentences in ONE
`LanguageModel.score_sentences` call, splits the results back, and loops while requests are
queued. So requests that come while the model is busy (a batch, a generation) go together in
the next call. An idle worker waits LINGER_S for the next request, then stops.

Each request keeps its own limits (checked before it is queued), its own time limit (its
wait for the future; a request that has given up, on time or because its client went away,
is left out of the batches not yet started) and its own errors: when the batched call fails,
each request of the batch is scored alone, so only a request that fails alone gets an error.
The numbers are those of `score_sentences` over the batch, equal to scoring each request
alone up to float32 rounding (BLAS sums in an order that depends on the batch's shape).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inference.predict import top_k as _top_k
from ..inference.score import SentenceScore, prepare_sentence

BATCH_MAX_SENTENCES = 64  # sentences in one batched call at most: score_sentences' batch size, past
# which it splits the call into batches anyway (merging more saves nothing; measured); a larger request goes alone
LINGER_S = 1.0  # an idle worker waits this long for the next request before it stops
DEFAULT_WINDOW_MS = 0.0  # rnnkit serve --batch-window-ms: batch what queues while the model is busy, no wait

Alternatives = list[list[tuple[str, float]]]  # per predicted token: the k most likely (token, ln p)
ScoreResult = tuple[list[SentenceScore], list[Alternatives] | None]


@dataclass(frozen=True)
class ScoreOptions:
    """What a score call depends on: requests with equal options can share a call."""

    bos: bool = True
    eos: bool = True
    oov: str = "unk"
    per_token: bool = False


@dataclass
class ScoreJob:
    """One request's sentences, options and alternatives (k per token, 0: none), and the
    future its result (or its error) is delivered to."""

    sentences: list[str]
    options: ScoreOptions
    alternatives: int = 0
    future: Future = field(default_factory=Future)


def _scores(lm: Any, sentences: list[str], o: ScoreOptions) -> list[SentenceScore]:
    return lm.score_sentences(sentences, bos=o.bos, eos=o.eos, oov=o.oov, per_token=o.per_token,
                              detail=o.per_token)


def alternatives(lm: Any, text: str, o: ScoreOptions, k: int) -> Alternatives:
    """The k most likely (token, ln p) where each predicted token of `text` is predicted (its
    prefix as the model reads it, one recurrent step per token), in token_scores' order."""
    seq = prepare_sentence(text, lm.vocab, lm.tokenizer, o.bos, o.eos, o.oov).seq
    if len(seq) < 2:
        return []
    hidden, rows = lm.model.init_hidden(1), []
    for tok in seq[:-1]:
        logp, hidden = lm.model.step_logprobs(np.array([tok], dtype=np.int64), hidden)
        rows.append(np.asarray(logp, dtype=np.float64)[0])
    ids, lps = _top_k(np.stack(rows), k)
    return [list(zip(lm.vocab.decode(i.tolist()), lp.tolist())) for i, lp in zip(ids, lps)]


def _finish(lm: Any, job: ScoreJob, scores: list[SentenceScore]) -> ScoreResult:
    k = job.alternatives if job.options.per_token else 0
    return scores, [alternatives(lm, t, job.options, k) for t in job.sentences] if k else None


def score_job(lm: Any, job: ScoreJob) -> ScoreResult:
    """One request alone (the caller holds the model's lock)."""
    return _finish(lm, job, _scores(lm, job.sentences, job.options))


def _outcome(fn: Callable[[], ScoreResult]) -> ScoreResult | Exception:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - this request's error, delivered to it alone
        return e


def score_batch(lm: Any, jobs: list[ScoreJob]) -> list[ScoreResult | Exception]:
    """Each job's result or error, from one score call over all their sentences (all jobs have
    the same options); when that call fails, from each job scored alone."""
    if len(jobs) == 1:
        return [_outcome(lambda: score_job(lm, jobs[0]))]
    try:
        scores = _scores(lm, [s for job in jobs for s in job.sentences], jobs[0].options)
    except Exception:  # noqa: BLE001 - whatever failed, each request alone gets its own answer
        return [_outcome(lambda job=job: score_job(lm, job)) for job in jobs]
    out, i = [], 0
    for job in jobs:
        mine, i = scores[i:i + len(job.sentences)], i + len(job.sentences)
        out.append(_outcome(lambda job=job, mine=mine: _finish(lm, job, mine)))
    return out


class ScoreBatcher:
    """A queue of ScoreJobs for one model (`lock`: the model's), drained by one worker thread
    at a time; `sizes` counts the batches run by their number of requests."""

    def __init__(self, lm: Any, lock: threading.Lock, window_s: float, max_sentences: int = BATCH_MAX_SENTENCES):
        self.lm, self.lock, self.window_s, self.max_sentences = lm, lock, window_s, max_sentences
        self.pending: deque[ScoreJob] = deque()
        self.running = False
        self.sizes: Counter[int] = Counter()
        self._ready = threading.Condition()

    async def score(self, job: ScoreJob, deadline: float, too_slow: Callable[[], Exception]) -> ScoreResult:
        """The job's result, once a batch has scored it; too_slow() raised past `deadline`."""
        self.submit(job)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job.future), max(deadline - time.monotonic(), 0))
        except TimeoutError:  # the future is cancelled: a batch not yet started leaves the job out
            raise too_slow() from None

    def submit(self, job: ScoreJob) -> None:
        """Queue the job; start a worker unless one is running (draining, or waiting for more)."""
        with self._ready:
            self.pending.append(job)
            self._ready.notify()
            if self.running:
                return
            self.running = True
        threading.Thread(target=self._work, name="rnnkit-score-batcher", daemon=True).start()

    def queued(self) -> int:
        with self._ready:
            return len(self.pending)

    def _take(self) -> list[ScoreJob]:
        """The next batch: the first live job and the queued ones with its options, up to
        max_sentences in all (none when nothing live is queued)."""
        with self._ready:
            jobs: list[ScoreJob] = []
            rest: deque[ScoreJob] = deque()
            n = 0
            while self.pending:
                job = self.pending.popleft()
                if jobs and (job.options != jobs[0].options or n + len(job.sentences) > self.max_sentences):
                    rest.append(job)
                elif job.future.set_running_or_notify_cancel():  # False: its request has gone
                    jobs.append(job)
                    n += len(job.sentences)
            self.pending = rest
            return jobs

    def _wait(self) -> bool:
        """True when a job is queued, waiting up to LINGER_S for one; else the worker stops."""
        with self._ready:
            if not self.pending:
                self._ready.wait(LINGER_S)
            self.running = bool(self.pending)
            return self.running

    def _work(self) -> None:
        """The worker: while jobs come, wait the window, then run batches until none is queued."""
        try:
            while self._wait():
                if self.window_s > 0:
                    time.sleep(self.window_s)  # let the requests of the window come
                while self._run_batch():
                    pass
        except BaseException:
            with self._ready:
                self.running = False
            raise

    def _run_batch(self) -> list[ScoreJob]:
        """Take a batch under the model's lock, score it, deliver each result or error."""
        with self.lock:
            jobs = self._take()
            if not jobs:
                return jobs
            self.sizes[len(jobs)] += 1
            results = score_batch(self.lm, jobs)
        for job, result in zip(jobs, results):
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        return jobs
