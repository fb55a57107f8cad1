"""`rnnkit export --format onnx`: the one-step graph, run by onnxruntime, against both engines.

Random token sequences go step by step through the exported graph and through each engine's
own `step_logprobs` (the torch engine, nn.RNN/GRU/LSTM; the numpy engine, the reference): the
log-probabilities and every layer's state agree to 1e-5 for rnn (tanh, relu), gru and lstm,
one and two layers, tied weights, the adaptive softmax, at batch sizes 1 and 5 (the batch axis
is dynamic). The command's refusals are one line; the README's onnxruntime-only example runs
as written and gives LanguageModel.score's number.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import rnnkit
from conftest import TINY_CORPUS, make_model_dir
from rnnkit import checkpoint, numpy_engine, torch_engine
from rnnkit.cli import main
from rnnkit.cli.export import export_onnx
from rnnkit.config import ModelConfig, TokenizerConfig
from rnnkit.params import init_params
from rnnkit.text import Vocab, WordTokenizer

README = Path(__file__).resolve().parents[1] / "README.md"
TOL = 1e-5


def model_dir(path: Path, **model) -> Path:
    """A random model directory over TINY_CORPUS's vocabulary with these ModelConfig fields."""
    vocab = Vocab.build([WordTokenizer().tokenize(s) for s in TINY_CORPUS])
    cfg = ModelConfig(vocab_size=len(vocab), embed_dim=6, hidden_dim=8, **model)
    rng = np.random.default_rng(3)
    params = {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in init_params(cfg, seed=2).items()}
    checkpoint.save(path, cfg, TokenizerConfig(), vocab, params)
    return path


MODELS = {
    "rnn-tanh-1": lambda p: make_model_dir(p, cell="rnn", num_layers=1),
    "rnn-relu-2": lambda p: model_dir(p, cell="rnn", nonlinearity="relu", num_layers=2),
    "rnn-2-tied": lambda p: make_model_dir(p, cell="rnn", num_layers=2, tie=True),
    "gru-1": lambda p: make_model_dir(p, cell="gru", num_layers=1),
    "gru-2": lambda p: make_model_dir(p, cell="gru", num_layers=2),
    "lstm-1-tied": lambda p: make_model_dir(p, cell="lstm", num_layers=1, tie=True),
    "lstm-2": lambda p: make_model_dir(p, cell="lstm", num_layers=2),
    "gru-2-adaptive": lambda p: model_dir(p, cell="gru", num_layers=2, softmax="adaptive", cutoffs=[6, 14],
                                          div_value=2.0),
    "lstm-1-adaptive": lambda p: model_dir(p, cell="lstm", num_layers=1, softmax="adaptive", cutoffs=[10]),
}


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def stacked(hidden: list, lstm: bool) -> list[np.ndarray]:
    """An engine's per-layer hidden -> the graph's states: [h (L, B, H)] or [h, c]."""
    def arr(a):
        return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
    if lstm:
        return [np.stack([arr(h) for h, _ in hidden]), np.stack([arr(c) for _, c in hidden])]
    return [np.stack([arr(h) for h in hidden])]


def run_both(sess: ort.InferenceSession, engine_model, tokens: np.ndarray) -> None:
    """Step tokens (T, B) through the graph and the engine; compare every step's outputs."""
    cfg = engine_model.config
    lstm = cfg.cell == "lstm"
    B = tokens.shape[1]
    names = [i.name for i in sess.get_inputs()][1:]
    state = [np.zeros((cfg.num_layers, B, cfg.hidden_dim), np.float32) for _ in names]
    hidden = None
    for t, row in enumerate(tokens):
        logp, *state = sess.run(None, {"tokens": row.astype(np.int64), **dict(zip(names, state))})
        ref, hidden = engine_model.step_logprobs(row, hidden)
        assert logp.shape == (B, cfg.vocab_size) and logp.dtype == np.float32
        np.testing.assert_allclose(logp, ref, atol=TOL, rtol=0, err_msg=f"logprobs, step {t}")
        for got, want in zip(state, stacked(hidden, lstm)):
            np.testing.assert_allclose(got, want, atol=TOL, rtol=0, err_msg=f"state, step {t}")


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_matches_both_engines_step_by_step(tmp_path, name):
    path = MODELS[name](tmp_path / "m")
    export_onnx(path, tmp_path / "m.onnx")
    sess = session(tmp_path / "m.onnx")
    ckpt = checkpoint.load(path)
    engines = [torch_engine.RNNLM(ckpt.model, ckpt.params), numpy_engine.RNNLM(ckpt.model, ckpt.params)]
    rng = np.random.default_rng(7)
    for B in (1, 5):  # the batch axis is dynamic
        tokens = rng.integers(0, ckpt.model.vocab_size, size=(12, B))
        for engine_model in engines:
            run_both(sess, engine_model, tokens)


