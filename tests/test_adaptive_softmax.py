"""The adaptive softmax (`softmax = "adaptive"`): its settings, its tensor names (PyTorch's
nn.AdaptiveLogSoftmaxWithLoss, used here as an outside reference), exact probabilities, sparse
updates that give the dense numbers, the model directory, and scoring, generation and
training through the public API.

The gradient check is in test_numpy_gradcheck.py, numpy against torch in test_parity.py.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import rnnkit
from conftest import TINY_CORPUS, has_torch, reference_logprobs
from rnnkit import checkpoint, recipes
from rnnkit.cli import build_parser
from rnnkit.cli.options import given
from rnnkit.config import ModelConfig, TokenizerConfig, TrainConfig
from rnnkit.errors import CheckpointError, ConfigError
from rnnkit.numpy_engine import RNNLM
from rnnkit.params import init_params, param_shapes, tail_clusters
from rnnkit.text import Vocab, WordTokenizer

needs_torch = pytest.mark.skipif(not has_torch(), reason="torch is not installed")
OLD_KEYS = ["vocab_size", "cell", "nonlinearity", "embed_dim", "hidden_dim", "num_layers", "tie_weights", "dropout",
            "embed_dropout"]  # what rnnkit 0.1.0 reads (it refuses any other key)


def adaptive(K=40, cutoffs=(8, 20), div_value=2.0, H=8, **kw) -> ModelConfig:
    return ModelConfig(vocab_size=K, embed_dim=6, hidden_dim=H, softmax="adaptive", cutoffs=list(cutoffs),
                       div_value=div_value, **kw)


def random_params(cfg: ModelConfig, seed=0, dtype=np.float64, scale=1.0) -> dict[str, np.ndarray]:
    """Initial weights with noise on top (biases too): distributions far from uniform."""
    rng = np.random.default_rng(seed)
    return {k: (v + scale * rng.normal(0, 0.5, v.shape)).astype(dtype) for k, v in init_params(cfg, seed).items()}


def windows(K, T=6, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, K, (T, B)), rng.integers(0, K, (T, B))


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize("changes,message", [
    ({"cutoffs": []}, "softmax adaptive needs cutoffs"),
    ({"cutoffs": [8, 8]}, "cutoffs must be increasing ids inside \\(0, vocab_size 40\\)"),
    ({"cutoffs": [0, 8]}, "cutoffs must be increasing"),
    ({"cutoffs": [8, 40]}, "inside \\(0, vocab_size 40\\), got \\[8, 40\\]"),
    ({"cutoffs": [8.0]}, "cutoffs must be a list of integers"),
    ({"cutoffs": (8, 20)}, "cutoffs must be a list of integers"),
    ({"tie_weights": True, "embed_dim": 8}, "tie_weights does not apply to softmax adaptive"),
    ({"div_value": 0.5}, "div_value must be in \\[1, 1e6\\]"),
    ({"cutoffs": [4, 8, 16, 24], "div_value": 2.0}, "project to hidden_dim // div_value\\*\\*4 = 0 units"),
    ({"softmax": "full"}, "cutoffs apply only to softmax adaptive"),
    ({"softmax": "full", "cutoffs": [], "div_value": 2.0}, "div_value applies only to softmax adaptive"),
])
def test_bad_settings_refused(changes, message):
    d = {**adaptive().to_dict(), **changes}
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict(d, where="model")


def test_config_json_keys():
    full = ModelConfig(vocab_size=40)
    assert list(full.to_dict()) == OLD_KEYS  # a full-softmax model stays readable by rnnkit 0.1.0
    assert ModelConfig.from_dict({"vocab_size": 40}).softmax == "full"
    d = adaptive().to_dict()
    assert (d["softmax"], d["cutoffs"], d["div_value"]) == ("adaptive", [8, 20], 2.0)
    assert "div_value" not in adaptive(div_value=4.0, H=64).to_dict()  # a default is left out
    assert ModelConfig.from_dict(d) == adaptive()


def test_command_line_and_recipe():
    args = build_parser().parse_args(["train", "c.txt", "--out", "o", "--softmax", "adaptive", "--cutoffs", "2000",
                                      "10000", "--div-value", "2"])
    assert given(args, ModelConfig, "model.") == {"softmax": "adaptive", "cutoffs": [2000, 10000], "div_value": 2.0}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "c.txt", "--out", "o", "--cutoffs", "many"])
    # rnnkit train checks the options before the corpus gives the vocabulary size
    ModelConfig.check_options(given(args, ModelConfig, "model."), "model options")
    for bad, message in [({"softmax": "adaptive", "cutoffs": [10000, 2000]}, "increasing"),
                         ({"softmax": "adaptive", "cutoffs": "2000"}, "list of integers"),
                         ({"cutoffs": [2000]}, "only to softmax adaptive")]:
        with pytest.raises(ConfigError, match=f"model options: .*{message}"):
            ModelConfig.check_options(bad, "model options")
    recipe = recipes.load_recipe("ptb-small-adaptive")
    base = recipes.load_recipe("ptb-small")
    cfg = ModelConfig.from_dict({"vocab_size": 10001, **recipe["model"]})  # PTB's vocabulary, specials included
    assert cfg.adaptive and not cfg.tie_weights
    # ptb-small's training but for the length of the run (its steps cost a third as much)
    longer = ("epochs", "max_steps")
    assert {k: v for k, v in recipe["train"].items() if k not in longer} == \
        {k: v for k, v in base["train"].items() if k not in longer} and recipe["tokenizer"] == base["tokenizer"]
    assert recipe["train"]["max_steps"] > base["train"]["max_steps"]


# ---------------------------------------------------------------------------- names, shapes, probabilities


@needs_torch
@pytest.mark.parametrize("H,K,cutoffs,div_value", [(8, 40, [8, 20], 2.0), (10, 50, [5], 3.0), (200, 267000,
                                                   [20000, 60000], 4.0)])
def test_tensor_names_are_pytorchs(H, K, cutoffs, div_value):
    from torch import nn

    cfg = ModelConfig(vocab_size=K, hidden_dim=H, softmax="adaptive", cutoffs=cutoffs, div_value=div_value)
    module = nn.AdaptiveLogSoftmaxWithLoss(H, K, cutoffs, div_value=div_value, head_bias=True)
    want = {f"decoder.{n}": tuple(p.shape) for n, p in module.named_parameters()}
    got = {k: v for k, v in param_shapes(cfg).items() if k.startswith("decoder.")}
    assert list(got.items()) == list(want.items())
    assert [(c.start, c.stop) for c in tail_clusters(cfg)] == list(zip(cutoffs, cutoffs[1:] + [K]))


@needs_torch
def test_pytorch_module_agrees_with_the_numpy_reference():
    """nn.AdaptiveLogSoftmaxWithLoss loads the decoder.* tensors as they are and computes the
    same target log-probabilities, loss and full distribution as numpy_engine.output."""
    import torch
    from torch import nn

    cfg = adaptive(K=60, cutoffs=[10, 25, 40], div_value=1.5, H=12)
    params = random_params(cfg, seed=3)
    model = RNNLM(cfg, params, dtype=np.float64)
    module = nn.AdaptiveLogSoftmaxWithLoss(12, 60, [10, 25, 40], div_value=1.5, head_bias=True).double()
    module.load_state_dict({k[len("decoder."):]: torch.from_numpy(v) for k, v in params.items()
                            if k.startswith("decoder.")})
    rng = np.random.default_rng(0)
    h, y = rng.normal(size=(200, 12)), rng.integers(0, 60, 200)
    with torch.no_grad():
        ref = module(torch.from_numpy(h), torch.from_numpy(y))
        full = module.log_prob(torch.from_numpy(h)).numpy()
    np.testing.assert_allclose(model.output.target_logprobs(h, y), ref.output.numpy(), rtol=1e-12)
    loss, _, _ = model.output.loss_backward(h, y, np.ones(200))
    assert loss / 200 == pytest.approx(float(ref.loss), rel=1e-12)
    np.testing.assert_allclose(model.output.log_probs(h), full, rtol=1e-12, atol=1e-13)


def engines_under_test():
    return ["numpy", "torch"] if has_torch() else ["numpy"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("engine", engines_under_test())
def test_probabilities_sum_to_one(engine, dtype):
    from rnnkit import engines

    cfg = adaptive(K=300, cutoffs=[20, 100, 200], div_value=2.0, H=16, cell="gru")
    model = engines.build_model(engine, cfg, random_params(cfg, seed=1, scale=3.0), device="cpu", dtype=dtype)
    x, y = windows(300, T=5, B=4)
    logits, _, _, _ = model.forward(x)  # the adaptive softmax's logits are log-probabilities
    np.testing.assert_allclose(np.exp(logits.astype(np.float64)).sum(-1), 1.0, rtol=0, atol=1e-6)
    hidden = model.init_hidden(4)
    whole, _ = model.token_logprobs(x, y)
    for t in range(5):
        logp, hidden = model.step_logprobs(x[t], hidden)
        assert logp.shape == (4, 300) and logp.dtype == np.float64
        np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, rtol=0, atol=1e-6)
        np.testing.assert_allclose(logp[np.arange(4), y[t]], whole[t], rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert abs(np.exp(logp).max() - 1.0) > 0.01  # a peaked distribution, not a uniform one


# ---------------------------------------------------------------------------- sparse updates


def trained(engine: str, cfg: ModelConfig, tc: TrainConfig, dense: bool, steps=4):
    """Weights after `steps` Trainer steps, with the Trainer's sparse paths on or (dense) off."""
    from rnnkit import engines

    model = engines.build_model(engine, cfg, init_params(cfg, 2, np.float64), device="cpu", dtype=np.float64)
    trainer = engines.get_engine(engine).Trainer(model, tc)
    if dense:
        trainer.sparse_embedding = trainer.sparse_step = False
    hidden = None
    for i in range(steps):
        x, y = windows(cfg.vocab_size, seed=20 + i)
        _, _, hidden = trainer.step(x % 30, y % 15, None, hidden)  # ids >= 30 never seen, no target past 15
    return model.state_dict(), trainer


