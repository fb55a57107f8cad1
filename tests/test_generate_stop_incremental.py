"""Stop strings in generation are tested incrementally (inference.generate: each new token's
piece from the tokenizer's joiner, only the text's tail searched) with exactly the outputs of
the plain definition: detokenize all the generated tokens and test the whole text after each
token. The reference here is that definition, written out; `LanguageModel.generate` must equal
it over random seeds, word and character models, one or several samples, and stop strings cut
from the unstopped text across token boundaries (and ones that never match); and the sampling
loop never detokenizes the whole text (detokenize patched to fail)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.config import SampleConfig
from rnnkit.inference.generate import _banned, filter_logprobs, generate, prime, sample
from rnnkit.text import EOS

PROMPTS = {"word": ["", "the cat", "it 's a"], "char": ["", "the c"]}
MAX_LEN = {"word": 30, "char": 60}


@pytest.fixture(scope="module", params=["word", "char"])
def lm(request, tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("stop") / request.param, level=request.param))


def is_char(lm) -> bool:
    return lm.tokenizer_config.level == "char"


def whole_text(lm, ids: list[int]) -> str:
    """The generated text of `ids`, detokenized from scratch (</s> a newline for characters)."""
    return lm.tokenizer.detokenize(["\n" if is_char(lm) and t == EOS else t for t in lm.vocab.decode(ids)])


def reference_loop(lm, hidden, cur, cfg: SampleConfig, rng) -> list[list[int]]:
    """continue_from with the plain stop test: the whole text detokenized and tested each step."""
    model, vocab, char = lm.model, lm.vocab, is_char(lm)
    if char and len(cur) > 1:
        return [reference_loop(lm, model.reorder_hidden(hidden, np.array([b])), cur[b:b + 1], cfg, rng)[0]
                for b in range(len(cur))]
    out: list[list[int]] = [[] for _ in cur]
    done = np.zeros(len(cur), dtype=bool)
    for t in range(cfg.max_len):
        logp, hidden = model.step_logprobs(cur, hidden)
        z = filter_logprobs(logp, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                            banned=_banned(vocab, logp.shape[1], allow_eos=t >= cfg.min_len))
        nxt = z.argmax(axis=1) if cfg.greedy else sample(z, rng)
        for b in np.flatnonzero(~done):
            if nxt[b] == vocab.eos_id and not char:
                done[b] = True
                continue
            out[b].append(int(nxt[b]))
            done[b] = any(whole_text(lm, out[b]).endswith(s) for s in cfg.stop)
        if done.all():
            break
        cur = nxt
        if char and cur[0] == vocab.eos_id:
            _, hidden = model.step_logprobs(cur, hidden)
            cur = np.array([vocab.bos_id], dtype=np.int64)
    return out


def reference(lm, prompt: str, **opts) -> tuple[list[list[int]], list[str]]:
    """(ids, texts) of the plain definition, the texts built as LanguageModel.generate builds them."""
    cfg = SampleConfig(**opts)
    hidden, cur = prime(lm.model, [lm.vocab.bos_id] + lm.prompt_ids(prompt), cfg.num_samples)
    outs = reference_loop(lm, hidden, cur, cfg, np.random.default_rng(cfg.seed))
    if is_char(lm):
        return outs, [prompt + whole_text(lm, o) for o in outs]
    tok = lm.tokenizer
    return outs, [tok.detokenize(tok.tokenize(prompt) + lm.vocab.decode(o)) if prompt else whole_text(lm, o)
                  for o in outs]


def stop_strings(lm, outs: list[list[int]], rng) -> list[str]:
    """Pieces of the unstopped texts ending where a token ends, 1-8 characters long: most of
    them cross a token boundary (the space between two words included)."""
    stops = []
    for ids in outs:
        ends = sorted({len(whole_text(lm, ids[:n])) for n in range(1, len(ids) + 1)} - {0})
        text = whole_text(lm, ids)
        for e in rng.choice(ends, size=min(3, len(ends)), replace=False) if ends else ():
            stops.append(text[max(0, e - int(rng.integers(1, 9))):e])
    return stops


@pytest.mark.parametrize("num_samples", [1, 3])
def test_generate_with_stops_equals_the_whole_text_definition(lm, num_samples):
    kind = "char" if is_char(lm) else "word"
    stopped = 0
    for prompt in PROMPTS[kind]:
        for seed in range(5):
            base = {"seed": seed, "max_len": MAX_LEN[kind], "num_samples": num_samples}
            plain, _ = reference(lm, prompt, **base)
            rng = np.random.default_rng(seed)
            stops = stop_strings(lm, plain, rng)
            for stop in [[s] for s in stops] + [stops[:3], stops[-2:] + ["never-there"], ["zq"]]:
                ids, want = reference(lm, prompt, **base, stop=stop)
                got = lm.generate(prompt, **base, stop=stop)
                assert (got if num_samples > 1 else [got]) == want, (prompt, base, stop)
                stopped += sum(len(a) < len(b) for a, b in zip(ids, plain))
    assert stopped > 20  # the stops did cut generations short


def test_the_sampling_loop_never_detokenizes_the_whole_text(lm, monkeypatch):
    prompt = PROMPTS["char" if is_char(lm) else "word"][1]
    cfg = SampleConfig(seed=4, max_len=40, num_samples=2, stop=["zq", "e t"])
    want, _ = reference(lm, prompt, seed=4, max_len=40, num_samples=2, stop=["zq", "e t"])
    monkeypatch.setattr(lm.tokenizer, "detokenize", lambda tokens: pytest.fail("detokenize called"))
    assert generate(lm.model, lm.vocab, lm.prompt_ids(prompt), cfg, tokenizer=lm.tokenizer,
                    line_breaks=is_char(lm)) == want
