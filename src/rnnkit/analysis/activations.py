"""Hidden states and gates per token: computed, written for other tools, drawn as a heat map.

`activations(lm, sentences)` reads the text as the model reads it: each sentence tokenized with
the model's tokenizer and laid out as ``<s> w1 .. wn </s>``, sentences in order, one row per
token (the state after reading it). In stream mode the state is carried from one sentence into
the next (how the model trained with ``batching stream`` sees text); in sentences mode it
starts from zero at every ``<s>``. Per layer it records the hidden state ``h``, the LSTM's cell
state ``c``, and the gates, recomputed from the weights with PyTorch's equations:

    GRU    r = σ(W_ir x + b_ir + W_hr h + b_hr)      z = σ(... the z rows ...)
           n = tanh(W_in x + b_in + r * (W_hn h + b_hn))          h' = (1 - z) * n + z * h
    LSTM   i, f, o = σ(W_i* x + b_i* + W_h* h + b_h*)   g = tanh(...)
           c' = f * c + i * g                                      h' = o * tanh(c')

The recurrence runs here in numpy on the model's weights (`state_dict()`, either engine, in
the model's dtype); tests/test_analyze_activations.py checks that ``h`` equals the engine's own
forward pass. `write_npz` writes every array; `write_lstmvis` writes the files LSTMVis reads
(docs/analysis.md, section Activations; needs h5py, the ``hdf5`` extra); `plot_heatmap` draws
the most active units of one sentence (matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..files import atomic_write_bytes, atomic_write_files, check_name, make_dir
from ..text import BOS, EOS

NAMES = {"rnn": ("h",), "gru": ("h", "r", "z", "n"), "lstm": ("h", "c", "i", "f", "g", "o")}
"""cell -> what is recorded per layer: the hidden state first, then the cell state and gates."""
MODES = ("stream", "sentences")


@dataclass
class Activations:
    """One row per token read: `tokens` (T,) as written in the text (``<s>``, ``</s>`` around
    each sentence; unknown words as they are, their id `unk_id`), `ids` (T,) the ids the model
    read, `offsets` (S+1,) sentence s is rows offsets[s]:offsets[s+1], and per layer a dict of
    (T, H) arrays named by NAMES[cell]."""

    cell: str
    mode: str
    tokens: list[str]
    ids: np.ndarray  # (T,) int64
    offsets: np.ndarray  # (S+1,) int64
    layers: list[dict[str, np.ndarray]]  # per layer: name -> (T, H)
    nonlinearity: str = "tanh"  # the rnn cell's (tanh or relu)

    @property
    def names(self) -> tuple[str, ...]:
        return NAMES[self.cell]

    @property
    def num_sentences(self) -> int:
        return len(self.offsets) - 1

    def rows(self, sentence: int) -> slice:
        """The rows of sentence `sentence` (0-based; negative counts from the end)."""
        s = range(self.num_sentences)[sentence]  # IndexError when out of range
        return slice(int(self.offsets[s]), int(self.offsets[s + 1]))

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything as named arrays: tokens, ids, offsets, and NAME_lN (h_l0, c_l0, i_l0, ...)."""
        out = {"tokens": np.array(self.tokens, dtype=str), "ids": self.ids, "offsets": self.offsets,
               "cell": np.array(self.cell), "mode": np.array(self.mode)}
        for n, layer in enumerate(self.layers):
            out.update({f"{name}_l{n}": layer[name] for name in self.names})
        return out


# ---------------------------------------------------------------- computing them


