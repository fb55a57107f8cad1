"""The word lattice as a graph: arcs with acoustic and LM scores, checks (cycles, dangling arcs,
nodes off every start-to-end path), topological order and levels, Viterbi best path, and path
enumeration for tests and small cases. Knows no file format (lattice_formats.py) and no model
(lattice_rescore.py).

Scores are log-likelihoods in the lattice's own log base (`base`: SLF's base=, e for Kaldi,
whose costs are negated on reading). A path's total is

    acoustic_scale * (sum of am) + lm_weight * (sum of lm) + word_penalty * words

with the final node's (lm, am) weight added at the end (Kaldi's final weights; 0 for SLF).
Words: None is epsilon (SLF !NULL, Kaldi <eps> / label 0); sentence boundaries (<s>,
!SENT_START, </s>, !SENT_END) are not words for the penalty or the 1-best text.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import InputError

BOS_WORDS = frozenset({"<s>", "!SENT_START"})
EOS_WORDS = frozenset({"</s>", "!SENT_END"})
EPSILON_WORDS = frozenset({"!NULL", "<eps>"})


def word_kind(word: str | None) -> str:
    """'eps' (no word, or <s>: nothing for the LM to predict), 'eos' (</s>), or 'word'."""
    if word is None or word in BOS_WORDS:
        return "eps"
    return "eos" if word in EOS_WORDS else "word"


@dataclass(slots=True)
class Arc:
    src: int
    dst: int
    word: str | None  # None: epsilon
    am: float  # acoustic log-likelihood (lattice base)
    lm: float  # LM log-probability (lattice base)
    line: int = 0  # input line, for messages (0: made here)
    extra: tuple = ()  # format fields written back as read (SLF k=v pairs; Kaldi labels, transition ids)


@dataclass
class Lattice:
    name: str  # utterance id
    start: int
    finals: dict[int, tuple[float, float]]  # node -> final (lm, am) log-weights
    arcs: list[Arc]
    nodes: dict[int, int]  # node -> its input line (declaration, or first arc naming it)
    base: float = math.e  # log base of am and lm
    source: str = "<lattice>"  # file name, for messages
    line: int = 0  # the lattice's first input line
    header: list[tuple[str, str]] = field(default_factory=list)  # SLF header fields kept (not N, L, start, end)
    node_attrs: dict[int, tuple] = field(default_factory=dict)  # SLF node fields kept (t=, v=, ...)
    final_extra: dict[int, tuple] = field(default_factory=dict)  # Kaldi compact final transition ids

    def header_value(self, key: str) -> str | None:
        return next((v for k, v in self.header if k == key), None)

    def where(self, line: int) -> str:
        return f"{self.source}:{line or self.line}"

    def outgoing(self) -> dict[int, list[Arc]]:
        out: dict[int, list[Arc]] = {n: [] for n in self.nodes}
        for a in self.arcs:
            out[a.src].append(a)
        return out


def check_graph(lat: Lattice) -> None:
    """An arc to or from an undeclared node (dangling), or a cycle: one InputError naming FILE:LINE."""
    for a in lat.arcs:
        for n in (a.src, a.dst):
            if n not in lat.nodes:
                raise InputError(f"{lat.where(a.line)}: arc {a.src}->{a.dst} names node {n}, which the lattice "
                                 "does not declare (a dangling arc)")
    topological_order(lat)


def check(lat: Lattice) -> None:
    """Refuse what rescoring cannot walk, with one InputError naming FILE:LINE: check_graph's
    problems, a node not reachable from the start, a node that reaches no end."""
    check_graph(lat)
    for n in (lat.start, *lat.finals):
        if n not in lat.nodes:
            raise InputError(f"{lat.where(lat.line)}: start/end node {n} is not a node of the lattice")
    ahead = _reach(lat.start, {n: [a.dst for a in arcs] for n, arcs in lat.outgoing().items()})
    back: dict[int, list[int]] = {n: [] for n in lat.nodes}
    for a in lat.arcs:
        back[a.dst].append(a.src)
    behind = _reach_all(lat.finals, back)
    for n, line in sorted(lat.nodes.items(), key=lambda item: item[1]):
        if n not in ahead:
            raise InputError(f"{lat.where(line)}: node {n} is not reachable from the start node {lat.start}")
        if n not in behind:
            raise InputError(f"{lat.where(line)}: node {n} does not reach the end "
                             f"(a dead end: no path from it to a final node)")


def _reach(start: int, succ: dict[int, list[int]]) -> set[int]:
    return _reach_all([start], succ)


def _reach_all(starts, succ: dict[int, list[int]]) -> set[int]:
    seen, todo = set(starts), list(starts)
    while todo:
        for m in succ[todo.pop()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def topological_order(lat: Lattice) -> list[int]:
    """Nodes so that every arc goes forward (Kahn); a cycle is an InputError naming an arc on it."""
    indeg = dict.fromkeys(lat.nodes, 0)
    for a in lat.arcs:
        indeg[a.dst] += 1
    out = lat.outgoing()
    order = [n for n, d in indeg.items() if d == 0]
    i = 0
    while i < len(order):
        for a in out[order[i]]:
            indeg[a.dst] -= 1
            if indeg[a.dst] == 0:
                order.append(a.dst)
        i += 1
    if len(order) < len(lat.nodes):
        stuck = next(a for a in lat.arcs if indeg[a.src] > 0 and indeg[a.dst] > 0)
        raise InputError(f"{lat.where(stuck.line)}: the lattice has a cycle (through arc {stuck.src}->{stuck.dst}); "
                         "a lattice must be acyclic")
    return order


def levels(lat: Lattice) -> list[list[int]]:
    """Nodes grouped by their longest distance (in arcs) from the start: every arc goes from a
    lower level to a higher one, so a level's nodes can be worked on together."""
    depth = dict.fromkeys(lat.nodes, 0)
    out = lat.outgoing()
    for n in topological_order(lat):
        for a in out[n]:
            depth[a.dst] = max(depth[a.dst], depth[n] + 1)
    groups: dict[int, list[int]] = {}
    for n, d in depth.items():
        groups.setdefault(d, []).append(n)
    return [sorted(groups[d]) for d in sorted(groups)]