def test_inputs_outputs_and_sidecar(tmp_path):
    path = make_model_dir(tmp_path / "m", cell="lstm", num_layers=2)
    assert main(["export", str(path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    sess = session(tmp_path / "m.onnx")
    ins = {i.name: (i.type, i.shape) for i in sess.get_inputs()}
    outs = {o.name: o.shape for o in sess.get_outputs()}
    assert list(ins) == ["tokens", "h", "c"] and list(outs) == ["logprobs", "h_out", "c_out"]
    assert ins["tokens"][0] == "tensor(int64)" and ins["h"][0] == "tensor(float)"
    assert ins["h"][1][0] == 2 and ins["h"][1][2] == 8 and isinstance(ins["h"][1][1], str)  # (L, batch, H)
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    ckpt = checkpoint.load(path)
    assert side["vocab"] == ckpt.vocab.to_list() and len(side["vocab"]) == side["vocab_size"]
    assert (side["unk_id"], side["bos_id"], side["eos_id"]) == (0, 1, 2)
    assert (side["cell"], side["num_layers"], side["hidden_dim"]) == ("lstm", 2, 8)
    assert side["inputs"] == list(ins) and side["outputs"] == list(outs)
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["rnnkit.cell"] == "lstm" and json.loads(meta["rnnkit.num_layers"]) == 2


def test_rnn_graph_has_no_c(tmp_path):
    path = make_model_dir(tmp_path / "m", cell="gru", num_layers=1)
    export_onnx(path, tmp_path / "g.onnx")
    sess = session(tmp_path / "g.onnx")
    assert [i.name for i in sess.get_inputs()] == ["tokens", "h"]
    assert [o.name for o in sess.get_outputs()] == ["logprobs", "h_out"]


def one_line_error(capsys, argv) -> str:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("rnnkit: error: "), err
    return err[0]


def test_refusals_are_one_line_and_write_nothing(tmp_path, capsys):
    path = make_model_dir(tmp_path / "m", cell="rnn", num_layers=1)
    assert "--format must be one of onnx, got 'tflite'" in one_line_error(
        capsys, ["export", path, "--format", "tflite", "--out", tmp_path / "x.onnx"])
    (tmp_path / "d").mkdir()
    assert "is a directory" in one_line_error(capsys, ["export", path, "--out", tmp_path / "d"])
    assert "nope" in one_line_error(capsys, ["export", tmp_path / "nope", "--out", tmp_path / "x.onnx"])
    assert "does not exist" in one_line_error(capsys, ["export", path, "--out", tmp_path / "no" / "x.onnx"])
    assert "--opset 99" in one_line_error(capsys, ["export", path, "--out", tmp_path / "x.onnx", "--opset", "99"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "m"]
    assert list((tmp_path / "d").iterdir()) == []


def test_missing_onnx_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    path = make_model_dir(tmp_path / "m", cell="rnn", num_layers=1)
    line = one_line_error(capsys, ["export", path, "--out", tmp_path / "x.onnx"])
    assert "pip install 'rnnkit[onnx]'" in line


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Export for decoders"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_example_runs_and_matches_score(tmp_path, monkeypatch):
    path = make_model_dir(tmp_path / "model", cell="lstm", num_layers=2)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "model", "--format", "onnx", "--out", "model.onnx"]) == 0
    # onnxruntime alone: rnnkit and torch cannot be imported in the process that runs the example
    code = 'import sys; sys.modules["rnnkit"] = sys.modules["torch"] = None\n' + readme_example()
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = float(proc.stdout.strip().splitlines()[-1])
    assert printed == pytest.approx(rnnkit.load(path).score("the cat sat"), abs=1e-4)
