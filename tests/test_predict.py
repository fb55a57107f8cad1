"""Next-token predictions (rnnkit.inference.predict, LanguageModel.predict, `rnnkit predict`)
against independent paths: the model fed one token at a time with step_logprobs, sentence
scoring of the prefix with the token appended, one prompt at a time, the other engine."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest

import rnnkit
from conftest import has_torch, make_model_dir
from rnnkit.api import LanguageModel
from rnnkit.cli import main
from rnnkit.config import ModelConfig
from rnnkit.engines import build_model
from rnnkit.errors import ConfigError
from rnnkit.inference.predict import next_logprobs, top_k
from rnnkit.numpy_engine import RNNLM

PROMPTS = ["the cat sat on the", "", "a", "the dog saw a zebra", "it's a dog's life , isn't it ?", "the", "a"]


def float64(lm: LanguageModel) -> LanguageModel:
    """The same weights in float64, so that different paths agree to rounding (1e-9)."""
    lm.model = RNNLM(lm.config, lm.model.state_dict(), dtype=np.float64)
    return lm


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("m") / "model", cell="lstm", num_layers=2)


@pytest.fixture(scope="module")
def lm(model_dir) -> LanguageModel:
    return float64(rnnkit.load(model_dir))


def stepped(lm: LanguageModel, ids: list[int]) -> np.ndarray:
    """ln p(next) after feeding `ids` one token at a time with step_logprobs: (K,)."""
    hidden = lm.model.init_hidden(1)
    for i in ids:
        logp, hidden = lm.model.step_logprobs(np.array([i]), hidden)
    return logp[0]


def prompt_ids(lm: LanguageModel, text: str, bos: bool = True) -> list[int]:
    return ([lm.vocab.bos_id] if bos else []) + lm.vocab.encode(lm.tokenize(text))


def test_each_row_is_a_distribution(lm):
    logp = lm.next_token_logprobs(PROMPTS)
    assert logp.shape == (len(PROMPTS), len(lm.vocab)) and logp.dtype == np.float64
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell,layers", [("lstm", 2), ("gru", 1), ("rnn", 3)])
def test_equals_the_model_fed_one_token_at_a_time(tmp_path, cell, layers):
    lm = float64(rnnkit.load(make_model_dir(tmp_path / "m", cell=cell, num_layers=layers)))
    got = lm.next_token_logprobs(PROMPTS, batch_size=3)
    for row, text in zip(got, PROMPTS):
        np.testing.assert_allclose(row, stepped(lm, prompt_ids(lm, text)), rtol=0, atol=1e-10)


def test_equals_the_score_of_the_prefix_with_the_token_appended(lm):
    """An independent path: sentence scoring (token_logprobs, batched and padded) of `prefix w`."""
    prefix = "the dog sat on"
    logp = lm.next_token_logprobs(prefix)[0]
    base = lm.tokenize(prefix)
    checked = 0
    for w in lm.vocab.to_list()[3:]:
        if lm.tokenize(f"{prefix} {w}") != base + [w]:
            continue
        last = list(lm.full_scores(f"{prefix} {w}", eos=False))[-1]
        assert last[1] == w and last[0] == pytest.approx(logp[lm.vocab.encode([w])[0]], abs=1e-10)
        checked += 1
    assert checked >= 15
    eos = list(lm.full_scores(prefix))[-1]  # </s> after the prefix
    assert eos[0] == pytest.approx(logp[lm.vocab.eos_id], abs=1e-10)


def test_batched_equals_one_by_one_in_any_order(lm):
    together = lm.next_token_logprobs(PROMPTS, batch_size=4)
    for row, text in zip(together, PROMPTS):
        np.testing.assert_allclose(row, lm.next_token_logprobs(text)[0], rtol=0, atol=1e-12)
    rev = lm.next_token_logprobs(PROMPTS[::-1], batch_size=64)
    np.testing.assert_allclose(rev[::-1], together, rtol=0, atol=1e-12)


def test_long_prefixes_read_in_windows(lm):
    ids = [prompt_ids(lm, "the cat sat on the mat . " * 9), prompt_ids(lm, "a dog")]
    got = next_logprobs(lm.model, ids, seq_len=5)
    for row, seq in zip(got, ids):
        np.testing.assert_allclose(row, stepped(lm, seq), rtol=0, atol=1e-10)


@pytest.mark.skipif(not has_torch(), reason="torch not installed")
def test_numpy_and_torch_agree(model_dir):
    a = rnnkit.load(model_dir, engine="numpy").next_token_logprobs(PROMPTS, batch_size=3)
    b = rnnkit.load(model_dir, engine="torch", device="cpu").next_token_logprobs(PROMPTS, batch_size=3)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_adaptive_softmax_on_both_engines():
    cfg = ModelConfig(vocab_size=40, cell="lstm", embed_dim=6, hidden_dim=32, softmax="adaptive", cutoffs=[10, 20])
    model = build_model("numpy", cfg, seed=1, dtype=np.float64)
    ids = [[1, 5, 30, 12], [1], [1, 39, 2, 1, 7], [1, 25]]
    got = next_logprobs(model, ids, batch_size=3)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, rtol=0, atol=1e-12)
    for row, seq in zip(got, ids):
        hidden = model.init_hidden(1)
        for i in seq:
            want, hidden = model.step_logprobs(np.array([i]), hidden)
        np.testing.assert_allclose(row, want[0], rtol=0, atol=1e-10)
    if has_torch():
        other = build_model("torch", cfg, model.state_dict(), device="cpu")
        np.testing.assert_allclose(next_logprobs(other, ids, batch_size=3), got, rtol=0, atol=1e-5)


def test_empty_prompt_is_the_distribution_after_bos(lm):
    after_bos, _ = lm.model.step_logprobs(np.array([lm.vocab.bos_id]), lm.model.init_hidden(1))
    np.testing.assert_allclose(lm.next_token_logprobs("")[0], after_bos[0], rtol=0, atol=1e-12)


def test_no_bos_reads_the_prompt_alone(lm):
    got = lm.next_token_logprobs(["the cat", "dog"], bos=False)
    np.testing.assert_allclose(got[0], stepped(lm, prompt_ids(lm, "the cat", bos=False)), rtol=0, atol=1e-10)
    np.testing.assert_allclose(got[1], stepped(lm, prompt_ids(lm, "dog", bos=False)), rtol=0, atol=1e-10)
    with pytest.raises(ConfigError, match="nothing to condition on"):
        lm.next_token_logprobs("", bos=False)


def test_top_k_most_likely_first_ties_by_smaller_id():
    logp = np.log(np.array([[0.1, 0.3, 0.1, 0.3, 0.2], [0.2, 0.2, 0.2, 0.2, 0.2]]))
    ids, lps = top_k(logp, 3)
    assert ids.tolist() == [[1, 3, 4], [0, 1, 2]]
    np.testing.assert_allclose(np.exp(lps), [[0.3, 0.3, 0.2], [0.2, 0.2, 0.2]])
    assert top_k(logp, 0)[0].tolist()[0] == [1, 3, 4, 0, 2]  # 0: every id
    assert top_k(logp, 99)[0].shape == (2, 5)
    with pytest.raises(ConfigError, match="--top-k"):
        top_k(logp, -1)


def test_predict_pairs_are_the_sorted_distribution(lm):
    logp = lm.next_token_logprobs(PROMPTS)
    pairs = lm.predict(PROMPTS, top_k=5)
    assert len(pairs) == len(PROMPTS)
    for row, got in zip(logp, pairs):
        probs = [p for _, p in got]
        assert probs == sorted(probs, reverse=True) and len(got) == 5
        assert probs[0] == pytest.approx(np.exp(row.max()), abs=1e-12)
        for tok, p in got:
            assert p == pytest.approx(np.exp(row[lm.vocab.encode([tok])[0]]), abs=1e-12)
    one = lm.predict("the cat sat on the", top_k=0)  # a string: one list, the whole vocabulary
    assert isinstance(one[0], tuple) and len(one) == len(lm.vocab)
    assert one[:5] == pairs[0]
    assert sum(p for _, p in one) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ConfigError, match="--top-k"):
        lm.predict("the", top_k=-2)


def test_one_recurrent_step_per_prompt_token(lm, monkeypatch):
    """Count the rows the recurrence advances: each prompt token (and <s>) once per layer."""
    calls, rows = [], []
    step = lm.model._step_forward

    def counting(xp, *args, **kwargs):
        calls.append(1)
        rows.append(xp.shape[0])
        return step(xp, *args, **kwargs)

    monkeypatch.setattr(lm.model, "_step_forward", counting)
    lengths = [len(prompt_ids(lm, p)) for p in PROMPTS]
    lm.next_token_logprobs(PROMPTS, batch_size=64)
    L = lm.config.num_layers
    assert sum(rows) == L * sum(lengths)  # nothing recomputed, nothing padded
    # one batched step per position, and one more where rows of one length leave the batch
    assert len(calls) == L * (max(lengths) + len(set(lengths)) - 1)
    calls.clear(), rows.clear()
    lm.next_token_logprobs("the cat sat on the mat")  # n = 6 tokens after <s>
    assert len(calls) == sum(rows) == L * 7


def test_character_model(tmp_path):
    lm = float64(rnnkit.load(make_model_dir(tmp_path / "c", cell="gru", num_layers=1, level="char")))
    got = lm.next_token_logprobs(["the c", "ab\nc"])
    np.testing.assert_allclose(got[0], stepped(lm, prompt_ids(lm, "the c")), rtol=0, atol=1e-10)
    v = lm.vocab  # a newline is </s> <s>, as in generate
    ids = [v.bos_id] + v.encode(list("ab")) + [v.eos_id, v.bos_id] + v.encode(["c"])
    np.testing.assert_allclose(got[1], stepped(lm, ids), rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------- the command


def strict_json(line: str):
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))


def test_cli_text_prints_the_top_k_probabilities(model_dir, capsys):
    assert main(["predict", str(model_dir), "--prompt", "the cat sat", "--top-k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "the cat sat" and len(lines) == 5
    want = rnnkit.load(model_dir).predict("the cat sat", top_k=4)
    for line, (tok, p) in zip(lines[1:], want):
        _, got_tok, got_p = line.split("\t")
        assert got_tok == tok and float(got_p) == pytest.approx(p, abs=1e-6)


def test_cli_jsonl_is_strict_and_matches_the_api(model_dir, capsys):
    assert main(["predict", str(model_dir), "--prompt", "the dog", "--output-format", "jsonl", "--top-k", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    obj = strict_json(out[0])
    lm = rnnkit.load(model_dir)
    logp = lm.next_token_logprobs("the dog")[0]
    assert obj["prompt"] == "the dog" and len(obj["top"]) == len(lm.vocab)
    for t in obj["top"]:
        assert lm.vocab.encode([t["token"]])[0] == t["id"] or t["token"] == "<unk>"
        assert t["logprob"] == pytest.approx(logp[t["id"]], abs=1e-9)
        assert t["prob"] == pytest.approx(math.exp(t["logprob"]), rel=1e-12)
    assert sum(t["prob"] for t in obj["top"]) == pytest.approx(1.0, abs=1e-6)


def test_cli_dash_reads_one_prompt_per_line_from_stdin(model_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"the cat\nthe\na dog sat\n")))
    assert main(["predict", str(model_dir), "-", "--format", "jsonl", "--top-k", "3", "--batch-size", "2"]) == 0
    objs = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["prompt"] for o in objs] == ["the cat", "the", "a dog sat"]
    want = rnnkit.load(model_dir).predict(["the cat", "the", "a dog sat"], top_k=3)
    for o, w in zip(objs, want):
        assert [t["token"] for t in o["top"]] == [tok for tok, _ in w]
        np.testing.assert_allclose([t["prob"] for t in o["top"]], [p for _, p in w], rtol=0, atol=1e-9)


def test_cli_needs_exactly_one_source_of_prompts(model_dir, capsys):
    assert main(["predict", str(model_dir)]) == 1
    assert main(["predict", str(model_dir), "-", "--prompt", "the"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("rnnkit: error: ") and "--prompt" in e for e in err)


@pytest.mark.parametrize("stdin,where", [(b"the cat\n\n", "<stdin>:2"), (b"zebra quokka\n", "<stdin>:1")])
def test_cli_refuses_an_empty_or_all_unknown_prompt_naming_its_line(model_dir, monkeypatch, stdin, where):
    """Nothing to predict from: one line naming the prompt's line (the API still gives the
    distribution after <s> for an empty prefix)."""
    from faultkit import assert_one_line_error, run_cli

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    rc, _, err = run_cli(["predict", str(model_dir), "-"])
    assert_one_line_error(rc, err, where, "empty prompt" if stdin.endswith(b"\n\n") else "unknown")
    rc, _, err = run_cli(["predict", str(model_dir), "--prompt", "  "])
    assert_one_line_error(rc, err, "--prompt", "empty prompt")