@pytest.mark.parametrize("opt", ["sgd", "adam", "rmsprop"])
@pytest.mark.parametrize("engine", engines_under_test())
def test_sparse_updates_give_the_dense_numbers(engine, opt):
    cfg = adaptive(K=40, cutoffs=[8, 20], cell="lstm", num_layers=2)
    tc = TrainConfig(optimizer=opt, lr=0.5 if opt == "sgd" else 0.01, clip=0.3)
    sparse, trainer = trained(engine, cfg, tc, dense=False)
    dense, _ = trained(engine, cfg, tc, dense=True)
    assert trainer.sparse_embedding and trainer.sparse_step == (opt == "sgd")
    for k in dense:
        if engine == "numpy":  # the same arithmetic in the same order
            assert np.array_equal(sparse[k], dense[k]), k
        else:  # coalescing sums a row's contributions in another order
            np.testing.assert_allclose(sparse[k], dense[k], rtol=1e-12, atol=1e-15, err_msg=k)
    start = init_params(cfg, 2, np.float64)
    if opt == "sgd":  # rows never looked up, and the cluster no target reached, are untouched
        assert np.array_equal(sparse["embedding.weight"][30:], start["embedding.weight"][30:])
        assert np.array_equal(sparse["decoder.tail.1.1.weight"], start["decoder.tail.1.1.weight"])
    else:  # Adam and RMSprop move every entry with a moment, as the dense update does
        assert not np.array_equal(sparse["decoder.tail.0.1.weight"], start["decoder.tail.0.1.weight"])