@dataclass(frozen=True)
class Weights:
    """How a path's total is made (module docstring)."""

    acoustic_scale: float = 1.0
    lm_weight: float = 1.0
    word_penalty: float = 0.0

    def arc(self, a: Arc) -> float:
        return self.acoustic_scale * a.am + self.lm_weight * a.lm + self.word_penalty * (word_kind(a.word) == "word")

    def final(self, weights: tuple[float, float]) -> float:
        lm, am = weights
        return self.acoustic_scale * am + self.lm_weight * lm


def words_of(arcs: list[Arc]) -> list[str]:
    """The words of a path (no epsilons, no sentence boundaries)."""
    return [a.word for a in arcs if word_kind(a.word) == "word"]


def path_score(lat: Lattice, arcs: list[Arc], w: Weights) -> float:
    """The total of one start-to-final path (arcs in order)."""
    end = arcs[-1].dst if arcs else lat.start
    return math.fsum([w.arc(a) for a in arcs] + [w.final(lat.finals[end])])


def paths(lat: Lattice, limit: int = 100_000) -> Iterator[list[Arc]]:
    """Every start-to-final path (depth first); more than `limit` is an InputError (tests and
    small cases only: a lattice's path count grows exponentially)."""
    out, count = lat.outgoing(), 0
    stack: list[tuple[int, list[Arc]]] = [(lat.start, [])]
    while stack:
        node, prefix = stack.pop()
        if node in lat.finals:
            count += 1
            if count > limit:
                raise InputError(f"{lat.where(lat.line)}: more than {limit} paths; too many to list")
            yield prefix
        for a in reversed(out[node]):
            stack.append((a.dst, [*prefix, a]))


def best_path(lat: Lattice, w: Weights) -> tuple[float, list[Arc]]:
    """Viterbi: the highest total over all paths and its arcs (ties: the first arc read)."""
    out = lat.outgoing()
    score: dict[int, float] = {lat.start: 0.0}
    back: dict[int, Arc] = {}
    for n in topological_order(lat):
        if n not in score:
            continue
        for a in out[n]:
            s = score[n] + w.arc(a)
            if a.dst not in score or s > score[a.dst]:
                score[a.dst], back[a.dst] = s, a
    end = max((n for n in lat.finals if n in score), key=lambda n: score[n] + w.final(lat.finals[n]))
    arcs: list[Arc] = []
    n = end
    while n != lat.start:
        arcs.append(back[n])
        n = back[n].src
    return score[end] + w.final(lat.finals[end]), arcs[::-1]
