"""Lattice rescoring (rnnkit.inference.lattice_rescore) against an independent reference: on
lattices small enough to list every path, each path scored with `LanguageModel.score` and
combined with the same weights. Exact when --ngram-merge is at least the longest path; what a
small n changes; lambda 0 and 1 and in between. Formats and bad input: test_lattice_formats.py."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

import rnnkit
from conftest import make_model_dir, reference_logprobs, run_main
from rnnkit.inference.lattice import (
    Arc,
    Lattice,
    Weights,
    best_path,
    path_score,
    paths,
    word_kind,
    words_of,
)
from rnnkit.inference.lattice_formats import read_lattices, write_lattice
from rnnkit.inference.lattice_rescore import mix, rescore_lattice

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "log", ".", "bird", "sang"]
TOL = 1e-5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("lattice") / "model", cell="gru", num_layers=1)


@pytest.fixture(scope="module")
def lm(model_dir):
    return rnnkit.load(model_dir)


def random_lattice(rng: np.random.Generator, size: int, base: float = math.e, kaldi: bool = False) -> Lattice:
    """A random DAG 0 -> size-1: every node reachable and reaching the end, ~15% epsilon arcs
    (with an LM score of their own), random scores; Kaldi-like: final weights on two nodes."""
    arcs: list[Arc] = []

    def arc(i: int, j: int) -> None:
        word = None if rng.random() < 0.15 else str(rng.choice(WORDS))
        arcs.append(Arc(i, j, word, float(rng.normal(-5, 2)), float(rng.normal(-2, 1))))

    for j in range(1, size):
        arc(int(rng.integers(0, j)), j)  # reachable
    for i in range(size - 1):
        arc(i, int(rng.integers(i + 1, size)))  # reaches the end
    for _ in range(size):
        i = int(rng.integers(0, size - 1))
        arc(i, int(rng.integers(i + 1, size)))
    finals = {size - 1: (0.0, 0.0)}
    if kaldi:
        finals = {size - 1: (float(rng.normal(-1, 0.5)), float(rng.normal(-1, 0.5))),
                  size - 2: (float(rng.normal(-1, 0.5)), 0.0)}
    return Lattice("utt", 0, finals, arcs, dict.fromkeys(range(size), 1), base)


def wordy_lattice(rng, size, **kw) -> Lattice:
    """random_lattice whose every path has at least one word (an empty sentence is not scored)."""
    while True:
        lat = random_lattice(rng, size, **kw)
        if all(words_of(p) for p in paths(lat)):
            return lat


def exact_score(lm, lat: Lattice, path: list[Arc], w: Weights) -> float:
    """The reference: the path's words scored by LanguageModel.score (</s> included) in the
    lattice's base; epsilon arcs keep their LM score; acoustic and final acoustic as they are."""
    words = words_of(path)
    end = path[-1].dst if path else lat.start
    lm_total = lm.score(" ".join(words), log_base=lat.base) + sum(a.lm for a in path if word_kind(a.word) == "eps")
    am_total = sum(a.am for a in path) + lat.finals[end][1]
    return w.acoustic_scale * am_total + w.lm_weight * lm_total + w.word_penalty * len(words)


def check_exact(lm, lat: Lattice, w: Weights) -> None:
    """n larger than the longest path: the 1-best and its score are the best of all paths, and
    every path of the output lattice has its exact score."""
    res = rescore_lattice(lat, lm.stepper(), ngram_merge=1000, weights=w)
    ref = sorted((tuple(words_of(p)), exact_score(lm, lat, p, w)) for p in paths(lat))
    best = max(ref, key=lambda item: item[1])
    assert res.score == pytest.approx(best[1], abs=TOL)
    assert tuple(res.words) == best[0]
    got = sorted((tuple(words_of(p)), path_score(res.lattice, p, w)) for p in paths(res.lattice))
    assert len(got) == len(ref)
    for (gw, gs), (rw, rs) in zip(got, ref):
        assert gw == rw and gs == pytest.approx(rs, abs=TOL)
    score, arcs = best_path(res.lattice, w)  # the output lattice's own Viterbi agrees with the search
    assert score == pytest.approx(res.score, abs=1e-9) and words_of(arcs) == res.words


@pytest.mark.parametrize("seed", range(6))
def test_random_lattices_exact_with_large_n(lm, seed):
    rng = np.random.default_rng(seed)
    base = [math.e, 10.0][seed % 2]
    w = Weights(acoustic_scale=0.7, lm_weight=1.3, word_penalty=-0.4) if seed % 3 else Weights()
    check_exact(lm, wordy_lattice(rng, int(rng.integers(4, 8)), base=base, kaldi=seed >= 3), w)


