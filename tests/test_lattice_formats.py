"""Lattice files (rnnkit.inference.lattice_formats): HTK SLF and Kaldi text read -> write -> read
gives the same lattice; every kind of bad input is one line naming FILE:LINE."""

from __future__ import annotations

import io
import math

import pytest

from conftest import make_model_dir, run_main
from rnnkit.errors import InputError
from rnnkit.inference.lattice import Weights, path_score, paths, words_of
from rnnkit.inference.lattice_formats import read_lattices, write_lattice

SLF = """# a comment
VERSION=1.0
UTTERANCE=utt-7
base=10.0
lmscale=12
wdpenalty=-2
N=6 L=7
I=0 t=0.00 W=!SENT_START
I=1 t=0.25 W=the v=1
I=2 t=0.30 W=a
I=3 t=0.60 W="it's"
I=4 t=0.61 W=cat
I=5 t=0.90 W=!SENT_END
J=0 S=0 E=1 a=-120.5 l=-1.25
J=1 S=0 E=2 a=-130.0 l=-1.5 r=-0.1
J=2 S=1 E=3 a=-80.25 l=-2.0 d=:th,0.1:
J=3 S=1 E=4 a=-85.0 l=-2.5
J=4 S=2 E=4 a=-70.0 l=-2.25
J=5 S=3 E=5 a=-10.0 l=-0.5
J=6 START=4 END=5 WORD=!NULL acoustic=-11.0 ngram=-0.75
"""

KALDI = """utt1 \n0\t1\t101\t3\t2.5,40.125
0\t2\t102\t0\t0.5,3
2\t1\t103\t5\t1,35.5
1\t3\t104\t8
1\t3\t105\t6\t2,22
3\t1.5,0.5

utt2 \n0\t1\t7\t3\t1,2
1

"""

COMPACT = "utt3 \n0\t1\t3\t1.5,10,1_2_2_3\n1\t2\t8\t0.5,4,5_6\n1\t2\t6\n2\t0.25,0,\n\n"
SYMBOLS = {"0": "<eps>", "3": "the", "5": "a", "6": "dog", "8": "cat"}


def canonical(lat):
    arcs = sorted((a.src, a.dst, a.word, a.am, a.lm, a.extra) for a in lat.arcs)
    return (lat.name, lat.start, lat.finals, arcs, sorted(lat.nodes), lat.base, lat.header, lat.node_attrs,
            lat.final_extra)


def read(text, fmt, symbols=None, source="x"):
    return list(read_lattices(text.splitlines(), fmt, source, symbols))


def round_trip(lats, fmt, symbols=None):
    buf = io.StringIO()
    for lat in lats:
        write_lattice(lat, fmt, buf)
    return read(buf.getvalue(), fmt, symbols)


def test_slf_reads_words_on_nodes_abbreviations_and_header():
    (lat,) = read(SLF, "slf")
    assert lat.name == "utt-7" and lat.base == 10.0 and lat.start == 0 and lat.finals == {5: (0.0, 0.0)}
    assert lat.header_value("lmscale") == "12"
    arcs = lat.arcs
    assert arcs[0].word == "the" and arcs[2].word == "it's" and arcs[6].word is None and arcs[0].line == 14
    assert arcs[6].lm == -0.75 and arcs[6].am == -11.0  # long names, ngram= as the LM score
    assert arcs[1].extra == (("r", "-0.1"),) and lat.node_attrs[1] == (("t", "0.25"), ("v", "1"))
    assert sorted(" ".join(words_of(p)) for p in paths(lat)) == ["a cat", "the cat", "the it's"]


@pytest.mark.parametrize("text,fmt", [(SLF, "slf"), (SLF + SLF.replace("utt-7", "utt-8"), "slf"),
                                      (KALDI, "kaldi"), (COMPACT, "kaldi"), (KALDI + COMPACT, "kaldi"),
                                      ("N=3 L=2\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=2 W=b a=-1\n", "slf")])
def test_read_write_read_gives_the_same_lattice(text, fmt):
    first = read(text, fmt, SYMBOLS)
    again = round_trip(first, fmt, SYMBOLS)
    assert [canonical(x) for x in again] == [canonical(x) for x in first]
    assert [canonical(x) for x in round_trip(again, fmt, SYMBOLS)] == [canonical(x) for x in first]


def test_kaldi_costs_are_negated_natural_logs_and_labels_kept():
    lat, short = read(KALDI, "kaldi", SYMBOLS)
    assert lat.base == math.e and lat.finals == {3: (-1.5, -0.5)} and short.finals == {1: (0.0, 0.0)}
    first = lat.arcs[0]
    assert (first.word, first.lm, first.am, first.extra) == ("the", -2.5, -40.125, ("L", "101", "3"))
    assert lat.arcs[1].word is None and lat.arcs[3].lm == 0.0  # label 0 is epsilon; no weight is 0,0
    w = Weights(acoustic_scale=0.1)
    best = max(paths(lat), key=lambda p: path_score(lat, p, w))
    assert words_of(best) == ["a", "cat"]  # costs by hand: the 6.5125, <eps> a 5.35; cat 0, dog 4.2


def test_compact_lattice_and_symbols_as_labels():
    (lat,) = read(COMPACT, "kaldi", SYMBOLS)
    assert lat.arcs[0].extra == ("C", "3", "1_2_2_3") and lat.final_extra == {2: ("",)}
    assert sorted(" ".join(words_of(p)) for p in paths(lat)) == ["the cat", "the dog"]
    (sym,) = read("u \n0 1 0 the 1,1\n1 2 0 dog 1,1\n2\n\n", "kaldi")  # int2sym'd labels need no table
    assert [a.word for a in sym.arcs] == ["the", "dog"]


