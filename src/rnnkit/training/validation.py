"""Validation during training: evaluate the model, log the result, keep the best model.

Two numbers, two jobs:
- progress.best_loss (and bad_evals): the best loss of the run's regular evaluations (each
  epoch's end, every --eval-every steps). They drive the plateau schedule and early stopping,
  so a run that is stopped and resumed decides exactly as one that never stopped;
- run.saved: the result of the model in MODEL_DIR. Any evaluation that beats it saves the
  model, the "stop" evaluation of a run stopped by --max-steps / --max-minutes too, so MODEL_DIR
  always holds the lowest-validation model evaluated.
"""

from __future__ import annotations

from .. import checkpoint
from ..inference.evaluate import EvalResult, evaluate_encoded
from .setup import Run

REGULAR = ("epoch", "step")  # the run's own evaluations; "stop" is the extra one when it is stopped


def validate(run: Run, reason: str) -> bool:
    """Evaluate now (`reason`: epoch | step | stop), write the metrics row and the line, save
    the model when it is the best so far. Returns whether a regular evaluation improved on
    best_loss (for the schedule); a stop evaluation leaves best_loss and bad_evals alone."""
    cfg = run.cfg
    res = evaluate_encoded(run.model, run.data.valid, run.data.vocab, cfg.batching, cfg.eval_batch_size,
                           max(cfg.seq_len, 64))
    improved = run.progress.judge(res.loss) if reason in REGULAR else False
    saved = run.saved is None or res.loss < run.saved.loss
    if saved:
        run.saved = res
        _save_model(run, res)
    seconds = run.seconds()
    row = run.metrics.row("valid", run.progress, seconds=seconds, lr=run.trainer.lr, valid_loss=res.loss,
                          valid_ppl=res.ppl, valid_bpc=res.bpc if _char(run) else None, reason=reason,
                          train_loss=run.progress.epoch_loss)
    run.say(_line(run, res, row, seconds, saved))
    return improved


def _save_model(run: Run, res: EvalResult) -> None:
    if run.main:
        extra = {"engine": run.cfg.engine, "valid_loss": res.loss, "valid_ppl": res.ppl, "valid_tokens": res.count,
                 "step": run.progress.step, "train": run.cfg.to_dict()}
        checkpoint.save(run.out, run.model.config, run.tok_cfg, run.data.vocab, run.model.state_dict(), extra=extra)


def _char(run: Run) -> bool:
    return run.tok_cfg.level == "char"


def _line(run: Run, res: EvalResult, row: dict, seconds: float, saved: bool) -> str:
    """`valid at step 400 (epoch 2.00): ppl 95.31 (loss 4.5570), train loss 4.512, lr 0.001,
    12,345 tok/s *best, saved`"""
    where = f"step {row['step']:,} (epoch {row['epoch']:.2f}{', stopping' if row['reason'] == 'stop' else ''})"
    metric = f"bpc {res.bpc:.3f}" if _char(run) else f"ppl {res.ppl:,.2f}"
    train = f", train loss {row['train_loss']:.3f}" if row["train_loss"] is not None else ""
    return (f"valid at {where}: {metric} (loss {res.loss:.4f}){train}, lr {run.trainer.lr:.3g}, "
            f"{run.progress.tokens / max(seconds, 1e-9):,.0f} tok/s{' *best, saved' if saved else ''}")
