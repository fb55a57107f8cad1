"""The PyTorch engine's model: `LMModule` (an nn.Module) and the `RNNLM` wrapper.

`LMModule` holds submodules named `embedding` (nn.Embedding), `rnn` (nn.RNN / nn.GRU /
nn.LSTM, time-major) and `decoder` (nn.Linear, or nn.AdaptiveLogSoftmaxWithLoss for softmax
adaptive: adaptive.py), so its parameter names are exactly `rnnkit.params.param_shapes(config)`;
with `tie_weights` the decoder's weight *is* the embedding's Parameter and is left out of the
exported hidden dict. On a GPU nn.RNN/GRU/LSTM run cuDNN kernels. What `forward` returns as
logits is the decoder's output for the full softmax and the log-probabilities for the adaptive
one (docs/contracts.md). The Trainer may switch the embedding to sparse gradients
(`embedding.sparse`, SGD without weight decay); `forward_backward` still returns dense ones.

`RNNLM` wraps the module with the engine contract of docs/contracts.md: numpy in, numpy
out; the recurrent hidden is a list with one entry per layer, a (B, H) tensor or an (h, c)
pair of them for the LSTM (numpy arrays are accepted too, so a hidden from the numpy engine
can be fed in). Internally it is stacked into nn.RNN's (L, B, H) layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..params import check_params, init_params, param_shapes
from .adaptive import adaptive_loss, adaptive_target_logprobs
from .fused import fused_linear_cross_entropy, target_logprobs

_DTYPES = {
    "float32": torch.float32, "float64": torch.float64,
}


def resolve_dtype(dtype: Any) -> torch.dtype:
    """np.float32 / np.float64 / torch dtypes / their names -> torch.float32 or torch.float64."""
    if isinstance(dtype, torch.dtype):
        td = dtype
    else:
        try:
            td = _DTYPES.get(np.dtype(dtype).name)
        except TypeError:
            td = None
    if td not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype: the torch engine supports float32 and float64, got {dtype!r}")
    return td


def resolve_device(device: str | torch.device) -> torch.device:
    """'cpu' | 'cuda' | 'cuda:N' | 'auto' -> torch.device; 'cuda' without CUDA is a ConfigError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} requested but CUDA is not available "
                              f"(torch {torch.__version__}); use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"device must be cpu, cuda or auto, got {name!r}")


def refuse_bptt_truncate(bptt_truncate: int) -> None:
    """The torch engine runs full BPTT only: bptt_truncate > 0 is a ConfigError (docs/contracts.md)."""
    if bptt_truncate:
        raise ConfigError("bptt_truncate is only supported by the numpy engine "
                          f"(got bptt_truncate={bptt_truncate}); use engine numpy or 0")


