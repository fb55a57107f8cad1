"""rescore --tune / --weights / --mix-lm: on a synthetic dev n-best set built from PTB sentences
(substitutions, deletions and insertions with noisy acoustic-like scores, scored by a small GRU
trained here on PTB train text), the tuned weights beat the defaults and the oracle bounds them,
each WER checked by aligning the written 1-best against the references again; the saved weights
give the same output through --weights; mixing with lambda 1 / 0 equals the RNN / the n-gram."""

from __future__ import annotations

import json
import math
import random

import pytest

import rnnkit
from conftest import TINY_CORPUS, run_main
from rnnkit.errors import ConfigError, InputError
from rnnkit.inference.rescore import Mix, parse_nbest
from rnnkit.inference.tune import (
    LM_GRID,
    PENALTY_GRID,
    Weights,
    collect,
    parse_weights,
    read_references,
    tune,
)
from rnnkit.inference.wer import align, corpus_counts


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """(model dir, n-best file, references file, {id: reference}) of the synthetic dev set."""
    from conftest import SHARED_DATA
    from rnnkit.training.driver import train

    ptb = SHARED_DATA / "ptb"
    if not ptb.is_dir():
        pytest.skip(f"PTB not found at {ptb} (a fresh clone has no ../shared/data)")
    d = tmp_path_factory.mktemp("tune")
    lines = (ptb / "ptb.train.txt").read_text().splitlines()[:5000]
    (d / "ptb.train.txt").write_text("\n".join(lines) + "\n")
    train(str(d / "ptb.train.txt"), d / "model", model={"cell": "gru", "hidden_dim": 32, "embed_dim": 32,
                                                        "num_layers": 1},
          tokenizer={"max_vocab": 2000, "word_split": "whitespace"},
          config={"max_steps": 200, "batch_size": 32, "seq_len": 20, "lr": 0.01, "epochs": 1,
                  "valid_fraction": 0.02}, progress=False, log=lambda m: None)
    lm = rnnkit.load(d / "model")
    words = [w for w in lm.vocab.decode(list(range(len(lm.vocab)))) if w not in ("<s>", "</s>", "<unk>")]
    valid = [s.split() for s in (ptb / "ptb.valid.txt").read_text().splitlines() if 5 <= len(s.split()) <= 20]
    rng = random.Random(0)
    refs, rows = {}, []
    for i, ref in enumerate(valid[:60]):
        uid = f"u{i:03d}"
        refs[uid] = " ".join(ref)
        seen = set()
        for j in range(10):
            hyp = " ".join(_corrupt(ref, rng.choice([0, 1, 1, 2, 2, 3, 4]) if j else rng.choice([1, 2]), words, rng))
            if hyp not in seen:  # acoustic-like: one unit per error, plus noise as large
                seen.add(hyp)
                rows.append(f"{uid}\t{hyp}\t{-align(ref, hyp).errors + rng.gauss(0, 1.5):.3f}")
    scored = d / "dev.tsv"  # id<TAB>hypothesis<TAB>acoustic score (the API's tuples; rescore's formats carry
    scored.write_text("".join(r + "\n" for r in rows))  # no acoustic score beside several ids)
    (d / "refs.txt").write_text("".join(f"{u} {t}\n" for u, t in refs.items()))
    return d / "model", scored, d / "refs.txt", refs


def _corrupt(ref: list[str], k: int, words: list[str], rng: random.Random) -> list[str]:
    out = list(ref)
    for _ in range(k):
        op = rng.choice("sdi")
        if op == "s":
            out[rng.randrange(len(out))] = rng.choice(words)
        elif op == "d" and len(out) > 1:
            del out[rng.randrange(len(out))]
        else:
            out.insert(rng.randrange(len(out) + 1), rng.choice(words))
    return out


def _hyps(path) -> list[tuple[str, str, float]]:
    return [(u, t, float(a)) for u, t, a in (line.split("\t") for line in path.read_text().splitlines())]


def _best_wer(rows: list[list[str]], refs: dict[str, str]):
    """Corpus counts of the rank-1 rows of a rescored list, aligned again here."""
    return corpus_counts([(refs[r[0]], r[6]) for r in rows if r[1] == "1"])


