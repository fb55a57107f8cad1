"""`rnnkit demo`: train a small word-level model offline on the Python documentation that
ships with CPython, then show what it learned: validation perplexity against a unigram
baseline, generated sentences, and the scores of a grammatical and a scrambled sentence."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..config import TokenizerConfig, TrainConfig

GOOD = "the function returns a new list of the items ."
SCRAMBLED = "list the returns of items new a function the ."

DEMO_MODEL = {"cell": "gru", "embed_dim": 96, "hidden_dim": 128, "num_layers": 1}
DEMO_TOKENIZER = TokenizerConfig(level="word", lowercase=True, max_vocab=5000, min_count=2)


def run_demo(out: Path, minutes: float = 1.0, engine: str = "numpy", device: str = "auto", seed: int = 0,
             progress: bool = True) -> int:
    from .. import api
    from ..training import train

    t0 = time.perf_counter()
    say = print
    say(f"rnnkit demo: training a {DEMO_MODEL['cell'].upper()} language model on the Python documentation "
        f"(pydoc_data, ships with CPython) for about {minutes:g} minute(s) on the {engine} engine...")
    cfg = TrainConfig(engine=engine, device=device, batching="stream", batch_size=32, seq_len=32, epochs=50,
                      max_minutes=minutes, optimizer="adam", lr=0.004, schedule="plateau", lr_decay=0.5, clip=5.0,
                      seed=seed, eval_every=0)
    res = train("python-docs", out, model=dict(DEMO_MODEL), tokenizer=DEMO_TOKENIZER, config=cfg,
                progress=progress, log=lambda m: print("  " + m, file=sys.stderr))
    lm = api.load(out, engine=engine, device=device)
    better = res.valid.ppl < res.unigram.ppl
    say("")
    say(f"Validation perplexity: {res.valid.ppl:,.1f}   (unigram baseline: {res.unigram.ppl:,.1f}; "
        f"{'the RNN is better' if better else 'not yet better - train longer with --minutes'})")
    say(f"  trained {res.steps:,} steps on {res.tokens:,} tokens in {res.seconds:.0f} s; "
        f"vocabulary {len(lm.vocab):,} words, {lm.model.num_parameters():,} parameters")
    say("")
    say("Generated sentences (temperature 0.8):")
    for text in lm.generate(temperature=0.8, num_samples=3, seed=seed, max_len=30, min_len=4):
        say(f"  {text}")
    say("")
    good, bad = lm.score(GOOD), lm.score(SCRAMBLED)
    say("Log-probability (natural log) of a sentence and the same words scrambled:")
    say(f"  {good:8.2f}  {GOOD}")
    say(f"  {bad:8.2f}  {SCRAMBLED}")
    say(f"  the model finds the grammatical one {'more' if good > bad else 'LESS'} likely "
        f"(by a factor of e^{abs(good - bad):.1f})")
    say("")
    say(f"The model is in {out}/ (config.json, vocab.json, model.safetensors, metrics.jsonl). Try next:")
    say(f"  rnnkit generate {out} --prompt \"the list\" --num-samples 3 --temperature 0.7")
    say(f"  echo \"{GOOD}\" | rnnkit score {out} - --per-token")
    say("  rnnkit gradcheck --cell lstm --layers 2")
    say("  rnnkit train --help")
    say(f"(demo took {time.perf_counter() - t0:.0f} s)")
    return 0 if better else 1
