"""notebooks/rnn-tutorial.ipynb: it is what notebooks/build_notebook.py makes, it was saved with
its outputs, and it executes from top to bottom in a fresh kernel (nbclient, the dev extra), giving
numbers that could be wrong: the feed-forward accuracy, both gradient checks, the twin's loss,
the trained model, and numpy vs torch vs the twin on the same model directory."""

from __future__ import annotations

import importlib.util
import math
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "rnn-tutorial.ipynb"
BUILDER = ROOT / "notebooks" / "build_notebook.py"


def builder():
    spec = importlib.util.spec_from_file_location("build_notebook", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def test_the_committed_notebook_is_what_the_builder_makes():
    nbformat = pytest.importorskip("nbformat")
    committed = nbformat.read(NOTEBOOK, as_version=4)
    built = builder().build()
    assert cells(committed) == cells(built), "notebooks/rnn-tutorial.ipynb is stale: run python notebooks/build_notebook.py"
    nbformat.validate(committed)


def test_the_committed_notebook_keeps_its_outputs():
    nbformat = pytest.importorskip("nbformat")
    code = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    assert all(c.outputs for c in code), "saved without outputs: run python notebooks/build_notebook.py"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))  # in order, once each
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for c in code for o in c.outputs) == 3


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"not in the notebook's output: {pattern!r}"
    return float(m.group(1))


@pytest.mark.slow
def test_the_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch", reason="section 6 loads the model on the torch engine")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None

    t = time.perf_counter()
    builder().execute(nb, tmp_path, timeout=300)  # CellExecutionError, with the cell and its traceback, on failure
    print(f"\nnotebooks/rnn-tutorial.ipynb executed in {time.perf_counter() - t:.1f} s")

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # boundary, gradients, memory
    assert not list(tmp_path.iterdir()), "the notebook wrote into its working directory"

    # 1. the feed-forward network: three tanh units bend the boundary around the moons
    assert number(r"3 hidden units: loss [\d.]+, training accuracy ([\d.]+)", text) >= 0.95
    assert number(r"logistic regression: loss [\d.]+, training accuracy ([\d.]+)", text) < 0.95
    # 2. the twin: untrained loss ~ ln K, bptt agrees with the numerical gradient, SGD lowers the loss
    ln_k = number(r"ln \d+ = ([\d.]+)", text)
    assert abs(number(r"actual loss of the untrained model:\s+([\d.]+)", text) - ln_k) < 0.05 * ln_k
    assert number(r"twin gradient check: worst relative error (\S+)", text) < 1e-4
    m = re.search(r"twin SGD: loss ([\d.]+) -> ([\d.]+)", text)
    assert m and float(m.group(2)) < float(m.group(1)) - 1.0
    # 3. the engine's gradient check, rnn / gru / lstm
    assert number(r"engine gradient check: worst relative error (\S+)", text) <= 1e-6
    # 4. training learned something (uniform over 2,000 words is perplexity 2,000)
    ppl = number(r"validation perplexity ([\d.]+)", text)
    assert math.isfinite(ppl) and ppl < 500
    # 6. one model directory, three implementations
    assert number(r"max \|numpy - torch\| = (\S+) nats", text) < 1e-4
    assert number(r"max \|numpy - twin\| = (\S+) nats", text) < 1e-4
    assert "same samples for seed 1 on both engines: True" in text