def activations(lm, sentences: str | Iterable[str], mode: str | None = None) -> Activations:
    """The activations of `lm` (an rnnkit.api.LanguageModel) over `sentences` (a string is one
    sentence). `mode`: stream | sentences; default how the model was trained (stream when the
    model directory does not say)."""
    if isinstance(sentences, str):
        sentences = [sentences]
    mode = mode or lm.info.get("train", {}).get("batching", "stream")
    if mode not in MODES:
        raise ConfigError(f"mode must be stream or sentences, got {mode!r}")
    tokens, offsets = _layout(lm.tokenizer, sentences)
    ids = np.asarray(lm.vocab.encode(tokens), dtype=np.int64)
    starts = np.zeros(len(ids), dtype=bool)
    starts[offsets[:-1]] = mode == "sentences"  # the state is reset at these rows
    layers = run_layers(lm.config, lm.model.state_dict(), ids, starts)
    return Activations(lm.config.cell, mode, tokens, ids, offsets, layers, lm.config.nonlinearity)


def _layout(tokenizer, sentences: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """<s> tokens </s> per sentence, one list; and where each sentence starts (S+1,)."""
    tokens, offsets = [], [0]
    for s in sentences:
        tokens += [BOS, *tokenizer.tokenize(s), EOS]
        offsets.append(len(tokens))
    return tokens, np.asarray(offsets, dtype=np.int64)


def run_layers(cfg, params: dict[str, np.ndarray], ids: np.ndarray, starts: np.ndarray) -> list[dict]:
    """Every layer over the ids (T,), the state reset to zero before rows where `starts`;
    per layer name -> (T, H) in the parameters' dtype."""
    X = params["embedding.weight"][ids]  # (T, D)
    layers = []
    for n in range(cfg.num_layers):
        w = [params[f"rnn.{k}_l{n}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        layer = _run_layer(cfg.cell, cfg.nonlinearity, X, *w, starts)
        layers.append(layer)
        X = layer["h"]  # the next layer reads this one's outputs
    return layers


def _run_layer(cell, nonlinearity, X, W_ih, W_hh, b_ih, b_hh, starts) -> dict[str, np.ndarray]:
    """One layer, a step at a time. X (T, D) -> name -> (T, H)."""
    T, H = X.shape[0], W_hh.shape[1]
    XP = X @ W_ih.T + b_ih  # (T, G*H): the input half of every step at once
    out = {name: np.empty((T, H), dtype=X.dtype) for name in NAMES[cell]}
    zero = np.zeros(H, dtype=X.dtype)
    h = c = zero
    for t in range(T):
        if starts[t]:
            h = c = zero
        hp = h @ W_hh.T + b_hh  # (G*H,): the recurrent half
        h, c, gates = STEPS[cell](XP[t], hp, c, h, nonlinearity)
        out["h"][t] = h
        if cell == "lstm":
            out["c"][t] = c
        for name, v in gates.items():
            out[name][t] = v
    return out


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # σ(a), without overflow


def _rnn(xp, hp, c, h_prev, nonlinearity):
    a = xp + hp
    return (np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)), c, {}


def _gru(xp, hp, c, h_prev, nonlinearity):
    H = h_prev.shape[0]
    r = _sigmoid(xp[:H] + hp[:H])
    z = _sigmoid(xp[H:2 * H] + hp[H:2 * H])
    n = np.tanh(xp[2 * H:] + r * hp[2 * H:])
    return (1 - z) * n + z * h_prev, c, {"r": r, "z": z, "n": n}


def _lstm(xp, hp, c_prev, h_prev, nonlinearity):
    a = xp + hp  # (4H,): i | f | g | o
    i, f, g, o = np.split(a, 4)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, {"i": i, "f": f, "g": g, "o": o}


STEPS = {"rnn": _rnn, "gru": _gru, "lstm": _lstm}


# ---------------------------------------------------------------- files


def write_npz(acts: Activations, path: str | Path) -> Path:
    """Every array of `acts.arrays()` in one .npz (uncompressed; np.load without pickle reads it)."""
    path = Path(path)
    check_name(path)
    buf = io.BytesIO()
    np.savez(buf, **acts.arrays())
    atomic_write_bytes(path, buf.getvalue())
    return path


# LSTMVis's names (its get_states.lua / get_gates.lua): states<L> the cell state, output<L> the
# hidden state, 1-based layers; an RNN's or GRU's state is its hidden state.
LSTMVIS_NAMES = {"c": "states", "i": "input", "f": "forget", "g": "candidate", "o": "output_gate",
                 "r": "reset", "z": "update", "n": "candidate"}
LSTMVIS_FILES = ("states.h5", "words.h5", "words.dict", "lstm.yml")


def lstmvis_path(cell: str, name: str, layer: int) -> str:
    """The dataset in states.h5 holding `name` of `layer` (0-based)."""
    if name == "h":
        base = "output" if cell == "lstm" else "states"
    else:
        base = LSTMVIS_NAMES[name]
    return f"{base}{layer + 1}"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ConfigError("writing LSTMVis files needs h5py: pip install 'rnnkit[hdf5]'") from None
    return h5py


def write_lstmvis(acts: Activations, directory: str | Path, vocab, title: str = "rnnkit") -> list[Path]:
    """states.h5, words.h5, words.dict and lstm.yml in `directory` (made if missing), as one
    LSTMVis project; `vocab` is the model's (words.dict maps all its ids). Returns the paths."""
    h5py = _h5py()
    directory = make_dir(directory)
    states = {lstmvis_path(acts.cell, name, n): layer[name].astype(np.float32)
              for n, layer in enumerate(acts.layers) for name in acts.names}
    contents = {
        "states.h5": _h5_bytes(h5py, states),
        "words.h5": _h5_bytes(h5py, {"word_ids": acts.ids}),
        "words.dict": "".join(f"{_dict_word(w)} {i}\n" for i, w in enumerate(vocab.to_list())).encode("utf-8"),
        "lstm.yml": lstmvis_config(acts, title).encode("utf-8"),
    }
    paths = {directory / name: data for name, data in contents.items()}
    atomic_write_files(paths)
    return list(paths)


def _h5_bytes(h5py, datasets: dict[str, np.ndarray]) -> bytes:
    """An HDF5 file holding `datasets`, as bytes (written whole by rnnkit.files)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, a in datasets.items():
            f.create_dataset(name, data=a)
    return buf.getvalue()


_VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5"}  # ␣ ↵ ⇥


def _dict_word(token: str) -> str:
    """A token as one field of a `word id` line (LSTMVis splits the line on whitespace):
    space, newline and tab as ␣ ↵ ⇥, other whitespace as \\uXXXX."""
    out = "".join(_VISIBLE.get(ch, f"\\u{ord(ch):04x}" if ch.isspace() else ch) for ch in token)
    return out or "\u2205"  # ∅ for an empty token


def lstmvis_config(acts: Activations, title: str) -> str:
    """lstm.yml: the files and every dataset of states.h5, with how LSTMVis should scale it."""
    types = []
    for n in range(len(acts.layers)):
        for name in acts.names:
            kind = "output" if name == "h" and acts.cell == "lstm" else "state"
            extra = _lstmvis_scale(acts, name)
            types.append(f"    - {{type: {kind}, layer: {n + 1}, path: {lstmvis_path(acts.cell, name, n)}{extra}}}")
    rows, sents = len(acts.ids), acts.num_sentences
    return "\n".join([
        f"name: {json.dumps(title)}",
        f"description: {json.dumps(f'{acts.cell} activations of {sents} sentences, {rows} tokens ({acts.mode} mode)')}",
        "",
        "files:",
        "  states: states.h5  # per layer (tokens, hidden) datasets",
        "  words: words.h5  # word_ids: (tokens,) the id read at each row",
        "  dict: words.dict  # word id, per line",
        "",
        "word_sequence:",
        "  file: words",
        "  path: word_ids",
        "  dict_file: dict",
        "",
        "states:",
        "  file: states",
        "  types:",
        *types,
        "",
    ])


def _lstmvis_scale(acts: Activations, name: str) -> str:
    """LSTMVis applies tanh unless told `transform: none`: left to it only for unbounded values."""
    if name in ("i", "f", "o", "r", "z"):
        return ", unsigned: true, transform: none"  # in (0, 1)
    if name == "c":
        return ""  # unbounded, either sign
    if name == "h" and acts.cell == "rnn" and acts.nonlinearity == "relu":
        return ", unsigned: true"  # [0, inf)
    return ", transform: none"  # in (-1, 1)


# ---------------------------------------------------------------- the heat map


def top_units(values: np.ndarray, k: int, rank: str = "abs") -> np.ndarray:
    """The k units of values (T, H) with the largest mean |value| (rank abs) or variance
    (rank var) over the rows, largest first."""
    if rank not in ("abs", "var") or k < 1:
        raise ConfigError(f"top_units: rank must be abs or var and k >= 1, got {rank!r}, {k}")
    score = np.abs(values).mean(axis=0) if rank == "abs" else values.var(axis=0)
    return np.argsort(-score, kind="stable")[:k]


def plot_heatmap(acts: Activations, out: str | Path, *, sentence: int = 0, layer: int = -1, name: str = "h",
                 units: int = 20, rank: str = "abs", max_tokens: int = 80, title: str = "") -> Path:
    """A PNG: the `units` most active units of `name` in `layer` (0-based, -1 the top) over
    sentence `sentence` (0-based), tokens along x, units down y, blue < 0 < red. A long
    sentence shows its first `max_tokens` tokens."""
    plt = _pyplot()
    values, rows, tokens = _heatmap_data(acts, sentence, layer, name)
    pick = top_units(values, units, rank)
    shown_rows = min(len(tokens), max_tokens)
    grid = values[:shown_rows, pick].T  # (units, tokens)
    fig = _draw(plt, grid, tokens[:shown_rows], pick)
    head = f"{title}: " if title else ""
    by = f"mean |{name}|" if rank == "abs" else "variance"
    more = f", its first {shown_rows} of {len(tokens)} tokens" if shown_rows < len(tokens) else ""
    fig.axes[0].set_title(f"{head}{acts.cell} layer {range(len(acts.layers))[layer] + 1}, {name}\n"
                          f"the {len(pick)} most active units (by {by}), sentence {rows + 1}{more}", fontsize=10)
    out = Path(out)
    check_name(out)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return out


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("the activation heat map needs matplotlib: pip install 'rnnkit[plot]'") from None
    return plt


def _heatmap_data(acts: Activations, sentence: int, layer: int, name: str):
    """(values (T_s, H), the sentence's 0-based index, its tokens as labels)."""
    if name not in acts.names:
        raise ConfigError(f"a {acts.cell} records {', '.join(acts.names)}; there is no {name!r}")
    try:
        index = range(acts.num_sentences)[sentence]
        lay = acts.layers[layer]
    except IndexError:
        raise ConfigError(f"sentence {sentence} of {acts.num_sentences}, layer {layer} of {len(acts.layers)}: "
                          "out of range") from None
    rows = acts.rows(index)
    return lay[name][rows], index, [_label(t) for t in acts.tokens[rows]]


def _label(token: str) -> str:
    return "".join(_VISIBLE.get(ch, ch) for ch in token) or "\u2205"


def _draw(plt, grid: np.ndarray, labels: list[str], units: np.ndarray):
    """The figure: grid (units, tokens), diverging colours centred on 0 (the scale is -1..1
    when the values fit in it, as h and the gates do, else +- their largest magnitude)."""
    n_units, n_tok = grid.shape
    fig, ax = plt.subplots(figsize=(min(max(6.0, 2.5 + 0.32 * n_tok), 30), 1.4 + 0.28 * n_units))
    vmax = max(float(np.abs(grid).max()), 1.0)
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(n_tok), labels, fontsize=8)
    for label in ax.get_xticklabels():  # words upright would collide; single characters read best level
        label.set_rotation(90 if len(label.get_text()) > 1 else 0)
    ax.set_yticks(range(n_units), [f"unit {u}" for u in units], fontsize=8)
    ax.set_xlabel("token read")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02).set_label("activation")
    return fig
