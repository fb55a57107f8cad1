"""--carry-context: an utterance's hypotheses scored from the state the previous utterance's best
left equal one continuous `<s> prev </s> <s> hyp </s>` sequence stepped token by token (the
step API: an independent path through the model); a new conversation resets; off is plain."""

from __future__ import annotations

import math

import pytest

import rnnkit
from conftest import has_torch, make_model_dir, run_main
from rnnkit.errors import InputError
from rnnkit.inference.context import conversation_rule, read_utt2conv

NBEST = [
    ("c1_u1", "the cat sat on the mat .", -3.0), ("c1_u1", "the cat sat on a mat .", -2.5),
    ("c1_u1", "a cat sat .", -4.0),
    ("c1_u2", "the dog sang a song .", -1.0), ("c1_u2", "the dog sang .", -1.5),
    ("c2_u1", "a bird played in the garden .", -2.0), ("c2_u1", "the bird played .", -2.0),
    ("c2_u2", "it's a dog's life .", -1.0), ("c2_u2", "it is a dog life .", -1.2),
]


def continued(lm, previous: list[str], text: str) -> float:
    """ln p of `text`'s words and </s> after reading <s> p </s> for each p in `previous`, then
    <s>: one recurrent step per token through LanguageModel.stepper()."""
    st = lm.stepper()
    state = st.begin()
    for p in previous:
        for tok in lm.vocab.encode(lm.tokenize(p)) + [lm.vocab.eos_id, lm.vocab.bos_id]:
            state = st.advance([state], [tok])[0][0]
    total = 0.0
    for tok in lm.vocab.encode(lm.tokenize(text)):
        (state,), lp = st.score([state], [tok])
        total += float(lp[0])
    return total + float(st.end([state])[0])


def rescored(lm, **kw) -> dict:
    return dict(lm.rescore_iter(NBEST, lm_weight=1.0, log_base="e", **kw))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_scores_equal_one_continuous_sequence(tmp_path, cell):
    lm = rnnkit.load(make_model_dir(tmp_path / cell, cell=cell))
    got = rescored(lm, carry_context=True)
    history: dict[str, list[str]] = {"c1": [], "c2": []}
    for uid, group in got.items():
        conv = uid.split("_")[0]
        for h in group:
            assert h.lm == pytest.approx(continued(lm, history[conv], h.text), abs=1e-5)
        history[conv].append(group[0].text)  # the best after rescoring carries on
    assert len(history["c1"]) == 2 and len(history["c2"]) == 2


def test_context_changes_scores_and_a_new_conversation_resets(tiny_model):
    lm = rnnkit.load(tiny_model)
    plain, carried = rescored(lm), rescored(lm, carry_context=True)
    for uid in ("c1_u1", "c2_u1"):  # a conversation's first utterance: a fresh state, as plain
        for a, b in zip(sorted(plain[uid], key=lambda h: h.line), sorted(carried[uid], key=lambda h: h.line)):
            assert a.lm == pytest.approx(b.lm, abs=1e-5)
    second = {h.line: h.lm for h in carried["c1_u2"]}
    assert any(abs(h.lm - second[h.line]) > 1e-3 for h in plain["c1_u2"])  # context makes a difference
    # one conversation for all (a map): c2_u1 now continues after c1_u2's best
    one = conversation_rule({uid: "all" for uid, _, _ in NBEST})
    merged = rescored(lm, carry_context=True, conversation=one)
    prev = [merged["c1_u1"][0].text, merged["c1_u2"][0].text]
    for h in merged["c2_u1"]:
        assert h.lm == pytest.approx(continued(lm, prev, h.text), abs=1e-5)


def test_conversation_rules():
    rule = conversation_rule()
    assert rule("sw02001-A_000098-001156") == "sw02001-A" and rule("en_4156-A_030185-030248") == "en_4156-A"
    assert rule("noseparator") == "noseparator"
    assert conversation_rule(sep="-")("1089-134686-0000") == "1089-134686"
    assert read_utt2conv(["u1 a", "", "u2 a"], "m") == {"u1": "a", "u2": "a"}
    with pytest.raises(InputError, match=r"^m:2: expected"):
        read_utt2conv(["u1 a", "u2 a b"], "m")
    with pytest.raises(InputError, match=r"^m:2: utterance id 'u1' is given twice"):
        read_utt2conv(["u1 a", "u1 b"], "m")


def _cli(capsys, *argv) -> tuple[int, list[list[str]], str]:
    rc, out, err = run_main(capsys, "rescore", *argv)
    return rc, [r.split("\t") for r in out.splitlines()], err


def test_cli_off_is_plain_and_on_uses_utt2conv(tiny_model, tmp_path, capsys):
    nb = tmp_path / "nb.txt"
    nb.write_text("".join(f"{u}\t{t}\n" for u, t, _ in NBEST))
    rc, plain, _ = _cli(capsys, tiny_model, nb)
    rc2, plain2, _ = _cli(capsys, tiny_model, nb, "--lm-weight", "1")
    assert rc == rc2 == 0 and plain == plain2
    lm = rnnkit.load(tiny_model)
    ref = {h.text: h.lm for g in lm.rescore([(u, t) for u, t, _ in NBEST]).values() for h in g}
    assert all(float(r[4]) == pytest.approx(ref[r[6]], abs=1e-6) for r in plain)
    m = tmp_path / "utt2conv"
    m.write_text("".join(f"{u} one\n" for u in dict.fromkeys(u for u, _, _ in NBEST)))
    rc, carried, err = _cli(capsys, tiny_model, nb, "--carry-context", "--utt2conv", m, "--log-base", "e")
    assert rc == 0, err
    prev: list[str] = []
    for uid in dict.fromkeys(r[0] for r in carried):
        rows = [r for r in carried if r[0] == uid]
        for r in rows:
            assert float(r[4]) == pytest.approx(continued(lm, prev, r[6]), abs=1e-5)
        prev.append(rows[0][6])
    m.write_text("c1_u1 one\n")
    rc, _, err = _cli(capsys, tiny_model, nb, "--carry-context", "--utt2conv", m)
    assert rc == 1 and f"{nb}:4: id 'c1_u2' has no conversation in {m}" in err
    rc, _, err = _cli(capsys, tiny_model, nb, "--utt2conv", m)
    assert rc == 1 and "--utt2conv needs --carry-context" in err


@pytest.mark.skipif(not has_torch(), reason="torch is not installed")
def test_torch_engine_carries_the_same_context(tiny_model):
    a = rescored(rnnkit.load(tiny_model), carry_context=True)
    b = rescored(rnnkit.load(tiny_model, engine="torch", device="cpu"), carry_context=True)
    for uid in a:
        assert [h.text for h in a[uid]] == [h.text for h in b[uid]]
        assert [h.lm for h in a[uid]] == pytest.approx([h.lm for h in b[uid]], abs=1e-4)
        assert all(math.isfinite(h.total) for h in b[uid])
