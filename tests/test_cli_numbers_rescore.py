"""`rnnkit rescore`'s numbers: totals = ascore + --lm-weight * lm + --word-penalty * words in the
--log-base, ranks and --best, with n-bests built so that a dropped flag changes the winner.

The references are computed here (tests/cli_numbers_kit.py): per-token log-probabilities by
stepping a float64 copy of the model one token at a time, token ids read straight from
vocab.json, and the numbers written out by hand. The CLI runs in-process on the float32 model
directory, so numbers agree to float32 rounding (~1e-6 per token) and to the printed precision.
"""

from __future__ import annotations

import math
import re

import pytest

import cli_numbers_kit
from cli_numbers_kit import LN, TOL, Ref
from conftest import run_main as run

# the kit's module-scoped fixtures, found by pytest under these names
word_dir, ref, sents_file = cli_numbers_kit.word_dir, cli_numbers_kit.ref, cli_numbers_kit.sents_file


# ---------------------------------------------------------------------------- rescore


ROW = re.compile(r"([^\t]+)\t(\d+)\t(\S+)\t(\S+)\t(\S+)\t(\d+)\t(.*)")


def rescore_rows(out: str) -> list[tuple]:
    rows = []
    for line in out.splitlines():
        m = ROW.fullmatch(line)
        assert m, line
        rows.append((m.group(1), int(m.group(2)), float(m.group(3)), float(m.group(4)), float(m.group(5)),
                     int(m.group(6)), m.group(7)))
    return rows


def lm_nats(ref: Ref, text: str) -> float:
    return sum(ref.sentence(text.split()))


H1, H2 = "the cat sat on the mat .", "the dog sat ."  # 7 and 4 words


def margin(ref: Ref, w: float, p: float, b: str) -> float:
    """total(H2) - total(H1) without acoustic scores."""
    return (w * (lm_nats(ref, H2) - lm_nats(ref, H1)) / LN[b]) + p * (len(H2.split()) - len(H1.split()))


W, P, B = 2.5, -1.5, "2"  # the flags under test
# configurations a rescorer would use if it dropped one of them: --lm-weight, --word-penalty, --log-base
MUTANTS = {"lm-weight": (1.0, P, B), "word-penalty": (W, 0.0, B), "log-base e": (W, P, "e"), "log-base 10": (W, P, "10")}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_rescore_srilm_totals_and_best(word_dir, ref, tmp_path, capsys, mutant):
    """SRILM n-best with acoustic scores: every total is ascore + W * lm + P * nwords with lm the
    reference log-probability in base B, and --best is the argmax of those totals. The acoustic
    score of H2 is set so that H2 wins under the flags and loses were any one flag ignored."""
    mid = -(margin(ref, W, P, B) + margin(ref, *MUTANTS[mutant])) / 2
    assert abs(margin(ref, W, P, B) - margin(ref, *MUTANTS[mutant])) > 0.1
    a1, a2 = -20.0, -20.0 + mid
    nb = tmp_path / "utt7.nbest"
    # the lscore column (-99) is replaced by the model's
    nb.write_text(f"{a1:.10f} -99 7 {H1}\n{a2:.10f} -99 4 {H2}\n")
    best = tmp_path / "best.txt"
    rc, out, err = run(capsys, "rescore", word_dir, nb, "--nbest-format", "srilm", "--lm-weight", W, "--word-penalty", P,
                       "--log-base", B, "--best", best)
    assert rc == 0, err
    rows = rescore_rows(out)
    want = {}
    for text, a in ((H1, a1), (H2, a2)):
        lm = lm_nats(ref, text) / LN[B]
        want[text] = (a, lm, a + W * lm + P * len(text.split()))
    assert [r[0] for r in rows] == ["utt7.nbest"] * 2 and [r[1] for r in rows] == [1, 2]
    for _, _, total, ascore, lm, nwords, text in rows:
        a, lm_ref, total_ref = want[text]
        assert nwords == len(text.split())
        assert ascore == pytest.approx(a, abs=1e-6)
        assert lm == pytest.approx(lm_ref, abs=TOL)
        assert total == pytest.approx(total_ref, abs=1e-4)
    assert max(want, key=lambda t: want[t][2]) == H2 == rows[0][6]
    assert best.read_text() == f"utt7.nbest\t{H2}\n"
    # with the dropped flag the reference winner would be H1: the flag matters here
    w_, p_, b_ = MUTANTS[mutant]
    other = {t: a + w_ * lm_nats(ref, t) / LN[b_] + p_ * len(t.split()) for t, (a, _, _) in want.items()}
    assert max(other, key=other.get) == H1


@pytest.mark.parametrize("w,p,b", [(1.0, 0.0, "10"), (0.5, -2.0, "e"), (3.0, 4.0, "2")])
def test_rescore_plain_totals_and_best(word_dir, ref, tmp_path, capsys, w, p, b):
    """Plain n-best (no acoustic score): total = W * lm + P * nwords, ranked within each id."""
    hyps = [("u1", H1), ("u1", H2), ("u1", "mat the on sat cat the ."), ("u2", "a dog ."), ("u2", "a dog played in the garden .")]
    nb = tmp_path / "nbest.txt"
    nb.write_text("".join(f"{u}\t{h}\n" for u, h in hyps))
    best = tmp_path / "best.txt"
    rc, out, err = run(capsys, "rescore", word_dir, nb, "--lm-weight", w, "--word-penalty", p, "--log-base", b,
                       "--best", best)
    assert rc == 0, err
    ref_total = {(u, h): w * lm_nats(ref, h) / LN[b] + p * len(h.split()) for u, h in hyps}
    rows = rescore_rows(out)
    assert sorted((r[0], r[6]) for r in rows) == sorted(hyps)
    for uid, rank, total, ascore, lm, nwords, text in rows:
        assert ascore == 0.0 and nwords == len(text.split())
        assert lm == pytest.approx(lm_nats(ref, text) / LN[b], abs=TOL)
        assert total == pytest.approx(ref_total[uid, text], abs=1e-4)
        group = sorted((t for (u, _), t in ref_total.items() if u == uid), reverse=True)
        assert total == pytest.approx(group[rank - 1], abs=1e-4)
    want_best = [f"{u}\t{max((h for v, h in hyps if v == u), key=lambda h: ref_total[u, h])}" for u in ("u1", "u2")]
    assert best.read_text().splitlines() == want_best


def test_rescore_word_penalty_changes_the_winner(word_dir, ref, tmp_path, capsys):
    """Plain format: a large positive penalty per word favours the long hypothesis, a large
    negative one the short, whatever the LM says."""
    nb = tmp_path / "nbest.txt"
    nb.write_text(f"u\t{H1}\nu\t{H2}\n")
    for p, winner in ((50.0, H1), (-50.0, H2)):
        best = tmp_path / f"best{p}.txt"
        rc, _, err = run(capsys, "rescore", word_dir, nb, "--word-penalty", p, "--best", best)
        assert rc == 0, err
        totals = {h: lm_nats(ref, h) / math.log(10) + p * len(h.split()) for h in (H1, H2)}
        assert max(totals, key=totals.get) == winner
        assert best.read_text() == f"u\t{winner}\n"