def test_tuning_beats_defaults_and_the_oracle_bounds_it(dev):
    model, nbest, _, refs = dev
    lm = rnnkit.load(model)
    hyps = _hyps(nbest)
    res = lm.tune_weights(hyps, refs)
    print(f"synthetic dev set: {res.weights}; before {res.before.describe()}; after {res.after.describe()}; "
          f"oracle {res.oracle.describe()}")
    default = [[h.id, str(r), "", "", "", "", h.text] for g in lm.rescore(hyps).values() for r, h in enumerate(g, 1)]
    tuned = [[h.id, str(r), "", "", "", "", h.text] for g in res.groups().values() for r, h in enumerate(g, 1)]
    before, after = _best_wer(default, refs), _best_wer(tuned, refs)
    oracle = sum((min((align(refs[u], t) for uu, t, _ in hyps if uu == u), key=lambda c: c.errors) for u in refs),
                 start=corpus_counts([]))
    assert (res.before, res.after, res.oracle.errors) == (before, after, oracle.errors)
    assert after.wer < before.wer and oracle.wer <= after.wer
    acoustic_rows = [[h.id, str(r), "", "", "", "", h.text]
                     for g in lm.rescore(hyps, lm_weight=0.0).values() for r, h in enumerate(g, 1)]
    assert after.wer < _best_wer(acoustic_rows, refs).wer  # the LM helps: better than the acoustic scores alone
    # no point of the coarse grid does better (picked here in plain Python, not by the search's code)
    lms = [(h.id, h.text, h.ascore, h.lm, len(h.text.split())) for g in lm.rescore(hyps).values() for h in g]
    for w, p in random.Random(1).sample([(a, b) for a in LM_GRID for b in PENALTY_GRID], 60):
        best: dict[str, tuple[float, str]] = {}
        for uid, text, ascore, lp, n in lms:
            total = ascore + w * lp + p * n
            if uid not in best or total > best[uid][0]:
                best[uid] = (total, text)
        assert sum(align(refs[u], t).errors for u, (_, t) in best.items()) >= after.errors
    assert len(res.features.hyps) == len(hyps)


def test_cli_tune_save_and_reuse_weights(dev, tmp_path, capsys):
    model, nbest, refs_file, refs = dev
    hyps = _hyps(nbest)
    weights, out1, out2 = tmp_path / "w.json", tmp_path / "tuned.tsv", tmp_path / "again.tsv"
    plain = tmp_path / "dev.plain"  # plain n-best: no acoustic scores, so the LM weight and the penalty compete
    plain.write_text("".join(f"{u}\t{t}\n" for u, t, _ in hyps))
    rc, _, err = run_main(capsys, "rescore", model, plain, "--tune", refs_file, "--save-weights", weights, "-o", out1)
    assert rc == 0, err
    lines = [ln for ln in err.splitlines() if "1-best WER" in ln]
    assert [ln.split()[2] for ln in lines] == ["before", "after", "oracle"]
    rows = [r.split("\t") for r in out1.read_text().splitlines()]
    saved = json.loads(weights.read_text())
    assert saved["format"] == "rnnkit-rescore-weights" and saved["log_base"] == "10" and "lambda" not in saved
    after = _best_wer(rows, refs)
    assert f"{100 * after.wer:.2f}% ({after.errors} errors" in lines[1]
    assert saved["tuned_on"]["after"]["errors"] == after.errors
    assert after.wer <= saved["tuned_on"]["before"]["wer"]
    rc, _, err = run_main(capsys, "rescore", model, plain, "--weights", weights, "-o", out2)
    assert rc == 0, err
    assert out2.read_text() == out1.read_text()  # the same totals, bit for bit, and order
    # a flag given beside --weights wins over the file
    rc, _, _ = run_main(capsys, "rescore", model, plain, "--weights", weights, "--lm-weight", "0", "-o", out2)
    rc2, _, _ = run_main(capsys, "rescore", model, plain, "--lm-weight", "0", "--word-penalty",
                         repr(saved["word_penalty"]), "-o", out1)
    assert rc == rc2 == 0 and out2.read_text() == out1.read_text()


def test_cli_tunes_against_acoustic_scores_in_the_scored_format(dev, tmp_path, capsys):
    model, nbest, refs_file, refs = dev
    scored, out = tmp_path / "dev.scored", tmp_path / "tuned.tsv"
    scored.write_text("".join(f"{u}\t{a!r}\t{t}\n" for u, t, a in _hyps(nbest)))
    rc, _, err = run_main(capsys, "rescore", model, scored, "--nbest-format", "scored", "--tune", refs_file,
                          "--save-weights", tmp_path / "w.json", "-o", out)
    assert rc == 0, err
    rows = [r.split("\t") for r in out.read_text().splitlines()]
    assert all(float(r[3]) == a for r in rows for u, t, a in _hyps(nbest) if (u, t) == (r[0], r[6]))
    after = _best_wer(rows, refs)
    saved = json.loads((tmp_path / "w.json").read_text())["tuned_on"]
    assert saved["after"]["errors"] == after.errors
    assert after.errors < saved["before"]["errors"] and saved["oracle"]["errors"] <= after.errors


