"""The one-step function of a model directory as ONNX, for decoders outside Python.

`StepModule` rebuilds one recurrent step from the model's tensors with plain operations (the
equations of docs/format.md): the embedding row of each token, each layer's cell step, the
output layer's log-probabilities (full softmax, tied or not, or the adaptive softmax's head
and tail clusters). Its graph, exported with torch.onnx's TorchScript exporter (no network,
no onnxscript needed), has

    inputs   tokens int64 (B,), h float32 (L, B, H) [, c float32 (L, B, H) for lstm]
    outputs  logprobs float32 (B, K), h_out (L, B, H) [, c_out (L, B, H)]

with B dynamic. `export` returns the file's bytes and its sidecar (what a decoder needs: the
vocabulary, the special ids, L, H, K, the cell, the names above; the same facts, less the
vocabulary, ride in the ONNX metadata_props); `rnnkit export` (cli/export.py) writes them.
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError

OPSET = 17
SIDECAR_FORMAT = "rnnkit-onnx-step"


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


class StepModule(nn.Module):
    """tokens (B,), h (L, B, H)[, c] -> logprobs (B, K), h_out[, c_out]: one step of the model."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]):
        super().__init__()
        self.config = config
        self.embedding = _t(params["embedding.weight"])
        self.layers = [tuple(_t(params[f"rnn.{w}_l{n}"]) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                       for n in range(config.num_layers)]
        if config.adaptive:
            self.head = (_t(params["decoder.head.weight"]), _t(params["decoder.head.bias"]))
            self.tails = [(_t(params[f"decoder.tail.{i}.0.weight"]), _t(params[f"decoder.tail.{i}.1.weight"]))
                          for i in range(len(config.cutoffs))]
        else:
            weight = params["embedding.weight" if config.tie_weights else "decoder.weight"]
            self.decoder = (_t(weight), _t(params["decoder.bias"]))

    def cell(self, layer: tuple, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None):
        """One layer's step: (h_t, c_t) (c_t None but for lstm)."""
        w_ih, w_hh, b_ih, b_hh = layer
        gi, gh = F.linear(x, w_ih, b_ih), F.linear(h, w_hh, b_hh)
        cell = self.config.cell
        if cell == "rnn":
            act = torch.relu if self.config.nonlinearity == "relu" else torch.tanh
            return act(gi + gh), None
        if cell == "gru":
            ir, iz, in_ = gi.chunk(3, dim=-1)
            hr, hz, hn = gh.chunk(3, dim=-1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            n = torch.tanh(in_ + r * hn)
            return (1 - z) * n + z * h, None
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c_t = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_t), c_t

    def log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """ln p(k | h) (B, K): the full softmax, or the adaptive head with each cluster's share."""
        if not self.config.adaptive:
            return torch.log_softmax(F.linear(h, *self.decoder), dim=-1)
        head = torch.log_softmax(F.linear(h, *self.head), dim=-1)
        c0 = self.config.cutoffs[0]
        parts = [head[:, :c0]]
        for i, (proj, out) in enumerate(self.tails):
            parts.append(head[:, c0 + i:c0 + i + 1] + torch.log_softmax(F.linear(F.linear(h, proj), out), dim=-1))
        return torch.cat(parts, dim=-1)

    def forward(self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None = None):
        x = F.embedding(tokens, self.embedding)
        hs, cs = [], []
        for n, layer in enumerate(self.layers):
            x, c_n = self.cell(layer, x, h[n], None if c is None else c[n])
            hs.append(x)
            cs.append(c_n)
        logp = self.log_probs(x)
        if c is None:
            return logp, torch.stack(hs)
        return logp, torch.stack(hs), torch.stack(cs)


def io_names(config: ModelConfig) -> tuple[list[str], list[str]]:
    """The graph's input and output names."""
    if config.cell == "lstm":
        return ["tokens", "h", "c"], ["logprobs", "h_out", "c_out"]
    return ["tokens", "h"], ["logprobs", "h_out"]


def onnx_bytes(config: ModelConfig, params: dict[str, np.ndarray], opset: int = OPSET) -> bytes:
    """The serialized ONNX model of StepModule (batch axis dynamic)."""
    inputs, outputs = io_names(config)
    L, H = config.num_layers, config.hidden_dim
    example = (torch.zeros(2, dtype=torch.int64), *(torch.zeros(L, 2, H) for _ in inputs[1:]))
    axes = {name: {0 if name in ("tokens", "logprobs") else 1: "batch"} for name in inputs + outputs}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        try:
            torch.onnx.export(StepModule(config, params).eval(), example, buf, dynamo=False, input_names=inputs,
                              output_names=outputs, dynamic_axes=axes, opset_version=opset)
        except (RuntimeError, ValueError) as e:  # e.g. an opset this torch cannot write
            raise ConfigError(f"--opset {opset}: torch.onnx cannot export: {' '.join(str(e).split())}") from None
    return buf.getvalue()


def sidecar(ckpt: Any, onnx_name: str, model_dir: str) -> dict[str, Any]:
    """What a decoder needs beside the graph (written as FILE.json), from a checkpoint.Checkpoint."""
    config, vocab = ckpt.model, ckpt.vocab
    inputs, outputs = io_names(config)
    return {"format": SIDECAR_FORMAT, "format_version": 1, "onnx": onnx_name, "model_dir": model_dir,
            "cell": config.cell, "num_layers": config.num_layers, "hidden_dim": config.hidden_dim,
            "vocab_size": config.vocab_size, "softmax": config.softmax,
            "unk_id": vocab.unk_id, "bos_id": vocab.bos_id, "eos_id": vocab.eos_id,
            "inputs": inputs, "outputs": outputs, "logprobs": "natural log",
            "tokenizer": ckpt.tokenizer.to_dict(), "vocab": vocab.to_list()}


def _with_metadata(data: bytes, meta: dict[str, Any]) -> bytes:
    """`data` with the sidecar's facts (not the vocabulary, not the tokenizer) as metadata_props,
    each value a string (JSON for numbers and lists)."""
    import onnx

    model = onnx.load_from_string(data)
    for key, value in meta.items():
        if key not in ("vocab", "tokenizer"):
            model.metadata_props.add(key=f"rnnkit.{key}", value=value if isinstance(value, str) else json.dumps(value))
    return model.SerializeToString()


def export(ckpt: Any, onnx_name: str, model_dir: str, opset: int = OPSET) -> tuple[bytes, dict[str, Any]]:
    """A checkpoint.Checkpoint -> (the ONNX file's bytes, the sidecar's object); writes nothing."""
    meta = sidecar(ckpt, onnx_name, model_dir)
    return _with_metadata(onnx_bytes(ckpt.model, ckpt.params, opset), meta), meta
