"""rnnkit.training: training a model, in reading order.

    driver.py      train(): set the run up, then the training loop (stop conditions in one place)
    rundir.py      the run directory: refused unless --resume / --overwrite, its lock, the swap
    options.py     the run's options: chosen over the defaults or the saved run's; the --resume check
    setup.py       the run before its first step: corpus, model, trainer, feed, schedule, progress
    corpus.py      corpus preparation: sentences, vocabulary, ids, the validation split
    feed.py        the two batching modes (stream, sentences) behind one interface
    validation.py  evaluate, keep the best model, the plateau / early-stop record
    progress.py    the run's progress (trainer_state/state.json)
    resume.py      resume points in trainer_state/
    schedule.py    learning-rate schedules
    metrics.py     metrics.jsonl
    report.py      what stderr shows while training: a bar, or plain lines
    curves.py      `rnnkit plot`: the curves of a run as a PNG
"""

from .driver import TrainResult, train

__all__ = ["TrainResult", "train"]
