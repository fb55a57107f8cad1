"""`rnnkit plot`: a real PNG of the curves from a run's metrics.jsonl, with axes that stay
readable for runs of 3 points and of 100,000 steps, and bad input reported by file and line."""

from __future__ import annotations

import json
import math
import random

import pytest

from conftest import TINY_CORPUS
from rnnkit.cli import main
from rnnkit.errors import InputError
from rnnkit.training.curves import draw_curves, eng, plot_run, read_metrics


def test_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 20) + "\n")
    out = tmp_path / "run"
    assert main(["train", str(corpus), "--out", str(out), "--hidden", "8", "--embed", "8", "--epochs", "2",
                 "--batch-size", "2", "--seq-len", "5", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    png = out / "curves.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert capsys.readouterr().out.strip() == str(png)


def test_plot_without_metrics_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "metrics.jsonl" in err and "no such file" in err


# ----------------------------------------------------------------------------- readable axes


def synthetic_rows(steps: int, every: int, eval_every: int, tokens_per_step: float, seconds_per_step: float,
                   first: float, last: float) -> list[dict]:
    """A loss decaying from `first` to `last` nats, a noisy training row every `every` steps."""
    rng = random.Random(0)
    rows = []
    for s in range(every, steps + 1, every):
        loss = last + (first - last) * math.exp(-5 * s / steps)
        at = {"step": s, "epoch": s / steps, "tokens": round(s * tokens_per_step), "seconds": s * seconds_per_step,
              "lr": 0.001}
        rows.append({"kind": "train", **at, "train_loss": loss + rng.gauss(0, 0.02)})
        if s % eval_every == 0:
            rows.append({"kind": "valid", **at, "valid_loss": loss + 0.1, "reason": "step"})
    return rows


RUNS = {  # steps, every, eval_every, tokens/step, seconds/step, first and last loss (nats)
    "3 points": (3, 1, 1, 640, 0.4, 5.2, 4.9),  # a range of under a tenth of a decade
    "100,000 steps": (100_000, 50, 2000, 44_800, 0.21, 9.2, 4.6),  # 4 decades, billions of tokens, hours
    "narrow": (400, 20, 100, 1000, 1.0, 5.0, 4.85),
    "a decade": (5000, 25, 500, 1280, 3.0, 6.5, 5.0),
    "two decades": (20_000, 100, 1000, 5000, 0.5, 8.0, 4.0),
    "diverged": (1000, 10, 100, 100, 90.0, 60.0, 3.0),  # perplexity capped at e^50; days
}


def tick_labels(axis, renderer) -> list[tuple[str, object]]:
    """(text, bounding box) of the labelled ticks drawn inside the axis's view."""
    lo, hi = sorted(axis.get_view_interval())
    slack = (hi - lo) * 1e-9
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        label = tick.label1
        if lo - slack <= tick.get_loc() <= hi + slack and label.get_visible() and label.get_text():
            out.append((label.get_text(), label.get_window_extent(renderer)))
    return out


def assert_readable(axis, renderer, where: str) -> None:
    labels = tick_labels(axis, renderer)
    texts = [t for t, _ in labels]
    assert len(labels) >= 3, f"{where}: only {texts}"
    assert len(set(texts)) == len(texts), f"{where}: repeated labels {texts}"
    for i, (a, box_a) in enumerate(labels):
        for b, box_b in labels[i + 1:]:
            assert not box_a.overlaps(box_b), f"{where}: labels {a!r} and {b!r} overlap ({texts})"


@pytest.mark.parametrize("level", ["word", "char"])
@pytest.mark.parametrize("run", RUNS)
def test_tick_labels_are_many_enough_distinct_and_apart(run, level):
    plt = pytest.importorskip("matplotlib.pyplot")
    fig = draw_curves(synthetic_rows(*RUNS[run]), level, run)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax, name in zip(fig.axes, ("tokens", "time")):
            assert_readable(ax.xaxis, renderer, f"{run}, {name} axis")
            assert_readable(ax.yaxis, renderer, f"{run}, {name} panel, y axis")
            assert ax.xaxis.get_offset_text().get_text() == ""  # no "1e9" beside the axis
            assert ax.get_yscale() == ("linear" if level == "char" else "log")
    finally:
        plt.close(fig)


def test_the_overlap_check_sees_matplotlibs_default_labels_collide():
    """The check above is not vacuous: matplotlib's own formatter overlaps on the narrow run."""
    plt = pytest.importorskip("matplotlib.pyplot")
    rows = [r for r in synthetic_rows(*RUNS["narrow"]) if r["kind"] == "train"]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    try:
        ax.plot([r["tokens"] for r in rows], [math.exp(r["train_loss"]) for r in rows])
        fig.canvas.draw()
        with pytest.raises(AssertionError, match="overlap"):
            assert_readable(ax.xaxis, fig.canvas.get_renderer(), "default")
    finally:
        plt.close(fig)


def test_engineering_labels():
    assert [eng(v) for v in (0, 0.4, 750, 1000, 1250, 1.5e6, 4.48e9, 2.5e12, 5e21)] == [
        "0", "0.4", "750", "1k", "1.25k", "1.5M", "4.48G", "2.5T", "5e+21"]
    assert [eng(1e9 + k * 1e4, step=1e4) for k in range(3)] == ["1G", "1.00001G", "1.00002G"]
    assert [eng(v, step=250_000) for v in (0, 250_000, 1_000_000, 1_250_000)] == ["0", "250k", "1M", "1.25M"]


# ----------------------------------------------------------------------------- bad input


def write_run(tmp_path, metrics: str, config: str | None = None):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "metrics.jsonl").write_text(metrics, encoding="utf-8")
    if config is not None:
        (run / "config.json").write_text(config, encoding="utf-8")
    return run


GOOD = json.dumps({"kind": "train", "step": 1, "epoch": 0.1, "tokens": 10, "seconds": 0.5, "lr": 1.0,
                   "train_loss": 3.0})


@pytest.mark.parametrize("line,message", [
    ('{"kind": "train", "step": 2', ":2: not valid JSON"),
    ("[1, 2]", ":2: not a JSON object"),
    ('{"kind": "train", "step": 2, "seconds": 1.0, "train_loss": 2.0}', ":2: 'tokens' is missing or not a number"),
    ('{"kind": "valid", "tokens": 5, "seconds": 1.0, "valid_loss": "low"}', ":2: 'valid_loss' is not a number"),
])
def test_a_bad_metrics_line_is_named_by_file_and_line(tmp_path, capsys, line, message):
    run = write_run(tmp_path, f"{GOOD}\n{line}\n{GOOD}\n")
    with pytest.raises(InputError, match=message):
        read_metrics(run)
    pytest.importorskip("matplotlib")
    assert main(["plot", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'metrics.jsonl'}{message}" in err


def test_a_last_line_being_written_is_left_out(tmp_path):
    run = write_run(tmp_path, f'{GOOD}\n{GOOD}\n{{"kind": "tra')
    assert len(read_metrics(run)) == 2


@pytest.mark.parametrize("config,message", [
    ('{"format": "rnnkit",\n "tokenizer": {"level": "word",}}', r"config.json:2: not valid JSON"),
    ('{"format": "rnnkit", "model": {}}', r"config.json: no tokenizer level"),
])
def test_a_bad_config_json_is_named_by_file_and_line(tmp_path, config, message):
    pytest.importorskip("matplotlib")
    run = write_run(tmp_path, GOOD + "\n", config)
    with pytest.raises(InputError, match=message):
        plot_run(run)


@pytest.mark.parametrize("line,message", [
    ('{"kind": "train", "tokens": 1' + "0" * 400 + ', "seconds": 1.0}', ":2: 'tokens' is missing or not a number"),
    ('{"kind": "valid", "tokens": 5, "seconds": 1.0, "valid_loss": 1' + "0" * 400 + "}", ":2: 'valid_loss' is too large"),
    ("[" * 100_000, ":2: not valid JSON (nested too deeply)"),
])
def test_numbers_too_large_and_nesting_too_deep_are_named_too(tmp_path, capsys, line, message):
    run = write_run(tmp_path, f"{GOOD}\n{line}\n{GOOD}\n")
    pytest.importorskip("matplotlib")
    assert main(["plot", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'metrics.jsonl'}{message}" in err and "Traceback" not in err


def test_unreadable_metrics_and_a_deep_config_are_one_line(tmp_path, capsys, monkeypatch):
    """PermissionError is injected (root reads a 0000 file anyway)."""
    pytest.importorskip("matplotlib")
    import pathlib

    run = write_run(tmp_path, GOOD + "\n", "[" * 100_000)
    assert main(["plot", str(run)]) == 1
    assert capsys.readouterr().err == f"rnnkit: error: {run / 'config.json'}: not valid JSON (nested too deeply)\n"
    real = pathlib.Path.read_text

    def read_text(self, *a, **k):
        if self.name == "metrics.jsonl":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    assert main(["plot", str(run)]) == 1
    assert capsys.readouterr().err == f"rnnkit: error: {run / 'metrics.jsonl'}: cannot read: permission denied\n"


def test_the_output_is_written_exactly_where_named_in_the_format_of_its_suffix(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run = write_run(tmp_path, GOOD + "\n")
    assert main(["plot", str(run), "-o", str(tmp_path / "curves")]) == 0  # no suffix: PNG, no ".png" added
    assert (tmp_path / "curves").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "curves.png").exists()
    assert main(["plot", str(run), "-o", str(tmp_path / "c.svg")]) == 0
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:1000]
    capsys.readouterr()
    assert main(["plot", str(run), "-o", str(tmp_path / "c.txt")]) == 1
    assert "c.txt: matplotlib cannot write .txt images" in capsys.readouterr().err
    assert not (tmp_path / "c.txt").exists()