@pytest.mark.parametrize("engine", engines_under_test())
def test_weight_decay_and_tied_weights_stay_dense(engine):
    full = ModelConfig(vocab_size=40, embed_dim=8, hidden_dim=8, tie_weights=True)
    _, tied = trained(engine, full, TrainConfig(optimizer="sgd", lr=0.5), dense=False, steps=1)
    _, decayed = trained(engine, adaptive(), TrainConfig(optimizer="sgd", lr=0.5, weight_decay=0.01), dense=False,
                         steps=1)
    assert not tied.sparse_step and not tied.sparse_embedding and not decayed.sparse_step


# ---------------------------------------------------------------------------- the model directory, the API


def model_dir(path, cfg_changes=None, seed=0):
    tok = WordTokenizer()
    vocab = Vocab.build([tok.tokenize(s) for s in TINY_CORPUS])
    K = len(vocab)
    cfg = ModelConfig(vocab_size=K, cell="lstm", embed_dim=6, hidden_dim=8, num_layers=2, softmax="adaptive",
                      cutoffs=[6, 15], div_value=2.0, **(cfg_changes or {}))
    params = {k: v.astype(np.float32) for k, v in random_params(cfg, seed).items()}
    return checkpoint.save(path, cfg, TokenizerConfig(), vocab, params), cfg, params


