"""The config dataclasses: one base class's to_dict / from_dict / validate, strict types, choices
declared once in field metadata and shared with the modules that use them."""

from __future__ import annotations

import dataclasses

import pytest

from rnnkit import config
from rnnkit.config import ModelConfig, SampleConfig, Settings, TokenizerConfig, TrainConfig
from rnnkit.errors import ConfigError

CLASSES = [ModelConfig, TokenizerConfig, TrainConfig, SampleConfig]
REQUIRED = {ModelConfig: {"vocab_size": 10}}


def make(cls, **kw):
    return cls(**{**REQUIRED.get(cls, {}), **kw})


@pytest.mark.parametrize("cls", CLASSES)
def test_every_field_has_help_and_the_base_class(cls):
    assert issubclass(cls, Settings)
    for f in dataclasses.fields(cls):
        assert f.metadata["help"].strip(), f.name
        assert all(a.startswith("-") for a in f.metadata["aliases"]), f.name


@pytest.mark.parametrize("cls", CLASSES)
def test_round_trip(cls):
    obj = make(cls)
    assert cls.from_dict(obj.to_dict()) == obj


@pytest.mark.parametrize("cls", CLASSES)
def test_unknown_key_refused(cls):
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        cls.from_dict({**REQUIRED.get(cls, {}), "colour": "red"}, where="here")


def test_missing_required_key_is_a_config_error():
    with pytest.raises(ConfigError, match="missing key.*vocab_size"):
        ModelConfig.from_dict({"cell": "gru"})


@pytest.mark.parametrize("cls,key,value,kind", [
    (TokenizerConfig, "lowercase", "no", "true or false"),
    (TokenizerConfig, "lowercase", 1, "true or false"),
    (ModelConfig, "tie_weights", "false", "true or false"),
    (TokenizerConfig, "max_vocab", 1000.0, "an integer"),
    (TokenizerConfig, "max_vocab", "1000", "an integer"),
    (TokenizerConfig, "max_vocab", True, "an integer"),
    (ModelConfig, "hidden_dim", 12.5, "an integer"),
    (TrainConfig, "lr", "0.1", "a finite number"),
    (TrainConfig, "lr", True, "a finite number"),
    (TrainConfig, "max_minutes", float("inf"), "a finite number"),
    (ModelConfig, "dropout", float("nan"), "a finite number"),
    (SampleConfig, "length_penalty", float("-inf"), "a finite number"),
    (TrainConfig, "engine", 1, "a string"),
    (SampleConfig, "seed", 1.5, "an integer or null"),
    (SampleConfig, "stop", "\n", "a list of strings"),
])
def test_strict_types(cls, key, value, kind):
    with pytest.raises(ConfigError, match=f"{key} must be {kind}"):
        cls.from_dict({**REQUIRED.get(cls, {}), key: value}, where="somewhere")


def test_a_float_field_takes_an_integer():
    assert TrainConfig.from_dict({"lr": 1, "max_minutes": 2}).lr == 1
    assert SampleConfig.from_dict({"seed": None}).seed is None


CHOICE_FIELDS = [(cls, f) for cls in CLASSES for f in dataclasses.fields(cls) if f.metadata["choices"]]


@pytest.mark.parametrize("cls,f", CHOICE_FIELDS, ids=[f.name for _, f in CHOICE_FIELDS])
def test_choices_come_from_the_metadata(cls, f):
    assert f.default in f.metadata["choices"]
    for value in f.metadata["choices"]:
        if (f.name, value) not in (("nonlinearity", "relu"), ("softmax", "adaptive")):  # need cell rnn, cutoffs
            make(cls, **{f.name: value}).validate()
    with pytest.raises(ConfigError, match=f"{f.name} must be one of {', '.join(f.metadata['choices'])}"):
        make(cls, **{f.name: "nonsense"}).validate()


def test_each_set_of_choices_is_defined_once():
    from rnnkit.data import readers

    assert readers.FORMATS is config.CORPUS_FORMATS and readers.LEVELS is config.LEVELS
    named = {name: getattr(config, name) for name in dir(config) if name.isupper() and isinstance(getattr(config, name), tuple)}
    used = {f.metadata["choices"] for cls in CLASSES for f in dataclasses.fields(cls) if f.metadata["choices"]}
    assert used <= set(named.values())
    assert len(set(named.values())) == len(named)  # no set written twice under two names


