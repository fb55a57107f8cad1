"""The settings: ModelConfig, TokenizerConfig, TrainConfig, SampleConfig, and their choices.

Each field is declared once with `setting(default, help, choices=..., aliases=...)` (or
`field(default_factory=..., metadata=about(help))`): its default, its help text, its allowed
values and its old command-line spellings live in the field's metadata, where the command
line (`rnnkit.cli.options`), recipes and config.json all read them. Each set of choices is
defined once, below; other modules import it (rnnkit.data.readers: CORPUS_FORMATS, LEVELS). The base class `Settings` gives every config `to_dict`, `from_dict` (unknown keys
and wrong types refused) and `validate` (types, choices, then the class's own range checks),
each failure a ConfigError naming the field, so a typo never passes silently; `check_types`
checks a partial dict (a recipe section) key by key the same way. Numbers are finite (NaN and
Inf are refused like a string would be) and seeds lie in [0, SEED_MAX]. ModelConfig's
keys added after rnnkit 0.1.0 (LATER_KEYS: softmax, cutoffs, div_value) leave its to_dict()
when they hold their defaults, so a full-softmax config.json is still one that 0.1.0 reads.
`ModelConfig.check_options` validates model options before the corpus gives the vocabulary.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import typing
from dataclasses import MISSING, dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar, Self

from .errors import ConfigError

# ---------------------------------------------------------------------------- the choices, once

CELLS = ("rnn", "gru", "lstm")
NONLINEARITIES = ("tanh", "relu")
ENGINE_NAMES = ("numpy", "torch")  # the engines of rnnkit.engines, in this order
DEVICES = ("cpu", "cuda", "auto")
BATCHING_MODES = ("stream", "sentences")  # also the evaluation modes
OPTIMIZERS = ("sgd", "rmsprop", "adam")
SCHEDULES = ("constant", "plateau", "halve-on-rise", "cosine")
AMP_MODES = ("off", "bf16", "fp16")
LOSS_REDUCTIONS = ("token", "sentence")
LR_SCALINGS = ("none", "linear", "sqrt")
CORPUS_FORMATS = ("auto", "lines", "text", "ptb", "csv")
LEVELS = ("word", "char")
WORD_SPLITS = ("regex", "whitespace")
SOFTMAXES = ("full", "adaptive")

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
SEED_MAX = 2**32 - 1  # seeds numpy's and torch's generators both take, on every platform


def about(help: str, choices: tuple[str, ...] | None = None, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """A field's metadata: its help text, its allowed values, its old command-line spellings."""
    return {"help": help, "choices": choices, "aliases": tuple(aliases)}


def setting(default: Any = MISSING, help: str = "", *, choices: tuple[str, ...] | None = None,
            aliases: tuple[str, ...] = ()) -> Any:
    """A dataclass field with a default (none: required) that carries `about(...)` metadata."""
    return field(default=default, metadata=about(help, choices, aliases))


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """An integer, or a finite float (NaN and Inf are not numbers a setting can hold)."""
    if isinstance(v, bool) or not isinstance(v, Real):
        return False
    return _is_int(v) or math.isfinite(v)


def check_seed(seed: Any, name: str = "seed") -> None:
    """ConfigError unless `seed` is an integer in [0, SEED_MAX] (`name` says which option)."""
    _check(_is_int(seed) and 0 <= seed <= SEED_MAX, name, f"must be an integer in [0, {SEED_MAX}], got {seed!r}")


def field_default(f: dataclasses.Field) -> Any:
    """A field's default value (a fresh one for a default_factory)."""
    return f.default_factory() if f.default_factory is not MISSING else f.default


# field type -> (what a value must be, the test)
_TYPES: dict[Any, tuple[str, Any]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", _is_int),
    float: ("a finite number", _is_number),
    str: ("a string", lambda v: isinstance(v, str)),
    int | None: ("an integer or null", lambda v: v is None or _is_int(v)),
    list[str]: ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v)),
    list[int]: ("a list of integers", lambda v: isinstance(v, list) and all(_is_int(i) for i in v)),
}


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """{field name: its type} of a config class, the annotations resolved."""
    return typing.get_type_hints(cls)


