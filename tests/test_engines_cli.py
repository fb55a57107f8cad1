"""One model directory, two engines: train with torch, score with numpy (and back), via the CLI."""

from __future__ import annotations

import pytest

from conftest import TINY_CORPUS
from rnnkit.cli import main

pytest.importorskip("torch")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_trained_model_scores_the_same_in_numpy(tmp_path, capsys, cell):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 20) + "\n")
    out = tmp_path / "m"
    assert main(["train", str(corpus), "--out", str(out), "--engine", "torch", "--device", "cpu", "--cell", cell,
                 "--layers", "2", "--hidden", "16", "--embed", "16", "--tie", "--dropout", "0.2", "--epochs", "2",
                 "--batch-size", "4", "--seq-len", "8", "--quiet"]) == 0
    capsys.readouterr()
    text = tmp_path / "in.txt"
    text.write_text("the cat sat on the mat .\na dog sang in the garden .\nthe zebra ?\n")
    results = {}
    for engine in ("torch", "numpy"):
        assert main(["score", str(out), str(text), "--engine", engine, "--device", "cpu", "--format", "jsonl",
                     "--per-token"]) == 0
        import json

        results[engine] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for a, b in zip(results["torch"], results["numpy"], strict=True):
        assert a["logprob"] == pytest.approx(b["logprob"], abs=1e-5)
        for ta, tb in zip(a["token_scores"], b["token_scores"], strict=True):
            assert ta["token"] == tb["token"]
            assert ta["logprob"] == pytest.approx(tb["logprob"], abs=1e-5)
    # and generation with the same seed gives the same text on either engine's CPU path
    gens = {}
    for engine in ("torch", "numpy"):
        assert main(["generate", str(out), "--engine", engine, "--device", "cpu", "--seed", "4", "-n", "3"]) == 0
        gens[engine] = capsys.readouterr().out
    assert gens["torch"] == gens["numpy"]


def test_torchrun_two_cpu_processes_train_through_the_cli(tmp_path):
    """`torchrun --nproc-per-node 2 -m rnnkit train ... --engine torch` (gloo): one writer, one report."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import rnnkit

    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not on PATH")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 20) + "\n")
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "rnnkit", "train", str(corpus),
                           "--out", str(out), "--engine", "torch", "--device", "cpu", "--hidden", "8", "--embed", "8",
                           "--epochs", "2", "--batch-size", "2", "--seq-len", "6", "--quiet"],
                          env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done (") == 1  # only rank 0 reports
    assert "2 processes" in proc.stderr
    valid_rows = [line for line in (out / "metrics.jsonl").read_text().splitlines() if '"valid"' in line]
    assert len(valid_rows) == 2  # only rank 0 writes metrics
    assert len(rnnkit.load(out).vocab) > 10
    # tokens seen = those of one process with the same global batch (each rank adds the others')
    import json

    from rnnkit.cli import main

    one = tmp_path / "one"
    assert main(["train", str(corpus), "--out", str(one), "--engine", "torch", "--device", "cpu", "--hidden", "8",
                 "--embed", "8", "--epochs", "2", "--batch-size", "4", "--seq-len", "6", "--quiet"]) == 0
    ddp_tokens = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["tokens"]
    one_tokens = json.loads((one / "metrics.jsonl").read_text().splitlines()[-1])["tokens"]
    assert ddp_tokens == one_tokens > 0