@pytest.mark.parametrize("cls,kw,word", [
    (ModelConfig, {"vocab_size": 1}, "vocab_size"),
    (ModelConfig, {"cell": "gru", "nonlinearity": "relu"}, "relu"),
    (ModelConfig, {"tie_weights": True, "embed_dim": 64}, "tie_weights"),
    (ModelConfig, {"dropout": 1.0}, "dropout"),
    (TokenizerConfig, {"max_vocab": 3}, "max_vocab"),
    (TrainConfig, {"batch_size": 0}, "batch_size"),
    (TrainConfig, {"lr_decay": 0.0}, "lr_decay"),
    (TrainConfig, {"max_minutes": -1.0}, "max_minutes"),
    (TrainConfig, {"valid_fraction": 1.0}, "valid_fraction"),
    (SampleConfig, {"temperature": 0.0}, "--temperature"),
    (SampleConfig, {"beam": 2, "num_samples": 3}, "--num-samples 3 is more than --beam 2"),
    (SampleConfig, {"stop": ["x", ""]}, "--stop ''"),
    (SampleConfig, {"seed": -1}, "--seed must be in [0, 4294967295]"),
    (SampleConfig, {"seed": 2**32}, "--seed"),
    (SampleConfig, {"length_penalty": 1e308}, "--length-penalty"),
    (TrainConfig, {"seed": -1}, "seed must be in [0, 4294967295], got -1"),
    (TrainConfig, {"seed": 2**64}, "seed"),
    (ModelConfig, {"softmax": "adaptive", "vocab_size": 10**6, "cutoffs": list(range(1, 200)), "div_value": 1e6},
     "last tail cluster"),  # div_value**199 is beyond a float: refused, not an OverflowError
])
def test_range_checks(cls, kw, word):
    with pytest.raises(ConfigError) as e:
        make(cls, **kw).validate()
    assert word in str(e.value) and "\n" not in str(e.value)


def test_defaults_and_config_json_keys_are_unchanged():
    """The keys and defaults that config.json and recipes of the previous release use."""
    assert make(ModelConfig).to_dict() == {
        "vocab_size": 10, "cell": "lstm", "nonlinearity": "tanh", "embed_dim": 128, "hidden_dim": 128,
        "num_layers": 1, "tie_weights": False, "dropout": 0.0, "embed_dropout": 0.0}
    assert TokenizerConfig().to_dict() == {"level": "word", "lowercase": False, "max_vocab": 10000, "min_count": 1,
                                           "word_split": "regex"}
    assert SampleConfig().to_dict() == {
        "temperature": 1.0, "top_k": 0, "top_p": 1.0, "greedy": False, "beam": 0, "length_penalty": 1.0,
        "max_len": 50, "min_len": 0, "num_samples": 1, "seed": None, "stop": []}
    train = TrainConfig().to_dict()
    assert list(train)[:6] == ["engine", "device", "batching", "batch_size", "seq_len", "bptt_truncate"]
    assert len(train) == 28 and train["corpus_format"] == "auto" and train["schedule"] == "plateau"


def test_seed_edges_are_accepted():
    for seed in (0, 2**32 - 1):
        TrainConfig(seed=seed).validate()
        SampleConfig(seed=seed).validate()
    config.check_seed(2**32 - 1)
    with pytest.raises(ConfigError, match="--seed: must be an integer"):
        config.check_seed(True, "--seed")


def test_check_types_checks_a_partial_section_key_by_key():
    TrainConfig.check_types({"clip": 5, "optimizer": "sgd"}, "r.toml [train]")
    with pytest.raises(ConfigError, match=r"^r.toml \[train\]: clip must be a finite number, got '5'$"):
        TrainConfig.check_types({"clip": "5"}, "r.toml [train]")
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        TrainConfig.check_types({"optimizer": "sgdd"}, "r.toml [train]")
    with pytest.raises(ConfigError, match="unknown key.*vocab_size"):
        ModelConfig.check_types({"vocab_size": 3}, "r.toml [model]", exclude=("vocab_size",))


def test_odd_keys_and_long_values_stay_on_one_line():
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"a\nb": 1, "": 2}, where="here")
    assert "\n" not in str(e.value) and "'a\\nb'" in str(e.value) and "''" in str(e.value)
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"csv_column": ["x\n" * 100]}, where="here")
    assert "\n" not in str(e.value) and len(str(e.value)) < 200
