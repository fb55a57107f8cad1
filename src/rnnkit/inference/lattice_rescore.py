"""Rescore a word lattice with the RNN: expand it forward into states (node, last n words),
replace (or interpolate) each word arc's LM score with the RNN's, and return the expanded
lattice and its 1-best.

An RNN's probability of a word depends on the whole history, so one lattice node reached by
different word sequences needs one state per sequence: the search expands the lattice in
topological order into states (node, the last n words read, whether </s> was read). Paths
whose last n words agree are merged into one state and go on with the hidden state of the
best-scoring of them (Viterbi); the others' futures are scored as if they had its history.
With n at least the longest path's word count no two different histories merge, and every path
of the expanded lattice carries its exact RNN score; smaller n bounds the states per node by
the distinct n-word histories (docs/lattices.md measures what it loses).

Each word arc gets lm = log_b(lam * p_rnn(word | history) + (1 - lam) * b ** old_lm): lam = 1
replaces the old score, lam = 0 keeps it. Epsilon and <s> arcs do not advance the RNN and keep
their old LM score (SLF !NULL links carry none; on Kaldi lattices this is graph cost that no
word carries). </s> is scored where a path reaches a final node (mixed with the final weight's
old LM part, which for Kaldi holds the old </s> cost and for SLF is 0), or on a </s> arc.
The RNN steps of a level (all the nodes at the same longest distance from the start) go in
one batched stepper call per `batch_size` states.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConfigError, InputError
from .lattice import Arc, Lattice, Weights, levels, word_kind, words_of


@dataclass(slots=True)
class _State:
    """One expanded state: a lattice node with the last n words read."""

    id: int
    node: int
    hist: tuple
    ended: bool
    score: float = -math.inf  # best total of a path from the start to here
    back: int = -1  # the expanded arc of that best path
    lm: object = None  # its LMState, once stepped
    src_lm: object = None  # the best predecessor's LMState
    src_word: int | None = None  # the word id read from it (None: nothing to read)


@dataclass
class Result:
    lattice: Lattice  # the expanded lattice, new LM scores on its arcs and finals
    words: list[str]  # its 1-best
    score: float  # the 1-best's total
    states: int  # expanded states (the output lattice's nodes)
    steps: int  # RNN steps run (one per state entered by a word)
    calls: int  # batched stepper calls


@dataclass
class _Search:
    lat: Lattice
    stepper: object
    w: Weights
    n: int
    lam: float
    word_id: Callable[[str], int]
    batch_size: int
    states: list[_State] = field(default_factory=list)
    index: dict = field(default_factory=dict)  # (node, hist, ended) -> _State
    by_node: dict = field(default_factory=dict)  # node -> its states not yet expanded
    arcs: list[Arc] = field(default_factory=list)
    finals: dict[int, tuple[float, float]] = field(default_factory=dict)
    steps: int = 0
    calls: int = 0


def mix(rnn: float, old: float, lam: float, base: float) -> float:
    """log_b(lam * b**rnn + (1 - lam) * b**old): the RNN's weight lam in probability space."""
    if lam == 1.0:
        return rnn
    if lam == 0.0:
        return old
    ln_b = math.log(base)
    hi, lo = sorted((math.log(lam) + rnn * ln_b, math.log1p(-lam) + old * ln_b), reverse=True)
    return (hi + math.log1p(math.exp(lo - hi))) / ln_b


def rescore_lattice(lat: Lattice, stepper, *, ngram_merge: int = 4, lam: float = 1.0, weights: Weights | None = None,
                    word_id: Callable[[str], int] | None = None, batch_size: int = 256) -> Result:
    """Expand and rescore `lat` (checked) with `stepper` (LanguageModel.stepper()); `word_id`
    maps a lattice word to a model id (default stepper.id: unknown words are <unk>)."""
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"--lambda must be in [0, 1], got {lam}")
    if ngram_merge < 0:
        raise ConfigError(f"--ngram-merge must be >= 0, got {ngram_merge}")
    s = _Search(lat, stepper, weights or Weights(), ngram_merge, lam, word_id or stepper.id, batch_size)
    first = _state(s, lat.start, (), False)
    first.score, first.lm = 0.0, stepper.begin()
    out = lat.outgoing()
    for level in levels(lat):
        todo = [st for v in level for st in s.by_node.pop(v, [])]
        _step(s, todo)
        for st in todo:
            for a in out[st.node]:
                _relax(s, st, a)
            if st.node in lat.finals:
                _final(s, st)
            st.lm = st.src_lm = None  # expanded: its hidden state is no longer needed
    return _result(s)


