"""`rnnkit analyze activations`: per-token states and gates equal the engines' own forward pass,
the gates rebuild the state, and the .npz / LSTMVis / PNG files hold what they should."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import TINY_CORPUS, has_torch, make_model_dir
from faultkit import assert_one_line_error, run_cli
from rnnkit import api
from rnnkit.analysis import activations as A
from rnnkit.engines import build_model
from rnnkit.errors import ConfigError
from rnnkit.text import WordTokenizer

ENGINES = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(not has_torch(), reason="torch not installed"))]
TEXT = ["the cat sat on the mat .", "a dog played , isn't it ?", "the zebra sang ."]  # zebra: unknown


def load(tmp_path, cell="lstm", layers=2, engine="numpy", dtype=np.float32, level="word"):
    """A LanguageModel over a tiny random model; float64 swaps in a float64 engine model."""
    path = make_model_dir(tmp_path / f"{cell}{layers}{level}", cell=cell, num_layers=layers, level=level)
    lm = api.load(path, engine=engine, device="cpu")
    if dtype != np.float32:
        lm.model = build_model(engine, lm.config, lm.model.state_dict(), device="cpu", dtype=dtype)
    return lm


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def engine_states(lm, ids: np.ndarray, starts: np.ndarray) -> list[dict]:
    """The reference: the engine's forward, one token at a time, its hidden carried (None at
    `starts`); per layer h (and c) stacked (T, H)."""
    rows, hidden = [], None
    for t, i in enumerate(ids):
        if starts[t]:
            hidden = None
        hidden = lm.model.forward(np.array([[i]]), hidden=hidden)[3]
        rows.append(hidden)
    out = []
    for n in range(lm.config.num_layers):
        if lm.config.cell == "lstm":
            out.append({"h": np.stack([_np(r[n][0])[0] for r in rows]), "c": np.stack([_np(r[n][1])[0] for r in rows])})
        else:
            out.append({"h": np.stack([_np(r[n])[0] for r in rows])})
    return out


# ---------------------------------------------------------------- the numbers


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-10)])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_states_equal_the_engines_forward(tmp_path, cell, layers, dtype, tol, engine):
    lm = load(tmp_path, cell, layers, engine, dtype)
    acts = A.activations(lm, TEXT, mode="stream")
    ref = engine_states(lm, acts.ids, np.zeros(len(acts.ids), bool))
    assert len(acts.layers) == layers
    for got, want in zip(acts.layers, ref):
        assert set(got) == set(A.NAMES[cell])
        for name, w in want.items():
            assert got[name].dtype == dtype and got[name].shape == (len(acts.ids), 8)
            np.testing.assert_allclose(got[name], w, rtol=0, atol=tol, err_msg=f"{cell} {name}")


@pytest.mark.parametrize("engine", ENGINES)
def test_sentences_mode_starts_each_sentence_from_zero(tmp_path, engine):
    lm = load(tmp_path, "gru", 2, engine)
    acts = A.activations(lm, TEXT, mode="sentences")
    starts = np.zeros(len(acts.ids), bool)
    starts[acts.offsets[:-1]] = True
    for got, want in zip(acts.layers, engine_states(lm, acts.ids, starts)):
        np.testing.assert_allclose(got["h"], want["h"], rtol=0, atol=1e-6)
    alone = A.activations(lm, TEXT[1], mode="sentences")
    np.testing.assert_allclose(acts.layers[1]["h"][acts.rows(1)], alone.layers[1]["h"], rtol=0, atol=1e-6)
    carried = A.activations(lm, TEXT, mode="stream")  # stream: sentence 2 starts from sentence 1's state
    assert np.abs(carried.layers[1]["h"][acts.rows(1)] - alone.layers[1]["h"]).max() > 1e-3


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _previous(a: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros_like(a[:1]), a[:-1]])  # (T, H): the state before each row


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gates_follow_from_the_weights_and_give_back_h(tmp_path, cell):
    """The gates recomputed here for all steps at once from the weights and the engine's states
    (no recurrence), and h rebuilt from them."""
    lm = load(tmp_path, cell, 2, dtype=np.float64)
    acts = A.activations(lm, TEXT, mode="stream")
    p = lm.model.state_dict()
    X = p["embedding.weight"][acts.ids]
    for n, lay in enumerate(acts.layers):
        h_prev = _previous(lay["h"])
        xa = X @ p[f"rnn.weight_ih_l{n}"].T + p[f"rnn.bias_ih_l{n}"]  # (T, G*H)
        ha = h_prev @ p[f"rnn.weight_hh_l{n}"].T + p[f"rnn.bias_hh_l{n}"]
        if cell == "lstm":
            i, f, g, o = np.split(xa + ha, 4, axis=1)
            want = {"i": _sigmoid(i), "f": _sigmoid(f), "g": np.tanh(g), "o": _sigmoid(o)}
            c = want["f"] * _previous(lay["c"]) + want["i"] * want["g"]
            np.testing.assert_allclose(lay["c"], c, atol=1e-12)
            np.testing.assert_allclose(lay["h"], want["o"] * np.tanh(c), atol=1e-12)
        else:
            (xr, xz, xn), (hr, hz, hn) = np.split(xa, 3, axis=1), np.split(ha, 3, axis=1)
            want = {"r": _sigmoid(xr + hr), "z": _sigmoid(xz + hz)}
            want["n"] = np.tanh(xn + want["r"] * hn)
            np.testing.assert_allclose(lay["h"], (1 - want["z"]) * want["n"] + want["z"] * h_prev, atol=1e-12)
        for name, w in want.items():
            np.testing.assert_allclose(lay[name], w, atol=1e-12, err_msg=name)
        X = lay["h"]


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_numpy_and_torch_engines_agree(tmp_path, cell):
    a = A.activations(load(tmp_path, cell, 2, "numpy"), TEXT)
    b = A.activations(load(tmp_path, cell, 2, "torch"), TEXT)
    assert a.tokens == b.tokens
    for la, lb in zip(a.layers, b.layers):
        for name in A.NAMES[cell]:
            np.testing.assert_allclose(la[name], lb[name], atol=1e-6)


# ---------------------------------------------------------------- the text as the model reads it


def test_tokens_are_laid_out_as_the_model_reads_them(tmp_path):
    lm = load(tmp_path, "rnn", 1)
    acts = A.activations(lm, TEXT)
    assert acts.tokens[:9] == ["<s>", "the", "cat", "sat", "on", "the", "mat", ".", "</s>"]
    assert acts.tokens[acts.rows(2)] == ["<s>", "the", "zebra", "sang", ".", "</s>"]
    assert acts.tokens[acts.rows(1)][4:7] == [",", "is", "n't"]  # the model's tokenizer
    assert acts.offsets.tolist() == [0, 9, 9 + 10, 9 + 10 + 6]
    assert acts.ids.tolist() == lm.vocab.encode(acts.tokens)
    assert acts.ids[acts.tokens.index("zebra")] == lm.vocab.unk_id
    assert acts.mode == "stream"  # the model directory does not say: stream
    with pytest.raises(ConfigError, match="stream or sentences"):
        A.activations(lm, TEXT, mode="windows")


def test_character_models_read_spaces(tmp_path):
    lm = load(tmp_path, "lstm", 1, level="char")
    acts = A.activations(lm, "a cat")
    assert acts.tokens == ["<s>", "a", " ", "c", "a", "t", "</s>"]


# ---------------------------------------------------------------- files


def test_npz_holds_every_array(tmp_path):
    acts = A.activations(load(tmp_path, "lstm", 2), TEXT)
    path = A.write_npz(acts, tmp_path / "a.npz")
    with np.load(path, allow_pickle=False) as z:
        assert z["tokens"].tolist() == acts.tokens
        np.testing.assert_array_equal(z["ids"], acts.ids)
        np.testing.assert_array_equal(z["offsets"], acts.offsets)
        assert str(z["cell"]) == "lstm" and str(z["mode"]) == "stream"
        for n in range(2):
            for name in "hcifgo":
                np.testing.assert_array_equal(z[f"{name}_l{n}"], acts.layers[n][name])


def read_lstmvis(directory):
    """Read a project the way LSTMVis's data handler does (lstmdata/data_handler.py): lstm.yml,
    its .h5 files, its .dict files as `word id` lines, each states type's dataset."""
    h5py = pytest.importorskip("h5py")
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((directory / "lstm.yml").read_text(encoding="utf-8"))
    files = config["files"]
    h5 = {k: h5py.File(directory / v, "r") for k, v in files.items() if v.endswith((".h5", ".hdf5"))}
    dicts = {}
    for k, v in files.items():
        if v.endswith(".dict"):
            dicts[k] = {}
            for line in (directory / v).read_text(encoding="utf-8").splitlines():
                word, i = line.split()  # exactly two fields, as LSTMVis unpacks them
                dicts[k][int(i)] = word
    ws = config["word_sequence"]
    words = [dicts[ws["dict_file"]][i] for i in h5[ws["file"]][ws["path"]][()].tolist()]
    states = {t["path"]: h5[t.get("file", config["states"]["file"])][t["path"]][()] for t in config["states"]["types"]}
    return config, words, states


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_lstmvis_files_have_the_layout_lstmvis_reads(tmp_path, cell):
    pytest.importorskip("h5py")
    lm = load(tmp_path, cell, 2)
    acts = A.activations(lm, TEXT)
    paths = A.write_lstmvis(acts, tmp_path, lm.vocab, title="tiny")
    assert sorted(p.name for p in paths) == sorted(A.LSTMVIS_FILES)
    config, words, states = read_lstmvis(tmp_path)
    assert config["name"] == "tiny"
    T = len(acts.tokens)
    assert words == [lm.vocab.token(i) for i in acts.ids]  # <unk> where the text had zebra
    assert len(states) == 2 * len(A.NAMES[cell])  # every recorded array, listed in lstm.yml
    for name, a in states.items():
        assert a.shape == (T, 8) and a.dtype == np.float32, name
    state = "c" if cell == "lstm" else "h"  # LSTMVis's statesN: the cell state, the hidden state otherwise
    for n in range(2):
        np.testing.assert_array_equal(states[f"states{n + 1}"], acts.layers[n][state].astype(np.float32))
        if cell == "lstm":
            np.testing.assert_array_equal(states[f"output{n + 1}"], acts.layers[n]["h"].astype(np.float32))
            np.testing.assert_array_equal(states[f"forget{n + 1}"], acts.layers[n]["f"].astype(np.float32))
        if cell == "gru":
            np.testing.assert_array_equal(states[f"update{n + 1}"], acts.layers[n]["z"].astype(np.float32))