BAD_SLF = [
    ("N=3 L=3\nI=0\nI=1\nI=2\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=2 W=b\nJ=2 S=2 E=1 W=c\n", 6, "cycle"),
    ("N=3 L=2\nI=0\nI=1\nI=2\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=9 W=b\n", 6, "dangling"),
    ("N=5 L=3\nI=0\nI=1\nI=2\nI=3\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=2 W=b\nJ=2 S=3 E=2 W=c\n", 1,
     "N=5 but the lattice has 4 node lines"),
    ("start=0\nN=4 L=3\nI=0\nI=1\nI=2\nI=3\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=2 W=b\nJ=2 S=3 E=2 W=c\n", 6,
     "not reachable from the start"),
    ("end=2\nN=4 L=3\nI=0\nI=1\nI=2\nI=3\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=2 W=b\nJ=2 S=1 E=3 W=c\n", 6,
     "does not reach the end"),
    ("N=3 L=3\nI=0\nI=1\nI=2\nJ=0 S=0 E=1 W=a\nJ=1 S=1 E=2 W=b\n", 1, "L=3 but the lattice has 2"),
    ("N=2 L=1\nI=0\nI=1\nJ=0 S=0 E1 W=a\n", 4, "NAME=VALUE"),
    ("N=2 L=1\nI=0\nI=1\nJ=0 S=0 E=1 W=a a=-1x\n", 4, "not a finite number"),
    ("N=2 L=1\nI=0\nI=1\nJ=0 S=0 W=a\n", 4, "needs both S="),
    ("I=0\nN=2 L=1\n", 1, "before the size line"),
    ("VERSION=1.0\nbase=0\nN=2 L=1\nI=0\nI=1\nJ=0 S=0 E=1 W=a\n", 2, "base=0"),
]


@pytest.mark.parametrize("text,line,what", BAD_SLF)
def test_bad_slf_is_one_line_naming_file_and_line(text, line, what):
    with pytest.raises(InputError) as e:
        read(text, "slf", source="bad.slf")
    msg = str(e.value)
    assert msg.startswith(f"bad.slf:{line}: ") and what in msg and "\n" not in msg


BAD_KALDI = [
    ("u \n0 1 0 3 1,1\n1 2 0 5 1,1\n2 1 0 6 1,1\n2\n\n", 3, "cycle", SYMBOLS),
    ("u \n0 1 0 3 1,1\n1 2 0 5 1,1\n0 3 0 6 1,1\n2\n\n", 4, "does not reach the end", SYMBOLS),
    ("u \n0 1 0 3 1,1\n1 2 0 5 1,1\n4 2 0 6 1,1\n2\n\n", 4, "not reachable from the start", SYMBOLS),
    ("u \n0 1 0 3 1,1\n1 2 0 5 1,1 9\n2\n\n", 3, "expected 'src dst", SYMBOLS),
    ("u \n0 1 0 3 1;1\n1\n\n", 2, "expected 'src dst", SYMBOLS),
    ("u \n0 1 0 3 1,2,3,4\n1\n\n", 2, "is not 'graph,acoustic'", SYMBOLS),
    ("u \n0 1 0 3 nan,1\n1\n\n", 2, "not a finite number", SYMBOLS),
    ("u \n0 x 0 3 1,1\n1\n\n", 2, "is not a whole number", SYMBOLS),
    ("u \n0 1 0 3 1,1\n1\n\n", 2, "give the symbol table with --words", None),
    ("u \n0 1 0 42 1,1\n1\n\n", 2, "word label 42 is not in the symbol table", SYMBOLS),
    ("u v\n0 1 0 3 1,1\n1\n\n", 1, "an utterance id alone", SYMBOLS),
    ("u \n0 1 0 3 1,1\n\n", 1, "no final state", SYMBOLS),
]


@pytest.mark.parametrize("text,line,what,symbols", BAD_KALDI)
def test_bad_kaldi_is_one_line_naming_file_and_line(text, line, what, symbols):
    with pytest.raises(InputError) as e:
        read(text, "kaldi", symbols, source="bad.ark")
    msg = str(e.value)
    assert msg.startswith(f"bad.ark:{line}: ") and what in msg and "\n" not in msg


def test_cli_reports_bad_lattices_and_words_file_in_one_line(tmp_path, capsys):
    model = make_model_dir(tmp_path / "m", cell="rnn", num_layers=1)
    bad = tmp_path / "bad.slf"
    bad.write_text(BAD_SLF[0][0])
    rc, _out, err = run_main(capsys, "lattice", model, bad, "--lattice-format", "slf")
    assert rc == 1 and err.startswith(f"rnnkit: error: {bad}:6: ") and "cycle" in err and err.count("\n") == 1
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\nthe one\n")
    rc, _out, err = run_main(capsys, "lattice", model, "-", "--lattice-format", "kaldi", "--words", words,
                            stdin=KALDI)
    assert rc == 1 and f"{words}:2: expected 'symbol id'" in err
    rc, _out, err = run_main(capsys, "lattice", model, "-", "--lattice-format", "kaldi", stdin="")
    assert rc == 1 and "error:" in err and err.count("\n") == 1


def test_lattices_are_read_one_at_a_time():
    """A bad second utterance fails only when it is reached: the first comes out before."""
    it = read_lattices((KALDI.split("utt2")[0] + "utt2 \n0 1 0 3 1,1\n\n").splitlines(), "kaldi", "s.ark", SYMBOLS)
    assert next(it).name == "utt1"
    with pytest.raises(InputError, match="s.ark:9: .*no final state"):
        next(it)
