"""Configuration dataclasses: ModelConfig, TokenizerConfig, TrainConfig, SampleConfig.

Each field carries one comment. `from_dict` refuses unknown keys and `validate` refuses
out-of-range values with a ConfigError naming the field, so a typo in a recipe or a
config.json never passes silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConfigError

CELLS = ("rnn", "gru", "lstm")
ENGINE_NAMES = ("numpy", "torch")  # the engines of rnnkit.engines, in this order
GATES = {"rnn": 1, "gru": 3, "lstm": 4}

T = TypeVar("T")


def _from_dict(cls: type[T], d: dict[str, Any], where: str) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    obj = cls(**d)
    obj.validate(where)  # type: ignore[attr-defined]
    return obj


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {msg}")


@dataclass
class ModelConfig:
    vocab_size: int  # K: number of token ids, specials included
    cell: str = "lstm"  # recurrent cell: rnn | gru | lstm
    nonlinearity: str = "tanh"  # rnn cell only: tanh | relu
    embed_dim: int = 128  # D: embedding width (must equal hidden_dim when tie_weights)
    hidden_dim: int = 128  # H: recurrent state width per layer
    num_layers: int = 1  # stacked recurrent layers
    tie_weights: bool = False  # share decoder.weight with embedding.weight
    dropout: float = 0.0  # dropout between layers and on the last layer's output (training only)
    embed_dropout: float = 0.0  # dropout on the embedding output (training only)

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    def validate(self, where: str = "model config") -> None:
        _check(isinstance(self.vocab_size, int) and self.vocab_size >= 2, where, f"vocab_size must be an integer >= 2, got {self.vocab_size!r}")
        _check(self.cell in CELLS, where, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        _check(self.nonlinearity in ("tanh", "relu"), where, f"nonlinearity must be tanh or relu, got {self.nonlinearity!r}")
        _check(self.nonlinearity == "tanh" or self.cell == "rnn", where, "nonlinearity relu applies only to cell rnn")
        for name in ("embed_dim", "hidden_dim", "num_layers"):
            v = getattr(self, name)
            _check(isinstance(v, int) and 1 <= v <= 100_000, where, f"{name} must be an integer in 1..100000, got {v!r}")
        _check(not self.tie_weights or self.embed_dim == self.hidden_dim, where,
               f"tie_weights needs embed_dim == hidden_dim (got {self.embed_dim} and {self.hidden_dim})")
        for name in ("dropout", "embed_dropout"):
            v = getattr(self, name)
            _check(isinstance(v, (int, float)) and 0.0 <= v < 1.0, where, f"{name} must be in [0, 1), got {v!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model config") -> ModelConfig:
        return _from_dict(cls, d, where)


@dataclass
class TokenizerConfig:
    level: str = "word"  # word | char
    lowercase: bool = False  # lower-case text before tokenizing
    max_vocab: int = 10000  # cap on vocabulary size, specials included (0 = no cap)
    min_count: int = 1  # drop tokens seen fewer times than this in training data
    word_split: str = "regex"  # regex (our tokenizer) | whitespace (pre-tokenized corpora such as PTB)

    def validate(self, where: str = "tokenizer config") -> None:
        _check(self.level in ("word", "char"), where, f"level must be word or char, got {self.level!r}")
        _check(isinstance(self.max_vocab, int) and (self.max_vocab == 0 or self.max_vocab >= 4), where,
               f"max_vocab must be 0 (no cap) or >= 4, got {self.max_vocab!r}")
        _check(isinstance(self.min_count, int) and self.min_count >= 1, where, f"min_count must be >= 1, got {self.min_count!r}")
        _check(self.word_split in ("regex", "whitespace"), where, f"word_split must be regex or whitespace, got {self.word_split!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "tokenizer config") -> TokenizerConfig:
        return _from_dict(cls, d, where)


@dataclass
class TrainConfig:
    engine: str = "numpy"  # numpy | torch
    device: str = "auto"  # cpu | cuda | auto (torch engine only; numpy always runs on cpu)
    batching: str = "stream"  # stream (carry state across windows) | sentences (padded, state reset)
    batch_size: int = 32  # B: columns in stream mode, sentences per batch in sentence mode
    seq_len: int = 35  # T: BPTT window in stream mode; sentences longer than this are cut into windows
    bptt_truncate: int = 0  # tutorial truncation: each output's error flows back at most k steps (0 = whole window)
    epochs: int = 5  # passes over the training data
    max_steps: int = 0  # stop after this many updates (0 = no limit)
    max_minutes: float = 0.0  # stop after this much wall time (0 = no limit)
    optimizer: str = "adam"  # sgd | rmsprop | adam
    lr: float = 0.002  # learning rate (at lr_base_batch when lr_scaling is set)
    lr_scaling: str = "none"  # none | linear | sqrt: scale lr with the global batch (batch_size x processes) / lr_base_batch
    lr_base_batch: int = 32  # the global batch size that lr was tuned for
    weight_decay: float = 0.0  # L2 penalty added to gradients
    loss_reduction: str = "token"  # token: mean nats per target token | sentence: summed nats / sequences in batch (the tutorial's per-sentence SGD)
    clip: float = 5.0  # clip the global gradient norm to this (0 = off)
    schedule: str = "plateau"  # constant | plateau (x lr_decay when validation stops improving) | halve-on-rise (tutorial: on training loss) | cosine
    lr_decay: float = 0.25  # factor applied by plateau / halve-on-rise
    warmup_steps: int = 0  # linear warm-up steps (cosine and plateau)
    early_stop: int = 0  # stop after this many evaluations without improvement (0 = off)
    eval_every: int = 0  # evaluate on validation every N steps as well as each epoch (0 = epochs only)
    checkpoint_every: int = 0  # save the resumable trainer state every N steps (0 = at each evaluation)
    eval_batch_size: int = 10  # columns (stream) or sentences per batch when evaluating
    valid_fraction: float = 0.1  # held out from the end of the corpus when no --valid file is given
    amp: str = "off"  # torch on cuda: off | bf16 | fp16 (with loss scaling)
    seed: int = 0  # seeds initialisation, shuffling and dropout
    corpus_format: str = "auto"  # auto | lines | text | ptb | csv
    csv_column: str = "body"  # text column for csv corpora

    def validate(self, where: str = "train config") -> None:
        choices = {
            "engine": ENGINE_NAMES, "device": ("cpu", "cuda", "auto"), "batching": ("stream", "sentences"),
            "optimizer": ("sgd", "rmsprop", "adam"), "schedule": ("constant", "plateau", "halve-on-rise", "cosine"),
            "amp": ("off", "bf16", "fp16"), "loss_reduction": ("token", "sentence"),
            "lr_scaling": ("none", "linear", "sqrt"), "corpus_format": ("auto", "lines", "text", "ptb", "csv"),
        }
        for name, allowed in choices.items():
            v = getattr(self, name)
            _check(v in allowed, where, f"{name} must be one of {', '.join(allowed)}, got {v!r}")
        for name, lo, hi in (("batch_size", 1, 1 << 20), ("seq_len", 1, 1 << 20), ("epochs", 0, 100_000),
                             ("eval_batch_size", 1, 1 << 16), ("lr_base_batch", 1, 1 << 20)):
            v = getattr(self, name)
            _check(isinstance(v, int) and lo <= v <= hi, where, f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        for name in ("bptt_truncate", "max_steps", "warmup_steps", "early_stop", "eval_every", "checkpoint_every"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 0, where, f"{name} must be a non-negative integer, got {v!r}")
        _check(isinstance(self.lr, (int, float)) and 0 < self.lr <= 100, where, f"lr must be in (0, 100], got {self.lr!r}")
        _check(0 < self.lr_decay <= 1, where, f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        _check(self.clip >= 0, where, f"clip must be >= 0, got {self.clip!r}")
        _check(self.weight_decay >= 0, where, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        _check(self.max_minutes >= 0, where, f"max_minutes must be >= 0, got {self.max_minutes!r}")
        _check(0 < self.valid_fraction < 1, where, f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "train config") -> TrainConfig:
        return _from_dict(cls, d, where)


@dataclass
class SampleConfig:
    temperature: float = 1.0  # divide logits by this before softmax (> 0)
    top_k: int = 0  # keep only the k most likely tokens (0 = all)
    top_p: float = 1.0  # keep the smallest set whose probability reaches p (1 = all)
    greedy: bool = False  # always take the most likely token
    beam: int = 0  # beam width for beam search (0 = sample)
    length_penalty: float = 1.0  # beam search: score / length**alpha
    max_len: int = 50  # maximum tokens generated
    min_len: int = 0  # </s> is not allowed before this many tokens
    num_samples: int = 1  # independent samples
    seed: int | None = None  # RNG seed; same seed, same output
    stop: list[str] = field(default_factory=list)  # stop when the text ends with one of these

    def validate(self, where: str = "sampling options") -> None:
        _check(self.temperature > 0 and self.temperature <= 1000, where, f"--temperature must be in (0, 1000], got {self.temperature!r}")
        _check(self.top_k >= 0, where, f"--top-k must be >= 0, got {self.top_k!r}")
        _check(0 < self.top_p <= 1, where, f"--top-p must be in (0, 1], got {self.top_p!r}")
        _check(0 <= self.beam <= 1000, where, f"--beam must be in 0..1000, got {self.beam!r}")
        _check(1 <= self.max_len <= 1_000_000, where, f"--max-len must be in 1..1000000, got {self.max_len!r}")
        _check(0 <= self.min_len <= self.max_len, where, f"--min-len must be in 0..max-len ({self.max_len}), got {self.min_len!r}")
        _check(1 <= self.num_samples <= 100_000, where, f"--num-samples must be in 1..100000, got {self.num_samples!r}")