def test_lstmvis_dictionary_keeps_one_field_per_character_token(tmp_path):
    pytest.importorskip("h5py")
    lm = load(tmp_path, "gru", 1, level="char")
    A.write_lstmvis(A.activations(lm, "a cat"), tmp_path, lm.vocab)
    _, words, _ = read_lstmvis(tmp_path)
    assert words == ["<s>", "a", "\u2423", "c", "a", "t", "</s>"]  # the space as ␣


def test_without_h5py_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    lm = load(tmp_path, "gru", 1)
    with pytest.raises(ConfigError) as e:
        A.write_lstmvis(A.activations(lm, TEXT), tmp_path, lm.vocab)
    assert "\n" not in str(e.value) and "pip install 'rnnkit[hdf5]'" in str(e.value)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT) + "\n")
    rc, out, err = run_cli(["analyze", "activations", str(lm.path), str(text), "--out", str(tmp_path / "o"),
                            "--output-format", "lstmvis", "--no-plot"])
    assert_one_line_error(rc, err, "rnnkit[hdf5]")
    assert not (tmp_path / "o").exists()  # refused before anything was written
    rc, out, err = run_cli(["analyze", "activations", str(lm.path), str(text), "--out", str(tmp_path / "o"),
                            "--no-plot"])  # auto: the .npz, and a note
    assert rc == 0 and out.split() == [str(tmp_path / "o" / "activations.npz")]
    assert "rnnkit[hdf5]" in err