class LMModule(nn.Module):
    """Embedding -> dropout -> stacked RNN/GRU/LSTM -> dropout -> linear decoder or adaptive softmax."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        K, D, H, L = config.vocab_size, config.embed_dim, config.hidden_dim, config.num_layers
        self.embedding = nn.Embedding(K, D)
        self.embed_drop = nn.Dropout(config.embed_dropout)
        between = config.dropout if L > 1 else 0.0  # nn.RNN warns on dropout with one layer
        if config.cell == "rnn":
            self.rnn = nn.RNN(D, H, L, nonlinearity=config.nonlinearity, dropout=between)
        elif config.cell == "gru":
            self.rnn = nn.GRU(D, H, L, dropout=between)
        else:
            self.rnn = nn.LSTM(D, H, L, dropout=between)
        self.out_drop = nn.Dropout(config.dropout)
        if config.adaptive:
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(H, K, list(config.cutoffs), div_value=config.div_value,
                                                         head_bias=True)
        else:
            self.decoder = nn.Linear(H, K)
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, x: torch.Tensor, packed: Any = None, y: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]:
        """x (T, B) int64 -> logits (T, B, K) and the new packed ((L, B, H) or an (h, c) pair).

        With targets y (T, B) and mask (T, B): the summed masked cross-entropy instead of the
        logits, through the fused chunked decoder (see fused.py, adaptive.py)."""
        out, packed = self.hidden_states(x, packed)
        h = out.reshape(-1, out.shape[-1])
        if y is None:
            logits = self.decoder.log_prob(h) if self.config.adaptive else self.decoder(h)
            return logits.reshape(*out.shape[:-1], -1), packed
        return self.loss(h, y.reshape(-1), mask.reshape(-1)), packed

    def loss(self, h: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Summed masked nats -ln p(y | h) of rows h (N, H), y (N,), mask (N,)."""
        if self.config.adaptive:
            return adaptive_loss(h, self.decoder, y, mask)
        return fused_linear_cross_entropy(h, self.decoder.weight, self.decoder.bias, y, mask)

    def target_logprobs(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """ln p(y | h) per row (N,), the decoder run only as far as the targets need."""
        if self.config.adaptive:
            return adaptive_target_logprobs(h, self.decoder, y)
        return target_logprobs(h, self.decoder.weight, self.decoder.bias, y)

    def log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """ln p(k | h) for every id (N, K)."""
        if self.config.adaptive:
            return self.decoder.log_prob(h)
        return torch.log_softmax(self.decoder(h), dim=-1)

    def hidden_states(self, x: torch.Tensor, packed: Any = None) -> tuple[torch.Tensor, Any]:
        """Embedding -> dropout -> RNN -> dropout: the top layer's outputs (T, B, H) and the new packed."""
        emb = self.embedding(x)
        if self.embed_drop.p > 0:
            emb = self.embed_drop(emb)
        out, packed = self.rnn(emb, packed)
        if self.out_drop.p > 0:
            out = self.out_drop(out)
        return out, packed

    def export_names(self) -> list[str]:
        """Names of the exported parameters, in param_shapes order."""
        return list(param_shapes(self.config))


def _to_tensor(a: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


class RNNLM:
    """The torch engine's language model (same class shape as numpy_engine.RNNLM)."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray] | None = None, *,
                 dtype: Any = np.float32, seed: int = 0, device: str = "cpu"):
        config.validate()
        self.config = config
        self.dtype = resolve_dtype(dtype)
        self.device = resolve_device(device)
        self.module = LMModule(config).to(dtype=self.dtype)
        if params is None:
            params = init_params(config, seed, np.float64 if self.dtype == torch.float64 else np.float32)
        self.load_state_dict(params)

    # ------------------------------------------------------------------ parameters
    @property
    def is_lstm(self) -> bool:
        return self.config.cell == "lstm"

    def named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """(name, Parameter) in param_shapes order; a tied decoder weight appears once, as
        embedding.weight."""
        own = dict(self.module.named_parameters())
        return [(n, own[n]) for n in self.module.export_names()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters as numpy arrays in the model's dtype (float32 unless built float64)."""
        return {n: p.detach().cpu().numpy().copy() for n, p in self.named_parameters()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        """Copy arrays named as rnnkit.params into the module; names and shapes are checked."""
        check_params(d, self.config, "torch_engine.RNNLM parameters")
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(_to_tensor(d[name], p.device, p.dtype))
        self.module.to(self.device)
        self.module.rnn.flatten_parameters()

    def num_parameters(self) -> int:
        return int(sum(p.numel() for _, p in self.named_parameters()))

    # ------------------------------------------------------------------ hidden
    def init_hidden(self, batch_size: int) -> list:
        H = self.config.hidden_dim
        def z() -> torch.Tensor:
            return torch.zeros(batch_size, H, dtype=self.dtype, device=self.device)
        return [(z(), z()) if self.is_lstm else z() for _ in range(self.config.num_layers)]

    def pack_hidden(self, hidden: list | None, batch_size: int) -> Any:
        """Per-layer list (torch or numpy) -> nn.RNN's (L, B, H) tensor, or (h, c) for lstm."""
        if hidden is None:
            hidden = self.init_hidden(batch_size)
        if len(hidden) != self.config.num_layers:
            raise ConfigError(f"hidden: expected {self.config.num_layers} layer(s), got {len(hidden)}")
        dev, dt = self.device, self.dtype
        if self.is_lstm:
            h = torch.stack([_to_tensor(s[0], dev, dt) for s in hidden])
            c = torch.stack([_to_tensor(s[1], dev, dt) for s in hidden])
            return (h, c)
        return torch.stack([_to_tensor(s, dev, dt) for s in hidden])

    def unpack_hidden(self, packed: Any) -> list:
        """nn.RNN's packed -> per-layer list of detached tensors."""
        if self.is_lstm:
            h, c = packed
            return [(hl, cl) for hl, cl in zip(h.detach().unbind(0), c.detach().unbind(0))]
        return list(packed.detach().unbind(0))

    def reorder_hidden(self, hidden: list, index: Any) -> list:
        """Pick batch rows `index` (beam search) from every layer of the hidden."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long, device=self.device)
        def pick(s: Any) -> torch.Tensor:
            return _to_tensor(s, self.device, self.dtype).index_select(0, idx)
        if self.is_lstm:
            return [(pick(h), pick(c)) for h, c in hidden]
        return [pick(s) for s in hidden]

    @contextlib.contextmanager
    def batch_workers(self) -> Iterator[int]:
        """How many independent batches to run at once (see rnnkit.parallel). On CPU: one per
        intra-op thread, with torch's process-wide thread count set to 1 until the block
        ends (other threads' torch ops in this process run single-threaded meanwhile)."""
        n = torch.get_num_threads()
        if self.device.type != "cpu" or n <= 1:
            yield 1
            return
        torch.set_num_threads(1)
        try:
            yield n
        finally:
            torch.set_num_threads(n)

    # ------------------------------------------------------------------ forward
    def _ids(self, a: Any, what: str = "x") -> torch.Tensor:
        """Token ids -> int64 tensor on the device; out-of-range ids are a ValueError here
        (on CUDA they would be a device-side assert that kills the process)."""
        ids = np.asarray(a, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(f"{what} has token ids outside 0..{self.config.vocab_size - 1}")
        return torch.as_tensor(ids, device=self.device)

    def loss_terms(self, logits: torch.Tensor, y: Any, mask: Any) -> tuple[torch.Tensor, int]:
        """Summed nats over the mask (a 0-dim tensor, not synced) and the token count."""
        T, B, K = logits.shape
        yt = self._ids(y, "y").reshape(-1)
        # the adaptive softmax's logits are already log-probabilities
        nll_of = F.nll_loss if self.config.adaptive else F.cross_entropy
        if mask is None:
            return nll_of(logits.reshape(-1, K), yt, reduction="sum"), T * B
        m = np.asarray(mask)
        nll = nll_of(logits.reshape(-1, K), yt, reduction="none")
        mt = torch.as_tensor(m.reshape(-1), device=self.device, dtype=nll.dtype)
        return (nll * mt).sum(), int(np.count_nonzero(m))

    def forward(self, x: Any, y: Any = None, mask: Any = None, hidden: list | None = None
                ) -> tuple[np.ndarray, float, int, list]:
        """Eval-mode forward: (logits (T, B, K) numpy, loss_sum, num_tokens, hidden)."""
        x = np.asarray(x)
        self.module.eval()
        with torch.no_grad():
            logits, packed = self.module(self._ids(x), self.pack_hidden(hidden, x.shape[1]))
            loss, n = (torch.zeros(()), 0) if y is None else self.loss_terms(logits, y, mask)
        return logits.cpu().numpy(), float(loss), n, self.unpack_hidden(packed)

    def token_logprobs(self, x: Any, y: Any, hidden: list | None = None, mask: Any = None
                       ) -> tuple[np.ndarray, list]:
        """ln p(y_t | x_<=t) as float64 (T, B), and the hidden after the window. Where `mask`
        (T, B) is false the decoder is skipped and the entry is 0.0."""
        x = np.asarray(x)
        self.module.eval()
        with torch.inference_mode():
            out, packed = self.module.hidden_states(self._ids(x), self.pack_hidden(hidden, x.shape[1]))
            h, ys = out.reshape(-1, out.shape[-1]), self._ids(y, "y").reshape(-1)
            if mask is None:
                logp = self.module.target_logprobs(h, ys)
            else:
                rows = torch.as_tensor(np.flatnonzero(np.asarray(mask).reshape(-1)), device=self.device)
                logp = torch.zeros(h.shape[0], dtype=h.dtype, device=self.device)
                logp[rows] = self.module.target_logprobs(h.index_select(0, rows), ys.index_select(0, rows))
        return logp.reshape(x.shape).to(torch.float64).cpu().numpy(), self.unpack_hidden(packed)

    def step_logprobs(self, tokens: Any, hidden: list | None = None) -> tuple[np.ndarray, list]:
        """One time step for generation: log-probabilities (B, K) float64 and the new hidden."""
        tok = np.asarray(tokens).reshape(1, -1)
        self.module.eval()
        with torch.no_grad():
            out, packed = self.module.hidden_states(self._ids(tok, "tokens"), self.pack_hidden(hidden, tok.shape[1]))
            logp = self.module.log_probs(out[0])
        return logp.to(torch.float64).cpu().numpy(), self.unpack_hidden(packed)

    def forward_backward(self, x: Any, y: Any, mask: Any = None, hidden: list | None = None,
                         bptt_truncate: int = 0) -> tuple[float, int, dict[str, np.ndarray], list]:
        """Loss sum, token count, gradients of the SUMMED loss (numpy, named as params), hidden.

        Runs without dropout (eval mode); dropout applies only inside Trainer.step."""
        refuse_bptt_truncate(bptt_truncate)
        x = np.asarray(x)
        self.module.eval()
        self.module.zero_grad(set_to_none=True)
        m = np.ones(x.shape) if mask is None else np.asarray(mask)
        with torch.enable_grad():  # the training path: the fused decoder and loss
            loss, packed = self.module(self._ids(x), self.pack_hidden(hidden, x.shape[1]), y=self._ids(y, "y"),
                                       mask=torch.as_tensor(m, device=self.device, dtype=self.dtype))
            loss.backward()
        grads = {}
        for name, p in self.named_parameters():
            g = torch.zeros_like(p) if p.grad is None else p.grad.to_dense() if p.grad.is_sparse else p.grad
            grads[name] = g.detach().cpu().numpy().copy()
        self.module.zero_grad(set_to_none=True)
        return float(loss.detach()), int(np.count_nonzero(m)), grads, self.unpack_hidden(packed)
