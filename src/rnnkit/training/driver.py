"""The training driver: `train()` sets a run up, then runs the training loop, read top to bottom.

corpus -> vocabulary -> ids -> batches (stream or sentences) -> `engine.Trainer.step` ->
validation each epoch (and every --eval-every steps) -> the best model kept in MODEL_DIR,
`metrics.jsonl` beside it, the resume point in MODEL_DIR/trainer_state/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import TokenizerConfig, TrainConfig
from ..engines import get_engine
from ..errors import ConfigError
from ..inference.evaluate import EvalResult, unigram_baseline
from .corpus import data_identity as corpus_data_identity
from .options import Chosen, resolve
from .report import Display, make_display
from .resume import load_resume_point
from .rundir import RunDir, open_run_dir
from .setup import Run, build_run
from .validation import validate


@dataclass
class TrainResult:
    """What a run did and reached (its model is in model_dir)."""

    model_dir: Path
    valid: EvalResult  # the validation result of the model saved in model_dir (the best one)
    unigram: EvalResult  # add-one unigram baseline on the same validation data
    steps: int
    tokens: int
    seconds: float
    stopped: str  # epochs | max_steps | max_minutes | early_stop
    history: list[dict] = field(default_factory=list)
    is_main: bool = True  # rank 0 of a distributed run (the one that writes and reports)


def train(corpus: str, out: str | Path, *, valid: str | None = None, model: dict | None = None,
          tokenizer: TokenizerConfig | dict | None = None, config: TrainConfig | dict | None = None,
          resume: bool = False, overwrite: bool = False, progress: bool = True,
          log: Callable[[str], None] | None = None, clock: Callable[[], float] = time.perf_counter) -> TrainResult:
    """Train a model on `corpus` (a file or a known dataset name) and keep the best in `out`.

    `model`, `tokenizer`, `config`: the options chosen (a dict: those in it; a config object:
    all its fields); the others are the defaults, or with `resume` the saved run's, which the
    chosen ones must equal (`training.options`). `out` must not hold a model or a run unless
    `resume` (continue it from out/trainer_state/) or `overwrite` (replace it, once the new run
    has saved its first resume point); it is locked while the run trains (`training.rundir`).
    `progress`: show how training goes on stderr (a bar on a terminal, plain lines elsewhere).
    `log`: where the messages go (default stderr). `clock` (seconds, monotonic) times the run:
    `max_minutes`, the `seconds` of metrics rows and of the result, tokens per second; tests
    inject a fake one."""
    chosen = Chosen.of(model, tokenizer, config)
    rundir = open_run_dir(out, resume=resume, overwrite=overwrite, main=_launched_rank() == 0)
    try:
        return _train_in(rundir, corpus, valid, chosen, resume=resume, progress=progress, log=log, clock=clock)
    finally:
        rundir.close()


def _train_in(rundir: RunDir, corpus: str, valid: str | None, chosen: Chosen, *, resume: bool, progress: bool,
              log: Callable[[str], None] | None, clock: Callable[[], float]) -> TrainResult:
    """train() in a run directory decided on: every check, then the run."""
    point = load_resume_point(rundir.path) if rundir.mode == "resume" else None
    data_identity = corpus_data_identity(corpus, valid)
    model_options, tok_cfg, cfg = resolve(chosen, point, data_identity, rundir.path)
    if point is None and cfg.epochs == 0:
        raise ConfigError("--epochs 0: a new run needs at least one epoch to train")
    rank, world, device = _join_processes(cfg)
    display = make_display(progress and rank == 0, clock)
    say = (log or display.write) if rank == 0 else _silent
    if rundir.lock is not None and rundir.lock.stale:
        say(f"{rundir.path}: took over the lock of a run that ended without releasing it ({rundir.lock.stale})")
    if resume and point is None:
        say(f"nothing to resume in {rundir.path} (no trainer_state/ yet): starting a new run")
    try:
        run = build_run(corpus, rundir, valid, model_options, tok_cfg, cfg, point=point, data_identity=data_identity,
                        say=say, clock=clock, rank=rank, world=world, device=device)
        stopped = training_loop(run, display)
    finally:
        display.close()
    if world > 1:
        from ..torch_engine.distributed import finish

        finish()
    if run.saved is None:
        raise ConfigError("no training happened (--epochs 0?)")
    p = run.progress
    return TrainResult(run.out, run.saved, unigram_baseline(run.data.train_ids, run.data.valid_ids, run.data.vocab),
                       p.step, p.tokens, run.seconds(), stopped, run.metrics.rows, is_main=run.main)


def training_loop(run: Run, display: Display) -> str:
    """Train until a stop condition holds; returns which one."""
    cfg, progress, feed, trainer, schedule = run.cfg, run.progress, run.feed, run.trainer, run.schedule
    batches = feed.batches(progress.epoch, progress.batch)
    display.start(progress, feed.steps_per_epoch, cfg.epochs, cfg.max_steps)
    stopped = stop_condition(run)  # a resumed run may have nothing left to do
    while stopped is None:
        # learning rate
        trainer.lr = schedule.lr_at(progress.step)

        # forward, backward, update
        nats, count, tokens = feed.step(trainer, next(batches))
        progress.count_step(nats, count, tokens)
        run.metrics.training(progress, nats, count, seconds=run.seconds(), lr=trainer.lr)
        display.update(progress)

        # evaluate: at the end of each epoch, and every --eval-every steps
        end_of_epoch = progress.batch == feed.steps_per_epoch
        evaluate = end_of_epoch or bool(cfg.eval_every and progress.step % cfg.eval_every == 0)
        if end_of_epoch:
            schedule.after_epoch(progress.epoch_loss)
            schedule.after_eval(validate(run, "epoch"))
            progress.next_epoch()
        elif evaluate:
            schedule.after_eval(validate(run, "step"))

        # stop conditions; a run stopped between its evaluations is evaluated once more
        stopped = stop_condition(run)
        if stopped in ("max_steps", "max_minutes") and not evaluate:
            validate(run, "stop")

        # checkpoint: at each epoch's end, every --checkpoint-every steps (else at each
        # evaluation), and when stopping
        if stopped or end_of_epoch or _checkpoint_due(cfg, progress.step, evaluate):
            run.save_resume_point()
    return stopped


def stop_condition(run: Run) -> str | None:
    """Why the run stops now (max_steps | max_minutes | early_stop | epochs), or None: the one
    place each stop condition is checked."""
    cfg, progress = run.cfg, run.progress
    if cfg.max_steps and progress.step >= cfg.max_steps:
        return "max_steps"
    if cfg.max_minutes and run.seconds() >= cfg.max_minutes * 60:
        return "max_minutes"
    if cfg.early_stop and progress.bad_evals >= cfg.early_stop:
        return "early_stop"
    if progress.epoch >= cfg.epochs:
        return "epochs"
    return None


def _checkpoint_due(cfg: TrainConfig, step: int, evaluated: bool) -> bool:
    return step % cfg.checkpoint_every == 0 if cfg.checkpoint_every else evaluated


def _join_processes(cfg: TrainConfig) -> tuple[int, int, str]:
    """(rank, world size, device): torchrun's process group for the torch engine, else one process."""
    if cfg.engine != "torch":
        return 0, 1, cfg.device
    get_engine("torch")  # a clear error when torch is not installed
    from ..torch_engine.distributed import setup

    return setup(cfg.device)


def _launched_rank() -> int:
    """This process's rank as torchrun launched it (0 for a plain run), known before the
    process group is joined: only rank 0 locks and writes the run directory."""
    try:
        return int(os.environ.get("RANK") or 0) if int(os.environ.get("WORLD_SIZE") or 1) > 1 else 0
    except ValueError:
        return 0  # joining the group says what is wrong


def _silent(message: str) -> None:
    """The messages of processes other than rank 0."""
