"""Kaldi's text lattices (format in lattice_formats.py's docstring): read one utterance at a
time, write back with the labels and transition ids as read; and words.txt symbol tables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TextIO

from ..errors import InputError
from .lattice import EPSILON_WORDS, Arc, Lattice, check


def _num(x: float) -> str:
    return repr(float(x) + 0.0)


def _cost(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise InputError(f"{where}: cost {text[:40]!r} is not a finite number")
    return v


def _state(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise InputError(f"{where}: state {text[:40]!r} is not a whole number >= 0 (Kaldi text lattice)")
    return int(text)


def read_symbols(lines: Iterable[str], source: str) -> dict[str, str]:
    """A words.txt table `symbol id` per line -> {id text: symbol}."""
    table: dict[str, str] = {}
    for n, raw in enumerate(lines, 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise InputError(f"{source}:{n}: expected 'symbol id' (a Kaldi words.txt line), got {raw.strip()[:60]!r}")
        table[str(int(parts[1]))] = parts[0]
    if not table:
        raise InputError(f"{source}: no symbols (empty words.txt)")
    return table


class _Kaldi:
    """One utterance's lattice as its lines come."""

    def __init__(self, name: str, line: int, source: str, symbols: dict[str, str] | None):
        self.name, self.line, self.source, self.symbols = name, line, source, symbols
        self.start: int | None = None
        self.nodes: dict[int, int] = {}
        self.arcs: list[Arc] = []
        self.finals: dict[int, tuple[float, float]] = {}
        self.final_extra: dict[int, tuple] = {}

    def weight(self, text: str, where: str) -> tuple[float, float, str | None]:
        """'graph,acoustic' or 'graph,acoustic,transition_ids' -> (lm, am, ids or None)."""
        parts = text.split(",")
        if len(parts) not in (2, 3):
            raise InputError(f"{where}: weight {text[:40]!r} is not 'graph,acoustic' (or "
                             "'graph,acoustic,transition_ids')")
        return -_cost(parts[0], where), -_cost(parts[1], where), parts[2] if len(parts) == 3 else None

    def word(self, label: str, where: str) -> str | None:
        if label == "0" or label in EPSILON_WORDS:
            return None
        if self.symbols is not None and label in self.symbols:
            word = self.symbols[label]
            return None if word in EPSILON_WORDS else word
        if label.isdigit():
            hint = "is not in the symbol table" if self.symbols is not None else \
                "is a number: give the symbol table with --words words.txt"
            raise InputError(f"{where}: word label {label} {hint}")
        return label

    def add(self, parts: list[str], n: int) -> None:
        where = f"{self.source}:{n}"
        src = _state(parts[0], where)
        if self.start is None:
            self.start = src
        self.nodes.setdefault(src, n)
        if len(parts) <= 2:
            lm, am, ids = self.weight(parts[1], where) if len(parts) == 2 else (0.0, 0.0, None)
            self.finals[src] = (lm, am)
            if ids is not None:
                self.final_extra[src] = (ids,)
            return
        compact = len(parts) == 3 or (len(parts) == 4 and "," in parts[3])
        if len(parts) > 5 or (len(parts) == 5 and "," not in parts[4]):
            raise InputError(f"{where}: expected 'src dst ilabel olabel graph,acoustic' or 'state graph,acoustic' "
                             f"(Kaldi text lattice), got {' '.join(parts)[:60]!r}")
        dst = _state(parts[1], where)
        self.nodes.setdefault(dst, n)
        label = parts[2] if compact else parts[3]
        weight = parts[3] if compact and len(parts) == 4 else parts[4] if len(parts) == 5 else "0,0"
        lm, am, ids = self.weight(weight, where)
        extra = ("C", parts[2], ids or "") if compact else ("L", parts[2], parts[3])
        self.arcs.append(Arc(src, dst, self.word(label, where), am, lm, n, extra))

    def finish(self) -> Lattice:
        if self.start is None:
            raise InputError(f"{self.source}:{self.line}: utterance {self.name!r} has no arcs or final states")
        if not self.finals:
            raise InputError(f"{self.source}:{self.line}: utterance {self.name!r} has no final state")
        lat = Lattice(self.name, self.start, self.finals, self.arcs, self.nodes, math.e, self.source, self.line,
                      final_extra=self.final_extra)
        check(lat)
        return lat


def read_kaldi(lines: Iterable[str], source: str, symbols: dict[str, str] | None = None) -> Iterator[Lattice]:
    """The lattices of a Kaldi text archive, one utterance at a time (each checked)."""
    cur: _Kaldi | None = None
    found = False
    for n, raw in enumerate(lines, 1):
        parts = raw.split()
        if not parts:
            if cur is not None:
                yield cur.finish()
                cur = None
        elif cur is None:
            if len(parts) != 1:
                raise InputError(f"{source}:{n}: expected an utterance id alone on its line (the key of a Kaldi "
                                 f"text archive), got {raw.strip()[:60]!r}")
            cur, found = _Kaldi(parts[0], n, source, symbols), True
        else:
            cur.add(parts, n)
    if cur is not None:
        yield cur.finish()
    if not found:
        raise InputError(f"{source}: no lattice (empty input)")


def write_kaldi(lat: Lattice, out: TextIO) -> None:
    """One lattice as Kaldi text: the key, the start state's lines first, a blank line."""
    by_src: dict[int, list[Arc]] = {}
    for a in lat.arcs:
        by_src.setdefault(a.src, []).append(a)
    lines = [f"{lat.name} "]
    for s in [lat.start, *sorted(n for n in lat.nodes if n != lat.start)]:
        for a in by_src.get(s, []):
            costs = f"{_num(-a.lm)},{_num(-a.am)}"
            if a.extra and a.extra[0] == "C":
                lines.append(f"{a.src}\t{a.dst}\t{a.extra[1]}\t{costs},{a.extra[2]}")
            else:
                ilabel, olabel = a.extra[1:] if a.extra else ("0", a.word or "0")
                lines.append(f"{a.src}\t{a.dst}\t{ilabel}\t{olabel}\t{costs}")
        if s in lat.finals:
            lm, am = lat.finals[s]
            ids = lat.final_extra.get(s)
            lines.append(f"{s}\t{_num(-lm)},{_num(-am)}" + (f",{ids[0]}" if ids else ""))
    out.write("".join(line + "\n" for line in lines) + "\n")
