"""Streaming rescoring: id group by id group, the same numbers as the whole-list rescore, each
group out as soon as it is complete, ids that come back refused."""

from __future__ import annotations

import pytest

import rnnkit
from conftest import make_model_dir
from rnnkit.errors import InputError
from rnnkit.inference.rescore import iter_nbest, parse_nbest, rescore_stream

HYPS = [("u1", "the cat sat on the mat .", -10.0), ("u1", "mat the on sat cat the .", -9.5), ("u1", "the cat", -3.0),
        ("u2", "the dog .", 0.0), ("u3", "a dog played in the garden .", -1.0), ("u3", "a bird sang .", -2.0),
        ("u3", "the zebra sang", -1.5), ("u4", "", 0.0), ("u5", "it's a dog's life", -4.0), ("u5", "a dog", -4.0)]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return rnnkit.load(make_model_dir(tmp_path_factory.mktemp("m") / "model"))


def rows(groups) -> list[tuple]:
    return [(uid, h.id, h.text, h.line, h.ascore, h.lm, h.total) for uid, g in groups for h in g]


@pytest.mark.parametrize("chunk", [1, 2, 3, 4096])
def test_streaming_equals_the_whole_list_rescore(lm, chunk):
    kw = {"lm_weight": 2.0, "word_penalty": -0.5, "log_base": 10}
    whole = lm.rescore(HYPS, **kw)
    got = list(lm.rescore_iter(HYPS, chunk_sentences=chunk, **kw))
    assert [uid for uid, _ in got] == list(whole) == ["u1", "u2", "u3", "u4", "u5"]
    if chunk >= len(HYPS):  # one chunk: the very same batches, the same floats
        assert rows(got) == rows(whole.items())
    for (uid, g), (wuid, wg) in zip(got, whole.items()):
        assert [h.text for h in g] == [h.text for h in wg]  # the same ranking
        assert [h.total for h in g] == pytest.approx([h.total for h in wg], abs=1e-5)  # float32: other batches


class Feed:
    def __init__(self, items):
        self.items, self.taken = items, 0

    def __iter__(self):
        for item in self.items:
            self.taken += 1
            yield item


def test_a_group_comes_out_when_complete(lm):
    """With chunks of 2 the first id (3 hypotheses) is out once the two chunks that hold it and
    the one hypothesis of look-ahead (which tells that the id changed) are read."""
    feed = Feed(HYPS)
    it = lm.rescore_iter(feed, chunk_sentences=2)
    assert feed.taken == 0
    uid, group = next(it)
    assert uid == "u1" and len(group) == 3 and feed.taken == 2 * 2 + 1
    seen = [uid] + [u for u, _ in it]
    assert seen == ["u1", "u2", "u3", "u4", "u5"] and feed.taken == len(HYPS)


def test_only_unscored_hypotheses_are_held():
    """rescore_stream holds the hypotheses read but not yet scored: with a scorer that reads one
    text and answers it, never more than the one look-ahead."""
    feed = Feed(parse_nbest([f"u{i // 3}\tw{i}" for i in range(30)], "plain", "f"))
    held = []

    def lm_logprobs(texts):
        for t in texts:
            held.append(feed.taken)
            yield -float(len(t))

    out = list(rescore_stream(feed, lm_logprobs, 1.0, 0.0))
    assert len(out) == 10 and all(len(g) == 3 for _, g in out)
    assert max(h - i for i, h in enumerate(held, 1)) <= 1


def test_an_id_that_comes_back_is_refused(lm):
    hyps = [("a", "the cat"), ("b", "the dog"), ("a", "a cat")]
    with pytest.raises(InputError, match=r"^nb\.txt:3: id 'a' comes back after other ids"):
        list(lm.rescore_iter(hyps, source="nb.txt"))
    assert list(lm.rescore(hyps)) == ["a", "b"]  # the whole-list form still gathers them


def test_iter_nbest_is_lazy_and_keeps_the_messages():
    lines = ["u1\tthe cat", "u1\ta cat", "no tab here"]
    it = iter_nbest(lines, "plain", "nb.txt")
    assert [next(it).text, next(it).text] == ["the cat", "a cat"]  # read before the bad line
    with pytest.raises(InputError, match=r"^nb\.txt:3: expected 'id<TAB>hypothesis'"):
        next(it)
    with pytest.raises(InputError, match=r"^nb\.txt: no hypotheses"):
        list(iter_nbest(["", "  "], "plain", "nb.txt"))
    with pytest.raises(InputError, match="--format"):
        iter_nbest(lines, "moses", "nb.txt")  # checked at once
    assert parse_nbest(lines[:2], "plain", "f") == list(iter_nbest(lines[:2], "plain", "f"))
