"""Read and write word lattices: HTK SLF and Kaldi's text lattices, one utterance at a time.

HTK SLF (HTK book, "HTK Standard Lattice Format"): a header (VERSION=, UTTERANCE=, base=,
lmscale=, wdpenalty=, acscale=, start=, end=, ...) ended by the size line `N=nodes L=links`,
then node lines `I=n t=time W=word ...` and link lines `J=j S=from E=to W=word a=acoustic
l=language ...`; fields may be abbreviated (V U N L; NODES= LINKS= START= END= WORD=
acoustic= language= ngram=). A link's word is its own W= or else its end node's; !NULL is no
word. The start and end are the nodes declared by start=/end=, or else the unique node
without incoming / outgoing links. Scores are logs in base `base=` (default e; base=0,
linear scores, is refused). Several lattices may follow each other in one file: a header line
after links starts the next. Written back with words on links, start= and end= declared, the
same header, node fields and unknown link fields; several final states get a !NULL link each
to one new end node carrying their final weight.

Kaldi (`lattice-copy --write-compact=false ark:in ark,t:out`): per utterance the key alone on
a line, then one line per arc `src dst ilabel olabel [graph,acoustic]` or final state
`state [graph,acoustic]` (no weight: 0,0), then a blank line; the first line's source is the
start state. Costs are negated natural logs (lm = -graph, am = -acoustic). Compact lattices
(the default without --write-compact=false) are read too: arcs `src dst word
[graph,acoustic,transition_ids]`, finals `state graph,acoustic,transition_ids`. Output label 0
is epsilon; integer labels need the words.txt symbol table, symbols are taken as words.
Labels and transition ids are written back as read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import TextIO

from ..errors import ConfigError, InputError
from .lattice import EPSILON_WORDS, Arc, Lattice, check, check_graph, word_kind
from .lattice_kaldi import read_kaldi, read_symbols, write_kaldi

__all__ = ["FORMATS", "read_kaldi", "read_lattices", "read_slf", "read_symbols", "write_kaldi", "write_lattice",
           "write_slf"]

FORMATS = ("slf", "kaldi")
_FIELD = re.compile(r'\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')
_HEADER_NAMES = {"V": "VERSION", "U": "UTTERANCE", "S": "SUBLAT", "N": "NODES", "L": "LINKS", "START": "start",
                 "END": "end"}
_LINK_NAMES = {"S": "START", "E": "END", "W": "WORD", "a": "acoustic", "l": "language", "n": "ngram"}


def _num(x: float) -> str:
    """A float written so that it reads back bit for bit (no -0)."""
    return repr(float(x) + 0.0)


def _float(text: str, what: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise InputError(f"{where}: {what} {text[:40]!r} is not a finite number")
    return v


def _int(text: str, what: str, where: str) -> int:
    if not re.fullmatch(r"\d+", text):
        raise InputError(f"{where}: {what} {text[:40]!r} is not a whole number >= 0")
    return int(text)


# ---------------------------------------------------------------- SLF

def _fields(line: str, where: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(line):
        m = _FIELD.match(line, pos)
        if m is None:
            raise InputError(f"{where}: expected NAME=VALUE fields (HTK SLF), got {line[pos:pos + 60].strip()!r}")
        value = m.group(2)
        if len(value) >= 2 and value[0] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((m.group(1), value))
        pos = m.end()
        while pos < len(line) and line[pos].isspace():
            pos += 1
    return out


class _Slf:
    """One SLF lattice as its lines come."""

    def __init__(self, source: str, line: int):
        self.source, self.line = source, line
        self.header: list[tuple[str, str]] = []
        self.size: dict[str, int] = {}
        self.size_line = 0
        self.ends: dict[str, int] = {}
        self.base = math.e
        self.nodes: dict[int, int] = {}
        self.node_words: dict[int, str] = {}
        self.node_attrs: dict[int, tuple] = {}
        self.links: list[tuple[Arc, bool]] = []  # (arc, word given on the link)
        self.link_ids: set[int] = set()

    def where(self, n: int) -> str:
        return f"{self.source}:{n}"

    @property
    def has_body(self) -> bool:
        return bool(self.nodes or self.links)

    def header_line(self, fields: list[tuple[str, str]], n: int) -> None:
        for key, value in fields:
            name = _HEADER_NAMES.get(key, key)
            if name == "SUBLAT":
                raise InputError(f"{self.where(n)}: SLF sub-lattices (SUBLAT=) are not supported")
            if name in ("NODES", "LINKS"):
                self.size[name], self.size_line = _int(value, name, self.where(n)), n
            elif name in ("start", "end"):
                self.ends[name] = _int(value, name, self.where(n))
            else:
                if name in ("lmscale", "wdpenalty", "acscale"):
                    _float(value, name, self.where(n))
                if name == "base":
                    self.base = _float(value, "base", self.where(n))
                    if self.base <= 0 or self.base == 1:
                        raise InputError(f"{self.where(n)}: base={value} is not supported (only log scores: "
                                         "a base > 0 other than 1)")
                self.header.append((key, value))

    def node_line(self, fields: list[tuple[str, str]], n: int) -> None:
        node = _int(fields[0][1], "node number I=", self.where(n))
        if node in self.nodes:
            raise InputError(f"{self.where(n)}: node I={node} is declared twice (first at line {self.nodes[node]})")
        self.nodes[node] = n
        attrs = []
        for key, value in fields[1:]:
            if key in ("W", "WORD"):
                self.node_words[node] = value
            elif key == "L":
                raise InputError(f"{self.where(n)}: SLF sub-lattice nodes (L=) are not supported")
            else:
                attrs.append((key, value))
        if attrs:
            self.node_attrs[node] = tuple(attrs)

    def link_line(self, fields: list[tuple[str, str]], n: int) -> None:
        where = self.where(n)
        j = _int(fields[0][1], "link number J=", where)
        if j in self.link_ids:
            raise InputError(f"{where}: link J={j} is declared twice")
        self.link_ids.add(j)
        f = {_LINK_NAMES.get(k, k): v for k, v in fields[1:]}
        if "START" not in f or "END" not in f:
            raise InputError(f"{where}: link J={j} needs both S= (start node) and E= (end node)")
        lm_key = "language" if "language" in f else "ngram" if "ngram" in f else None
        known = {"START", "END", "WORD", "acoustic", lm_key}
        arc = Arc(_int(f["START"], "S=", where), _int(f["END"], "E=", where), f.get("WORD"),
                  _float(f.get("acoustic", "0"), "acoustic score a=", where),
                  _float(f[lm_key], "LM score l=", where) if lm_key else 0.0, n,
                  tuple((k, v) for k, v in fields[1:] if _LINK_NAMES.get(k, k) not in known))
        self.links.append((arc, "WORD" in f))

    def finish(self) -> Lattice:
        if not self.size_line:
            raise InputError(f"{self.where(self.line)}: the lattice header has no size line 'N=<nodes> L=<links>'")
        n_nodes, n_links = self.size.get("NODES", -1), self.size.get("LINKS", -1)
        if self.nodes and len(self.nodes) != n_nodes:
            raise InputError(f"{self.where(self.size_line)}: N={n_nodes} but the lattice has {len(self.nodes)} "
                             "node lines")
        if len(self.links) != n_links:
            raise InputError(f"{self.where(self.size_line)}: L={n_links} but the lattice has {len(self.links)} "
                             "link lines")
        nodes = self.nodes or dict.fromkeys(range(n_nodes), self.size_line)
        arcs = [self._word(a, given) for a, given in self.links]
        name = next((v for k, v in self.header if _HEADER_NAMES.get(k, k) == "UTTERANCE"), None)
        lat = Lattice(name or f"{self.source}:{self.line}", -1, {}, arcs, nodes, self.base, self.source, self.line,
                      self.header, self.node_attrs)
        check_graph(lat)  # a dangling arc or a cycle is named as such, before start and end are looked for
        lat.start = self._end("start", nodes, {a.dst for a in arcs})
        lat.finals = {self._end("end", nodes, {a.src for a in arcs}): (0.0, 0.0)}
        check(lat)
        start = lat.start
        word = self.node_words.get(start)
        if word is not None and word_kind(None if word in EPSILON_WORDS else word) == "word":
            raise InputError(f"{self.where(nodes[start])}: the start node carries the word {word!r}; words on nodes "
                             "are the words of the links entering them, and no link enters the start")
        return lat

    def _word(self, a: Arc, given: bool) -> Arc:
        word = a.word if given else self.node_words.get(a.dst)
        a.word = None if word is None or word in EPSILON_WORDS else word
        return a

    def _end(self, which: str, nodes: dict[int, int], used: set[int]) -> int:
        if which in self.ends:
            return self.ends[which]
        free = sorted(set(nodes) - used)
        if len(free) != 1:
            side = "incoming" if which == "start" else "outgoing"
            raise InputError(f"{self.where(self.size_line)}: {len(free)} nodes have no {side} link "
                             f"({', '.join(map(str, free[:5]))}); declare the {which} node with {which}=")
        return free[0]


def read_slf(lines: Iterable[str], source: str) -> Iterator[Lattice]:
    """The lattices of SLF lines, one at a time (each checked)."""
    cur: _Slf | None = None
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = _fields(line, f"{source}:{n}")
        kind = fields[0][0]
        if kind in ("I", "J"):
            if cur is None or not cur.size_line:
                raise InputError(f"{source}:{n}: a {'node' if kind == 'I' else 'link'} line before the size line "
                                 "'N=<nodes> L=<links>'")
            (cur.node_line if kind == "I" else cur.link_line)(fields, n)
            continue
        if cur is not None and cur.has_body:
            yield cur.finish()
            cur = None
        cur = cur or _Slf(source, n)
        cur.header_line(fields, n)
    if cur is None:
        raise InputError(f"{source}: no lattice (empty input)")
    yield cur.finish()


def _slf_value(v: str) -> str:
    return v if v and not re.search(r'[\s"\\]', v) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_slf(lat: Lattice, out: TextIO) -> None:
    """One lattice as SLF (module docstring)."""
    arcs, nodes = list(lat.arcs), dict(lat.nodes)
    if list(lat.finals.values()) == [(0.0, 0.0)]:
        end = next(iter(lat.finals))
    else:
        end = max(nodes) + 1
        nodes[end] = 0
        arcs += [Arc(f, end, None, am, lm) for f, (lm, am) in lat.finals.items()]
    lines = [f"{k}={_slf_value(v)}" for k, v in lat.header]
    lines += [f"start={lat.start} end={end}", f"N={len(nodes)} L={len(arcs)}"]
    for node in sorted(nodes):
        attrs = lat.node_attrs.get(node, ())
        lines.append(" ".join([f"I={node}", *(f"{k}={_slf_value(v)}" for k, v in attrs)]))
    for j, a in enumerate(arcs):
        fields = [f"J={j}", f"S={a.src}", f"E={a.dst}", f"W={_slf_value(a.word or '!NULL')}", f"a={_num(a.am)}",
                  f"l={_num(a.lm)}", *(f"{k}={_slf_value(v)}" for k, v in a.extra)]
        lines.append(" ".join(fields))
    out.write("".join(line + "\n" for line in lines))


def read_lattices(lines: Iterable[str], fmt: str, source: str, symbols: dict[str, str] | None = None
                  ) -> Iterator[Lattice]:
    """The lattices of `lines` in format `fmt` (slf | kaldi), one at a time, each checked;
    `symbols` ({id: word}, read_symbols) maps Kaldi's integer word labels."""
    if fmt == "slf":
        return read_slf(lines, source)
    if fmt == "kaldi":
        return read_kaldi(lines, source, symbols)
    raise ConfigError(f"--lattice-format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write_lattice(lat: Lattice, fmt: str, out: TextIO) -> None:
    """One lattice in format `fmt` (slf | kaldi)."""
    (write_slf if fmt == "slf" else write_kaldi)(lat, out)