def test_hand_written_slf_and_kaldi_exact(lm):
    slf = ("VERSION=1.0\nUTTERANCE=s1\nbase=10\nlmscale=1.5\nwdpenalty=-0.5\nN=6 L=7\n"
           "I=0 t=0.00 W=!SENT_START\nI=1 t=0.10 W=the\nI=2 t=0.12 W=a\nI=3 t=0.30 W=cat\nI=4 t=0.31 W=dog\n"
           "I=5 t=0.50 W=!SENT_END\n"
           "J=0 S=0 E=1 a=-40 l=-1.1\nJ=1 S=0 E=2 a=-42 l=-1.4\nJ=2 S=1 E=3 a=-30 l=-2.0\n"
           "J=3 S=1 E=4 a=-31 l=-2.2\nJ=4 S=2 E=4 a=-29 l=-2.1\nJ=5 S=3 E=5 a=-1 l=-0.3\nJ=6 S=4 E=5 a=-2 l=-0.2\n")
    kaldi = ("utt1 \n0\t1\t11\t3\t2.5,40.1\n0\t2\t12\t0\t0.5,3.0\n2\t1\t13\t5\t1.0,35.5\n1\t3\t14\t8\t3.0,20.0\n"
             "1\t3\t15\t6\t2.0,22.0\n3\t1.5,0.5\n\n")
    symbols = {"3": "the", "5": "a", "6": "dog", "8": "cat"}
    for lat in (next(read_lattices(slf.splitlines(), "slf", "h.slf")),
                next(read_lattices(kaldi.splitlines(), "kaldi", "h.ark", symbols))):
        assert len(list(paths(lat))) >= 3
        check_exact(lm, lat, Weights(0.8, 1.5, -0.5))


def test_small_n_merges_and_stays_a_real_path(lm):
    """n = 0 or 1: fewer states; the 1-best is still a path of the lattice, and its exact
    score is at most the exact best (what merging may lose, never gains)."""
    rng = np.random.default_rng(7)
    w = Weights()
    for _ in range(5):
        lat = wordy_lattice(rng, 8)
        exact = rescore_lattice(lat, lm.stepper(), ngram_merge=1000, weights=w)
        by_words = {}
        for p in paths(lat):
            by_words.setdefault(tuple(words_of(p)), []).append(exact_score(lm, lat, p, w))
        for n in (0, 1):
            res = rescore_lattice(lat, lm.stepper(), ngram_merge=n, weights=w)
            assert res.states <= exact.states
            assert tuple(res.words) in by_words
            assert max(by_words[tuple(res.words)]) <= exact.score + TOL
        assert rescore_lattice(lat, lm.stepper(), ngram_merge=0).states == len(lat.nodes)


def test_lambda_zero_keeps_the_old_scores(lm):
    rng = np.random.default_rng(3)
    lat = wordy_lattice(rng, 7, kaldi=True)
    w = Weights(0.5, 2.0, 0.3)
    res = rescore_lattice(lat, lm.stepper(), ngram_merge=1000, lam=0.0, weights=w)
    old = sorted((tuple(words_of(p)), path_score(lat, p, w)) for p in paths(lat))
    new = sorted((tuple(words_of(p)), path_score(res.lattice, p, w)) for p in paths(res.lattice))
    assert [s for _, s in new] == pytest.approx([s for _, s in old], abs=1e-9)
    score, arcs = best_path(lat, w)
    assert res.words == words_of(arcs) and res.score == pytest.approx(score, abs=1e-9)


def test_lambda_mixes_in_probability_space(lm):
    """One path: each word's new LM score is log(l * p_rnn + (1 - l) * p_old), </s> mixed with
    the final weight's LM part; reference per-word log-probabilities from conftest."""
    words = ["the", "cat", "sat", "on", "the", "mat"]
    old = [-1.0, -2.5, -0.7, -3.0, -0.2, -1.9]
    arcs = [Arc(i, i + 1, wd, -1.0, o) for i, (wd, o) in enumerate(zip(words, old))]
    lat = Lattice("u", 0, {len(words): (-0.8, 0.0)}, arcs, dict.fromkeys(range(len(words) + 1), 1))
    ref = reference_logprobs(lm, " ".join(words))  # ln p of each word and </s>
    for lam in (0.0, 0.3, 1.0):
        res = rescore_lattice(lat, lm.stepper(), lam=lam)
        want = [math.log(lam * math.exp(r) + (1 - lam) * math.exp(o)) for r, o in zip(ref, [*old, -0.8])]
        got = [a.lm for a in res.lattice.arcs] + [next(iter(res.lattice.finals.values()))[0]]
        assert got == pytest.approx(want, abs=TOL)
    assert mix(-2.0, -3.0, 0.5, 10.0) == pytest.approx(math.log10(0.5 * 10 ** -2 + 0.5 * 10 ** -3))