def test_model_directory_round_trip_and_refusals(tmp_path):
    d, cfg, params = model_dir(tmp_path / "m")
    model = json.loads((d / "config.json").read_text())["model"]
    assert model["softmax"] == "adaptive" and model["cutoffs"] == [6, 15] and model["div_value"] == 2.0
    ck = checkpoint.load(d)
    assert ck.model == cfg and all(np.array_equal(ck.params[k], params[k]) for k in params)
    assert sorted(ck.params) == sorted(param_shapes(cfg))
    model["cutoffs"] = [6, 16]  # the tensors no longer fit
    (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()), "model": model}))
    with pytest.raises(CheckpointError, match=r"tensor decoder.head.weight|tensor decoder.tail.0.1.weight"):
        checkpoint.load(d)
    model.update(softmax="full", cutoffs=[], div_value=4.0)
    (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()), "model": model}))
    with pytest.raises(CheckpointError, match="missing tensor.*decoder.weight"):
        checkpoint.load(d)




@pytest.mark.parametrize("engine", engines_under_test())
def test_scoring_and_generation_through_the_api(tmp_path, engine):
    d, _, _ = model_dir(tmp_path / "m", seed=4)
    lm = rnnkit.load(d, engine=engine, device="cpu")
    sents = TINY_CORPUS + ["the zebra sang .", ""]
    for s in sents:
        got = [t[0] for t in lm.full_scores(s)]
        np.testing.assert_allclose(got, reference_logprobs(lm, s), rtol=0, atol=2e-5)
        assert lm.score(s) == pytest.approx(sum(got), abs=1e-4)
    numpy_lm = rnnkit.load(d, engine="numpy")
    assert lm.perplexity(sents) == pytest.approx(numpy_lm.perplexity(sents), rel=1e-5)
    text = lm.generate("the cat", max_len=12, seed=3)
    greedy = lm.generate("the", max_len=5, greedy=True)
    assert isinstance(text, str) and text and greedy == numpy_lm.generate("the", max_len=5, greedy=True)
    assert lm.generate("the", beam=3, max_len=5)


def test_training_an_adaptive_model(tmp_path):
    from rnnkit.training import train

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TINY_CORPUS * 8) + "\n", encoding="utf-8")
    res = train(corpus, tmp_path / "m", model={"hidden_dim": 8, "embed_dim": 8, "softmax": "adaptive",
                                                "cutoffs": [6, 15], "div_value": 2.0},
                config=TrainConfig(max_steps=6, batch_size=4, seq_len=6, optimizer="sgd", lr=0.5),
                progress=False, log=lambda *a, **k: None)
    lm = rnnkit.load(res.model_dir)
    assert lm.config.adaptive and lm.config.cutoffs == [6, 15] and np.isfinite(res.valid.loss)
    assert lm.evaluate(TINY_CORPUS).count > 0


def test_gradcheck_command(capsys):
    from rnnkit.cli import main

    assert main(["gradcheck", "--softmax", "adaptive", "--cell", "gru"]) == 0
    out = capsys.readouterr().out
    assert "adaptive softmax (cut-offs 3 5)" in out and "decoder.tail.1.1.weight" in out and "PASS" in out


def test_every_config_field_is_documented_in_the_format():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "format.md").read_text(encoding="utf-8")
    for f in dataclasses.fields(ModelConfig):
        assert f"| `{f.name}` |" in text, f.name
    for name in ("decoder.head.weight", "decoder.head.bias", "decoder.tail.{i}.0.weight", "decoder.tail.{i}.1.weight"):
        assert f"`{name}`" in text, name
