"""N-best rescoring: parse n-best lists, add a weighted LM score, pick the best per utterance.

Formats (one hypothesis per line):
    plain   id<TAB>hypothesis                      (no acoustic score: ascore = 0)
    scored  id<TAB>ascore<TAB>hypothesis           (plain with the acoustic / translation score, e.g.
                                                    Kaldi's nbest-to-linear ac costs negated, pasted in)
    srilm   ascore lscore nwords w1 w2 ...         (SRILM's NBestList; the whole file is one utterance,
                                                    its id the file name; the old lscore is replaced)
    kaldi   uttid-N w1 w2 ...                      (id = uttid, N = the hypothesis number)

total = ascore + lm_weight * lm_logprob + word_penalty * nwords, with lm_logprob in the chosen
log base (default 10, as SRILM and Kaldi scores are). Hypotheses keep their input order
within an id in ties. The acoustic score must be a finite number (a decimal such as -12.5 or
1e-3; NaN, Inf and 1e999 are refused, naming FILE:LINE); the old lscore, replaced, may be any
number SRILM writes (-inf included); a total that overflows is refused too.

Two ways through: `parse_nbest` + `combine` take a whole list (an id's hypotheses gathered
wherever they are); `iter_nbest` + `rescore_stream` go id group by id group, each written as
soon as it is complete, in memory bounded by a few chunks of hypotheses and the largest group
(an id's hypotheses must then be consecutive, as n-best files have them; the ids seen are kept,
a few dozen bytes each, to refuse one that comes back rather than rank it twice).
`rescore_carried` goes id group by id group too, each group scored from the state the previous
group's best hypothesis left (inference/context.py: --carry-context).

With an n-gram mix (`Mix`: an ARPA model and lambda, the RNN's weight), a hypothesis' LM
score is the sum over its tokens of ln(lambda p_rnn + (1 - lambda) p_ngram) (rnnkit.ngram.mix),
in the chosen base: lambda 1 is the RNN alone, 0 the n-gram alone.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

FORMATS = ("plain", "scored", "srilm", "kaldi")


@dataclass
class Hyp:
    id: str  # utterance id
    text: str  # the hypothesis words
    ascore: float = 0.0  # acoustic / translation model score from the input (0 when absent)
    line: int = 0  # 1-based input line, for messages and stable order
    lm: float = 0.0  # LM log-probability in the output base (filled by rescore)
    total: float = 0.0  # combined score (filled by rescore)

    @property
    def nwords(self) -> int:
        return len(self.text.split())


def _plain(line: str, n: int, where: str, source: str) -> Hyp:
    if "\t" not in line:
        raise InputError(f"{where}: expected 'id<TAB>hypothesis', found no tab: {line[:60]!r}")
    uid, text = line.split("\t", 1)
    return Hyp(uid.strip(), text.strip(), 0.0, n)


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LSCORE = re.compile(rf"{_NUMBER.pattern}|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)


def _scored(line: str, n: int, where: str, source: str) -> Hyp:
    parts = line.split("\t", 2)
    if len(parts) < 3:
        raise InputError(f"{where}: expected 'id<TAB>ascore<TAB>hypothesis', found {len(parts) - 1} tab(s): "
                         f"{line[:60]!r}")
    return Hyp(parts[0].strip(), parts[2].strip(), _finite(parts[1].strip(), "acoustic score", where), n)


def _srilm(line: str, n: int, where: str, source: str) -> Hyp:
    parts = line.split()
    if len(parts) < 3 or not _LSCORE.fullmatch(parts[1]) or not parts[2].isascii() or not parts[2].isdigit():
        raise InputError(f"{where}: expected 'ascore lscore nwords words...' (SRILM n-best), got {line[:60]!r}")
    ascore, nwords, words = _finite(parts[0], "acoustic score", where), int(parts[2]), parts[3:]
    if nwords != len(words):
        raise InputError(f"{where}: nwords says {nwords} but the line has {len(words)} words")
    return Hyp(Path(source).name, " ".join(words), ascore, n)


def _finite(text: str, what: str, where: str) -> float:
    """A score as a finite float, or InputError "WHERE: WHAT 'nan' is not a finite number"."""
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not math.isfinite(value):  # not a number, NaN, Inf, or beyond a float (1e999)
        raise InputError(f"{where}: {what} {text[:40]!r} is not a finite number")
    return value


def _kaldi(line: str, n: int, where: str, source: str) -> Hyp:
    uid, _, text = line.partition(" ")
    base, dash, num = uid.rpartition("-")
    if not dash or not base or not num.isdigit():
        raise InputError(f"{where}: expected 'uttid-N words...' (Kaldi n-best), got {line[:60]!r}")
    return Hyp(base, text.strip(), 0.0, n)


@dataclass(frozen=True)
class Mix:
    """An n-gram model to interpolate with (rnnkit.ngram's ArpaModel) and lambda, the RNN's weight."""

    arpa: Any
    lam: float = 0.5  # the RNN's weight in probability space: 1 = the RNN alone, 0 = the n-gram alone

    def __post_init__(self) -> None:
        from ..ngram.mix import check_lambda

        check_lambda(self.lam)


def token_arrays(score: Any, mix: Mix) -> tuple[Any, Any]:
    """(RNN ln p, n-gram ln p) over one SentenceScore's scored tokens (per-token scores needed)."""
    from ..ngram import mix as ngram_mix

    return ngram_mix.token_logprobs(score, mix.arpa, bos=True, eos=True)


def mixed_logprob(rnn_ln: Any, ngram_ln: Any, lam: float) -> float:
    """The natural-log sum over tokens of the interpolated probabilities, added in token order
    (as sentence scores are: lambda 1 gives the RNN's total bit for bit); a token whose mixed
    probability is 0 (lambda 0 and a word the n-gram cannot score) is left out, as
    rnnkit.ngram.mix counts it (an OOV)."""
    from ..ngram import mix as ngram_mix

    m = ngram_mix.mix_ln(rnn_ln, ngram_ln, lam)
    return float(sum(m[np.isfinite(m)].tolist()))


def hyp_logprob(score: Any, ln_base: float, mix: Mix | None = None) -> float:
    """A hypothesis' LM log-probability in the output base from its SentenceScore: the RNN's,
    or with `mix` the interpolated one (the score must then hold per-token scores)."""
    if mix is None:
        return score.logprob / ln_base
    return mixed_logprob(*token_arrays(score, mix), mix.lam) / ln_base


PARSERS = {"plain": _plain, "scored": _scored, "srilm": _srilm, "kaldi": _kaldi}


def iter_nbest(lines: Iterable[str], fmt: str, source: str) -> Iterator[Hyp]:
    """Parse n-best lines as they come; a line that does not parse is an InputError naming
    FILE:LINE, a list without hypotheses one naming FILE (at its end). The format is checked now."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return _parse(lines, PARSERS[fmt], source)


def _parse(lines: Iterable[str], parse: Callable[..., Hyp], source: str) -> Iterator[Hyp]:
    found = False
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if line:
            found = True
            yield parse(line, n, f"{source}:{n}", source)
    if not found:
        raise InputError(f"{source}: no hypotheses (empty n-best list)")


def parse_nbest(lines: Iterable[str], fmt: str, source: str) -> list[Hyp]:
    """All hypotheses of n-best lines (iter_nbest as a list)."""
    return list(iter_nbest(lines, fmt, source))


def _fill(h: Hyp, lm_logprob: float, lm_weight: float, word_penalty: float, source: str = "<hypotheses>") -> Hyp:
    h.lm = lm_logprob
    h.total = h.ascore + lm_weight * lm_logprob + word_penalty * h.nwords
    if not math.isfinite(h.total):  # finite scores, but weights so large that the sum overflows
        raise InputError(f"{source}:{h.line}: total score {h.total} of the hypothesis is not finite (ascore {h.ascore}, "
                         f"lm {lm_logprob}); use a smaller --lm-weight or --word-penalty")
    return h


def _ranked(group: list[Hyp]) -> list[Hyp]:
    """Best first; ties in input order."""
    return sorted(group, key=lambda h: (-h.total, h.line))


def combine(hyps: list[Hyp], lm_logprobs: list[float], lm_weight: float, word_penalty: float) -> dict[str, list[Hyp]]:
    """Fill lm and total; return hypotheses grouped by id (first-seen order), best first."""
    groups: dict[str, list[Hyp]] = {}
    for h, lp in zip(hyps, lm_logprobs, strict=True):
        groups.setdefault(h.id, []).append(_fill(h, lp, lm_weight, word_penalty))
    return {uid: _ranked(g) for uid, g in groups.items()}


def rescore_stream(hyps: Iterable[Hyp], lm_logprobs: Callable[[Iterable[str]], Iterable[float]], lm_weight: float,
                   word_penalty: float, source: str = "<hypotheses>") -> Iterator[tuple[str, list[Hyp]]]:
    """(id, hypotheses best first) for each run of consecutive hypotheses of one id, yielded as
    soon as its last hypothesis is scored. `lm_logprobs(texts)` yields each text's LM
    log-probability, in order, reading `texts` as it goes (`LanguageModel.score_iter`); only
    the hypotheses read but not yet scored are held. An id that comes back after another is
    an InputError naming `source` and the line."""
    pending: deque[tuple[Hyp, bool]] = deque()

    def texts() -> Iterator[str]:
        for h, last in _group_ends(hyps, source):
            pending.append((h, last))
            yield h.text

    group: list[Hyp] = []
    for lp in lm_logprobs(texts()):
        h, last = pending.popleft()
        group.append(_fill(h, lp, lm_weight, word_penalty, source))
        if last:
            yield h.id, _ranked(group)
            group = []


def _group_ends(hyps: Iterable[Hyp], source: str) -> Iterator[tuple[Hyp, bool]]:
    """Each hypothesis with whether it is the last of its id's run (one hypothesis of look-ahead);
    the ids seen are kept to refuse one that comes back."""
    seen: set[str] = set()
    prev: Hyp | None = None
    for h in hyps:
        if prev is None or h.id != prev.id:
            if h.id in seen:
                raise InputError(f"{source}:{h.line}: id {h.id!r} comes back after other ids; "
                                 "an id's hypotheses must be consecutive (sort the n-best list by id)")
            seen.add(h.id)
        if prev is not None:
            yield prev, h.id != prev.id
        prev = h
    if prev is not None:
        yield prev, True


def iter_groups(hyps: Iterable[Hyp], source: str = "<hypotheses>") -> Iterator[list[Hyp]]:
    """Each run of consecutive hypotheses of one id as a list (an id that comes back: InputError)."""
    group: list[Hyp] = []
    for h, last in _group_ends(hyps, source):
        group.append(h)
        if last:
            yield group
            group = []


def rescore_carried(hyps: Iterable[Hyp], score_group: Callable[[list[str], Any], list[float]],
                    carry: Callable[[str, Any], Any], conversation: Callable[[str], str], lm_weight: float,
                    word_penalty: float, source: str = "<hypotheses>") -> Iterator[tuple[str, list[Hyp]]]:
    """`rescore_stream` with context carried across ids: `score_group(texts, state)` gives each
    text's LM log-probability starting from `state` (None: a fresh one), `carry(text, state)` the
    state after the best hypothesis; the state is reset where `conversation(id)` changes."""
    state, current = None, None
    for group in iter_groups(hyps, source):
        uid = group[0].id
        try:
            conv = conversation(uid)
        except InputError as e:
            raise InputError(f"{source}:{group[0].line}: {e}") from None
        if conv != current:
            state, current = None, conv
        lps = score_group([h.text for h in group], state)
        ranked = _ranked([_fill(h, lp, lm_weight, word_penalty, source) for h, lp in zip(group, lps, strict=True)])
        state = carry(ranked[0].text, state)
        yield uid, ranked


def rescored_lines(uid: str, group: list[Hyp]) -> list[str]:
    """TSV for one id's hypotheses, best first: id, rank, total, ascore, lm, nwords, hypothesis."""
    return [f"{uid}\t{rank}\t{h.total:.6f}\t{h.ascore:.6f}\t{h.lm:.6f}\t{h.nwords}\t{h.text}"
            for rank, h in enumerate(group, 1)]


def best_line(uid: str, group: list[Hyp], fmt: str) -> str:
    """The best hypothesis of one id: `id<TAB>text` (plain, srilm) or `uttid text` (kaldi)."""
    sep = " " if fmt == "kaldi" else "\t"
    return f"{uid}{sep}{group[0].text}"


def format_rescored(groups: dict[str, list[Hyp]]) -> list[str]:
    """TSV lines of every id (rescored_lines)."""
    return [line for uid, g in groups.items() for line in rescored_lines(uid, g)]


def format_best(groups: dict[str, list[Hyp]], fmt: str) -> list[str]:
    """The best hypothesis per id (best_line)."""
    return [best_line(uid, g, fmt) for uid, g in groups.items()]
