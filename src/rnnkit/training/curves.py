"""`rnnkit plot RUN_DIR`: training and validation curves from metrics.jsonl to a PNG.

Two panels: the metric against tokens seen, and against wall time. The metric is
perplexity for word models and bits per character for character models (log scale for
perplexity). matplotlib is an optional extra: pip install 'rnnkit[plot]'.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import ConfigError, InputError


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: no such file (is {run_dir} a training run directory?)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"{path}:{n}: not valid JSON") from None
    if not rows:
        raise InputError(f"{path}: no metrics yet")
    return rows


def plot_run(run_dir: str | Path, out: str | Path | None = None, level: str | None = None) -> Path:
    """Draw the curves of one run; returns the PNG path (default RUN_DIR/curves.png)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("rnnkit plot needs matplotlib: pip install 'rnnkit[plot]'") from None
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    if level is None:
        cfg = run_dir / "config.json"
        level = json.loads(cfg.read_text())["tokenizer"]["level"] if cfg.is_file() else "word"
    char = level == "char"

    def metric(loss: float) -> float:
        return loss / math.log(2) if char else math.exp(min(loss, 50.0))

    name = "bits per character" if char else "perplexity"
    series = {
        "train": [r for r in rows if r.get("kind") == "train" and r.get("train_loss") is not None],
        "validation": [r for r in rows if r.get("kind", "valid") == "valid" and r.get("valid_loss") is not None],
    }
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, xkey, xlabel in ((axes[0], "tokens", "tokens seen"), (axes[1], "seconds", "wall time (s)")):
        for label, rs in series.items():
            if not rs:
                continue
            key = "train_loss" if label == "train" else "valid_loss"
            ax.plot([r[xkey] for r in rs], [metric(r[key]) for r in rs], marker="" if label == "train" else "o",
                    markersize=4, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        if not char:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    best = min(series["validation"], key=lambda r: r["valid_loss"]) if series["validation"] else None
    title = f"{run_dir.name}"
    if best:
        title += f": best validation {name} {metric(best['valid_loss']):.3f} at {best['tokens']:,} tokens"
    fig.suptitle(title)
    out = Path(out) if out else run_dir / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
