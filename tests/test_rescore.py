"""N-best rescoring: parsing each format, the combination arithmetic, and bad lines."""

from __future__ import annotations

import pytest

import rnnkit
from rnnkit.cli import main
from rnnkit.errors import InputError
from rnnkit.inference.rescore import parse_nbest


def test_parse_formats():
    p = parse_nbest(["u1\tthe cat sat", "u1\ta cat sat", "u2\tthe dog"], "plain", "f")
    assert [(h.id, h.text, h.ascore) for h in p] == [("u1", "the cat sat", 0.0), ("u1", "a cat sat", 0.0), ("u2", "the dog", 0.0)]
    s = parse_nbest(["-12.5 -3.0 3 the cat sat", "-11.0 -4.5 2 cat sat"], "srilm", "dir/utt7.nbest")
    assert [(h.id, h.text, h.ascore) for h in s] == [("utt7.nbest", "the cat sat", -12.5), ("utt7.nbest", "cat sat", -11.0)]
    c = parse_nbest(["u1\t-12.5\tthe cat sat", "u1\t1e-3\ta\tcat"], "scored", "f")
    assert [(h.id, h.text, h.ascore) for h in c] == [("u1", "the cat sat", -12.5), ("u1", "a\tcat", 1e-3)]
    k = parse_nbest(["spk1-utt-1 the cat", "spk1-utt-2 a cat"], "kaldi", "f")
    assert [(h.id, h.text) for h in k] == [("spk1-utt", "the cat"), ("spk1-utt", "a cat")]


@pytest.mark.parametrize("fmt,line", [("plain", "no tab here"), ("srilm", "x y 2 a b"), ("srilm", "-1 -2 5 a b"),
                                      ("kaldi", "noid the cat"), ("kaldi", "utt-x the cat"),
                                      ("scored", "u1\tthe cat sat"), ("scored", "u1\tloud\tthe cat"),
                                      ("scored", "u1\tnan\tthe cat"), ("scored", "u1 -3.5 the cat")])
def test_bad_lines_name_the_line(fmt, line):
    first = {"plain": "u1\tok", "srilm": "-1 -1 1 ok", "kaldi": "u-1 ok", "scored": "u1\t-1\tok"}[fmt]
    with pytest.raises(InputError, match=r"^nb\.txt:2: "):
        parse_nbest([first, line], fmt, "nb.txt")


def test_combination_and_best(tiny_model):
    lm = rnnkit.load(tiny_model)
    hyps = [("u1", "the cat sat on the mat .", -10.0), ("u1", "mat the on sat cat the .", -9.5), ("u2", "the dog .", 0.0)]
    groups = lm.rescore(hyps, lm_weight=2.0, word_penalty=-0.5, log_base=10)
    for g in groups.values():
        for h in g:
            assert h.lm == pytest.approx(lm.score(h.text, log_base=10), abs=1e-5)  # float32 model, other batch
            assert h.total == pytest.approx(h.ascore + 2.0 * h.lm - 0.5 * len(h.text.split()), abs=1e-9)
        assert [h.total for h in g] == sorted((h.total for h in g), reverse=True)
    assert list(groups) == ["u1", "u2"]


def test_cli_rescore_kaldi(tiny_model, tmp_path, capsys):
    nb = tmp_path / "nbest.txt"
    nb.write_text("utt1-1 the cat sat .\nutt1-2 cat the sat .\nutt2-1 the dog .\n")
    best = tmp_path / "best.txt"
    assert main(["rescore", str(tiny_model), str(nb), "--format", "kaldi", "--best", str(best)]) == 0
    out, err = capsys.readouterr()
    rows = [r.split("\t") for r in out.strip().splitlines()]
    assert len(rows) == 3 and {r[0] for r in rows} == {"utt1", "utt2"}
    lm = rnnkit.load(tiny_model)
    for r in rows:
        assert float(r[4]) == pytest.approx(lm.score(r[6], log_base=10), abs=1e-5)
    best_lines = best.read_text().splitlines()
    assert len(best_lines) == 2 and best_lines[0].split(" ", 1)[0] == "utt1"
    assert "rescored 3 hypotheses for 2 id(s)" in err


def test_cli_rescore_bad_line(tiny_model, tmp_path, capsys):
    nb = tmp_path / "nbest.txt"
    nb.write_text("-1 -2 2 the cat\nnot numbers at all\n")
    assert main(["rescore", str(tiny_model), str(nb), "--format", "srilm"]) == 1
    err = capsys.readouterr().err
    assert f"{nb}:2" in err and "SRILM" in err and len(err.strip().splitlines()) == 1