def test_bad_inputs_name_file_and_line(tiny_model, tmp_path, capsys):
    nb, refs, w = tmp_path / "nb.txt", tmp_path / "refs.txt", tmp_path / "w.json"
    nb.write_text("a\tthe cat\nb\tthe dog\n")
    refs.write_text("a the cat\n")
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--tune", refs)
    assert rc == 1 and f"{nb}:2: id 'b' has no reference" in err and len(err.strip().splitlines()) == 1
    refs.write_text("a the cat\n\n  the dog\n")
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--tune", refs)
    assert rc == 1 and f"{refs}:3: no id" in err
    for text in ("{not json", '{"format": "other"}', '{"format": "rnnkit-rescore-weights", "lm_weight": "x"}',
                 '{"format": "rnnkit-rescore-weights", "lm_weight": 1, "word_penalty": 0, "lambda": 2}'):
        w.write_text(text)
        rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--weights", w)
        assert rc == 1 and str(w) in err and len(err.strip().splitlines()) == 1, (text, err)
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--weights", tmp_path / "missing.json")
    assert rc == 1 and "missing.json: no such file" in err
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--save-weights", w)
    assert rc == 1 and "--save-weights needs --tune" in err
    with pytest.raises(InputError, match="^r:2: reference id 'a' is given twice"):
        read_references(["a x", "a y"], "r")
    assert read_references(["a\tx  y ", "b c", "only"], "r") == {"a": "x y", "b": "c", "only": ""}
    with pytest.raises(ConfigError, match="^f: 'word_penalty' must be a finite number"):
        parse_weights('{"format": "rnnkit-rescore-weights", "lm_weight": 1}', "f")


def test_ties_go_to_the_starting_weights(tiny_model):
    lm = rnnkit.load(tiny_model)
    hyps = parse_nbest(["a\tthe cat sat .", "b\tthe dog ."], "plain", "nb")  # one hypothesis each: all tie
    scores = lm.score_sentences([h.text for h in hyps], per_token=False)
    f = collect(hyps, scores, {"a": "the cat sat .", "b": "a dog ."}, math.log(10))
    for start in (Weights(), Weights(3.0, -1.5)):
        res = tune(f, start)
        assert res.weights == start and res.before == res.after == res.oracle


ARPA = """\\data\\
ngram 1={n}

\\1-grams:
{rows}

\\end\\
"""


def _unigram_arpa(path, words: list[str]) -> dict[str, float]:
    """A unigram ARPA over `words` + specials, log10 probabilities written out by hand."""
    rng = random.Random(5)
    weights = {w: rng.uniform(1, 5) for w in ["</s>", "<unk>", *words]}
    z = sum(weights.values())
    logp = {w: round(math.log10(v / z), 6) for w, v in weights.items()}
    rows = ["-99\t<s>"] + [f"{lp}\t{w}" for w, lp in logp.items()]
    path.write_text(ARPA.format(n=len(rows), rows="\n".join(rows)))
    return logp


def test_mix_lambda_one_is_the_rnn_and_zero_the_ngram(tiny_model, tmp_path, capsys):
    lm = rnnkit.load(tiny_model)
    words = sorted({t for s in TINY_CORPUS for t in lm.tokenize(s)} - {"garden"})  # garden: the n-gram's <unk>
    logp = _unigram_arpa(tmp_path / "u.arpa", words)
    from rnnkit.ngram import read_arpa

    arpa = read_arpa(tmp_path / "u.arpa")
    hyps = [("u1", "the cat sat on the mat .", -1.0), ("u1", "a dog played in the garden .", -1.5),
            ("u2", "the bird sang", 0.0)]
    plain = lm.rescore(hyps)
    one, zero = lm.rescore(hyps, mix=Mix(arpa, 1.0)), lm.rescore(hyps, mix=Mix(arpa, 0.0))
    half = lm.rescore(hyps, mix=Mix(arpa, 0.5))
    for uid in plain:
        assert [(h.text, h.lm, h.total) for h in one[uid]] == [(h.text, h.lm, h.total) for h in plain[uid]]
        for h in zero[uid]:
            ngram = sum(logp.get(t, logp["<unk>"]) for t in lm.tokenize(h.text)) + logp["</s>"]
            assert h.lm == pytest.approx(ngram, abs=1e-5)  # the ARPA tables hold float32
        for h in half[uid]:  # per token, in probability space
            toks = list(lm.full_scores(h.text, log_base=10))
            ng = [logp.get(t, logp["<unk>"]) for _, t, _ in toks]
            want = sum(math.log10(0.5 * 10 ** r + 0.5 * 10 ** g) for (r, _, _), g in zip(toks, ng))
            assert h.lm == pytest.approx(want, abs=1e-5)
    nb, refs = tmp_path / "nb.txt", tmp_path / "refs.txt"
    nb.write_text("".join(f"{u}\t{t}\n" for u, t, _ in hyps))
    refs.write_text("u1 the cat sat on the mat .\nu2 the bird sang\n")
    out = tmp_path / "o.tsv"
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--mix-lm", tmp_path / "u.arpa", "--lambda", "0", "-o", out)
    assert rc == 0, err
    got = {r.split("\t")[6]: float(r.split("\t")[4]) for r in out.read_text().splitlines()}
    assert got == pytest.approx({h.text: h.lm for g in zero.values() for h in g}, abs=1e-6)
    w = tmp_path / "w.json"
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--mix-lm", tmp_path / "u.arpa", "--tune", refs,
                          "--save-weights", w, "-o", out)
    assert rc == 0, err
    assert 0.0 <= json.loads(w.read_text())["lambda"] <= 1.0
    rc, _, err = run_main(capsys, "rescore", tiny_model, nb, "--lambda", "0.3")
    assert rc == 1 and "--lambda needs --mix-lm" in err
