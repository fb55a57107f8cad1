"""What the CLI-number tests (tests/test_cli_numbers_*.py) share: the float64 reference `Ref`
(stepping a copy of a model directory's weights one token at a time), the module-scoped
fixtures `word_dir`, `ref` and `sents_file`, the test sentences, log-base factors and
tolerance, and the reader of `rnnkit eval`'s line with its reference (`parse_eval`,
`ref_eval`, `assert_printed`).

Fixtures are used by name: a test module binds them with `word_dir = cli_numbers_kit.word_dir`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import make_model_dir
from rnnkit import checkpoint
from rnnkit.numpy_engine import RNNLM

LN = {"e": 1.0, "10": math.log(10), "2": math.log(2)}
UNK, BOS, EOS = 0, 1, 2  # ids fixed by the contract (docs/contracts.md)

# pre-tokenized, so the reference tokens are str.split(); "zebra" is not in the vocabulary;
# the empty line is a sentence of zero words
SENTS = ["the cat sat on the mat .", "a dog played in the garden .", "the zebra sang a song .", "", "dog"]
TOL = 3e-5  # nats, float32 model vs float64 reference over a sentence, plus printing




class Ref:
    """A float64 copy of a model directory's weights, stepped one token at a time."""

    def __init__(self, model_dir: Path):
        ck = checkpoint.load(model_dir)
        self.model = RNNLM(ck.model, ck.params, dtype=np.float64)
        self.index = {t: i for i, t in enumerate(json.loads((Path(model_dir) / "vocab.json").read_text("utf-8")))}
        assert [self.index[t] for t in ("<unk>", "<s>", "</s>")] == [UNK, BOS, EOS]

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens]

    def walk(self, seq: list[int]) -> list[float]:
        """ln p(seq[t+1] | seq[:t+1]) for every t: seq[0] is fed to the initial state."""
        state, out = self.model.init_hidden(1), []
        for a, b in itertools.pairwise(seq):
            logp, state = self.model.step_logprobs(np.array([a]), state)
            out.append(float(logp[0, b]))
        return out

    def sentence(self, tokens: list[str]) -> list[float]:
        """SRILM/KenLM default: <s> is context; each word and </s> are predicted."""
        return self.walk([BOS] + self.ids(tokens) + [EOS])


@pytest.fixture(scope="module")
def word_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("w") / "model", cell="lstm", num_layers=2)


@pytest.fixture(scope="module")
def ref(word_dir) -> Ref:
    return Ref(word_dir)


@pytest.fixture(scope="module")
def sents_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("s") / "sents.txt"
    p.write_text("\n".join(SENTS) + "\n", encoding="utf-8")
    return p


EVAL = re.compile(r"(.+): ([\d,]+) sentences, ([\d,]+) tokens predicted, ([\d,]+) OOV; loss (\S+) nats, "
                  r"perplexity ([\d,.]+)(?:, (\S+) bits/char)? \((\w+) mode\)\n$")


def parse_eval(out: str) -> dict:
    m = EVAL.fullmatch(out)
    assert m, out
    def num(s: str) -> float:
        return float(s.replace(",", ""))

    return {"sentences": int(num(m.group(2))), "count": int(num(m.group(3))), "oov": int(num(m.group(4))),
            "loss": num(m.group(5)), "ppl": num(m.group(6)), "bpc": m.group(7) and float(m.group(7)),
            "mode": m.group(8)}


def ref_eval(ref: Ref, token_lists: list[list[str]], mode: str) -> tuple[float, int, int]:
    """(nats, count, oov targets): sentence mode resets per sentence; stream mode walks
    <s> s1 </s> <s> s2 </s> ... with one state, <s> never a target."""
    if mode == "sentences":
        nats = -sum(sum(ref.sentence(t)) for t in token_lists)
    else:
        stream = [i for t in token_lists for i in [BOS] + ref.ids(t) + [EOS]]
        lps = ref.walk(stream)
        nats = -sum(lp for lp, tgt in zip(lps, stream[1:]) if tgt != BOS)
    ids = [i for t in token_lists for i in ref.ids(t) + [EOS]]
    return nats, len(ids), sum(i == UNK for i in ids)


def assert_printed(printed: float, value: float, decimals: int) -> None:
    """`printed` is `value` shown with `decimals` places (plus float32 vs float64 slack)."""
    assert abs(printed - value) <= 0.5 * 10 ** -decimals + 1e-5 * max(1.0, abs(value)), (printed, value)