# ---------------------------------------------------------------- the heat map and the command


def test_top_units_rank_by_mean_magnitude_or_variance():
    v = np.array([[0.9, 0.0, -0.5, 0.1], [0.9, 0.0, 0.5, -0.1], [0.9, 0.1, -0.5, 0.1]])  # (T=3, H=4)
    assert A.top_units(v, 2, "abs").tolist() == [0, 2]  # unit 0 is large but constant
    assert A.top_units(v, 2, "var").tolist() == [2, 3]
    with pytest.raises(ConfigError):
        A.top_units(v, 2, "max")


def test_heatmap_is_a_png_and_checks_its_choices(tmp_path):
    pytest.importorskip("matplotlib")
    acts = A.activations(load(tmp_path, "lstm", 2), TEXT)
    out = A.plot_heatmap(acts, tmp_path / "h.png", sentence=2, units=5, name="c")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="out of range"):
        A.plot_heatmap(acts, tmp_path / "x.png", sentence=3)
    with pytest.raises(ConfigError, match="no 'r'"):
        A.plot_heatmap(acts, tmp_path / "x.png", name="r")
    assert not (tmp_path / "x.png").exists()


def test_command_writes_every_file(tmp_path):
    pytest.importorskip("h5py")
    pytest.importorskip("matplotlib")
    model = make_model_dir(tmp_path / "model", cell="lstm", num_layers=2)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TINY_CORPUS) + "\n")
    out = tmp_path / "acts"
    rc, stdout, err = run_cli(["analyze", "activations", str(model), str(text), "--out", str(out),
                               "--sentence", "3", "--units", "4", "--layer", "1"])
    assert rc == 0, err
    names = ["activations.npz", *A.LSTMVIS_FILES, "heatmap.png"]
    assert stdout.split() == [str(out / n) for n in names]
    with np.load(out / "activations.npz") as z:
        assert z["h_l1"].shape == (sum(len(WordTokenizer().tokenize(s)) + 2 for s in TINY_CORPUS), 8)


@pytest.mark.parametrize("extra,names", [
    (["--sentence", "9"], ["--sentence 9", "5 sentence"]),
    (["--state", "c"], ["--state", "gru"]),
    (["--layer", "3"], ["--layer 3", "1 layer"]),
])
def test_command_refuses_bad_choices_in_one_line(tmp_path, extra, names):
    model = make_model_dir(tmp_path / "model", cell="gru", num_layers=1)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TINY_CORPUS) + "\n")
    rc, _, err = run_cli(["analyze", "activations", str(model), str(text), "--out", str(tmp_path / "o"), *extra])
    assert_one_line_error(rc, err, *names)
    assert not (tmp_path / "o").exists()