class Settings:
    """The behaviour the four configs share: to_dict, from_dict, validate."""

    WHERE: ClassVar[str] = "config"  # how messages name the config when no `where` is given

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | None = None) -> Self:
        """A validated config from a dict (a recipe section, config.json); unknown keys refused."""
        where = where or cls.WHERE
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = key_names(set(d) - set(names))
        _check(not unknown, where, f"unknown key(s) {unknown} (known: {', '.join(sorted(names))})")
        missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                   if f.default is MISSING and f.default_factory is MISSING and f.name not in d]
        _check(not missing, where, f"missing key(s) {', '.join(missing)}")
        obj = cls(**d)
        obj.validate(where)
        return obj

    @classmethod
    def check_types(cls, d: dict[str, Any], where: str, *, exclude: tuple[str, ...] = ()) -> None:
        """Refuse, key by key, the unknown keys (and those of `exclude`) of a partial config (a
        recipe section, before the command line and the corpus complete it) and values of the
        wrong type or outside their choices; ranges wait for the whole config."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in exclude}  # type: ignore[arg-type]
        unknown = key_names(k for k in d if k not in fields)
        _check(not unknown, where, f"unknown key(s) {unknown} (known: {', '.join(sorted(fields))})")
        for name, v in d.items():
            _check_field(cls, fields[name], v, where)

    def validate(self, where: str | None = None) -> None:
        """ConfigError naming the first field of the wrong type, outside its choices or its range."""
        where = where or self.WHERE
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            _check_field(type(self), f, getattr(self, f.name), where)
        self.check_ranges(where)

    def check_ranges(self, where: str) -> None:
        """The class's own checks, run after types and choices passed."""

    def _in_range(self, where: str, name: str, lo: float, hi: float, *, hi_open: bool = False) -> None:
        v = getattr(self, name)
        inside = lo <= v < hi if hi_open else lo <= v <= hi
        _check(inside, where, f"{name} must be in [{lo}, {hi}{')' if hi_open else ']'}, got {v!r}")


def _check_field(cls: type, f: dataclasses.Field, v: Any, where: str) -> None:
    """ConfigError unless `v` has field `f`'s type and, where it has choices, is one of them."""
    kind, ok = _TYPES[field_types(cls)[f.name]]
    _check(ok(v), where, f"{f.name} must be {kind}, got {_shown(v)}")
    allowed = f.metadata.get("choices")
    _check(not allowed or v in allowed, where, f"{f.name} must be one of {', '.join(allowed or ())}, got {v!r}")


def key_names(keys: Any) -> str:
    """Keys as a message lists them, sorted: a name as it is, anything else (spaces, newlines,
    an empty key) as its repr, so that the message stays one line."""
    return ", ".join(k if isinstance(k, str) and k.isidentifier() else repr(k) for k in sorted(keys, key=str))