def _state(s: _Search, node: int, hist: tuple, ended: bool) -> _State:
    key = (node, hist, ended)
    st = s.index.get(key)
    if st is None:
        st = s.index[key] = _State(len(s.states), node, hist, ended)
        s.states.append(st)
        s.by_node.setdefault(node, []).append(st)
    return st


def _step(s: _Search, todo: list[_State]) -> None:
    """Give each state its LMState: its best predecessor's, advanced by the word read (one
    batched stepper call per batch_size states)."""
    need = []
    for st in todo:
        if st.lm is None:
            if st.src_word is None:
                st.lm = st.src_lm
            else:
                need.append(st)
    for i in range(0, len(need), s.batch_size):
        part = need[i:i + s.batch_size]
        new, _ = s.stepper.advance([st.src_lm for st in part], [st.src_word for st in part])
        for st, lm in zip(part, new):
            st.lm = lm
        s.steps, s.calls = s.steps + len(part), s.calls + 1


def _relax(s: _Search, st: _State, a: Arc) -> None:
    """The arc `a` out of state `st`: its new LM score, the state it leads to, the best path there."""
    kind, hist, ended, wid = word_kind(a.word), st.hist, st.ended, None
    if kind != "eps" and st.ended:
        raise InputError(f"{s.lat.where(a.line)}: {a.word!r} follows the end of the sentence (</s>)")
    if kind == "word":
        wid = s.word_id(a.word)
        lm = mix(float(st.lm.logp[wid]) / math.log(s.lat.base), a.lm, s.lam, s.lat.base)
        hist = (*hist, wid)[-s.n:] if s.n else ()
    elif kind == "eos":
        lm, ended = _eos(s, st, a.lm), True
    else:
        lm = a.lm
    new = Arc(st.id, 0, a.word, a.am, lm, a.line, a.extra)
    score = st.score + s.w.arc(new)
    t = _state(s, a.dst, hist, ended)
    new.dst = t.id
    s.arcs.append(new)
    if score > t.score:
        t.score, t.back, t.src_lm, t.src_word = score, len(s.arcs) - 1, st.lm, wid


def _eos(s: _Search, st: _State, old: float) -> float:
    eos = s.stepper.vocab.eos_id
    return mix(float(st.lm.logp[eos]) / math.log(s.lat.base), old, s.lam, s.lat.base)


def _final(s: _Search, st: _State) -> None:
    """The final weight of a state at a final node: </s> scored unless a </s> arc was read."""
    old_lm, am = s.lat.finals[st.node]
    s.finals[st.id] = (old_lm if st.ended else _eos(s, st, old_lm), am)


def _result(s: _Search) -> Result:
    lat = s.lat
    end = max(s.finals, key=lambda i: s.states[i].score + s.w.final(s.finals[i]))
    path, i = [], end
    while i != 0:
        path.append(s.arcs[s.states[i].back])
        i = path[-1].src
    out = Lattice(lat.name, 0, s.finals, s.arcs, {st.id: lat.nodes[st.node] for st in s.states}, lat.base,
                  lat.source, lat.line, list(lat.header),
                  {st.id: lat.node_attrs[st.node] for st in s.states if st.node in lat.node_attrs},
                  {i: lat.final_extra[s.states[i].node] for i in s.finals if s.states[i].node in lat.final_extra})
    return Result(out, words_of(path[::-1]), s.states[end].score + s.w.final(s.finals[end]), len(s.states),
                  s.steps, s.calls)
