"""The tutorial's setup on the Reddit sample: untrained loss ~ ln(V), and training lowers it."""

from __future__ import annotations

import math

import numpy as np

from rnnkit.config import ModelConfig, TokenizerConfig, TrainConfig
from rnnkit.inference.evaluate import evaluate_sentences
from rnnkit.numpy_engine import RNNLM
from rnnkit.recipes import load_recipe
from rnnkit.training import train
from rnnkit.training.corpus import prepare_corpus


def test_reddit_tutorial_recipe_trains(shared_data, tmp_path):
    recipe = load_recipe("reddit-tutorial")
    tok = TokenizerConfig(**recipe["tokenizer"])
    cfg = TrainConfig(**{**recipe["train"], "epochs": 1, "max_steps": 600})
    data = prepare_corpus(recipe["corpus"], None, tok, cfg)
    V = len(data.vocab)
    assert V > 2000  # the sample's words, capped at 8000

    untrained = RNNLM(ModelConfig(vocab_size=V, **recipe["model"]), seed=cfg.seed)
    before = evaluate_sentences(untrained, data.valid, data.vocab)
    assert abs(before.loss - math.log(V)) / math.log(V) < 0.05  # within 5% of ln(V)

    res = train(recipe["corpus"], tmp_path / "m", model=recipe["model"], tokenizer=tok, config=cfg, progress=False,
                log=lambda m: None)
    assert res.steps == 600  # one sentence per step, as the tutorial did
    assert res.valid.loss < before.loss - 0.5, (before.loss, res.valid.loss)
    assert np.isfinite(res.valid.loss)