def _shown(v: Any, limit: int = 60) -> str:
    """A value as a message shows it: its repr, cut short."""
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class ModelConfig(Settings):
    WHERE: ClassVar[str] = "model config"

    vocab_size: int = setting(help="K: number of token ids, specials included (taken from the corpus)")
    cell: str = setting("lstm", "recurrent cell", choices=CELLS)
    nonlinearity: str = setting("tanh", "activation of the rnn cell (gru and lstm use tanh)",
                                choices=NONLINEARITIES)
    embed_dim: int = setting(128, "D: embedding width (equal to the hidden width when the weights are tied)",
                             aliases=("--embed",))
    hidden_dim: int = setting(128, "H: width of the hidden state of every layer", aliases=("--hidden",))
    num_layers: int = setting(1, "L: stacked recurrent layers", aliases=("--layers",))
    tie_weights: bool = setting(False, "the decoder uses the embedding matrix (needs embed dim = hidden dim)",
                                aliases=("--tie", "--tied"))
    dropout: float = setting(0.0, "training only: dropout between layers and on the top layer's output, in [0, 1)")
    embed_dropout: float = setting(0.0, "training only: dropout on the embedding output, in [0, 1)")
    softmax: str = setting("full", "output layer: full (one softmax over the vocabulary) or adaptive (a head "
                                   "over the frequent words and one entry per tail cluster, each cluster a "
                                   "softmax over a reduced projection: for large vocabularies)", choices=SOFTMAXES)
    cutoffs: list[int] = field(default_factory=list, metadata=about(
        "adaptive softmax: the ids where the head's shortlist and each tail cluster end, increasing, inside "
        "(0, vocab size); ids are ordered by frequency, so 2000 10000 puts the 2,000 most frequent tokens in the "
        "head and two clusters behind it"))
    div_value: float = setting(4.0, "adaptive softmax: tail cluster i projects the hidden state to "
                                    "hidden_dim // div_value**(i+1) units")

    # written to config.json only when they differ from their defaults, so that a full-softmax model
    # directory stays readable by rnnkit 0.1.0 (which refuses keys it does not know)
    LATER_KEYS: ClassVar[tuple[str, ...]] = ("softmax", "cutoffs", "div_value")

    @classmethod
    def check_options(cls, d: dict[str, Any], where: str) -> None:
        """Validate model options before the corpus gives the vocabulary size (`rnnkit train`'s
        early check): against a stand-in vocabulary just large enough for any cut-off."""
        cutoffs = d.get("cutoffs")
        ints = [c for c in cutoffs if _is_int(c)] if isinstance(cutoffs, list) else []
        cls.from_dict({"vocab_size": max([2, *(c + 1 for c in ints)]), **d}, where)

    @property
    def gates(self) -> int:
        return GATES[self.cell]

    @property
    def adaptive(self) -> bool:
        return self.softmax == "adaptive"

    def to_dict(self) -> dict[str, Any]:
        """The fields; those of LATER_KEYS only when they differ from their defaults."""
        d = super().to_dict()
        defaults = {f.name: field_default(f) for f in dataclasses.fields(self) if f.name in self.LATER_KEYS}
        return {k: v for k, v in d.items() if k not in defaults or v != defaults[k]}

    def check_ranges(self, where: str) -> None:
        _check(self.vocab_size >= 2, where, f"vocab_size must be >= 2, got {self.vocab_size!r}")
        _check(self.nonlinearity == "tanh" or self.cell == "rnn", where, "nonlinearity relu applies only to cell rnn")
        for name in ("embed_dim", "hidden_dim", "num_layers"):
            self._in_range(where, name, 1, 100_000)
        _check(not self.tie_weights or self.embed_dim == self.hidden_dim, where,
               f"tie_weights needs embed_dim == hidden_dim (got {self.embed_dim} and {self.hidden_dim})")
        for name in ("dropout", "embed_dropout"):
            self._in_range(where, name, 0, 1, hi_open=True)
        if self.adaptive:
            self._check_adaptive(where)
        else:
            _check(not self.cutoffs, where, "cutoffs apply only to softmax adaptive (got softmax full)")
            _check(self.div_value == 4.0, where, "div_value applies only to softmax adaptive (got softmax full)")

    def _check_adaptive(self, where: str) -> None:
        c, K = self.cutoffs, self.vocab_size
        _check(bool(c), where, "softmax adaptive needs cutoffs (e.g. --cutoffs 2000 10000)")
        _check(all(a < b for a, b in itertools.pairwise(c)) and c[0] > 0 and c[-1] < K, where,
               f"cutoffs must be increasing ids inside (0, vocab_size {K}), got {c}")
        _check(not self.tie_weights, where, "tie_weights does not apply to softmax adaptive (its head and tail "
                                            "matrices are not the embedding)")
        _check(1.0 <= self.div_value <= 1e6, where, f"div_value must be in [1, 1e6], got {self.div_value!r}")
        try:
            smallest = int(self.hidden_dim // self.div_value ** len(c))
        except OverflowError:  # div_value**n beyond a float: no unit left
            smallest = 0
        _check(smallest >= 1, where, f"the last tail cluster would project to hidden_dim // div_value**{len(c)} "
                                     f"= {smallest} units: use fewer cutoffs or a smaller div_value")


@dataclass
class TokenizerConfig(Settings):
    WHERE: ClassVar[str] = "tokenizer config"

    level: str = setting("word", "tokens are words or characters", choices=LEVELS)
    lowercase: bool = setting(False, "lower-case the text before tokenizing")
    max_vocab: int = setting(10000, "vocabulary cap, specials included (0 = no cap, else >= 4)")
    min_count: int = setting(1, "drop tokens seen fewer times than this in the training data")
    word_split: str = setting("regex", "word level: regex (rnnkit's tokenizer) or whitespace (pre-tokenized "
                                       "text such as PTB)", choices=WORD_SPLITS)

    def check_ranges(self, where: str) -> None:
        _check(self.max_vocab == 0 or self.max_vocab >= 4, where,
               f"max_vocab must be 0 (no cap) or >= 4, got {self.max_vocab!r}")
        _check(self.min_count >= 1, where, f"min_count must be >= 1, got {self.min_count!r}")


@dataclass
class TrainConfig(Settings):
    WHERE: ClassVar[str] = "train config"

    engine: str = setting("numpy", "numpy (no torch needed) or torch", choices=ENGINE_NAMES)
    device: str = setting("auto", "torch engine: where to run (the numpy engine always runs on cpu)",
                          choices=DEVICES)
    batching: str = setting("stream", "stream: the corpus as one sequence cut into columns, hidden state carried "
                                      "across windows; sentences: padded sentences, hidden state reset",
                            choices=BATCHING_MODES)
    batch_size: int = setting(32, "B: columns (stream) or sentences (sentences) per batch")
    seq_len: int = setting(35, "T: BPTT window; longer sentences are cut into windows of this length")
    bptt_truncate: int = setting(0, "the tutorial's truncation: each output's error flows back at most k "
                                    "steps (numpy engine; 0 = the whole window)")
    epochs: int = setting(5, "passes over the training data")
    max_steps: int = setting(0, "stop after this many updates (0 = no limit)")
    max_minutes: float = setting(0.0, "stop after this much wall time (0 = no limit)")
    optimizer: str = setting("adam", "update rule", choices=OPTIMIZERS)
    lr: float = setting(0.002, "learning rate (at lr_base_batch when lr_scaling is set)")
    lr_scaling: str = setting("none", "scale lr with the global batch (batch size x processes) / lr_base_batch",
                              choices=LR_SCALINGS)
    lr_base_batch: int = setting(32, "the global batch size that lr was tuned for")
    weight_decay: float = setting(0.0, "L2 penalty added to the gradients")
    loss_reduction: str = setting("token", "token: mean nats per target token; sentence: summed nats / "
                                           "sequences in the batch (the tutorial's per-sentence SGD)",
                                  choices=LOSS_REDUCTIONS)
    clip: float = setting(5.0, "clip the global gradient norm to this (0 = off)")
    schedule: str = setting("plateau", "learning-rate schedule: plateau multiplies by lr_decay when validation "
                                       "stops improving, halve-on-rise when the training loss rises (the "
                                       "tutorial)", choices=SCHEDULES)
    lr_decay: float = setting(0.25, "factor applied by plateau and halve-on-rise, in (0, 1]")
    warmup_steps: int = setting(0, "linear warm-up steps (cosine and plateau)")
    early_stop: int = setting(0, "stop after this many evaluations without improvement (0 = off)")
    eval_every: int = setting(0, "also evaluate every N steps, not only after each epoch (0 = epochs only)")
    checkpoint_every: int = setting(0, "save the resumable trainer state every N steps (0 = at each evaluation)")
    eval_batch_size: int = setting(10, "columns (stream) or sentences per batch when evaluating")
    valid_fraction: float = setting(0.1, "share held out from the end of the corpus when there is no "
                                         "validation file or split, in (0, 1)")
    amp: str = setting("off", "mixed precision, torch engine on cuda (fp16 with loss scaling)", choices=AMP_MODES)
    seed: int = setting(0, "seeds initialisation, shuffling and dropout")
    corpus_format: str = setting("auto", "auto: .csv is csv, ptb.*.txt is ptb, anything else lines (one sentence "
                                         "per line); text: running text, split into sentences",
                                 choices=CORPUS_FORMATS, aliases=("--format",))
    csv_column: str = setting("body", "the text column of a csv corpus")

    def check_ranges(self, where: str) -> None:
        for name, lo, hi in (("batch_size", 1, 1 << 20), ("seq_len", 1, 1 << 20), ("epochs", 0, 100_000),
                             ("eval_batch_size", 1, 1 << 16), ("lr_base_batch", 1, 1 << 20)):
            self._in_range(where, name, lo, hi)
        for name in ("bptt_truncate", "max_steps", "warmup_steps", "early_stop", "eval_every", "checkpoint_every",
                     "clip", "weight_decay", "max_minutes"):
            _check(getattr(self, name) >= 0, where, f"{name} must be >= 0, got {getattr(self, name)!r}")
        _check(0 < self.lr <= 100, where, f"lr must be in (0, 100], got {self.lr!r}")
        _check(0 < self.lr_decay <= 1, where, f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        _check(0 < self.valid_fraction < 1, where, f"valid_fraction must be in (0, 1), got {self.valid_fraction!r}")
        _check(0 <= self.seed <= SEED_MAX, where, f"seed must be in [0, {SEED_MAX}], got {self.seed!r}")


@dataclass
class SampleConfig(Settings):
    WHERE: ClassVar[str] = "sampling options"

    temperature: float = setting(1.0, "divide the logits by this: > 1 more random, < 1 more conservative")
    top_k: int = setting(0, "sample among the k most likely tokens (0 = all)")
    top_p: float = setting(1.0, "nucleus sampling: keep the smallest set of tokens whose probability reaches p "
                                "(1 = all)")
    greedy: bool = setting(False, "always take the most likely token")
    beam: int = setting(0, "beam search width N (0 = sample)")
    length_penalty: float = setting(1.0, "beam search ranks by logprob / length**alpha")
    max_len: int = setting(50, "maximum new tokens")
    min_len: int = setting(0, "</s> is not allowed before this many tokens")
    num_samples: int = setting(1, "how many texts: independent samples, or with --beam the best hypotheses, "
                                  "best first (at most the beam width)", aliases=("-n",))
    seed: int | None = setting(None, "random seed: the same seed gives the same text on either engine "
                                     "(default: a different text each run)")
    stop: list[str] = field(default_factory=list, metadata=about("stop when the text ends with this string "
                                                                  "(repeatable)"))

    def check_ranges(self, where: str) -> None:
        _check(0 < self.temperature <= 1000, where, f"--temperature must be in (0, 1000], got {self.temperature!r}")
        _check(self.top_k >= 0, where, f"--top-k must be >= 0, got {self.top_k!r}")
        _check(0 < self.top_p <= 1, where, f"--top-p must be in (0, 1], got {self.top_p!r}")
        _check(0 <= self.beam <= 1000, where, f"--beam must be in 0..1000, got {self.beam!r}")
        _check(1 <= self.max_len <= 1_000_000, where, f"--max-len must be in 1..1000000, got {self.max_len!r}")
        _check(0 <= self.min_len <= self.max_len, where,
               f"--min-len must be in 0..max-len ({self.max_len}), got {self.min_len!r}")
        _check(1 <= self.num_samples <= 100_000, where, f"--num-samples must be in 1..100000, got {self.num_samples!r}")
        _check(self.beam == 0 or self.num_samples <= self.beam, where,
               f"--num-samples {self.num_samples} is more than --beam {self.beam}: beam search keeps at most "
               f"--beam hypotheses")
        _check(all(self.stop), where, "--stop '' would stop before the first token: give a non-empty string")
        _check(self.seed is None or 0 <= self.seed <= SEED_MAX, where,
               f"--seed must be in [0, {SEED_MAX}], got {self.seed!r}")
        _check(-10 <= self.length_penalty <= 10, where,
               f"--length-penalty must be in [-10, 10], got {self.length_penalty!r}")
