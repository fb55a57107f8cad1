"""Strict JSON in what rnnkit writes: no NaN or Infinity in score's jsonl or in metrics.jsonl
(null, with a note saying why).
"""

from __future__ import annotations

import json

import faults_files_kit
from faultkit import run_cli

# the kit's fixtures, found by pytest under these names
model, text = faults_files_kit.model, faults_files_kit.text


# ---------------------------------------------------------------- strict JSON


def strict(line: str):
    def refuse(word):
        raise AssertionError(f"{word} in {line!r}")
    return json.loads(line, parse_constant=refuse)


def test_score_jsonl_has_null_not_nan_for_a_line_with_nothing_scored(model, text):
    rc, out, err = run_cli(["score", str(model), str(text), "--output-format", "jsonl", "--no-eos"])
    assert rc == 0, err
    rows = [strict(line) for line in out.splitlines()]
    assert rows[1]["tokens"] == 0 and rows[1]["ppl"] is None and rows[1]["ppl_note"] == "nothing scored"
    assert rows[0]["ppl"] > 1 and "ppl_note" not in rows[0]


def test_metrics_rows_have_no_nan(tmp_path):
    from rnnkit.training.metrics import Metrics
    from rnnkit.training.progress import Progress

    m = Metrics(tmp_path, 10)
    m.row("valid", Progress(), seconds=1.0, lr=0.1, valid_loss=800.0, valid_ppl=float("inf"), valid_bpc=float("nan"))
    row = strict((tmp_path / "metrics.jsonl").read_text().strip())
    assert row["valid_ppl"] is None and row["valid_ppl_note"] == "infinite"
    assert row["valid_bpc"] is None and row["valid_bpc_note"] == "not a number (NaN)"
