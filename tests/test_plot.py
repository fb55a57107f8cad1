"""`rnnkit plot`: a real PNG of the curves from a run's metrics.jsonl."""

from __future__ import annotations

import pytest

from conftest import TINY_CORPUS
from rnnkit.cli import main


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
