"""`rnnkit score --per-word` and `--regions`: the CLI's rows equal the API's words and regions,
words add up to the line's logprob, and the options are refused where they cannot apply."""

from __future__ import annotations

import json
import math

import pytest

import rnnkit
from conftest import make_model_dir
from faultkit import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return make_model_dir(d / "char", level="char"), make_model_dir(d / "word")


def test_per_word_rows_add_up_to_each_line(models, tmp_path):
    char, _ = models
    lines = ["the cat  sat.", "", " a dog"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    rc, out, _ = run_cli(["score", str(char), str(tmp_path / "in.txt"), "--per-word", "--log-base", "10"])
    assert rc == 0
    blocks, current = [], None
    for row in out.splitlines():
        if row.startswith("  "):
            word, start, end, lp = row[2:].split("\t")
            current[1].append((word, int(start), int(end), float(lp)))
        else:
            current = (float(row.split("\t")[0]), [])
            blocks.append(current)
    lm = rnnkit.load(char)
    assert len(blocks) == len(lines)
    for line, (total, words) in zip(lines, blocks):
        assert math.fsum(lp for *_, lp in words) == pytest.approx(total, abs=1e-5)  # 6 decimals each
        api = lm.word_scores(line)
        assert [(w.word, w.start, w.end) for w in api] == [(w, s, e) for w, s, e, _ in words]
        assert [round(w.logprob / math.log(10), 6) for w in api] == [lp for *_, lp in words]


def test_regions_in_jsonl_equal_the_api(models, tmp_path):
    _, word = models
    lines = ["the cat sat .", "it's a dog's life"]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "r.tsv").write_text("1\t0\t7\tsubj\n1\t5\t9\tmid\n2\t0\t4\tit\n")
    rc, out, _ = run_cli(["score", str(word), str(tmp_path / "in.txt"), "--regions", str(tmp_path / "r.tsv"),
                          "--output-format", "jsonl"])
    assert rc == 0
    recs = [json.loads(x) for x in out.splitlines()]
    lm = rnnkit.load(word)
    regions = {1: [(0, 7, "subj"), (5, 9, "mid")], 2: [(0, 4, "it")]}
    for n, (line, rec) in enumerate(zip(lines, recs), 1):
        api = lm.region_scores(line, regions[n])
        assert [(r["label"], r["tokens"], [c["token"] for c in r["cut"]]) for r in rec["regions"]] == \
            [(r.label, r.n_tokens, [t for t, _, _ in r.cut_tokens]) for r in api]
        for got, want in zip(rec["regions"], api):
            assert got["logprob"] == pytest.approx(want.logprob, rel=1e-6)  # float32, batched with the other line
    assert recs[0]["regions"][1]["cut"] and recs[0]["regions"][0]["tokens"] == 2  # "the cat" inside, "mid" cuts


@pytest.mark.parametrize("extra,names", [
    (["--per-word"], ["--per-word", "character models"]),
    (["--per-word", "--output-format", "tsv"], ["--per-word", "tsv"]),
])
def test_refusals_are_one_line(models, tmp_path, extra, names):
    char, word = models
    (tmp_path / "in.txt").write_text("the cat\n")
    model = word if extra == ["--per-word"] else char
    rc, _, err = run_cli(["score", str(model), str(tmp_path / "in.txt"), *extra])
    assert_one_line_error(rc, err, *names)


def test_a_bad_regions_file_names_its_line(models, tmp_path):
    _, word = models
    (tmp_path / "in.txt").write_text("the cat\n")
    (tmp_path / "r.tsv").write_text("1\t0\t3\tok\nx\t0\t3\tbad\n")
    rc, _, err = run_cli(["score", str(word), str(tmp_path / "in.txt"), "--regions", str(tmp_path / "r.tsv")])
    assert_one_line_error(rc, err, "r.tsv:2")


def test_a_region_outside_its_line_names_the_line(models, tmp_path):
    _, word = models
    (tmp_path / "in.txt").write_text("the cat\nthe dog\n")
    (tmp_path / "r.tsv").write_text("2\t0\t50\tlong\n")
    rc, _, err = run_cli(["score", str(word), str(tmp_path / "in.txt"), "--regions", str(tmp_path / "r.tsv")])
    assert_one_line_error(rc, err, "in.txt:2", "0-50")
