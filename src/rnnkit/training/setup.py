"""Setting a run up: everything the training loop needs, new or resumed, before its first step.

A new run builds its vocabulary, a model from the seed, a fresh optimizer and schedule and an
empty progress; a resumed one takes all of these from its resume point in trainer_state/, and
the result of the model saved in MODEL_DIR from that model's config.json. Nothing is written
before all of this has worked: then the run starts writing (`RunDir.begin`: MODEL_DIR, or the
staging directory of an --overwrite run, swapped in at its first resume point).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ModelConfig, TokenizerConfig, TrainConfig
from ..engines import build_model, get_engine
from ..inference.evaluate import EvalResult
from ..text import Vocab
from .corpus import Corpus, prepare_corpus
from .feed import Feed, make_feed
from .metrics import FILENAME as METRICS_FILE
from .metrics import Metrics
from .progress import Progress
from .resume import ResumePoint, save_resume_point
from .rundir import RunDir
from .schedule import Schedule


@dataclass
class Run:
    """One training run, set up: its options, data, model, optimizer, schedule and progress."""

    out: Path
    cfg: TrainConfig
    tok_cfg: TokenizerConfig
    data: Corpus
    model: Any  # the engine's RNNLM
    trainer: Any  # the engine's Trainer
    feed: Feed
    schedule: Schedule
    progress: Progress
    metrics: Metrics
    saved: EvalResult | None  # the validation result of the model in MODEL_DIR (None: none yet)
    say: Callable[[str], None]
    clock: Callable[[], float]
    main: bool = True  # the process that writes files and reports (rank 0)
    started: float = 0.0  # the clock's reading when the run (counting its earlier parts) began
    rundir: RunDir | None = None  # MODEL_DIR decided on (and locked); holds an --overwrite run's staging
    data_identity: dict | None = None  # what the run trains on, recorded in its resume points

    def seconds(self) -> float:
        """The run's time so far, earlier parts of a resumed run included."""
        return self.clock() - self.started

    def save_resume_point(self) -> None:
        if self.main:
            self.progress.seconds = self.seconds()
            point = ResumePoint(self.model.config, self.data.vocab, self.model.state_dict(),
                                self.trainer.state_dict(), self.feed.hidden, self.progress, self.schedule)
            save_resume_point(self.out, point, self.cfg, self.tok_cfg, self.data_identity)
            if self.rundir is not None and self.rundir.staging is not None:  # --overwrite: now replace
                self.out = self.rundir.swap_in()
                self.metrics.path = self.out / METRICS_FILE


def build_run(corpus: str, rundir: RunDir, valid: str | None, model_options: dict, tok_cfg: TokenizerConfig,
              cfg: TrainConfig, *, point: ResumePoint | None, data_identity: dict | None,
              say: Callable[[str], None], clock: Callable[[], float], rank: int = 0, world: int = 1,
              device: str = "cpu") -> Run:
    """Read the corpus and make the model, optimizer, feed, schedule and progress of a run: new,
    or from its resume point `point`; then (every check passed) start writing in `rundir`."""
    data = _prepare(corpus, valid, tok_cfg, cfg, point.vocab if point else None, world)
    model_cfg = point.model_cfg if point else ModelConfig(vocab_size=len(data.vocab), **model_options)
    model_cfg.validate("model options")
    model = build_model(cfg.engine, model_cfg, point.params if point else None, seed=cfg.seed, device=device,
                        train=cfg)
    trainer = get_engine(cfg.engine).Trainer(model, cfg)
    if point:
        trainer.load_state_dict(point.optimizer)
    say(_summary(data, model, cfg, world))
    feed = make_feed(cfg, data, model, rank, world, hidden=point.hidden if point else None)
    progress = point.progress if point else Progress()
    out = rundir.begin() if rank == 0 else rundir.path  # the first write is the metrics file's
    metrics = Metrics(out, feed.steps_per_epoch, resumed_at=progress.step if point else None, write=rank == 0)
    run = Run(out, cfg, tok_cfg, data, model, trainer, feed, _schedule(cfg, feed, world, point), progress,
              metrics, saved=_saved_result(out) if point else None, say=say, clock=clock, main=rank == 0,
              rundir=rundir, data_identity=data_identity)
    run.started = clock() - progress.seconds
    return run


def _prepare(corpus: str, valid: str | None, tok_cfg: TokenizerConfig, cfg: TrainConfig, vocab: Vocab | None,
             world: int) -> Corpus:
    """prepare_corpus; under torchrun rank 0 first (it writes the id files into the cache), then
    the other ranks (they map the same files)."""
    if world == 1:
        return prepare_corpus(corpus, valid, tok_cfg, cfg, vocab=vocab)
    from ..torch_engine.distributed import main_first

    with main_first():
        return prepare_corpus(corpus, valid, tok_cfg, cfg, vocab=vocab)


def _schedule(cfg: TrainConfig, feed: Feed, world: int, point: ResumePoint | None) -> Schedule:
    """The resumed schedule (its lr decisions so far), or a new one; planned over the steps of
    this run's options either way: max_steps / epochs may change on --resume (else cosine
    would sit at lr 0 from the end planned by a run stopped by --max-steps)."""
    total_steps = cfg.max_steps or feed.steps_per_epoch * cfg.epochs
    schedule = point.schedule if point else Schedule.from_config(cfg, total_steps, world)
    schedule.total_steps = max(1, total_steps)
    return schedule


def _saved_result(out: Path) -> EvalResult | None:
    """The validation result written into MODEL_DIR/config.json with the model saved there."""
    path = Path(out) / "config.json"
    try:
        extra = json.loads(path.read_text(encoding="utf-8")).get("extra", {})
        return EvalResult(extra["valid_loss"] * extra["valid_tokens"], extra["valid_tokens"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no model saved yet (or not readable: the next evaluation replaces it)


def _summary(data: Corpus, model, cfg: TrainConfig, world: int) -> str:
    mcfg = model.config
    return (f"corpus: {len(data.train):,} sentences, {len(data.train_ids):,} tokens; validation: "
            f"{len(data.valid):,} sentences ({data.valid_source}); vocabulary {len(data.vocab):,}; "
            f"{mcfg.cell} {mcfg.num_layers}x{mcfg.hidden_dim}, {model.num_parameters():,} parameters; "
            f"engine {cfg.engine}" + (f", {world} processes" if world > 1 else ""))