def test_lambda_one_replaces_the_old_scores(lm):
    rng = np.random.default_rng(11)
    lat = wordy_lattice(rng, 6, kaldi=True)
    shifted = Lattice(lat.name, lat.start, {k: (v[0] - 7.0, v[1]) for k, v in lat.finals.items()},
                      [Arc(a.src, a.dst, a.word, a.am, a.lm - (5.0 if a.word else 0.0)) for a in lat.arcs],
                      lat.nodes, lat.base)
    a, b = (rescore_lattice(x, lm.stepper(), ngram_merge=1000) for x in (lat, shifted))
    assert a.words == b.words and a.score == pytest.approx(b.score, abs=1e-9)


def test_batched_steps_one_call_per_level(lm):
    """All states of a level are stepped together: calls = levels with a word-entered state."""
    rng = np.random.default_rng(5)
    lat = wordy_lattice(rng, 8)
    res = rescore_lattice(lat, lm.stepper(), ngram_merge=1000)
    small = rescore_lattice(lat, lm.stepper(), ngram_merge=1000, batch_size=1)
    assert res.calls <= len(lat.nodes) - 1 < res.steps
    assert small.calls == small.steps == res.steps
    assert small.score == pytest.approx(res.score, abs=TOL)


def test_cli_both_formats(model_dir, tmp_path, capsys):
    slf = ("VERSION=1.0\nUTTERANCE=s1\nlmscale=2.5\nN=4 L=4\nI=0\nI=1\nI=2\nI=3\n"
           "J=0 S=0 E=1 W=the a=-5 l=-1\nJ=1 S=0 E=2 W=a a=-6 l=-1\nJ=2 S=1 E=3 W=cat a=-2 l=-2\n"
           "J=3 S=2 E=3 W=dog a=-2 l=-2\n")
    src = tmp_path / "in.slf"
    src.write_text(slf)
    rc, out, err = run_main(capsys, "lattice", model_dir, src, "--lattice-format", "slf", "--best", tmp_path / "b")
    assert rc == 0 and "rescored 1 lattice(s)" in err
    lat = next(read_lattices(out.splitlines(), "slf", "out"))
    assert lat.header_value("lmscale") == "2.5"  # the header's weight was the default, and is written
    lm = rnnkit.load(model_dir)
    best = max(["the cat", "a dog"], key=lambda s: -5 + -2 + (s[0] == "a") * -1 + 2.5 * lm.score(s))
    assert (tmp_path / "b").read_text() == f"s1 {best}\n"
    ark = "u1 \n0 1 7 1 1.0,5.0\n0 1 8 2 1.2,4.5\n1 2 9 3 2.0,1.0\n2 0.5,0\n\nu2 \n0 1 4 1 0.5,2.0\n1\n\n"
    (tmp_path / "words.txt").write_text("<eps> 0\nthe 1\na 2\ncat 3\n")
    rc, out, err = run_main(capsys, "lattice", model_dir, "-", "--lattice-format", "kaldi", "--words",
                            tmp_path / "words.txt", "--best", "-", "-o", tmp_path / "out.ark", stdin=ark)
    assert rc == 0 and out.splitlines()[1] == "u2 the" and out.splitlines()[0] in ("u1 the cat", "u1 a cat")
    again = list(read_lattices((tmp_path / "out.ark").read_text().splitlines(), "kaldi", "o", {"1": "the", "2": "a", "3": "cat"}))
    assert [x.name for x in again] == ["u1", "u2"] and again[0].arcs[0].extra[1] in ("7", "8")
    rc, out, err = run_main(capsys, "lattice", model_dir, src, "--lattice-format", "slf", "--best", "-")
    assert rc == 1 and "--best - and --output -" in err


def test_written_rescored_lattice_reads_back_with_the_same_scores(lm):
    rng = np.random.default_rng(2)
    for kaldi in (False, True):
        lat = wordy_lattice(rng, 6, kaldi=kaldi)
        res = rescore_lattice(lat, lm.stepper(), ngram_merge=2)
        buf = io.StringIO()
        fmt = "kaldi" if kaldi else "slf"
        write_lattice(res.lattice, fmt, buf)
        back = next(read_lattices(buf.getvalue().splitlines(), fmt, "x", {}))
        scores = sorted(path_score(back, p, Weights()) for p in paths(back))
        assert scores == pytest.approx(sorted(path_score(res.lattice, p, Weights()) for p in paths(res.lattice)))
